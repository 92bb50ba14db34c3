"""How a reading reads as JSON: one shape for every caller (`predict --json`, the Python API, the server).

A digit is `{"digit", "verdict", "confidence", "top_k" (when asked), "probabilities"}`; a number read digit by digit
is `{"number", "verdict", "confidence", "digits": [digit, ...]}`; `predict --json` puts `"file"` first. Probabilities
are calibrated and rounded to six decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .verdicts import overall

if TYPE_CHECKING:
    from .image_files import Reading

DECIMALS = 6  # a float32 probability holds about seven significant digits


def ranked(class_names: Sequence[str], probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The k most probable classes of one image's probabilities, most probable first (ties in class order)."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def digit_json(
    class_names: Sequence[str], probabilities: np.ndarray, verdict: str, top_k: int | None = None
) -> dict[str, Any]:
    """One image's reading: its most probable class, verdict and calibrated confidence, the `top_k` most probable
    classes when asked, and every class's probability."""
    index = int(probabilities.argmax())
    digit: dict[str, Any] = {
        "digit": class_names[index],
        "verdict": verdict,
        "confidence": round(float(probabilities[index]), DECIMALS),
    }
    if top_k is not None:
        digit["top_k"] = [
            {"digit": name, "probability": round(p, DECIMALS)} for name, p in ranked(class_names, probabilities, top_k)
        ]
    digit["probabilities"] = [round(p, DECIMALS) for p in probabilities.tolist()]
    return digit


def number_json(
    class_names: Sequence[str], probabilities: np.ndarray, verdicts: Sequence[str], top_k: int | None = None
) -> dict[str, Any]:
    """A number read one digit per row of `probabilities`, left to right: the digits, the number's verdict (see
    calibration.overall), and its confidence, the product of the digits' confidences."""
    digits = [digit_json(class_names, p, v, top_k) for p, v in zip(probabilities, verdicts, strict=True)]
    return {
        "number": "".join(d["digit"] for d in digits),
        "verdict": overall(list(verdicts)),
        "confidence": round(float(np.prod(probabilities.max(axis=1))), DECIMALS),
        "digits": digits,
    }


def reading_json(
    class_names: Sequence[str], reading: Reading, multi_digit: bool = False, top_k: int | None = None
) -> dict[str, Any]:
    """A file's reading as `predict --json` writes it: the file, then its digit (or with `multi_digit` its number),
    or its error."""
    if reading.error is not None:
        return {"file": reading.source, "error": reading.error}
    verdicts = reading.verdicts or ["digit"] * len(reading.probabilities)
    if multi_digit:
        return {"file": reading.source, **number_json(class_names, reading.probabilities, verdicts, top_k)}
    return {"file": reading.source, **digit_json(class_names, reading.probabilities[0], verdicts[0], top_k)}
