"""Readings as callers get them: the Python API's `Predictions`, and one JSON shape for every caller (`predict
--json`, the Python API, the server).

A digit is `{"digit", "verdict", "confidence", "top_k" (when asked), "set" (when asked), "probabilities"}`; a number
read digit by digit is `{"number", "verdict", "confidence", "digits": [digit, ...]}`. The digit is the model's
reading (its most probable class) whatever the verdict. An image that holds no digit (blank, too faint, specks) is
one reading too, with no digit: `{"digit": null, "verdict": "not_a_digit", "confidence": 0.0, "reason", ...,
"probabilities": null}` (`"number": null` and `"digits": []` for a number). A file that cannot be read is
`{"file", "error"}`; `predict --json` puts `"file"` first in every reading. Probabilities are calibrated and rounded
to six decimals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Predictions:
    """What a run read in some images, one entry per image, in order, in every field: its digit (the model's reading,
    a class name, whatever the verdict), its calibrated probability, all calibrated probabilities (one column per
    name in `classes`), and its verdict: "digit", "uncertain" (two classes close) or "not_a_digit".

    An image that holds no digit (blank, too faint, specks) has digit None, confidence 0, probabilities NaN, verdict
    "not_a_digit" and its `reasons` entry; a file that cannot be read has the same, verdict None and its `errors`
    entry. `sets` (when asked) holds each image's prediction set, [] for an image with no digit."""

    digits: list[str | None]
    confidence: np.ndarray
    probabilities: np.ndarray
    verdicts: list[str | None] = dataclasses.field(default_factory=list)
    classes: list[str] = dataclasses.field(default_factory=list, kw_only=True)
    reasons: list[str | None] = dataclasses.field(default_factory=list, kw_only=True)
    errors: list[str | None] = dataclasses.field(default_factory=list, kw_only=True)
    sets: list[list[str]] | None = dataclasses.field(default=None, kw_only=True)

    def __len__(self) -> int:
        return len(self.digits)

    def to_json(self, top_k: int | None = None) -> list[dict[str, Any]]:
        """Each image's reading as `predict --json` and the server give it (readings.py): digit, verdict, confidence,
        the `top_k` most probable classes and the set when asked, and every probability; or the reason an image holds
        no digit; or `{"error"}` for a file that cannot be read."""
        n = len(self)
        verdicts, reasons, errors = (
            self.verdicts or ["digit"] * n,
            self.reasons or [None] * n,
            self.errors or [None] * n,
        )
        sets: list[list[str] | None] = list(self.sets) if self.sets is not None else [None] * n
        rows = zip(self.probabilities, verdicts, reasons, errors, sets, strict=True)
        return [
            {"error": error}
            if error is not None
            else no_digit_json(reason, top_k, self.sets is not None)
            if reason is not None
            else digit_json(self.classes, p, str(v), top_k, found)
            for p, v, reason, error, found in rows
        ]
