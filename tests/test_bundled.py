"""The models that ship in the package: their files as their manifests list them, their metrics against a fresh
reading, the commands that read them with no RUN (without TensorFlow), a damaged bundle refused in one line, and the
model card of every run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_classifier import bundled
from mnist_classifier.config import TrainConfig, to_dict
from mnist_classifier.data import load_dataset
from mnist_classifier.errors import RunError
from mnist_classifier.inference import fast_predictor
from mnist_classifier.report.model_card import NOT_ON_COMMAND_LINE, card_markdown, reproduce

SLICE = 5000  # test images read afresh by each bundled model's shipped ONNX copy
ROOT = Path(__file__).resolve().parent.parent
WHEEL_BUDGET = 10 * 2**20  # the bound on what the bundle adds to the wheel


@pytest.fixture
def digit(tmp_path: Path) -> Path:
    """A test seven (MNIST test image 0) as a PNG."""
    path = tmp_path / "seven.png"
    Image.fromarray(load_dataset("mnist").x_test[0]).save(path)
    return path


@pytest.fixture
def copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled fast CNN that $MNIST_CLASSIFIER_BUNDLED points to, free to damage."""
    shutil.copytree(bundled.SHIPPED / bundled.DEFAULT, tmp_path / "bundle" / bundled.DEFAULT)
    monkeypatch.setenv(bundled.ENVIRONMENT, str(tmp_path / "bundle"))
    return tmp_path / "bundle" / bundled.DEFAULT


def test_each_bundled_file_matches_its_manifest() -> None:
    """Every file of each bundled model is listed with its SHA-256 and size, and nothing else is there; the fast CNN
    is among them and the default; together they fit the wheel's budget."""
    assert bundled.names()[0] == bundled.DEFAULT == "cnn-fast"
    total = 0
    for name in bundled.names():
        folder = bundled.SHIPPED / name
        manifest = json.loads((folder / bundled.MANIFEST).read_text())
        files = {p.name for p in folder.iterdir()} - {bundled.MANIFEST}
        assert files == set(manifest["files"]), name
        for file, entry in manifest["files"].items():
            assert bundled.sha256(folder / file) == entry["sha256"], f"{name}/{file}"
            assert (folder / file).stat().st_size == entry["bytes"], f"{name}/{file}"
        assert {"model.keras", "model.onnx", "config.json", "calibration.json", "model_card.md"} <= files
        assert {"keras", "tensorflow", "onnxruntime"} <= set(manifest["versions"])
        assert manifest["seed"] == json.loads((folder / "config.json").read_text())["seed"]
        assert manifest["command"][:2] == ["mnist-classifier", "train"] and "--seed" in manifest["command"]
        total += bundled.load(name).size
    assert total <= WHEEL_BUDGET


@pytest.mark.parametrize("name", bundled.names())
def test_bundled_metrics_match_a_fresh_reading(name: str) -> None:
    """The shipped ONNX copy reads the first 5,000 test images as the recorded evaluation (Keras) did: the images it
    gets wrong are the ones misclassified.npz records there, give or take one (the copy agrees with Keras within
    1e-4 in every probability, so only a near tie can flip; more than one would mean a different model), and
    metrics.json's accuracy is the recorded mistakes' share of the whole test set."""
    model = bundled.load(name)
    metrics = json.loads((model.path / "metrics.json").read_text())
    data = load_dataset("mnist")
    predictor = fast_predictor(model.path)
    assert predictor.runtime == "onnxruntime float32"
    wrong = set(np.flatnonzero(predictor.probabilities(data.x_test[:SLICE]).argmax(axis=1) != data.y_test[:SLICE]))
    with np.load(model.path / "misclassified.npz") as recorded:
        index = recorded["index"]
    assert metrics["n"] == len(data.x_test) and metrics["accuracy"] == 1 - len(index) / metrics["n"]
    assert len(wrong ^ set(index[index < SLICE].tolist())) <= 1
    assert model.accuracy == metrics["accuracy"]


