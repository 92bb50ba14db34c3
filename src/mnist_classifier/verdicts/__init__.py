"""Verdicts (digit, uncertain, not a digit): what a model needs to give them, on arrays, in one package.

A reading is a `digit`, `uncertain` (a digit, but two classes are close) or `not_a_digit` (unlike the digits the
model knows); the reading itself is always kept. Nothing here runs a model: callers measure and pass arrays.
"""

from .calibration import FALLBACK, Calibration
from .calibrator import Calibrator, Distances
from .measures import auroc, expected_calibration_error
from .scores import SCORES, class_statistics, mahalanobis
from .stored import CALIBRATION, FEATURE_STATS, load, save
from .temperature import fit_temperature, temperature_scaled
from .thresholds import threshold, with_thresholds
from .verdict import VERDICTS, overall, verdicts

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
    "class_statistics",
    "expected_calibration_error",
    "fit_temperature",
    "load",
    "mahalanobis",
    "overall",
    "save",
    "temperature_scaled",
    "threshold",
    "verdicts",
    "with_thresholds",
]
