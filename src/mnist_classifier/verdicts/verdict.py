"""Each reading's verdict (digit, uncertain, not a digit) from its confidence, its distance and the thresholds."""

from __future__ import annotations

import numpy as np

from .calibration import Calibration

VERDICTS = ("digit", "uncertain", "not_a_digit")


def verdicts(confidence: np.ndarray, distance: np.ndarray, calibration: Calibration) -> list[str]:
    """Each reading's verdict from its calibrated confidence and its distance."""
    beyond, sure = calibration.reject_beyond, calibration.confidence_threshold
    far = distance > beyond if beyond is not None else calibration.typicality(distance) < calibration.reject_threshold
    return [
        "not_a_digit" if f else "uncertain" if c < sure else "digit"
        for c, f in zip(confidence.tolist(), far.tolist(), strict=True)
    ]


def overall(verdicts: list[str]) -> str:
    """A number's verdict: not a digit if any of its digits is not, else not sure if any is not sure."""
    return next((v for v in ("not_a_digit", "uncertain") if v in verdicts), "digit")
