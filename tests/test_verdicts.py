"""Verdicts (digit / uncertain / not_a_digit), calibration and their stored form, on a real trained DNN."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_classifier import load_run, verdicts
from mnist_classifier.data import load_dataset, split_validation, synthetic
from mnist_classifier.inference import DefaultCalibrationWarning, Predictor
from mnist_classifier.report import write_report
from mnist_classifier.verdicts import fit_temperature

from .conftest import require


@pytest.fixture(scope="module")
def predictor(dnn_run: Path) -> Predictor:
    return Predictor(dnn_run)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The fast CNN preset as `train --model cnn --preset fast` makes it (two epochs, outlier exposure)."""
    from mnist_classifier import resolve
    from mnist_classifier.training import train

    return Predictor(train(resolve(model="cnn", preset="fast"), tmp_path_factory.mktemp("cnn") / "run", verbose=0))


@pytest.fixture(scope="module")
def blends() -> np.ndarray:
    """Twenty test images made by averaging a 1 and a 7."""
    mnist = load_dataset("mnist")
    ones, sevens = mnist.x_test[mnist.y_test == 1][:20], mnist.x_test[mnist.y_test == 7][:20]
    return ((ones.astype(np.float32) + sevens) / 2).astype(np.uint8)


@pytest.mark.parametrize("model", ["predictor", "cnn"])
def test_a_clean_mnist_digit_is_a_digit(model: str, request: pytest.FixtureRequest) -> None:
    judge = request.getfixturevalue(model).judge
    mnist = load_dataset("mnist")
    judged = judge(mnist.x_test[:200])
    assert judged.verdicts[0] == "digit"
    assert judged.probabilities[0].argmax() == mnist.y_test[0]
    assert judged.verdicts.count("digit") >= 190


@pytest.mark.parametrize(("model", "least"), [("predictor", 180), ("cnn", 198)])
def test_fashion_items_are_not_digits(model: str, least: int, request: pytest.FixtureRequest) -> None:
    fashion = load_dataset("fashion-mnist").x_test[:200]
    verdicts = request.getfixturevalue(model).judge(fashion).verdicts
    assert verdicts.count("not_a_digit") >= least


@pytest.mark.parametrize("model", ["predictor", "cnn"])
def test_generated_letters_are_not_digits(model: str, request: pytest.FixtureRequest) -> None:
    fonts = synthetic.matplotlib_fonts()
    letters, refused = synthetic.letters(fonts[:3], 12, seed=5, chars="KWMH")
    assert refused == 0
    assert request.getfixturevalue(model).judge(letters).verdicts == ["not_a_digit"] * 12


def test_the_average_of_a_1_and_a_7_is_never_a_confident_digit(cnn: Predictor, blends: np.ndarray) -> None:
    judged = cnn.judge(blends)
    assert "digit" not in judged.verdicts, judged.verdicts
    ones = load_dataset("mnist").x_test[load_dataset("mnist").y_test == 1][:20]
    assert judged.probabilities.max(axis=1).mean() < cnn.judge(ones).probabilities.max(axis=1).mean() - 0.3


def test_the_two_epoch_dnn_answers_few_blends_of_a_1_and_a_7(predictor: Predictor, blends: np.ndarray) -> None:
    judged = predictor.judge(blends)
    assert judged.verdicts.count("digit") <= 6, judged.verdicts


def test_scaling_lowers_the_calibration_error_on_a_validation_slice(predictor: Predictor) -> None:
    mnist = load_dataset("mnist")
    _, _, x_val, y_val = split_validation(mnist.x_train, mnist.y_train, 0.1, 42)
    fit_on, check_on = slice(0, 3000), slice(3000, 6000)
    raw = predictor.probabilities(x_val)
    temperature = fit_temperature(raw[fit_on], y_val[fit_on])
    before = verdicts.expected_calibration_error(raw[check_on], y_val[check_on])[0]
    after = verdicts.expected_calibration_error(
        verdicts.temperature_scaled(raw[check_on], temperature), y_val[check_on]
    )[0]
    assert after < before
    assert (verdicts.temperature_scaled(raw, temperature).argmax(axis=1) == raw.argmax(axis=1)).all()


