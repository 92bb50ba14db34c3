"""The calibrator: fits a model's temperature, digit-likeness score and reject threshold from measured arrays.

In scikit-learn's shape: constructed with its settings only, `fit` learns from arrays and returns itself, learned
attributes end in `_`. Post-hoc, so it cannot cost accuracy: the temperature keeps every argmax, and the score only
decides the verdict. The score is chosen by measurement: each candidate's AUROC between validation digits (with digits
unlike them, such as printed or photographed ones) and validation non-digits, a set never used for the benchmark's
figures. Measuring the distances (a model's job) and storing the result (stored.save) are the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .calibration import Calibration
from .measures import auroc, expected_calibration_error
from .temperature import fit_temperature, temperature_scaled

# as runs have stored it since calibration began (the module is data/synthetic/nondigits.py now)
CHOSEN_BY = "mean AUROC, validation digits vs the validation non-digits of nondigits.validation_set"


@dataclass(frozen=True)
class Distances:
    """One candidate score's distances (higher: less like a digit): of the validation digits, of the validation
    non-digits by kind, and of digits unlike the validation ones by name (`printed` sets the reject threshold)."""

    digits: np.ndarray
    nondigits: Mapping[str, np.ndarray]
    unlike: Mapping[str, np.ndarray] = field(default_factory=dict)


class Calibrator(BaseEstimator):
    """Fits a Calibration: the temperature that minimises the validation NLL; of the candidate scores, the first unless
    another beats its mean AUROC by `margin`; a reject threshold that turns away at most `max_reject` of the validation
    digits and answers at least `printed_kept` of the printed ones; `confidence_threshold` as given."""

    def __init__(
        self,
        max_reject: float = 0.05,
        printed_kept: float = 0.8,
        confidence_threshold: float = 0.6,
        margin: float = 0.02,
    ) -> None:
        self.max_reject = max_reject
        self.printed_kept = printed_kept
        self.confidence_threshold = confidence_threshold
        self.margin = margin

    def fit(
        self,
        probabilities: np.ndarray,
        labels: np.ndarray,
        distances: Mapping[str, Distances],
        means: np.ndarray | None = None,
        precision: np.ndarray | None = None,
    ) -> Self:
        """Learn from a model's own validation probabilities (N, classes) and labels (N,), and the distances of each
        candidate score by name, in order of preference; `means` and `precision` (scores.class_statistics) belong
        to the `mahalanobis` score and are kept only if it is chosen."""
        if not distances:
            raise ValueError("Calibrator.fit needs the distances of at least one candidate score")
        self.temperature_ = fit_temperature(probabilities, labels)
        self.candidates_: dict[str, dict[str, Any]] = {}
        best: tuple[float, str, np.ndarray] | None = None
        for score, measured in distances.items():
            reference = np.sort(measured.digits)
            digits = np.concatenate([reference, *measured.unlike.values()])
            per_kind = {kind: auroc(digits, others) for kind, others in measured.nondigits.items()}
            mean = float(np.mean(list(per_kind.values())))
            self.candidates_[score] = {"auroc_mean": mean, "auroc": per_kind}
            if best is None or mean > best[0] + self.margin:
                best = (mean, score, reference)
        assert best is not None
        _, self.score_, self.reference_ = best
        chosen = self.score_ == "mahalanobis"
        self.means_, self.precision_ = (means, precision) if chosen else (None, None)
        typicality = Calibration(reference=self.reference_).typicality
        typical = {name: typicality(d) for name, d in distances[self.score_].unlike.items()}
        reject = self.max_reject
        if "printed" in typical:
            reject = min(self.max_reject, float(np.quantile(typical["printed"], 1 - self.printed_kept)))
        self.reject_threshold_ = round(reject, 6)
        self.validation_kept_ = {name: float(np.mean(t >= self.reject_threshold_)) for name, t in typical.items()}
        self.ece_before_ = expected_calibration_error(probabilities, labels)[0]
        self.ece_after_ = expected_calibration_error(temperature_scaled(probabilities, self.temperature_), labels)[0]
        return self

    def calibration(self) -> Calibration:
        """The fitted Calibration, as a predictor judges with it and stored.save keeps it."""
        check_is_fitted(self, "temperature_", msg="this Calibrator is not fitted yet: call fit(...) first")
        return Calibration(
            temperature=self.temperature_,
            score=self.score_,
            reject_threshold=self.reject_threshold_,
            confidence_threshold=self.confidence_threshold,
            fitted=True,
            means=self.means_,
            precision=self.precision_,
            reference=self.reference_,
        )

    def figures(self) -> dict[str, Any]:
        """The figures that chose the calibration, as calibration.json keeps them."""
        check_is_fitted(self, "temperature_", msg="this Calibrator is not fitted yet: call fit(...) first")
        return {
            "chosen_by": CHOSEN_BY,
            "candidates": self.candidates_,
            "validation_kept": self.validation_kept_,
            "validation_ece_before": self.ece_before_,
            "validation_ece_after": self.ece_after_,
        }
