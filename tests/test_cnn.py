"""The cnn model, augmentation, schedules and ensembles, on real MNIST slices (a small IDX folder)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mnist_classifier import resolve
from mnist_classifier.augment import Augmentation, augment, sample_bilinear
from mnist_classifier.backends import EnsembleBackend, KerasBackend, OnnxBackend, ensemble_probabilities
from mnist_classifier.config import TrainConfig
from mnist_classifier.data import load_dataset, write_idx
from mnist_classifier.ensemble import build_ensemble, train_ensemble
from mnist_classifier.evaluation import evaluate_run, split_arrays
from mnist_classifier.inference import Predictor, fast_predictor, load_predictor
from mnist_classifier.layers import Deskew, deskewed
from mnist_classifier.models import past_deskew
from mnist_classifier.preprocess import deskew, scale
from mnist_classifier.runs import load_model, run_config
from mnist_classifier.training import make_optimizer, training_data

Train = Callable[..., Path]

TRAIN, TEST = 6000, 1000


@pytest.fixture(scope="session")
def mnist_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6,000 training and 1,000 test images of MNIST as an IDX folder."""
    data = load_dataset("mnist")
    folder = tmp_path_factory.mktemp("slice")
    write_idx(folder / "train-images-idx3-ubyte", data.x_train[:TRAIN])
    write_idx(folder / "train-labels-idx1-ubyte", data.y_train[:TRAIN])
    write_idx(folder / "t10k-images-idx3-ubyte", data.x_test[:TEST])
    write_idx(folder / "t10k-labels-idx1-ubyte", data.y_test[:TEST])
    return folder