def test_the_stored_calibration_reloads(dnn_run: Path, predictor: Predictor) -> None:
    stored = json.loads((dnn_run / verdicts.CALIBRATION).read_text())
    loaded = verdicts.load(dnn_run)
    assert loaded is not None and loaded.fitted
    assert loaded.temperature == stored["temperature"] != 1.0
    assert loaded.score == stored["score"] in verdicts.SCORES
    assert 0 < loaded.reject_threshold <= 0.05
    assert loaded.reference is not None and len(loaded.reference) == 6000
    assert predictor.calibration.temperature == loaded.temperature
    metrics = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]
    assert metrics["calibrated"] and metrics["ece_after"] < metrics["ece_before"]
    assert 0.9 < metrics["coverage"] < 1 and metrics["auroc_validation_nondigits"] > 0.8
    kept = json.loads((dnn_run / "calibration.json").read_text())["figures"]["validation_kept"]
    assert set(kept) == {"printed", "photographed"} and kept["printed"] >= 0.8 and 0.5 < kept["photographed"] <= 1


def test_evaluate_measures_the_verdicts_on_sets_never_used_for_training_or_calibration(dnn_run: Path) -> None:
    verdicts = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]
    held_out = verdicts["held_out"]
    assert set(held_out) == {"fashion-mnist", "letters", *synthetic.MAKERS}
    for kind in ("letters", *synthetic.MAKERS):
        figures = held_out[kind]
        assert 190 <= figures["n"] <= 200, kind
        assert all(0 <= figures[key] <= 1 for key in ("auroc", "rejected", "answered")), figures
        assert figures["rejected"] + figures["answered"] <= 1
        assert figures["auroc"] > 0.9 and figures["rejected"] > 0.5, (kind, figures)
    accuracy = json.loads((dnn_run / "metrics.json").read_text())["accuracy"]
    assert verdicts["accuracy_raw"] == verdicts["accuracy_calibrated"] == pytest.approx(accuracy, abs=1e-4)
    photographed = verdicts["photographed"]  # the first 1,000 test digits as photos
    assert photographed["n"] == 1000 and 0.5 < photographed["answered"] <= 1 and photographed["accuracy"] > 0.8


def test_the_held_out_figures_include_fashion_mnist_when_installed(dnn_run: Path) -> None:
    require(Path("/usr/share/datasets/fashion-mnist").is_dir(), "Debian's dataset-fashion-mnist is not installed")
    fashion = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]["held_out"]["fashion-mnist"]
    assert fashion["n"] == 10_000
    assert fashion["auroc"] > 0.9 and 0.5 < fashion["rejected"] <= 1 and 0 <= fashion["answered"] < 0.5


