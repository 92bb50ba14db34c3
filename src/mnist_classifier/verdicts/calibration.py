"""What a model judges its readings with: temperature, digit-likeness score and thresholds, as fitted and stored.

A reading's typicality is the share of validation digits that scored as unlike a digit as it or more (a p-value in
[0, 1]); below the reject threshold it is `not_a_digit`. Its calibrated confidence (the top probability after
temperature scaling) below the confidence threshold makes it `uncertain`. A run trained before calibration existed
has none stored: it gets FALLBACK, defaults on the top probability.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .scores import class_offsets, mahalanobis, max_probability, top_two


@dataclass(frozen=True)
class Calibration:
    """Temperature, score and thresholds of one model; `means`/`precision` for the Mahalanobis score, `reference` the
    validation digits' scores (sorted, higher is less digit-like) that turn a score into a typicality; `conformal` the
    held-out validation digits' nonconformity scores (sorted, float32) that prediction sets need (sets.py)."""

    temperature: float = 1.0
    score: str = "max_probability"
    reject_threshold: float = 0.3
    confidence_threshold: float = 0.6
    fitted: bool = False
    means: np.ndarray | None = field(default=None, repr=False)
    precision: np.ndarray | None = field(default=None, repr=False)
    reference: np.ndarray | None = field(default=None, repr=False)
    conformal: np.ndarray | None = field(default=None, repr=False)

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
            return top_two(probabilities)
        return max_probability(probabilities)

    @functools.cached_property
    def offsets(self) -> np.ndarray | None:
        """Each class mean's own term of the distance, computed once."""
        if self.means is None or self.precision is None:
            return None
        return class_offsets(self.means, self.precision)

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

    def prediction_sets(self, probabilities: np.ndarray, coverage: float) -> np.ndarray:
        """Each image's prediction set at `coverage` (0..1, exclusive) as a (N, classes) mask, from its calibrated
        probabilities (split conformal; see sets.py); a RunError without stored scores."""
        from .sets import prediction_sets

        return prediction_sets(probabilities, self.conformal, coverage, self.temperature)


FALLBACK = Calibration()
