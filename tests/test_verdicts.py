"""Verdicts (digit / uncertain / not_a_digit): the calibrator on synthetic arrays, the stored calibration of a run,
and the verdicts of real trained models.

Tests that need *a* model use `tiny_run`; those that assert accuracy-like figures use the two-epoch DNN (`dnn_run`)
or the fast CNN preset (trained through `trainer`), both in the slow tier.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from mnist_classifier import load_run, verdicts
from mnist_classifier.data import load_dataset, split_validation, synthetic
from mnist_classifier.inference import DefaultCalibrationWarning, Predictor
from mnist_classifier.report import write_report
from mnist_classifier.verdicts import Calibrator, Distances, fit_temperature

from .conftest import require


@pytest.fixture(scope="module")
def predictor(dnn_run: Path) -> Predictor:
    return Predictor(dnn_run)


@pytest.fixture(scope="module")
def cnn(trainer: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The fast CNN preset as `train --model cnn --preset fast` makes it (two epochs, outlier exposure)."""
    from mnist_classifier import resolve

    return Predictor(trainer(resolve(model="cnn", preset="fast"), tmp_path_factory.mktemp("cnn") / "run", verbose=0))


@pytest.fixture
def model(request: pytest.FixtureRequest, trainer: Callable[..., Path]) -> Predictor:
    """The model a parametrised test names: `predictor` (the two-epoch DNN) or `cnn`; both are trained for real, which
    `trainer` declares to the tiers (the named fixture is fetched only when used)."""
    return request.getfixturevalue(request.param)


def blended(count: int) -> np.ndarray:
    """`count` test images made by averaging a 1 and a 7."""
    mnist = load_dataset("mnist")
    ones, sevens = mnist.x_test[mnist.y_test == 1][:count], mnist.x_test[mnist.y_test == 7][:count]
    return ((ones.astype(np.float32) + sevens) / 2).astype(np.uint8)


@pytest.fixture(scope="module")
def blends() -> np.ndarray:
    return blended(20)


def overconfident(n: int = 4000, sharpness: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities and labels of two overlapping Gaussian blobs of logits, `sharpness` times too sure: the
    calibrated logits are x and -x for a point x ~ N(+-1, 1), whose true log-odds are 2x."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(np.where(labels == 1, 1.0, -1.0), 1.0)
    logits = sharpness * np.stack([-x, x], axis=1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32), labels


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1))))


def measured(shift: float, printed: float = 1.5, n: int = 1000, seed: int = 1) -> Distances:
    """Distances of a score whose validation digits are N(0, 1), whose non-digits of two kinds lie `shift` further,
    and whose printed and photographed digits lie `printed` and 0.5 further."""
    rng = np.random.default_rng(seed)
    return Distances(
        digits=rng.normal(0, 1, n),
        nondigits={"letters": rng.normal(shift, 1, n), "noise": rng.normal(shift + 1, 1, n)},
        unlike={"printed": rng.normal(printed, 1, 300), "photographed": rng.normal(0.5, 1, n)},
    )


def test_the_calibrator_learns_nothing_at_construction_and_refuses_use_before_fit() -> None:
    calibrator = Calibrator(digits_rejected=0.01, style_answered=0.9)
    assert not [name for name in vars(calibrator) if name.endswith("_")]
    assert calibrator.get_params() == {
        "digits_rejected": 0.01,
        "style_rejected": 0.02,
        "digits_answered": 0.988,
        "style_answered": 0.9,
        "readable": 0.9,
        "margin": 0.02,
    }
    for use in (calibrator.calibration, calibrator.figures):
        with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
            use()
    probabilities, labels = overconfident(100)
    with pytest.raises(ValueError, match="at least one candidate score"):
        calibrator.fit(probabilities, labels, {})


def test_the_temperature_lowers_the_nll_and_the_calibration_error_and_keeps_every_argmax() -> None:
    probabilities, labels = overconfident()
    calibrator = Calibrator().fit(probabilities, labels, {"top_two": measured(3.0, n=len(labels))})
    assert 3.0 < calibrator.temperature_ < 5.0  # the logits were four times too sharp
    scaled = verdicts.temperature_scaled(probabilities, calibrator.temperature_)
    assert nll(scaled, labels) < nll(probabilities, labels) - 0.1
    assert calibrator.ece_after_ < calibrator.ece_before_ / 3
    assert calibrator.ece_before_ == verdicts.expected_calibration_error(probabilities, labels)[0]
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    honest, labels = overconfident(sharpness=1.0)
    assert fit_temperature(honest, labels) == pytest.approx(1.0, abs=0.1)