def test_the_report_shows_the_held_out_figures(dnn_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(dnn_run, run)
    page = write_report(run).read_text()
    assert "Not a digit, on sets the model never saw" in page
    table = page[page.index("Not a digit, on sets") : page.index("Per-class results")]
    assert "<td>letters</td><td>200</td>" in table and "<td>silhouettes</td>" in table
    assert "Accuracy with the calibrated probabilities" in table and "+0.00 points" in table
    assert "The first 1,000 of these digits photographed" in table
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["verdicts"]["held_out"]["fashion-mnist"] = {"available": False}
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert "<td>Fashion-MNIST test</td><td>not on this machine</td>" in write_report(run).read_text()


def test_held_out_letters_use_fonts_of_their_own_and_no_held_out_image_is_a_validation_image() -> None:
    fonts = set(synthetic.HELD_OUT_FONTS)
    assert not fonts & set(synthetic.TRAINING_FONTS) and not fonts & set(synthetic.VALIDATION_FONTS)
    assert len(synthetic.matplotlib_fonts(synthetic.HELD_OUT_FONTS)) == len(fonts), "the fonts ship with Matplotlib"
    held_out, validation = synthetic.held_out_set(), synthetic.validation_set()
    assert set(held_out) == set(validation) == {"letters", *synthetic.MAKERS}
    seen = {image.tobytes() for images in validation.values() for image in images}
    assert not any(image.tobytes() in seen for images in held_out.values() for image in images)


def test_an_old_run_without_calibration_still_predicts_and_says_so_once(cli, dnn_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old"
    shutil.copytree(dnn_run, old)
    (old / verdicts.CALIBRATION).unlink()
    (old / verdicts.FEATURE_STATS).unlink()
    mnist = load_dataset("mnist")
    for i in range(3):
        Image.fromarray(mnist.x_test[i]).save(tmp_path / f"{i}.png")
    result = cli("predict", str(old), str(tmp_path / "0.png"), str(tmp_path / "1.png"), "--json")
    assert result.code == 0, result.err
    assert result.err.count("note:") == 1 and "verdicts use defaults" in result.err
    readings = json.loads(result.out)
    assert [r["digit"] for r in readings] == [str(mnist.y_test[0]), str(mnist.y_test[1])]
    assert {r["verdict"] for r in readings} <= set(verdicts.VERDICTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = load_run(old).predict(mnist.x_test[:5])
    assert len([w for w in caught if w.category is DefaultCalibrationWarning]) == 1
    assert len(predictions.verdicts) == 5


def test_predict_carries_verdicts_and_their_options(cli, dnn_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mnist = load_dataset("mnist")
    Image.fromarray(mnist.x_test[0]).save(tmp_path / "digit.png")
    fashion = load_dataset("fashion-mnist").x_test[1]
    Image.fromarray(fashion).save(tmp_path / "pullover.png")
    pair = np.concatenate([mnist.x_test[0], mnist.x_test[1]], axis=1)
    Image.fromarray(pair).save(tmp_path / "pair.png")
    files = [str(tmp_path / "digit.png"), str(tmp_path / "pullover.png")]
    readings = json.loads(cli("predict", str(dnn_run), *files, "--json").out)
    assert [r["verdict"] for r in readings] == ["digit", "not_a_digit"]
    text = cli("predict", str(dnn_run), *files).out.splitlines()
    assert "not a digit:" not in text[0] and "not a digit:" in text[1]
    raw = json.loads(cli("predict", str(dnn_run), *files, "--json", "--no-reject").out)
    assert [r["verdict"] for r in raw] == ["digit", "digit"]
    everything = json.loads(cli("predict", str(dnn_run), *files, "--json", "--reject-threshold", "0").out)
    assert everything[1]["verdict"] != "not_a_digit"
    number = json.loads(cli("predict", str(dnn_run), str(tmp_path / "pair.png"), "--json", "--multi-digit").out)[0]
    assert number["number"] == f"{mnist.y_test[0]}{mnist.y_test[1]}"
    each = [d["verdict"] for d in number["digits"]]
    assert len(each) == 2 and set(each) <= set(verdicts.VERDICTS)
    assert number["verdict"] == (
        "not_a_digit" if "not_a_digit" in each else "uncertain" if "uncertain" in each else "digit"
    )


@pytest.mark.parametrize("value", ["2", "-0.1", "abc", "nan"])
def test_a_bad_threshold_is_one_line_and_exit_2(cli, dnn_run: Path, tmp_path: Path, value: str) -> None:  # type: ignore[no-untyped-def]
    Image.fromarray(load_dataset("mnist").x_test[0]).save(tmp_path / "digit.png")
    for option in ("--reject-threshold", "--confidence-threshold"):
        result = cli("predict", str(dnn_run), str(tmp_path / "digit.png"), option, value)
        assert result.code == 2
        assert result.err.count("\n") == 1 and option in result.err and result.out == ""
