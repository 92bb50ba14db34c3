"""Training on the bundled MNIST (real trainings get `train` through the `trainer` fixture: the slow tier), and the
training state that `--resume` restores."""

from __future__ import annotations

import csv
import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_classifier import resolve, training
from mnist_classifier.checkpoints import BestCheckpoint, restore_state, save_state, state_variables
from mnist_classifier.data import load_dataset, synthetic
from mnist_classifier.errors import RunError
from mnist_classifier.evaluation import evaluate_run
from mnist_classifier.runs import load_model, run_meta

from .conftest import PythonProcess, Result, require

Train = Callable[..., Path]


def test_short_training_learns(dnn_run: Path) -> None:
    metrics = json.loads((dnn_run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.95
    assert metrics["n"] == 10000 and metrics["epochs"] == 2
    rows = list(csv.DictReader((dnn_run / "history.csv").open()))
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert float(rows[1]["learning_rate"]) < float(rows[0]["learning_rate"]), "cosine decay lowers the rate"


def test_accuracy_is_the_confusion_matrix_trace(dnn_run: Path) -> None:
    metrics = json.loads((dnn_run / "metrics.json").read_text())
    rows = list(csv.reader((dnn_run / "confusion_matrix.csv").open()))
    assert rows[0][1:] == [str(d) for d in range(10)]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert matrix.sum() == 10000
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert metrics["errors"] == matrix.sum() - np.trace(matrix)
    wrong = np.load(dnn_run / "misclassified.npz")
    assert len(wrong["true"]) == metrics["errors"] and np.all(wrong["true"] != wrong["predicted"])


def test_same_seed_same_metrics(trainer: Train, tmp_path: Path) -> None:
    # the drawn digits come from the cache, the same arrays for both runs: drawing them here would only cost time
    settings = resolve(epochs=1, hidden_units=[64], train_samples=10_000, photographed=0.0, variants=0.0)
    a = trainer(settings, tmp_path / "a", verbose=0)
    b = trainer(settings, tmp_path / "b", verbose=0)
    history = [next(iter(csv.DictReader((run / "history.csv").open()))) for run in (a, b)]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[0][key] == history[1][key]


def test_interrupted_training_leaves_only_complete_files(
    trainer: Train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the second epoch: the first epoch's checkpoint is a whole model, nothing else is half-written."""
    original = BestCheckpoint.on_epoch_end

    def interrupt(self: BestCheckpoint, epoch: int, logs: dict | None = None) -> None:
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(BestCheckpoint, "on_epoch_end", interrupt)
    run_dir = tmp_path / "run"
    # no photographed digits or other styles: drawing them would only cost time
    settings = resolve(epochs=3, hidden_units=[32], train_samples=10_000, photographed=0.0, variants=0.0)
    with pytest.raises(KeyboardInterrupt):
        trainer(settings, run_dir, verbose=0)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "history.csv", "model.keras", "resume.npz", "tensorboard"
    ]  # fmt: skip
    assert load_model(run_dir / "model.keras").count_params() > 0


def interrupt_at(monkeypatch: pytest.MonkeyPatch, stop_epoch: int) -> None:
    """Make training raise KeyboardInterrupt once `stop_epoch` (1-based) is saved."""
    original = BestCheckpoint.on_epoch_end

    def interrupt(self: BestCheckpoint, epoch: int, logs: dict | None = None) -> None:
        original(self, epoch, logs)
        if epoch + 1 == stop_epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(BestCheckpoint, "on_epoch_end", interrupt)


def test_a_resumed_run_is_the_run_it_would_have_been(
    cli: Callable[..., Result], trainer: Train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after epoch 2 of 4 and resumed: the same epochs, losses and accuracies as a run never stopped
    (the optimizer's state, the schedule's step, the shuffling and the augmentation all carry on)."""
    settings = resolve(epochs=4, hidden_units=[64], validation_fraction=0.5, train_samples=3000, shift=2.0)
    whole = trainer(settings, tmp_path / "whole", verbose=0)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            trainer(settings, tmp_path / "cut", verbose=0)
    for command in (
        ["evaluate"],
        ["predict", "--json"],
        ["serve"],
        ["export", "--format", "keras", "--out", "x.keras"],
    ):
        args = [*command[:1], str(tmp_path / "cut"), *command[1:]] + (
            [str(tmp_path)] if command[0] == "predict" else []
        )
        result = cli(*args)
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert f"train --resume {tmp_path / 'cut'}" in result.err
    result = cli("train", "--resume", str(tmp_path / "cut"))
    assert result.code == 0, result.err
    rows = [list(csv.DictReader((run / "history.csv").open())) for run in (whole, tmp_path / "cut")]
    assert [r["epoch"] for r in rows[1]] == ["1", "2", "3", "4"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert [r[key] for r in rows[0]] == [r[key] for r in rows[1]], key
    assert not (tmp_path / "cut" / "resume.npz").exists() and (tmp_path / "cut" / "metrics.json").is_file()
    assert cli("train", "--resume", str(tmp_path / "cut")).err.endswith(
        "its training finished and was evaluated; there is nothing to resume\n"
    )
    assert "give it alone" in cli("train", "--resume", str(tmp_path / "cut"), "--epochs", "3").err


def test_hard_epochs_train_on_the_hardest_examples_and_resume_as_they_would_have(
    trainer: Train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last epochs train on the digits read least surely (fewer steps), and a run interrupted in them resumes on
    the same examples, as if never stopped."""
    settings = resolve(
        epochs=3, hard_epochs=2, hard_fraction=0.25, hidden_units=[64], validation_fraction=0.5, train_samples=3000
    )
    whole = trainer(settings, tmp_path / "whole", verbose=0)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            trainer(settings, tmp_path / "cut", verbose=0)
    with np.load(tmp_path / "cut" / "hard.npz") as hard:
        assert len(hard["digits"]) == round(run_meta(tmp_path / "cut")["train_size"] * 0.25)
        assert len(hard["nondigits"]) > 0 and np.all(np.diff(hard["digits"]) > 0)
    training.resume(tmp_path / "cut", verbose=0)
    rows = [list(csv.DictReader((run / "history.csv").open())) for run in (whole, tmp_path / "cut")]
    assert [r["epoch"] for r in rows[1]] == ["1", "2", "3"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert [r[key] for r in rows[0]] == [r[key] for r in rows[1]], key
    assert float(rows[0][-1]["learning_rate"]) == 0.0, "the schedule ends with the last hard step"
    assert not (tmp_path / "cut" / "hard.npz").exists()


def test_epochs_done_counts_full_then_hard_epochs() -> None:
    assert [training.epochs_done(i, 2, 10, 4) for i in (0, 9, 10, 20, 23, 24, 28)] == [0, 0, 1, 2, 2, 3, 4]


def test_the_first_epoch_always_sees_every_example() -> None:
    """A preset's hard epochs fit any --epochs: at most all but the first are hard (the default CNN's 4 of 6)."""
    assert [training.late_epochs(resolve(model="cnn", epochs=e)) for e in (1, 2, 4, 6, 8)] == [0, 1, 3, 4, 4]
    assert training.late_epochs(resolve(model="cnn", preset="fast")) == 0


def test_training_survives_ten_kills(python_process: PythonProcess, tmp_path: Path) -> None:
    """SIGKILL `train` at a random moment of its training, ten times; each `train --resume` carries on, and the run
    ends with every epoch once and a finished status. The killed processes are forks of one that imported Keras (the
    files on disk are all a kill can leave behind); the one that finishes is a process of its own."""
    run = tmp_path / "run"
    base = ["-m", "mnist_classifier", "train"]
    settings = ["--epochs", "30", "--train-samples", "1000", "--hidden-units", "16", "--validation-fraction", "0.05"]
    rng = random.Random(7)
    command = [*base, *settings, "--out", str(run)]
    with python_process.warm("keras") as launcher:
        for kill in range(10):
            process = launcher.start(*command)
            epochs_before = len(epochs_done(run))
            deadline = time.monotonic() + 120
            while len(epochs_done(run)) <= epochs_before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.5))
            process.kill()
            assert process.wait() == -signal.SIGKILL, (
                f"kill {kill}: the run ended before it was killed; give it more epochs"
            )
            command = [*base, "--resume", str(run)]
    done = python_process.run(*command)
    assert done.returncode == 0, done.stderr
    assert epochs_done(run) == list(range(1, 31))
    assert json.loads((run / "config.json").read_text())["meta"]["status"] == "finished"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 30


def epochs_done(run: Path) -> list[int]:
    try:
        return [int(float(r["epoch"])) for r in csv.DictReader((run / "history.csv").open())]
    except (FileNotFoundError, KeyError, ValueError):
        return []


def test_unwritable_out_is_one_line(cli: Callable[..., Result]) -> None:
    result = cli("train", "--epochs", "1", "--out", "/proc/forbidden")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--out: cannot create /proc/forbidden" in result.err


def test_a_full_disk_leaves_nothing_half_written(
    trainer: Train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing the model fails with ENOSPC: one WriteError naming the file; no temporary or partial file remains."""
    import errno

    import keras

    from mnist_classifier.errors import WriteError

    def full(self: keras.Model, path: str, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    with pytest.raises(WriteError, match=r"cannot write .*model\.keras \(No space left on device\)"):
        trainer(resolve(epochs=1, hidden_units=[16], train_samples=500), tmp_path / "run", verbose=0)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "history.csv", "tensorboard"]


def test_refuses_to_overwrite_a_run(tiny_run: Path) -> None:
    from mnist_classifier.errors import ConfigError
    from mnist_classifier.training import train  # refused before it trains: no `trainer` needed

    with pytest.raises(ConfigError, match="already holds a run"):
        train(resolve(epochs=1), tiny_run, verbose=0)


def test_fashion_mnist_trains_one_epoch(trainer: Train, tmp_path: Path) -> None:
    require(Path("/usr/share/datasets/fashion-mnist").is_dir(), "Debian's dataset-fashion-mnist is not installed")
    run_dir = trainer(resolve(dataset="fashion-mnist", epochs=1), tmp_path / "f", verbose=0)
    metrics = evaluate_run(run_dir)
    assert metrics["dataset"] == "fashion-mnist" and metrics["accuracy"] > 0.80
    assert "Ankle boot" in metrics["per_class"]
    assert run_meta(run_dir)["train_size"] == 54_000  # no printed digits among the clothes


def test_printed_digits_join_the_training_digits() -> None:
    from mnist_classifier.training import prepare

    mnist = load_dataset("mnist")
    plain = prepare(resolve(train_samples=5000, printed_digits=0), mnist)
    data = prepare(resolve(train_samples=5000), mnist)  # 3,000 by default, at most one per 10 digits
    assert len(data.x_train) == len(data.y_train) == 5500
    np.testing.assert_array_equal(data.x_train[:5000], plain.x_train)
    np.testing.assert_array_equal(data.x_val, plain.x_val)
    assert list(data.y_train[5000:5012]) == [*range(10), 0, 1]
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0 and data.x_train.max() <= 1
    assert data.x_train[5000:].max(axis=(1, 2)).min() > 0.5  # each holds ink


def test_shares_of_the_training_digits_are_seen_photographed_and_in_other_styles() -> None:
    from mnist_classifier.preprocess import scale
    from mnist_classifier.training import in_styles, prepare

    mnist = load_dataset("mnist")
    plain = prepare(resolve(train_samples=2000, printed_digits=0, photographed=0.0, variants=0.0), mnist)
    data = prepare(resolve(train_samples=2000, printed_digits=0), mnist)  # a quarter, then a fifth, by default
    assert data.x_train.shape == plain.x_train.shape and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.y_train, plain.y_train)
    np.testing.assert_array_equal(data.x_train[900:], plain.x_train[900:])
    np.testing.assert_array_equal(data.x_val, plain.x_val)
    redrawn, originals = data.x_train[:900].reshape(900, -1), plain.x_train[:900].reshape(900, -1)
    assert np.mean(np.abs(redrawn - originals).mean(axis=1) > 0.01) > 0.9  # redrawn...
    same = [np.corrcoef(a, b)[0, 1] for a, b in zip(redrawn, originals, strict=True)]
    assert np.median(same[:500]) > 0.6 and np.median(same[500:]) > 0.6  # ...but still the same digit in the same place
    digits = np.round(plain.x_train[500:900] * 255).astype(np.uint8)
    np.testing.assert_array_equal(data.x_train[500:900], scale(in_styles(digits)))  # each style in turn


def test_photographed_digits_are_drawn_once_and_repeat_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    digits = load_dataset("mnist").x_test[:50]
    first = synthetic.photographed(digits, seed=3)
    assert capsys.readouterr().err.startswith("note: drawing 50 images (photographed-v")  # seconds of silence said
    assert first.shape == digits.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, synthetic.photographed(digits.copy(), seed=3))  # from the cache
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(first, synthetic.photograph(digits, 3))  # as drawn
    assert not np.array_equal(first, synthetic.photographed(digits, seed=4))


def test_a_run_from_before_outlier_exposure_resumes_without_it(tmp_path: Path) -> None:
    from mnist_classifier.config import TrainConfig, to_dict
    from mnist_classifier.runs import run_config, write_config

    write_config(tmp_path, TrainConfig(epochs=3), {"status": "training"})
    config = run_config(tmp_path)
    assert (config.outliers, config.printed_digits, config.photographed) == (0.25, 3000, 0.25)
    settings = json.loads((tmp_path / "config.json").read_text())
    del settings["outliers"], settings["printed_digits"], settings["photographed"]
    (tmp_path / "config.json").write_text(json.dumps(settings))
    before = TrainConfig(epochs=3, outliers=0.0, printed_digits=0, photographed=0.0)
    assert to_dict(run_config(tmp_path)) == to_dict(before)


def side_by_side(order: str) -> keras.Model:
    """Dense layers named after the letters of `order`, side by side, with a built Adam: the same variables under
    the same paths whatever the order, but listed in that order (as another Keras version might list them). In a
    fresh Keras session, as training builds its model, so that the paths carry no counter."""
    keras.backend.clear_session()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, [keras.layers.Dense(2, name=name)(inputs) for name in order])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def values_by_path(model: keras.Model) -> dict[str, list[float]]:
    return {v.path: np.asarray(v).ravel().tolist() for v in state_variables(model)}


def numbered(model: keras.Model) -> keras.Model:
    """Give each variable a value of its own, so that a variable restored into another's place shows."""
    for i, variable in enumerate(state_variables(model)):
        variable.assign(np.full(variable.shape, i + 1, variable.dtype))
    return model


def test_the_training_state_is_restored_by_path_whatever_the_order(tmp_path: Path) -> None:
    saved = numbered(side_by_side("ab"))
    save_state(saved, tmp_path / "resume.npz")
    assert np.load(tmp_path / "resume.npz").files == [v.path for v in state_variables(saved)]
    restored = side_by_side("ba")
    restore_state(restored, tmp_path / "resume.npz")
    assert values_by_path(restored) == values_by_path(saved)
    with pytest.raises(RunError, match=r"resume\.npz: the training state does not fit the model \('adam/b_bias"):
        restore_state(side_by_side("a"), tmp_path / "resume.npz")


def test_a_training_state_saved_by_position_still_restores(tmp_path: Path) -> None:
    """Runs interrupted before the state was keyed by path hold arr_0, arr_1, ... in the order of the variables."""
    saved = numbered(side_by_side("ab"))
    with (tmp_path / "resume.npz").open("wb") as f:
        np.savez(f, *[np.asarray(v) for v in state_variables(saved)])
    restored = side_by_side("ab")
    restore_state(restored, tmp_path / "resume.npz")
    assert values_by_path(restored) == values_by_path(saved)


def test_auto_precision_falls_back_to_float32_with_a_note_without_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    from mnist_classifier import hardware, precision

    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not hardware.has_bf16() and hardware.relevant_flags() == ["avx512_vnni"]
    chosen, note = precision.chosen_precision(resolve(model="cnn", precision="auto"))
    assert (chosen, note) == ("float32", "training in float32: this CPU has no bf16 units")
    assert precision.chosen_precision(resolve(precision="float32")) == ("float32", None)
    assert precision.chosen_precision(resolve(precision="bfloat16"))[0] == "bfloat16"  # asked for: emulated, said so

    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16", "amx_tile"}))
    monkeypatch.setitem(precision.BF16_FASTER, "cnn", True)
    monkeypatch.setitem(precision.BF16_FASTER, "dnn", False)
    assert precision.chosen_precision(resolve(model="cnn")) == ("bfloat16", None)
    assert precision.chosen_precision(resolve(model="dnn")) == ("float32", None)  # units, but no faster: no note
    assert precision.chosen_precision(resolve(model="cnn", preset="fast")) == ("float32", None)  # pinned: slower


def test_a_bfloat16_model_is_saved_in_float32_and_gives_probabilities_features_and_verdicts(tmp_path: Path) -> None:
    import warnings

    from mnist_classifier.inference import DefaultCalibrationWarning, Predictor
    from mnist_classifier.models import build_model
    from mnist_classifier.precision import in_float32
    from mnist_classifier.training import DigitAccuracy

    mnist = load_dataset("mnist")
    x, y = mnist.x_train[:1500].astype(np.float32) / 255, keras.utils.to_categorical(mnist.y_train[:1500], 10)
    for name in ("dnn", "cnn"):
        overrides = {"filters": [8, 16], "convs_per_stage": 1} if name == "cnn" else {}
        overrides |= {"hidden_units": [32], "batch_norm": False, "deskew": True}
        config = resolve(model=name, precision="bfloat16", **overrides)
        model = build_model(config, (28, 28), 10)
        hidden = {layer.dtype_policy.name for layer in model.layers if isinstance(layer, keras.layers.Dense)}
        assert hidden == {"mixed_bfloat16", "float32"} and model.get_layer("probabilities").dtype == "float32"
        assert model.get_layer("deskew").dtype_policy.name == "float32"
        model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=[DigitAccuracy()])
        model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        saved = in_float32(model)  # what training saves: every runtime (onnxruntime too) loads float32
        assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
        ours, trained = saved.predict(x[:300], verbose=0), model.predict(x[:300], verbose=0)
        assert (ours.argmax(axis=1) == trained.argmax(axis=1)).mean() > 0.97 and np.abs(ours - trained).max() < 0.1
        saved.save(tmp_path / f"{name}.keras")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DefaultCalibrationWarning)
            predictor = Predictor(tmp_path / f"{name}.keras")
        probs, features = predictor.features(mnist.x_test[:200])
        assert probs.dtype == np.float32 and features is not None and features.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
        assert (probs.argmax(axis=1) == mnist.y_test[:200]).mean() > 0.75  # it learned, in bfloat16
        judged = predictor.judge(mnist.x_test[:20])
        assert len(judged.verdicts) == 20 and set(judged.verdicts) <= {"digit", "uncertain", "not_a_digit"}


def test_a_bfloat16_run_records_its_path_and_is_calibrated(trainer: Train, tmp_path: Path) -> None:
    run_dir = trainer(resolve(epochs=1, train_samples=3000, precision="bfloat16"), tmp_path / "bf16", verbose=0)
    meta = run_meta(run_dir)
    assert meta["precision"] == "bfloat16" and isinstance(meta["cpu"]["flags"], list)
    metrics = evaluate_run(run_dir)
    assert metrics["precision"] == "bfloat16" and metrics["accuracy"] > 0.85
    assert metrics["verdicts"]["calibrated"] and 0.5 < metrics["verdicts"]["coverage"] <= 1
    from mnist_classifier.report.run import write_report

    assert "bfloat16 (" in write_report(run_dir).read_text()


def test_within_averaged_a_model_holds_its_moving_average_and_gets_its_raw_weights_back() -> None:
    """--ema: the saved model and validation use the optimizer's moving average of the weights; training goes on
    from the raw weights, which come back unchanged."""
    from mnist_classifier.checkpoints import averaged

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.9), loss="mse")
    x, y = np.random.default_rng(0).random((64, 4)), np.eye(3)[np.arange(64) % 3]
    for start in range(0, 64, 8):  # steps, without the end of fit, which leaves the average in the model
        model.train_on_batch(x[start : start + 8], y[start : start + 8])
    raw = model.get_weights()
    with averaged(model):
        average = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), raw, strict=True))
    assert not np.allclose(average[0], raw[0])
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    plain.compile(optimizer="adam", loss="mse")
    before = plain.get_weights()
    with averaged(plain):
        assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), before, strict=True))
