"""Fit a run's calibration (temperature, digit-likeness score, thresholds) on its validation split and store it.

Post-hoc, so it cannot cost accuracy: the temperature keeps every argmax, and the score only decides the verdict.
The score is chosen by measurement: each candidate's AUROC between validation digits (the run's validation split,
and for digit datasets printed digits in Matplotlib's fonts and validation digits photographed) and
synthetic.validation_set, a set never used for the benchmark's figures. Training calls `fit` at its end;
`mnist-classifier calibrate RUN` calls it for a run trained before.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_auc_score

from . import calibration as calib
from .calibration import Calibration
from .data import load_dataset, split_validation, synthetic
from .data.datasets import DIGITS
from .errors import DataError, RunError
from .inference import DefaultCalibrationWarning, EnsemblePredictor, Predictor, judgement, load_predictor
from .runs import ensemble_members, read_json, run_config

TRAIN_FEATURES = 20_000  # training images whose penultimate features give the class means and covariance
NONDIGITS_PER_KIND = 200
FONT_DIGITS = 300
PHOTOGRAPHED = 1000  # validation (or evaluated) digits photographed and prepared
MAX_REJECT = 0.05  # the reject threshold: at most 5% of validation digits turned away...
FONT_DIGITS_KEPT = 0.8  # ...and at least 80% of the printed digits answered
CONFIDENCE_THRESHOLD = 0.6
MARGIN = 0.02  # the first candidate (the feature-space score) stays unless another beats its mean AUROC by this
HELD_OUT_FASHION = 10_000  # Fashion-MNIST test images in the held-out figures


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the labels."""

    def nll(log_t: float) -> float:
        scaled = calib.temperature_scaled(probabilities, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1))))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def class_statistics(features: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class means of the features and the precision (inverse) of their shared covariance, slightly regularised."""
    features = features.astype(np.float64)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(classes)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(centred)
    covariance += np.eye(len(covariance)) * 1e-3 * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    return means, np.linalg.inv(covariance)


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """How well a distance tells digits (low) from non-digits (high): 1 perfect, 0.5 chance."""
    truth = np.r_[np.zeros(len(digits)), np.ones(len(others))]
    return float(roc_auc_score(truth, np.r_[digits, others]))


def validation_images(predictor: Predictor, x_val: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The validation non-digits by kind; and for a model of MNIST's digits, digits unlike its validation digits:
    printed ones and photographed validation digits."""
    others = synthetic.validation_set(NONDIGITS_PER_KIND)
    if predictor.class_names != DIGITS or predictor.input_shape != (28, 28):
        return others, {}
    fonts = synthetic.matplotlib_fonts()
    printed = {"printed": synthetic.font_digits(fonts, FONT_DIGITS, seed=3)[0]} if fonts else {}
    return others, printed | {"photographed": synthetic.photographed(x_val[:PHOTOGRAPHED], seed=1)}


def candidates(predictor: Predictor, x_train: np.ndarray, y_train: np.ndarray, temperature: float) -> list[Calibration]:
    base = Calibration(temperature=temperature, score="top_two", confidence_threshold=CONFIDENCE_THRESHOLD, fitted=True)
    if isinstance(predictor, EnsemblePredictor):
        return [dataclasses.replace(base, score="members"), base]
    _, features = predictor.features(x_train)
    if features is None:
        return [base]
    means, precision = class_statistics(features, y_train, len(predictor.class_names))
    return [dataclasses.replace(base, score="mahalanobis", means=means, precision=precision), base]


def fit(folder: Path) -> dict[str, Any]:
    """Fit and store the calibration of a run or ensemble folder (an ensemble's members first have theirs);
    return the figures that chose it, as stored in calibration.json."""
    members = ensemble_members(folder)
    config = run_config(members[0] if members else folder)
    dataset = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DefaultCalibrationWarning)
        predictor = load_predictor(folder)
    if predictor.class_names != tuple(dataset.class_names):
        raise RunError(f"{folder}: its classes differ from its dataset's; it cannot be calibrated")
    raw_val = predictor.probabilities(x_val)
    temperature = fit_temperature(raw_val, y_val)
    others, unlike = validation_images(predictor, x_val)
    best: tuple[float, Calibration] | None = None
    scores: dict[str, Any] = {}
    for candidate in candidates(predictor, x_train[:TRAIN_FEATURES], y_train[:TRAIN_FEATURES], temperature):
        predictor.calibration = candidate
        reference = np.sort(predictor.assess(x_val)[1])
        digits = np.concatenate([reference, *(predictor.assess(images)[1] for images in unlike.values())])
        per_kind = {kind: auroc(digits, predictor.assess(images)[1]) for kind, images in others.items()}
        mean = float(np.mean(list(per_kind.values())))
        scores[candidate.score] = {"auroc_mean": mean, "auroc": per_kind}
        if best is None or mean > best[0] + MARGIN:
            best = (mean, dataclasses.replace(candidate, reference=reference))
    assert best is not None
    chosen = best[1]
    predictor.calibration = chosen
    typical = {name: chosen.typicality(predictor.assess(images)[1]) for name, images in unlike.items()}
    reject = MAX_REJECT
    if "printed" in typical:
        reject = min(MAX_REJECT, float(np.quantile(typical["printed"], 1 - FONT_DIGITS_KEPT)))
    chosen = dataclasses.replace(chosen, reject_threshold=round(reject, 6))
    figures = {
        "chosen_by": "mean AUROC, validation digits vs the validation non-digits of nondigits.validation_set",
        "candidates": scores,
        "validation_kept": {name: float(np.mean(t >= chosen.reject_threshold)) for name, t in typical.items()},
        "validation_ece_before": calib.expected_calibration_error(raw_val, y_val)[0],
        "validation_ece_after": calib.expected_calibration_error(calib.temperature_scaled(raw_val, temperature), y_val)[
            0
        ],
    }
    calib.save(folder, chosen, figures)
    return chosen.settings() | {"figures": figures}