def test_the_score_that_tells_digits_from_non_digits_best_is_chosen_unless_the_first_is_as_good() -> None:
    probabilities, labels = overconfident(500)
    means, precision = np.zeros((2, 3)), np.eye(3)
    better = Calibrator().fit(
        probabilities,
        labels,
        {"top_two": measured(1.0, n=len(labels)), "mahalanobis": measured(3.0, n=len(labels))},
        means,
        precision,
    )
    assert better.score_ == "mahalanobis" and better.means_ is means and better.precision_ is precision
    assert better.candidates_["mahalanobis"]["auroc_mean"] > better.candidates_["top_two"]["auroc_mean"] + 0.1
    assert set(better.candidates_["top_two"]["auroc"]) == {"letters", "noise"}
    kept = Calibrator().fit(
        probabilities,
        labels,
        {"mahalanobis": measured(2.0, n=len(labels)), "top_two": measured(2.0, seed=2, n=len(labels))},
        means,
        precision,
    )
    assert kept.score_ == "mahalanobis", kept.candidates_  # the other is within the margin
    first = Calibrator().fit(
        probabilities,
        labels,
        {"top_two": measured(2.0, n=len(labels)), "mahalanobis": measured(2.0, seed=2, n=len(labels))},
    )
    assert first.score_ == "top_two" and first.means_ is None and first.precision_ is None
    suite = measured(2.0, n=len(labels))
    np.testing.assert_array_equal(first.reference_, np.sort(np.concatenate([suite.digits, *suite.unlike.values()])))


