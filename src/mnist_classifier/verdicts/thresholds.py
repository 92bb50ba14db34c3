"""Thresholds a caller gives in place of the stored ones, checked: numbers in [0, 1]."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ConfigError
from .calibration import Calibration


def threshold(name: str, value: str | float | None) -> float | None:
    """A threshold given by a user: a number in [0, 1], else a ConfigError that names the option."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise ConfigError(f"{name}: expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    return number


def with_thresholds(
    calibration: Calibration, reject_threshold: str | float | None, confidence_threshold: str | float | None
) -> Calibration:
    """The calibration with the thresholds a caller gave (checked), the stored ones elsewhere."""
    reject = threshold("--reject-threshold", reject_threshold)
    confidence = threshold("--confidence-threshold", confidence_threshold)
    return replace(
        calibration,
        reject_threshold=calibration.reject_threshold if reject is None else reject,
        confidence_threshold=calibration.confidence_threshold if confidence is None else confidence,
    )
