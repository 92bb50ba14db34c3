"""The figures `evaluate` records of a model's verdicts: on the evaluated images, and on sets it never saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import verdicts as calib
from .data import load_dataset, synthetic
from .data.datasets import DIGITS
from .errors import DataError
from .inference import Predictor, judgement
from .runs import read_json

HELD_OUT_PER_KIND = 200
PHOTOGRAPHED = 1000  # evaluated digits photographed and prepared
HELD_OUT_FASHION = 10_000  # Fashion-MNIST test images in the held-out figures


def verdict_figures(predictor: Predictor, x: np.ndarray, y: np.ndarray, points: int = 100) -> dict[str, Any]:
    """What `evaluate` records of the verdicts on (x, y): ECE and reliability bins before and after scaling, the
    operating point (coverage and accuracy of the images answered as digits at the stored thresholds), the
    risk-coverage curve (accuracy of the most confident share of images), the accuracy before and after scaling,
    the AUROC against the validation non-digits measured when the calibration was fitted, and for a model of the
    ten digits, `held_out_figures` and `photographed_figures`."""
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
    stored = read_json(Path(predictor.folder) / calib.CALIBRATION, missing_ok=True).get("figures", {})
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
    judged = predictor.judge(photos)
    verdicts = np.array(judged.verdicts)
    return {
        "n": len(photos),
        "answered": float(np.mean(verdicts == "digit")),
        "accuracy": float(np.mean(judged.probabilities.argmax(axis=1) == y)),
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
    sets |= synthetic.held_out_set(HELD_OUT_PER_KIND)
    for name, images in sets.items():
        judged = predictor.judge(images)
        verdicts = np.array(judged.verdicts)
        figures[name] = {
            "n": len(images),
            "auroc": calib.auroc(digit_distance, judged.distance),
            "rejected": float(np.mean(verdicts == "not_a_digit")),
            "answered": float(np.mean(verdicts == "digit")),
        }
    return figures