def styled(
    n: int, shift: float, read: float, seed: int = 3, sure: float = 0.99
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Digits of one other style: distances N(shift, 1), and two-class probabilities that read a share `read` of them
    right, each with the top probability `sure`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    right = rng.random(n) < read
    top = np.where(right, labels, 1 - labels)
    probabilities = np.full((n, 2), 1 - sure, np.float32)
    probabilities[np.arange(n), top] = sure
    return rng.normal(shift, 1, n), (probabilities, labels)


def test_the_reject_threshold_calls_the_declared_few_of_the_suite_digits_read_right_not_a_digit() -> None:
    probabilities, labels = overconfident(20_000)
    measured_ = measured(6.0, n=20_000)
    far, far_styles = styled(2000, 2.5, read=0.9)
    distances = Distances(measured_.digits, measured_.nondigits, {"low": far})
    fitted = Calibrator().fit(probabilities, labels, {"top_two": distances}, styles={"low": far_styles})
    typicality = fitted.calibration().typicality
    read_right = far_styles[0].argmax(axis=1) == far_styles[1]
    refused = typicality(far[read_right]) < fitted.reject_threshold_
    assert 0.01 < refused.mean() <= 0.02  # the style binds: 2% of the digits it reads right
    assert np.mean(typicality(measured_.digits) < fitted.reject_threshold_) <= 0.0025
    assert fitted.validation_["low"]["not_a_digit"] == pytest.approx(
        np.mean(typicality(far) < fitted.reject_threshold_)
    )
    assert fitted.validation_turned_away_["letters"] > 0.9
    near = Calibrator().fit(probabilities, labels, {"top_two": measured(6.0, printed=0.0, n=20_000)})
    clean = near.calibration().typicality(measured(6.0, n=20_000).digits)
    assert 0.002 < np.mean(clean < near.reject_threshold_) <= 0.0025  # styles like the digits: the clean ones bind
    without = Calibrator().fit(
        probabilities[:10], labels[:10], {"top_two": Distances(np.zeros(10), {"a": np.ones(10)})}
    )
    assert without.validation_kept_ == {} and set(without.validation_) == {"digits"}


def test_the_confidence_threshold_answers_the_declared_share_of_readable_styles_and_never_goes_under_a_half() -> None:
    probabilities, labels = overconfident(4000)
    measured_ = measured(6.0, n=4000)
    doubtful, doubtful_styles = styled(1000, 0.0, read=0.95, sure=0.7)
    unreadable, unreadable_styles = styled(1000, 0.0, read=0.6, seed=4, sure=0.52)
    distances = Distances(measured_.digits, measured_.nondigits, {"doubtful": doubtful, "unreadable": unreadable})
    styles = {"doubtful": doubtful_styles, "unreadable": unreadable_styles}
    fitted = Calibrator().fit(probabilities, labels, {"top_two": distances}, styles=styles)
    scaled = verdicts.temperature_scaled(probabilities, fitted.temperature_)
    assert np.mean(scaled.max(axis=1) >= fitted.confidence_threshold_) >= 0.988 - 0.001
    sure = verdicts.temperature_scaled(doubtful_styles[0], fitted.temperature_).max(axis=1)
    assert fitted.confidence_threshold_ <= sure.min()  # the readable style is answered whenever kept
    assert fitted.validation_["doubtful"]["answered"] >= 0.93
    readable = styled(1000, 0.0, read=0.95, seed=4, sure=0.52)[1]  # as unsure, but read right as often as the other
    bound = Calibrator().fit(probabilities, labels, {"top_two": distances}, styles=styles | {"unreadable": readable})
    assert bound.confidence_threshold_ < fitted.confidence_threshold_  # the unreadable style did not bind
    alone = Calibrator().fit(probabilities, labels, {"top_two": measured_})
    assert alone.confidence_threshold_ >= 0.5
    for name, figures in fitted.validation_.items():
        assert 0 <= figures["answered_right"] <= figures["answered"] <= 1 - figures["not_a_digit"] + 1e-9, name


def test_fitting_again_reproduces_the_calibration_and_fit_returns_the_calibrator() -> None:
    probabilities, labels = overconfident(800)
    distances = {"mahalanobis": measured(2.0, n=len(labels)), "top_two": measured(3.0, n=len(labels))}
    calibrator = Calibrator(style_rejected=0.05)
    assert calibrator.fit(probabilities, labels, distances, np.ones((2, 2)), np.eye(2)) is calibrator
    again = clone(calibrator).fit(probabilities, labels, distances, np.ones((2, 2)), np.eye(2))
    assert again.figures() == calibrator.figures()
    first, second = calibrator.calibration(), again.calibration()
    assert first.settings() == second.settings() and first.fitted and first.confidence_threshold >= 0.5
    np.testing.assert_array_equal(first.reference, second.reference)


def test_a_fitted_calibration_is_stored_in_the_format_old_runs_have_and_loads_back(tmp_path: Path) -> None:
    probabilities, labels = overconfident(800)
    means, precision = np.arange(6.0).reshape(2, 3), np.eye(3)
    calibrator = Calibrator().fit(
        probabilities, labels, {"mahalanobis": measured(3.0, n=len(labels))}, means, precision
    )
    verdicts.save(tmp_path, calibrator.calibration(), calibrator.figures())
    stored = json.loads((tmp_path / verdicts.CALIBRATION).read_text())
    assert list(stored) == ["temperature", "score", "reject_threshold", "confidence_threshold", "figures"]
    assert list(stored["figures"]) == [
        "chosen_by",
        "candidates",
        "validation",
        "validation_kept",
        "validation_turned_away",
        "validation_ece_before",
        "validation_ece_after",
    ]
    loaded = verdicts.load(tmp_path)
    assert loaded is not None and loaded.settings() == calibrator.calibration().settings() and loaded.fitted
    np.testing.assert_array_equal(loaded.means, means)
    np.testing.assert_array_equal(loaded.reference, calibrator.reference_)
    old = tmp_path / "old"
    old.mkdir()
    (old / verdicts.CALIBRATION).write_text(
        '{"temperature": 1.25, "score": "top_two", "reject_threshold": 0.04, "confidence_threshold": 0.6,'
        ' "figures": {"chosen_by": "mean AUROC"}}'
    )
    np.savez(old / verdicts.FEATURE_STATS, reference=np.linspace(0, 1, 11))
    written_before = verdicts.load(old)
    assert written_before is not None and written_before.score == "top_two" and written_before.means is None
    assert written_before.typicality(np.array([0.0, 0.95])).tolist() == [1.0, pytest.approx(1 / 11)]


def test_the_calibrate_command_reproduces_what_training_stored(cli, tiny_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = {name: (run / name).read_bytes() for name in (verdicts.CALIBRATION, verdicts.FEATURE_STATS)}
    (run / verdicts.CALIBRATION).unlink()
    result = cli("calibrate", str(run))
    assert result.code == 0, result.err
    stored = json.loads(before[verdicts.CALIBRATION])
    assert f"temperature {stored['temperature']:.3f} · score {stored['score']}" in result.out
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("model", ["predictor", "cnn"], indirect=True)
def test_a_clean_mnist_digit_is_a_digit(model: Predictor) -> None:
    judge = model.judge
    mnist = load_dataset("mnist")
    judged = judge(mnist.x_test[:200])
    assert judged.verdicts[0] == "digit"
    assert judged.probabilities[0].argmax() == mnist.y_test[0]
    assert judged.verdicts.count("digit") >= 190


@pytest.mark.parametrize(("model", "least"), [("predictor", 180), ("cnn", 196)], indirect=["model"])
def test_fashion_items_are_not_answered_as_digits(model: Predictor, least: int) -> None:
    fashion = load_dataset("fashion-mnist").x_test[:200]
    verdicts = model.judge(fashion).verdicts
    assert len(verdicts) - verdicts.count("digit") >= least


@pytest.mark.parametrize("model", ["predictor", "cnn"], indirect=True)
def test_generated_letters_are_not_answered_as_digits(model: Predictor) -> None:
    fonts = synthetic.matplotlib_fonts()
    letters, refused = synthetic.letters(fonts[:3], 12, seed=5, chars="KWMH")
    assert refused == 0
    verdicts = model.judge(letters).verdicts
    assert verdicts.count("digit") <= 2 and verdicts.count("not_a_digit") >= 6, verdicts  # an H can pass for a 4


@pytest.mark.parametrize(("model", "least"), [("predictor", 15), ("cnn", 17)], indirect=["model"])
@pytest.mark.parametrize("style", ["low-10-bilinear", "low-12-nearest", "thick-pen"])
def test_a_low_resolution_or_thick_pen_test_digit_is_a_digit_read_right(
    model: Predictor, least: int, style: str
) -> None:
    """MNIST test digits scanned at 10 or 12 pixels and blown up again, or written with a thick pen, as files prepared:
    digits, read right (the first, a 7, always), never called not a digit (issue 23: they were, half the time)."""
    mnist = load_dataset("mnist")
    images, found = synthetic.variant(mnist.x_test[:20], style, seed=20)
    assert found.all()
    judged = model.judge(images)
    right = judged.probabilities.argmax(axis=1) == mnist.y_test[:20]
    assert judged.verdicts[0] == "digit" and right[0]
    assert sum(v == "digit" and r for v, r in zip(judged.verdicts, right, strict=True)) >= least, judged.verdicts
    assert judged.verdicts.count("not_a_digit") <= 1


def test_the_average_of_a_1_and_a_7_is_seldom_a_confident_digit(cnn: Predictor) -> None:
    """Of 100 such blends, the fast preset answers 23 to 30 as a digit (seeds 42-44 at batch 128, and both bundled
    models: 25 and 26; a 1 drawn over a 7 can pass for a 7) and is far less sure of them than of the 1s; of the first
    20 alone, 4 to 6, too few to bound without chance deciding."""
    blends = blended(100)
    judged = cnn.judge(blends)
    assert judged.verdicts.count("digit") <= 40, judged.verdicts
    ones = load_dataset("mnist").x_test[load_dataset("mnist").y_test == 1][:100]
    assert judged.probabilities.max(axis=1).mean() < cnn.judge(ones).probabilities.max(axis=1).mean() - 0.3


def test_the_two_epoch_dnn_is_less_sure_of_blends_of_a_1_and_a_7(predictor: Predictor, blends: np.ndarray) -> None:
    judged = predictor.judge(blends)
    ones = load_dataset("mnist").x_test[load_dataset("mnist").y_test == 1][:20]
    assert judged.probabilities.max(axis=1).mean() < predictor.judge(ones).probabilities.max(axis=1).mean() - 0.25
    assert judged.verdicts.count("digit") <= 15, judged.verdicts


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


def test_the_stored_calibration_reloads(tiny_run: Path) -> None:
    stored = json.loads((tiny_run / verdicts.CALIBRATION).read_text())
    loaded = verdicts.load(tiny_run)
    assert loaded is not None and loaded.fitted
    assert loaded.settings() == {key: stored[key] for key in loaded.settings()}
    assert loaded.score in verdicts.SCORES and 0 < loaded.reject_threshold <= 0.05
    assert loaded.reference is not None and len(loaded.reference) > 6000  # the validation digits, in every style
    assert (np.diff(loaded.reference) >= 0).all()
    assert Predictor(tiny_run).calibration.settings() == loaded.settings()
    metrics = json.loads((tiny_run / "metrics.json").read_text())["verdicts"]
    assert metrics["calibrated"] and metrics["temperature"] == loaded.temperature


def test_the_two_epoch_dnn_is_calibrated_and_answers_most_digits(dnn_run: Path) -> None:
    loaded = verdicts.load(dnn_run)
    assert loaded is not None and loaded.temperature != 1.0
    metrics = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]
    assert metrics["calibrated"] and metrics["ece_after"] < metrics["ece_before"]
    assert 0.9 < metrics["coverage"] < 1 and metrics["auroc_validation_nondigits"] > 0.8
    figures = json.loads((dnn_run / "calibration.json").read_text())["figures"]
    kept = figures["validation_kept"]
    assert set(kept) == {"printed", "photographed", *(set(synthetic.VARIANTS) - {"photographed"})}
    assert kept["printed"] >= 0.95 and kept["photographed"] >= 0.95 and kept["low-12-bilinear"] >= 0.95
    assert (
        figures["validation"]["digits"]["answered"] >= 0.985 and figures["validation"]["digits"]["not_a_digit"] <= 0.005
    )


def test_evaluate_measures_the_verdicts_on_sets_never_used_for_training_or_calibration(dnn_run: Path) -> None:
    verdicts = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]
    held_out = verdicts["held_out"]
    assert set(held_out) == {"fashion-mnist", "letters", "hand letters", *synthetic.MAKERS}
    for kind in ("letters", "hand letters", *synthetic.MAKERS):
        figures = held_out[kind]
        assert 190 <= figures["n"] <= 200, kind
        assert all(0 <= figures[key] <= 1 for key in ("auroc", "rejected", "answered")), figures
        assert figures["rejected"] + figures["answered"] <= 1
        assert figures["auroc"] > 0.9 and figures["answered"] < 0.5, (kind, figures)
    accuracy = json.loads((dnn_run / "metrics.json").read_text())["accuracy"]
    assert verdicts["accuracy_raw"] == verdicts["accuracy_calibrated"] == pytest.approx(accuracy, abs=1e-4)
    photographed = verdicts["photographed"]  # the first 1,000 test digits as photos
    assert photographed["n"] == 1000 and 0.5 < photographed["answered"] <= 1 and photographed["accuracy"] > 0.8


