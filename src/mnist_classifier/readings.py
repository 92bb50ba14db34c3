"""How a reading reads as JSON: one shape for every caller (`predict --json`, the Python API, the server).

A digit is `{"digit", "verdict", "confidence", "top_k" (when asked), "set" (when asked), "probabilities"}`; a number
read digit by digit is `{"number", "verdict", "confidence", "digits": [digit, ...]}`. The digit is the model's
reading (its most probable class) whatever the verdict. An image that holds no digit (blank, too faint, specks) is
one reading too, with no digit: `{"digit": null, "verdict": "not_a_digit", "confidence": 0.0, "reason", ...,
"probabilities": null}` (`"number": null` and `"digits": []` for a number). A file that cannot be read is
`{"file", "error"}`; `predict --json` puts `"file"` first in every reading. Probabilities are calibrated and rounded
to six decimals.
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


def members(class_names: Sequence[str], mask: np.ndarray | None) -> list[str] | None:
    """The class names in a prediction set (one row of a mask), in class order; None when no set was asked."""
    return None if mask is None else [name for name, inside in zip(class_names, mask.tolist(), strict=True) if inside]


def digit_json(
    class_names: Sequence[str],
    probabilities: np.ndarray,
    verdict: str,
    top_k: int | None = None,
    prediction_set: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One image's reading: its most probable class, verdict and calibrated confidence, the `top_k` most probable
    classes and the prediction set when asked, and every class's probability."""
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
    if prediction_set is not None:
        digit["set"] = list(prediction_set)
    digit["probabilities"] = [round(p, DECIMALS) for p in probabilities.tolist()]
    return digit


def no_digit_json(reason: str, top_k: int | None = None, with_set: bool = False) -> dict[str, Any]:
    """An image that holds no digit, in a digit's shape: no digit, not a digit, zero confidence, and the reason."""
    digit: dict[str, Any] = {"digit": None, "verdict": "not_a_digit", "confidence": 0.0, "reason": reason}
    if top_k is not None:
        digit["top_k"] = []
    if with_set:
        digit["set"] = []
    return digit | {"probabilities": None}


def number_json(
    class_names: Sequence[str],
    probabilities: np.ndarray,
    verdicts: Sequence[str],
    top_k: int | None = None,
    sets: np.ndarray | None = None,
) -> dict[str, Any]:
    """A number read one digit per row of `probabilities`, left to right: the digits (each with its prediction set
    when `sets` is given), the number's verdict (see calibration.overall), and its confidence, the product of the
    digits' confidences."""
    masks = [None] * len(probabilities) if sets is None else list(sets)
    digits = [
        digit_json(class_names, p, v, top_k, members(class_names, m))
        for p, v, m in zip(probabilities, verdicts, masks, strict=True)
    ]
    return {
        "number": "".join(d["digit"] for d in digits),
        "verdict": overall(list(verdicts)),
        "confidence": round(float(np.prod(probabilities.max(axis=1))), DECIMALS),
        "digits": digits,
    }


def no_number_json(reason: str) -> dict[str, Any]:
    """An image that holds no digit, in a number's shape: no number, not a digit, zero confidence, no digits."""
    return {"number": None, "verdict": "not_a_digit", "confidence": 0.0, "reason": reason, "digits": []}


def reading_json(
    class_names: Sequence[str], reading: Reading, multi_digit: bool = False, top_k: int | None = None
) -> dict[str, Any]:
    """A file's reading as `predict --json` writes it: the file, then its digit (or with `multi_digit` its number),
    or the reason it holds none, or its error."""
    if reading.error is not None:
        return {"file": reading.source, "error": reading.error}
    if reading.reason is not None:
        blank = (
            no_number_json(reading.reason)
            if multi_digit
            else no_digit_json(reading.reason, top_k, reading.sets is not None)
        )
        return {"file": reading.source, **blank}
    verdicts = reading.verdicts or ["digit"] * len(reading.probabilities)
    if multi_digit:
        return {
            "file": reading.source,
            **number_json(class_names, reading.probabilities, verdicts, top_k, reading.sets),
        }
    prediction_set = members(class_names, None if reading.sets is None else reading.sets[0])
    return {
        "file": reading.source,
        **digit_json(class_names, reading.probabilities[0], verdicts[0], top_k, prediction_set),
    }
