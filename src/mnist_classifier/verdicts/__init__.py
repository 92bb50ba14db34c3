"""Verdicts (digit, uncertain, not a digit): what a model needs to give them, on arrays, in one package.

A reading is a `digit`, `uncertain` (a digit, but two classes are close) or `not_a_digit` (unlike the digits the
model knows); the reading itself is always kept. Nothing here runs a model: callers measure and pass arrays.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .calibration import FALLBACK, Calibration
from .scores import SCORES, class_statistics, mahalanobis
from .sets import check_coverage, nonconformity, prediction_sets, require_scores
from .stored import CALIBRATION, FEATURE_STATS, load, save
from .temperature import fit_temperature, temperature_scaled
from .thresholds import threshold, with_thresholds
from .verdict import VERDICTS, overall, verdicts

if TYPE_CHECKING:
    from .calibrator import Calibrator, Distances
    from .measures import auroc, expected_calibration_error

# Fitting and measuring need scikit-learn, which reading a digit does not: they load on first use (PEP 562), so
# `predict` with a cached ONNX copy starts without it.
LAZY = {
    "Calibrator": "calibrator",
    "Distances": "calibrator",
    "auroc": "measures",
    "expected_calibration_error": "measures",
}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return getattr(import_module(f".{LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CALIBRATION",
    "FALLBACK",
    "FEATURE_STATS",
    "SCORES",
    "VERDICTS",
    "Calibration",
    "Calibrator",
    "Distances",
    "auroc",
    "check_coverage",
    "class_statistics",
    "expected_calibration_error",
    "fit_temperature",
    "load",
    "mahalanobis",
    "nonconformity",
    "overall",
    "prediction_sets",
    "require_scores",
    "save",
    "temperature_scaled",
    "threshold",
    "verdicts",
    "with_thresholds",
]