def test_the_held_out_figures_include_fashion_mnist_when_installed(dnn_run: Path) -> None:
    require(Path("/usr/share/datasets/fashion-mnist").is_dir(), "Debian's dataset-fashion-mnist is not installed")
    fashion = json.loads((dnn_run / "metrics.json").read_text())["verdicts"]["held_out"]["fashion-mnist"]
    assert fashion["n"] == 10_000
    assert fashion["auroc"] > 0.9 and 0 < fashion["rejected"] <= 1 and 0 <= fashion["answered"] < 0.1


def test_the_report_shows_the_held_out_figures(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
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
    assert set(held_out) == set(validation) == {"letters", "hand letters", *synthetic.MAKERS}
    seen = {image.tobytes() for images in validation.values() for image in images}
    assert not any(image.tobytes() in seen for images in held_out.values() for image in images)


def test_an_old_run_without_calibration_still_predicts_and_says_so_once(cli, tiny_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    (old / verdicts.CALIBRATION).unlink()
    (old / verdicts.FEATURE_STATS).unlink()
    mnist = load_dataset("mnist")
    for i in range(3):
        Image.fromarray(mnist.x_test[i]).save(tmp_path / f"{i}.png")
    files = [str(tmp_path / "0.png"), str(tmp_path / "1.png")]
    result = cli("predict", str(old), *files, "--json")
    assert result.code == 0, result.err
    assert result.err.count("note:") == 1 and "verdicts use defaults" in result.err
    readings = json.loads(result.out)
    calibrated = json.loads(cli("predict", str(tiny_run), *files, "--json").out)
    assert [r["digit"] for r in readings] == [r["digit"] for r in calibrated]  # scaling keeps every argmax
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
    assert readings[0]["verdict"] == "digit" and readings[1]["verdict"] != "digit"
    assert readings[1]["digit"] in "0123456789" and 0 < readings[1]["confidence"] < 1  # the reading stands
    text = cli("predict", str(dnn_run), *files).out.splitlines()
    assert "not " not in text[0] and ("not a digit (reads like" in text[1] or "not sure: " in text[1])
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
def test_a_bad_threshold_is_one_line_and_exit_2(cli, tiny_run: Path, tmp_path: Path, value: str) -> None:  # type: ignore[no-untyped-def]
    Image.fromarray(load_dataset("mnist").x_test[0]).save(tmp_path / "digit.png")
    for option in ("--reject-threshold", "--confidence-threshold"):
        result = cli("predict", str(tiny_run), str(tmp_path / "digit.png"), option, value)
        assert result.code == 2
        assert result.err.count("\n") == 1 and option in result.err and result.out == ""