def verdict_figures(predictor: Predictor, x: np.ndarray, y: np.ndarray, points: int = 100) -> dict[str, Any]:
    """What `evaluate` records of the verdicts on (x, y): ECE and reliability bins before and after scaling, the
    operating point (coverage and accuracy of the images answered as digits at the stored thresholds), the
    risk-coverage curve (accuracy of the most confident share of images), the accuracy before and after scaling,
    the AUROC against the validation non-digits measured when the calibration was fitted, and for a model of the
    ten digits, `held_out_figures`."""
    calibration = predictor.calibration
    raw, distance = predictor.assess(x)
    judged = judgement(calib.temperature_scaled(raw, calibration.temperature), distance, calibration)
    verdicts = np.array(judged.verdicts)
    correct = judged.probabilities.argmax(axis=1) == y
    ece_before, bins_before = calib.expected_calibration_error(raw, y)
    ece_after, bins_after = calib.expected_calibration_error(judged.probabilities, y)
    order = np.argsort(-judged.probabilities.max(axis=1), kind="stable")
    cumulative = np.cumsum(correct[order]) / np.arange(1, len(y) + 1)
    at = np.unique(np.linspace(0, len(y) - 1, points).astype(int))
    answered = verdicts == "digit"
    stored = read_json(predictor_folder(predictor) / calib.CALIBRATION, missing_ok=True).get("figures", {})
    chosen = stored.get("candidates", {}).get(calibration.score, {})
    figures = {
        "calibrated": calibration.fitted,
        "temperature": calibration.temperature,
        "score": calibration.score,
        "reject_threshold": calibration.reject_threshold,
        "confidence_threshold": calibration.confidence_threshold,
        "ece_before": ece_before,
        "ece_after": ece_after,
        "reliability_before": bins_before,
        "reliability_after": bins_after,
        "coverage": float(answered.mean()),
        "accuracy_answered": float(correct[answered].mean()) if answered.any() else None,
        "uncertain": float(np.mean(verdicts == "uncertain")),
        "not_a_digit": float(np.mean(verdicts == "not_a_digit")),
        "risk_coverage": {"coverage": [(i + 1) / len(y) for i in at.tolist()], "accuracy": cumulative[at].tolist()},
        "auroc_validation_nondigits": chosen.get("auroc_mean"),
        "auroc_validation_nondigits_by_kind": chosen.get("auroc"),
        "accuracy_raw": float(np.mean(raw.argmax(axis=1) == y)),
        "accuracy_calibrated": float(correct.mean()),
    }
    if predictor.class_names == DIGITS and predictor.input_shape == (28, 28):
        figures["held_out"] = held_out_figures(predictor, distance)
        figures["photographed"] = photographed_figures(predictor, x[:PHOTOGRAPHED], y[:PHOTOGRAPHED])
    return figures


def photographed_figures(predictor: Predictor, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The evaluated digits photographed and prepared (synthetic.photographed), as a photo of handwriting reaches
    `predict`: how many, the share answered as a digit, and the accuracy on them."""
    photos = synthetic.photographed(x, seed=7)
    probs, distance = predictor.assess(photos, predictor.calibration.temperature)
    verdicts = np.array(judgement(probs, distance, predictor.calibration).verdicts)
    return {
        "n": len(photos),
        "answered": float(np.mean(verdicts == "digit")),
        "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
    }


def held_out_figures(predictor: Predictor, digit_distance: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per set never used for training or calibration (Fashion-MNIST test where it is on this machine: never
    downloaded for this; synthetic.held_out_set): its size, the AUROC between it and the evaluated digits (their
    distances given), and the shares of it judged not a digit and answered as a digit."""
    sets: dict[str, np.ndarray] = {}
    figures: dict[str, dict[str, Any]] = {}
    try:
        sets["fashion-mnist"] = load_dataset("fashion-mnist", allow_download=False).x_test[:HELD_OUT_FASHION]
    except DataError:
        figures["fashion-mnist"] = {"available": False}
    sets |= synthetic.held_out_set(NONDIGITS_PER_KIND)
    for name, images in sets.items():
        probs, distance = predictor.assess(images, predictor.calibration.temperature)
        verdicts = np.array(judgement(probs, distance, predictor.calibration).verdicts)
        figures[name] = {
            "n": len(images),
            "auroc": auroc(digit_distance, distance),
            "rejected": float(np.mean(verdicts == "not_a_digit")),
            "answered": float(np.mean(verdicts == "digit")),
        }
    return figures


def predictor_folder(predictor: Predictor) -> Path:
    return Path(predictor.folder)