def test_predict_with_no_run_reads_with_the_bundled_cnn_without_tensorflow(  # type: ignore[no-untyped-def]
    cli, digit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`predict IMAGE` alone reads with the bundled fast CNN, says so in one line on stderr, and never imports
    TensorFlow or Keras (blocked here: importing either raises)."""
    for module in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, module, None)
    result = cli("predict", str(digit), "--json", "--verbose")
    assert result.code == 0, result.err
    [reading] = json.loads(result.out)
    assert reading["digit"] == "7" and reading["verdict"] == "digit"
    notes = result.err.splitlines()
    assert notes[0].startswith("no RUN given: reading with the bundled model cnn-fast (test accuracy 99.")
    assert "read by onnxruntime float32" in notes[1]
    named = cli("predict", "bundled:dnn", str(digit), "--json")
    assert named.code == 0 and json.loads(named.out)[0]["digit"] == "7", named.err
    assert named.err.startswith("reading with the bundled model dnn")


def test_a_damaged_or_unknown_bundle_is_one_line(cli, copied: Path, digit: Path) -> None:  # type: ignore[no-untyped-def]
    """A changed file, a missing file and an unknown name: one line, exit 2, for every command that takes a model."""
    onnx = copied / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + bytes([onnx.read_bytes()[-1] ^ 1]))
    for command in (["predict", str(digit)], ["serve", "--port", "0"], ["evaluate"], ["models"]):
        result = cli(*command)
        assert result.code == 2 and result.err.count("\n") == 1, (command, result.err)
        assert "model.onnx does not match its SHA-256" in result.err
    (copied / "calibration.json").unlink()
    result = cli("export", "--format", "onnx", "--out", str(copied.parent / "x.onnx"))
    assert result.code == 2 and result.err == (
        f"error: bundled model {bundled.DEFAULT}: calibration.json is missing; reinstall mnist-classifier"
        " (in a clone: `make models`)\n"
    )
    assert not (copied.parent / "x.onnx").exists()
    result = cli("predict", "bundled:cnn-huge", str(digit))
    assert result.code == 2 and result.err == (
        "error: no bundled model 'cnn-huge'; the bundled models are cnn-fast (`mnist-classifier models` lists them)\n"
    )
    with pytest.raises(RunError, match=r"calibration\.json is missing"):
        import mnist_classifier as mc

        mc.load_run()


def test_models_lists_the_bundled_models(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("models")
    assert result.code == 0, result.err
    for model in bundled.every():
        line = next(line for line in result.out.splitlines() if f" {model.name} " in line)
        assert f"{model.accuracy:.2%}" in line and model.date in line and "MiB" in line


def test_the_api_reads_a_bundled_model_and_copies_it_to_write(tmp_path: Path, digit: Path) -> None:
    """load_run() is the bundled fast CNN: it reads at once, and what would write into its folder asks for a copy,
    which is a plain run (no manifest, no shipped copy) that can be evaluated."""
    import mnist_classifier as mc

    run = mc.load_run()
    assert run.bundled == "cnn-fast" and run.path == mc.load_run("bundled:cnn-fast").path
    assert run.predict(digit).digits == ["7"]
    assert [r.bundled for r in mc.bundled_models()] == bundled.names()
    with pytest.raises(RunError, match=r"read-only; evaluate a copy: mc.load_run\('bundled:cnn-fast'\).copy"):
        run.evaluate()
    with pytest.raises(RunError, match="read-only"):
        run.report()
    copy = run.copy(tmp_path / "mine")
    assert copy.bundled is None and copy.metrics == run.metrics
    assert not (copy.path / bundled.MANIFEST).exists() and not (copy.path / bundled.ONNX).exists()


def test_a_reports_model_card(tiny_run: Path) -> None:
    """write_report leaves model_card.md beside report.html, and the report carries the same card: architecture,
    data, intended use, thresholds, figures, limits measured by the run, the command that trains it again."""
    from mnist_classifier.report import write_report

    html = write_report(tiny_run).read_text()
    card = (tiny_run / "model_card.md").read_text()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for section in ("## Model", "## Data", "## Intended use", "## Verdict thresholds", "## Known limits"):
        assert section in card
    assert f"{100 * metrics['accuracy']:.2f}%" in card and f"{100 * metrics['accuracy']:.2f}%" in html
    [command] = [line for line in card.splitlines() if line.startswith("mnist-classifier train")]
    assert command.startswith("mnist-classifier train --model dnn --seed 42 ")
    assert "--epochs 1" in command and "--train-samples 2000" in command
    assert 'id="model-card"' in html and "Weakest classes (recall)" in html and "Weakest classes (recall)" in card


def test_the_cards_command_trains_the_same_settings(cli, tiny_run: Path) -> None:  # type: ignore[no-untyped-def]
    """The reproducing command, given to `train --show-config`, resolves to the run's own settings (but threads);
    every setting but split_seed has an option on the command line."""
    import tomllib

    config = json.loads((tiny_run / "config.json").read_text())
    words = reproduce(config, str(tiny_run)).split()
    result = cli(*words[1:], "--show-config")
    assert result.code == 0, result.err
    shown = tomllib.loads(result.out)
    expected = {k: v for k, v in config.items() if k not in ("meta", "threads") and v is not None}
    assert {k: v for k, v in shown.items() if k in expected} == expected
    help_text = cli("train", "--help").out
    for key in set(to_dict(TrainConfig())) - NOT_ON_COMMAND_LINE:
        assert "--" + key.replace("_", "-") in help_text, key


@pytest.mark.parametrize("name", bundled.names())
def test_each_bundled_models_card_is_a_docs_page(name: str) -> None:
    """docs/models/NAME.md is the bundled model's card (its links for the docs site), in the site's navigation."""
    folder = bundled.SHIPPED / name
    page = card_markdown(folder, variants_page="[Digit variants](../results/variants.md)", name=f"bundled:{name}")
    assert (ROOT / "docs" / "models" / f"{name}.md").read_text() == page
    assert (folder / "model_card.md").read_text() == card_markdown(folder, name=f"bundled:{name}")
    assert f"models/{name}.md" in (ROOT / "mkdocs.yml").read_text()


def test_retraining_the_bundled_cnn_lands_on_its_recorded_accuracy(trainer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Trained again from its recorded config.json and seed, the bundled fast CNN's test accuracy is within 0.15
    points of the one its manifest records."""
    from mnist_classifier.inference import Predictor
    from mnist_classifier.runs import run_config

    model = bundled.load("cnn-fast")
    run = trainer(run_config(model.path), tmp_path / "again", verbose=0)
    data = load_dataset("mnist")
    accuracy = float((Predictor(run).probabilities(data.x_test).argmax(axis=1) == data.y_test).mean())
    assert abs(accuracy - model.accuracy) <= 0.0015
