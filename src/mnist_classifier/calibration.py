"""What a run stores to judge its own readings: temperature, the digit-likeness score, thresholds; and the verdicts.

Each reading gets a verdict. `not_a_digit`: the image is unlike the digits the model knows, its typicality (the
share of validation digits that scored as unlike as it or more, a p-value in [0, 1]) is below the reject threshold.
`uncertain`: a digit, but its calibrated confidence (the top probability after temperature scaling) is below the
confidence threshold, so two classes are close. `digit` otherwise. The score is the Mahalanobis distance of the
network's penultimate features to the nearest class mean (one covariance shared by the classes, fitted on training
features) or the model's own probability of its two likeliest classes, whichever calibrate.py measured to separate
digits from its validation non-digits better. A run trained before this existed has no calibration.json: it gets
FALLBACK, defaults on the top probability.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, RunError
from .runs import read, read_json
from .utils import atomic_path, write_json

CALIBRATION, FEATURE_STATS = "calibration.json", "calibration.npz"
VERDICTS = ("digit", "uncertain", "not_a_digit")
# top_two: the probability of the two likeliest classes (low when it is spread over many: unlike every digit; a
# digit between two classes keeps it high, and is `uncertain` instead); members: an ensemble's mean of its members'
# atypicality; max_probability: the top probability, the default of runs calibrated before
SCORES = ("mahalanobis", "top_two", "members", "max_probability")
BINS = 15


@dataclass(frozen=True)
class Calibration:
    """Temperature, score and thresholds of one model; `means`/`precision` for the Mahalanobis score, `reference` the
    validation digits' scores (sorted, higher is less digit-like) that turn a score into a typicality."""

    temperature: float = 1.0
    score: str = "max_probability"
    reject_threshold: float = 0.3
    confidence_threshold: float = 0.6
    fitted: bool = False
    means: np.ndarray | None = field(default=None, repr=False)
    precision: np.ndarray | None = field(default=None, repr=False)
    reference: np.ndarray | None = field(default=None, repr=False)

    def settings(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "score": self.score,
            "reject_threshold": self.reject_threshold,
            "confidence_threshold": self.confidence_threshold,
        }

    def distance(self, probabilities: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """How unlike a digit each image is (higher: less like one)."""
        if self.score == "mahalanobis" and features is not None and self.means is not None:
            return mahalanobis(features, self.means, self.precision, self.offsets)
        if self.score == "top_two" and probabilities.shape[1] > 2:
            return 1.0 - np.partition(probabilities, -2, axis=1)[:, -2:].sum(axis=1)
        return 1.0 - probabilities.max(axis=1, initial=0.0)

    @functools.cached_property
    def offsets(self) -> np.ndarray | None:
        """Each class mean's own term of the distance, computed once."""
        if self.means is None or self.precision is None:
            return None
        return np.einsum("cd,de,ce->c", self.means, self.precision, self.means)

    def typicality(self, distance: np.ndarray) -> np.ndarray:
        """The share of validation digits at least this far: 1 for the most digit-like, near 0 for outliers.
        Without a reference (FALLBACK), the model's top probability."""
        if self.reference is None or not len(self.reference):
            return 1.0 - distance
        return 1.0 - np.searchsorted(self.reference, distance, side="left") / len(self.reference)

    @functools.cached_property
    def reject_beyond(self) -> float | None:
        """The distance past which a reading is not a digit: `typicality(d) < reject_threshold` exactly when
        `d > reject_beyond`, found once so that judging an image needs no search (None without a reference)."""
        if self.reference is None or not len(self.reference):
            return None
        n = len(self.reference)
        below = 1.0 - np.arange(n + 1) / n < self.reject_threshold  # typicality with k reference values under d
        if not below.any():
            return np.inf
        return float(self.reference[int(below.argmax()) - 1])  # the k-th smallest must lie under d


FALLBACK = Calibration()


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities after temperature scaling: softmax(log p / T), the same as softmax(logits / T), computed
    as p^(1/T) normalised: the same, in three array operations. It cannot underflow to all zeros: the top
    probability is at least 1/classes and T is at least e^-3 (fit_temperature)."""
    if temperature == 1.0:
        return probabilities
    powered = np.power(probabilities, np.float32(1 / temperature), dtype=np.float32)
    return powered / powered.sum(axis=1, keepdims=True)


def mahalanobis(
    features: np.ndarray, means: np.ndarray, precision: np.ndarray | None, offsets: np.ndarray | None
) -> np.ndarray:
    """The squared Mahalanobis distance of each feature row to the nearest class mean."""
    assert precision is not None and offsets is not None
    f = features.astype(np.float64)
    fp = f @ precision
    return ((fp * f).sum(axis=1)[:, None] - 2 * fp @ means.T + offsets).min(axis=1)


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


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS
) -> tuple[float, list[dict[str, float]]]:
    """ECE over equal-width confidence bins, and each non-empty bin's count, mean confidence and accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, error = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
            error += inside.mean() * abs(conf - acc)
            table.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "n": int(inside.sum()),
                    "confidence": conf,
                    "accuracy": acc,
                }
            )
    return float(error), table


def save(folder: Path, calibration: Calibration, figures: dict[str, Any]) -> None:
    """calibration.json (settings and the figures that chose them) and calibration.npz (arrays), atomically."""
    arrays = {"reference": calibration.reference}
    if calibration.means is not None and calibration.precision is not None:
        arrays |= {"means": calibration.means, "precision": calibration.precision}
    with atomic_path(folder / FEATURE_STATS) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]
    write_json(folder / CALIBRATION, calibration.settings() | {"figures": figures})


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def load(folder: Path) -> Calibration | None:
    """A run's stored calibration; None for a run from before calibration (or a bare .keras file)."""
    if not (folder / CALIBRATION).is_file():
        return None
    settings = read_json(folder / CALIBRATION)
    arrays = read(folder / FEATURE_STATS, _arrays) if (folder / FEATURE_STATS).is_file() else {}
    try:
        calibration = Calibration(
            temperature=float(settings["temperature"]),
            score=str(settings["score"]),
            reject_threshold=float(settings["reject_threshold"]),
            confidence_threshold=float(settings["confidence_threshold"]),
            fitted=True,
            means=arrays.get("means"),
            precision=arrays.get("precision"),
            reference=arrays.get("reference"),
        )
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
        raise RunError(
            f"{folder / CALIBRATION} is unreadable ({e}); run `mnist-classifier calibrate {folder}`"
        ) from None
    if calibration.score not in SCORES or calibration.temperature <= 0:
        raise RunError(
            f"{folder / CALIBRATION}: unknown score or bad temperature; run `mnist-classifier calibrate {folder}`"
        )
    return calibration