def small_cnn(folder: Path, **overrides: object) -> TrainConfig:
    settings = {
        "model": "cnn",
        "preset": "fast",
        "dataset": "slice",
        "data_dir": str(folder),
        "epochs": 1,
        "batch_size": 32,
        "validation_fraction": 0.2,
    }
    return resolve(**(settings | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cnn_runs(mnist_slice: Path, tmp_path_factory: pytest.TempPathFactory, trainer: Train) -> list[Path]:
    """Two one-epoch fast CNNs on the slice with different seeds, evaluated on the slice's test images."""
    runs = tmp_path_factory.mktemp("cnn-runs")
    out = [trainer(small_cnn(mnist_slice, seed=seed), runs / f"seed{seed}", verbose=0) for seed in (1, 2)]
    for run_dir in out:
        evaluate_run(run_dir)
    return out


def test_cnn_learns_in_one_epoch(cnn_runs: list[Path]) -> None:
    """4,800 images (and 480 printed digits) seen once: chance is 10%, a working convnet gets well above 90%."""
    for run_dir in cnn_runs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["n"] == TEST and metrics["accuracy"] >= 0.90
        config = json.loads((run_dir / "config.json").read_text())
        assert config["model"] == "cnn" and config["meta"]["train_size"] == 4800 + 480  # and a printed digit per 10


def test_seeded_cnn_training_is_reproducible(mnist_slice: Path, tmp_path: Path, trainer: Train) -> None:
    config = small_cnn(mnist_slice, shift=2.0, rotation=10.0, elastic=20.0, seed=7)
    rows = [list(csv.DictReader((trainer(config, tmp_path / n, verbose=0) / "history.csv").open())) for n in "ab"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert rows[0][0][key] == rows[1][0][key]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist")
    return scale(data.x_train[:512]), data.y_train[:512]


def augmented_epoch(aug: Augmentation, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of the training pipeline over `x`, each image labelled with its own index."""
    fields = {name: getattr(aug, name) for name in ("shift", "rotation", "scale", "elastic", "elastic_sigma")}
    batches = list(training_data(TrainConfig(batch_size=64, epochs=1, **fields), x, np.arange(len(x)), len(x)))
    images = np.concatenate([b[0].numpy() for b in batches])
    return images, np.concatenate([b[1].numpy() for b in batches]).argmax(axis=1)


@pytest.mark.parametrize(
    "aug",
    [
        Augmentation(shift=2.0),
        Augmentation(rotation=15.0),
        Augmentation(scale=0.15),
        Augmentation(elastic=34.0, elastic_sigma=4.0),
        Augmentation(shift=2.0, rotation=10.0, scale=0.1, elastic=34.0),
    ],
)
def test_augmentation_changes_images_and_keeps_range_and_labels(
    digits: tuple[np.ndarray, np.ndarray], aug: Augmentation
) -> None:
    x = digits[0][:256]
    images, source = augmented_epoch(aug, x)
    assert images.shape == x.shape and images.dtype == np.float32
    assert sorted(source) == list(range(len(x))), "every image once per epoch"
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.abs(images - x[source]).mean() > 0.02, "augmentation changes the images"
    flat = np.broadcast_to(((np.arange(256) + 1) / 257).astype(np.float32)[:, None, None], (256, 28, 28))
    images, source = augmented_epoch(aug, np.ascontiguousarray(flat))
    centre = images[:, 10:18, 10:18].mean(axis=(1, 2))
    np.testing.assert_allclose(centre, (source + 1) / 257, atol=1e-4, err_msg="labels stay with their images")


def test_augmentation_is_seeded() -> None:
    images = tf.random.stateless_uniform((8, 28, 28), (0, 1))
    aug = Augmentation(shift=2.0, rotation=10.0, elastic=20.0)
    first = augment(images, aug, tf.constant([3, 4], tf.int64)).numpy()
    np.testing.assert_array_equal(first, augment(images, aug, tf.constant([3, 4], tf.int64)).numpy())
    assert not np.allclose(first, augment(images, aug, tf.constant([3, 5], tf.int64)).numpy())


def test_identity_augmentation_returns_the_images() -> None:
    images = tf.random.stateless_uniform((4, 28, 28), (0, 1))
    np.testing.assert_allclose(augment(images, Augmentation(), tf.constant([0, 0], tf.int64)), images, atol=1e-6)


def slant(images: np.ndarray) -> np.ndarray:
    """Each image's shear: its row-column covariance over its row variance (0 for an upright digit)."""
    rows, cols = np.mgrid[:28, :28]
    total = images.sum(axis=(1, 2))
    row = (images * rows).sum(axis=(1, 2)) / total
    col = (images * cols).sum(axis=(1, 2)) / total
    dr, dc = rows - row[:, None, None], cols - col[:, None, None]
    return (images * dr * dc).sum(axis=(1, 2)) / (images * dr**2).sum(axis=(1, 2))


def test_deskew_layer_straightens_digits_like_the_preprocessing() -> None:
    images = scale(load_dataset("mnist").x_test[:200])
    straightened = Deskew()(images).numpy()
    np.testing.assert_allclose(straightened, [deskew(image) for image in images], atol=1e-5)
    assert np.abs(slant(images)).mean() > 0.15 and np.abs(slant(straightened)).mean() < 0.03
    assert straightened.min() >= 0 and straightened.max() <= 1
    blank = np.zeros((1, 28, 28), np.float32)
    assert not Deskew()(blank).numpy().any()


def test_the_model_past_its_deskew_layer_reads_digits_deskewed_once_as_the_whole_model_reads_them(
    tiny_run: Path,
) -> None:
    """Training a deskewing DNN without augmentation fits the layers past the deskew layer on digits straightened once
    beforehand; the run saves the whole model, deskew layer first, which reads raw digits the same way."""
    model = KerasBackend(load_model(tiny_run)).model
    assert isinstance(model.layers[1], Deskew)
    images = scale(load_dataset("mnist").x_test[:300])
    np.testing.assert_allclose(
        past_deskew(model).predict(deskewed(images), verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


def test_deskew_layer_is_bilinear_sampling_at_each_pixels_sheared_column() -> None:
    """The layer's row reads give what bilinear sampling at every pixel's own sheared column gives (the way it was
    computed before, which saved models were trained with), on digits, noise, sparse dots and shears that move rows
    off the image."""
    rng = np.random.default_rng(0)
    dots = (rng.random((64, 28, 28)) > 0.97).astype(np.float32)
    lines = np.zeros((28, 28, 28), np.float32)
    for i in range(28):  # a stroke from the top-left corner to each point of the bottom row: shears up to 1
        lines[i, np.arange(28), np.round(np.linspace(0, i, 28)).astype(int)] = 1
    far = np.zeros((1, 28, 28), np.float32)  # nearly flat ink and a faint dot far above: its top rows move ~300 px
    far[0, 13, 0] = far[0, 14, 27] = 1
    far[0, 0, 13] = 0.05
    digits = scale(load_dataset("mnist").x_test[:64])
    images = np.concatenate([digits, rng.random((64, 28, 28), np.float32), dots, lines, far])
    rows, cols = np.mgrid[:28, :28].astype(np.float32)
    skew = np.array([slant(image[None])[0] if image.any() else 0.0 for image in images], np.float32)
    row = (images * rows).sum(axis=(1, 2)) / images.sum(axis=(1, 2))
    xs = cols + skew[:, None, None] * (rows - row[:, None, None])
    ys = np.broadcast_to(rows, xs.shape)
    expected = np.clip(sample_bilinear(tf.constant(images), tf.constant(ys), tf.constant(xs)).numpy(), 0, 1)
    np.testing.assert_allclose(Deskew()(images).numpy(), expected, atol=1e-5)


def test_model_layers_do_not_import_training_code(python_process) -> None:  # type: ignore[no-untyped-def]
    """Loading a model (its Deskew layer) never pulls in training modules."""
    program = "import sys, mnist_classifier.layers; print('mnist_classifier.augment' in sys.modules)"
    result = python_process.run("-c", program, check=True)
    assert result.stdout.strip() == "False"


def test_a_deskewing_model_keeps_its_layer_through_saving_and_onnx(
    mnist_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainer: Train
) -> None:
    """--deskew puts the layer inside the model, so every way of running the saved run straightens digits."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path / "cache"))
    run_dir = trainer(small_cnn(mnist_slice, deskew=True), tmp_path / "run", verbose=0)
    evaluate_run(run_dir)
    keras_predictor = Predictor(run_dir)
    assert isinstance(keras_predictor.backend, KerasBackend)
    assert isinstance(keras_predictor.backend.model.layers[1], Deskew)
    onnx_predictor = fast_predictor(run_dir)
    assert isinstance(onnx_predictor.backend, OnnxBackend)
    images = scale(load_dataset("mnist").x_test[:300])
    expected = keras_predictor.probabilities(images)
    np.testing.assert_allclose(onnx_predictor.probabilities(images), expected, atol=1e-5)
    assert np.mean(expected.argmax(axis=1) == load_dataset("mnist").y_test[:300]) > 0.8


def test_a_run_trained_with_the_retired_onecycle_resumes_with_cosine(tmp_path: Path) -> None:
    """onecycle was our own copy of cosine with warm-up; a run (or a config file) that names it reads as cosine."""
    settings = dataclasses.asdict(resolve(model="cnn")) | {"schedule": "onecycle", "meta": {"status": "training"}}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    assert run_config(tmp_path).schedule == "cosine"


@pytest.mark.parametrize(("total", "warmup_fraction"), [(100, 0.2), (100, 0.0), (937, 0.1), (50, 0.98)])
def test_cosine_gives_the_one_cycle_rates(total: int, warmup_fraction: float) -> None:
    """Smith's one cycle: a linear rise from a hundredth of the peak over the warm-up, then half a cosine down to 0 at
    the last step, and 0 after it."""
    peak, warmup = 0.01, int(total * warmup_fraction)
    start = peak / 100 if warmup else peak
    expected = [
        start + (peak - start) * step / warmup
        if step < warmup
        else peak * 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1)))
        for step in range(total + 10)
    ]
    optimizer = make_optimizer(
        resolve(schedule="cosine", learning_rate=peak, warmup_fraction=warmup_fraction), steps=total
    )
    rates = []
    for step in range(total + 10):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("constant", {0: 0.01, 50: 0.01, 100: 0.01}),
        ("cosine", {0: 0.0001, 10: 0.01, 55: 0.005, 100: 0.0}),
        ("onecycle", {0: 0.0001, 10: 0.01, 55: 0.005, 100: 0.0}),  # retired: a config naming it gets cosine
    ],
)
def test_configured_schedules_give_their_rates(schedule: str, expected: dict[int, float], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f'schedule = "{schedule}"\nlearning_rate = 0.01\nwarmup_fraction = 0.1\n')
    optimizer = make_optimizer(resolve(tmp_path / "config.toml"), steps=100)
    for step, rate in expected.items():
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(rate, rel=1e-3, abs=1e-7), step


def test_ensemble_averages_members(cnn_runs: list[Path], mnist_slice: Path, tmp_path: Path) -> None:
    _, metrics = build_ensemble(cnn_runs, tmp_path / "ens")
    assert "val_accuracy" not in metrics  # seeds 1 and 2 hold out different images
    x, y = load_dataset("custom", mnist_slice).x_test, load_dataset("custom", mnist_slice).y_test
    predictors = [Predictor(run) for run in cnn_runs]
    members = [p.probabilities(x) for p in predictors]
    mean = ensemble_probabilities(predictors, x)
    np.testing.assert_allclose(mean, (members[0] + members[1]) / 2, rtol=1e-6)
    accuracies = [float(np.mean(p.argmax(axis=1) == y)) for p in members]
    assert metrics["accuracy"] == pytest.approx(float(np.mean(mean.argmax(axis=1) == y)))
    assert metrics["accuracy"] >= min(accuracies)
    assert [m["accuracy"] for m in metrics["members"]] == pytest.approx(accuracies)
    _, tta = build_ensemble(cnn_runs, tmp_path / "tta", tta=True)
    assert tta["tta"] and tta["accuracy"] >= min(accuracies)


@pytest.mark.usefixtures("trainer")  # train_ensemble trains its members for real
def test_trained_ensemble_members_share_a_validation_split(mnist_slice: Path, tmp_path: Path) -> None:
    """train --ensemble: members differ in seed but hold out the same images, so the ensemble's own validation
    accuracy is measured (and reported); ensembles of runs with different splits have none."""
    out = train_ensemble(small_cnn(mnist_slice, ensemble=2, seed=5), tmp_path / "ens", verbose=0)
    members = [out / "member-1", out / "member-2"]
    configs = [run_config(member) for member in members]
    assert [(c.seed, c.split_seed) for c in configs] == [(5, 5), (6, 5)]
    data = load_dataset("slice", mnist_slice)
    x_val, y_val = split_arrays(configs[0], data, "val")
    np.testing.assert_array_equal(split_arrays(configs[1], data, "val")[1], y_val)
    mean = ensemble_probabilities([Predictor(m) for m in members], x_val)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_accuracy"] == pytest.approx(float(np.mean(mean.argmax(axis=1) == y_val)))


def test_ensemble_command_writes_a_report(cli, cnn_runs: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ens"
    result = cli("ensemble", *map(str, cnn_runs), "--out", str(out))
    assert result.code == 0, result.err
    assert "member" in result.out and "test accuracy" in result.out
    html = (out / "report.html").read_text()
    assert "Ensemble members" in html and "seed1" in html
    for command in (
        ["evaluate", str(out)],
        ["export", str(out), "--format", "onnx", "--out", "x"],
    ):
        result = cli(*command)
        assert result.code == 2 and "is an ensemble of 2 runs" in result.err and str(cnn_runs[0]) in result.err


def test_ensemble_folder_predicts_like_its_members(  # type: ignore[no-untyped-def]
    cli, cnn_runs: list[Path], mnist_slice: Path, tmp_path: Path
) -> None:
    """predict and serve take an ensemble folder: the members' mean (over shifted views too when built with
    --tta), in Keras and through the members' ONNX copies; members recorded by a relative path that no longer
    resolves are found inside the folder, where train --ensemble puts them."""
    x = load_dataset("custom", mnist_slice).x_test[:64]
    members = [Predictor(run) for run in cnn_runs]
    for tta in (False, True):
        out = tmp_path / f"ens-{tta}"
        build_ensemble(cnn_runs, out, tta)
        expected = ensemble_probabilities(members, x, tta)
        np.testing.assert_allclose(load_predictor(out).probabilities(x), expected, rtol=1e-5, atol=1e-6)
        load_predictor(out, fast=True)  # converts the members to ONNX
        fast = load_predictor(out, fast=True)
        assert isinstance(fast.backend, EnsembleBackend)
        assert all(isinstance(m.backend, OnnxBackend) for m in fast.backend.members)
        np.testing.assert_allclose(fast.probabilities(x), expected, atol=1e-4)
    moved = tmp_path / "moved"
    moved.mkdir()
    for i, run in enumerate(cnn_runs, 1):
        shutil.copytree(run, moved / f"member-{i}")
    config = json.loads((tmp_path / "ens-False" / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps(config | {"members": ["gone/member-1", "gone/member-2"]}))
    predictor = load_predictor(moved)
    np.testing.assert_allclose(predictor.probabilities(x), ensemble_probabilities(members, x), rtol=1e-5, atol=1e-6)
    assert predictor.architecture == "ensemble of 2 cnn"
    assert predictor.parameters == sum(m.parameters for m in members)
    Image.fromarray(x[0]).save(tmp_path / "digit.png")
    result = cli("predict", str(moved), str(tmp_path / "digit.png"), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["digit"] == str(int(ensemble_probabilities(members, x[:1]).argmax()))
    shutil.rmtree(moved / "member-2")
    result = cli("predict", str(moved), str(tmp_path / "digit.png"))
    assert result.code == 2 and "ensemble member" in result.err and "member-2" in result.err


def broken_copies(cnn_runs: list[Path], tmp_path: Path) -> dict[str, Path]:
    """Member directories that are missing, corrupt, or from another dataset or image shape."""
    copies = {}
    for name in ("corrupt", "dataset", "shape"):
        copies[name] = tmp_path / name
        shutil.copytree(cnn_runs[1], copies[name])
    (copies["corrupt"] / "model.keras").write_bytes(b"not a zip")
    for name, key, value in (("dataset", "dataset", "fashion-mnist"), ("shape", "input_shape", [32, 32])):
        config = json.loads((copies[name] / "config.json").read_text())
        (config["meta"] if key == "input_shape" else config)[key] = value
        (copies[name] / "config.json").write_text(json.dumps(config))
    copies["missing"] = tmp_path / "missing"
    return copies


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("missing", "ensemble member {}: no config.json"),
        ("corrupt", "ensemble member {}: {}/model.keras: not a readable Keras model"),
        ("dataset", "ensemble member {} was trained on dataset 'fashion-mnist'"),
        ("shape", "ensemble member {} has input_shape [32, 32]"),
    ],
)
def test_bad_ensemble_members_are_named(cli, cnn_runs: list[Path], tmp_path: Path, member: str, message: str) -> None:  # type: ignore[no-untyped-def]
    bad = broken_copies(cnn_runs, tmp_path)[member]
    out = tmp_path / "out"
    result = cli("ensemble", str(cnn_runs[0]), str(bad), "--out", str(out))
    assert result.code == 2 and result.err.count("\n") == 1
    assert message.format(bad, bad) in result.err
    assert not out.exists(), "nothing written before the members are checked"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "dnn", "--filters", "8,16"], "--filters applies to the cnn model only"),
        (["--model", "dnn", "--preset", "fast"], "--preset must be one of augmented for model 'dnn', got 'fast'"),
        (
            ["--model", "cnn", "--preset", "turbo"],
            "--preset must be one of fast, default, best for model 'cnn', got 'turbo'",
        ),
        (["--model", "cnn", "--filters", "8,x"], "--filters: expected comma-separated sizes"),
        (["--model", "cnn", "--kernel-size", "4"], "--kernel-size must be one of 3, 5, 7, got 4"),
        (["--model", "cnn", "--downsample", "avg"], "--downsample must be one of pool, stride, got 'avg'"),
        (["--rotation", "400"], r"--rotation must be in [0, 180)"),
        (["--schedule", "step"], "--schedule must be one of constant, cosine, got 'step'"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    ],
)
def test_options_that_do_not_fit_are_refused(cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("train", *args, "--out", str(tmp_path / "r"))
    assert result.code == 2 and result.err.count("\n") == 1
    assert message in result.err
    assert not (tmp_path / "r").exists()


def test_presets_are_ordinary_configs(cli) -> None:  # type: ignore[no-untyped-def]
    fast = cli("train", "--model", "cnn", "--preset", "fast", "--show-config")
    assert fast.code == 0 and "epochs = 2" in fast.out and 'schedule = "cosine"' in fast.out
    changed = cli("train", "--model", "cnn", "--preset", "fast", "--epochs", "3", "--show-config")
    assert "epochs = 3" in changed.out
    best = cli("train", "--model", "cnn", "--preset", "best", "--show-config")
    assert best.code == 0 and "ensemble = 2" in best.out and "deskew = true" in best.out
    assert (
        cli("train", "--model", "cnn", "--show-config").out
        == cli("train", "--model", "cnn", "--preset", "default", "--show-config").out
    )
    dnn = cli("train", "--show-config")
    assert "filters" not in dnn.out and "kernel_size" not in dnn.out
