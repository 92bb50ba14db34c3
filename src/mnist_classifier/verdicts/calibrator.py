"""The calibrator: fits a model's temperature, digit-likeness score and verdict thresholds from measured arrays.

In scikit-learn's shape: constructed with its settings only, `fit` learns from arrays and returns itself, learned
attributes end in `_`. Post-hoc, so it cannot cost accuracy: the temperature keeps every argmax, and the score and
thresholds only decide the verdict. Everything is chosen on the validation split: the score by its AUROC between the
validation suite of digits (clean validation digits and the same digits in other styles: printed, photographed,
scanned low, thick...) and validation non-digits; the reject threshold so that almost no digit of the suite is called
`not_a_digit`; the confidence threshold so that the readings answered are right as often as declared. Measuring the
distances (a model's job) and storing the result (stored.save) are the caller's.
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

CHOSEN_BY = (
    "mean AUROC, the validation suite of digits (clean and in other styles) vs the validation non-digits of"
    " synthetic.validation_set"
)
LOWEST_CONFIDENCE = 0.5  # under it the reading is between classes whatever the validation digits say


@dataclass(frozen=True)
class Distances:
    """One candidate score's distances (higher: less like a digit): of the validation digits, of the validation
    non-digits by kind, and of the validation digits in other styles by kind (printed, photographed, scanned low...)."""

    digits: np.ndarray
    nondigits: Mapping[str, np.ndarray]
    unlike: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def suite(self) -> np.ndarray:
        """Every digit of the validation suite, clean and in other styles, sorted: the reference of typicality."""
        return np.sort(np.concatenate([self.digits, *self.unlike.values()]))


class Calibrator(BaseEstimator):
    """Fits a Calibration: the temperature that minimises the validation NLL; of the candidate scores, the first unless
    another beats its mean AUROC by `margin`; the reject threshold (`not_a_digit` under it) that calls at most
    `digits_rejected` of the clean validation digits, and `style_rejected` of the digits of each other style that the
    model reads right, unlike a digit; and the highest confidence threshold (at least 0.5; `uncertain` under it) that
    still answers `digits_answered` of the clean validation digits and `style_answered` of those of each style that
    it reads right, of the styles it reads right at least `readable` of the time (in a style it misreads more often, a
    reading is in doubt: `uncertain` unless sure). So a digit read right is answered, the readings most in doubt are
    not, and the non-digits nearest the digits are not answered with them."""

    def __init__(
        self,
        digits_rejected: float = 0.0025,
        style_rejected: float = 0.02,
        digits_answered: float = 0.988,
        style_answered: float = 0.93,
        readable: float = 0.9,
        margin: float = 0.02,
    ) -> None:
        self.digits_rejected = digits_rejected
        self.style_rejected = style_rejected
        self.digits_answered = digits_answered
        self.style_answered = style_answered
        self.readable = readable
        self.margin = margin

    def fit(
        self,
        probabilities: np.ndarray,
        labels: np.ndarray,
        distances: Mapping[str, Distances],
        means: np.ndarray | None = None,
        precision: np.ndarray | None = None,
        styles: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> Self:
        """Learn from a model's own validation probabilities (N, classes) and labels (N,), the distances of each
        candidate score by name, in order of preference, and the model's own probabilities and the labels of the
        digits in other styles (`styles`, in the order of each Distances' `unlike`); `means` and `precision`
        (scores.class_statistics) belong to the `mahalanobis` score and are kept only if it is chosen."""
        if not distances:
            raise ValueError("Calibrator.fit needs the distances of at least one candidate score")
        if any(len(measured.digits) != len(labels) for measured in distances.values()):
            raise ValueError("Calibrator.fit needs the distances of the same validation digits as the probabilities")
        self.temperature_ = fit_temperature(probabilities, labels)
        self.candidates_: dict[str, dict[str, Any]] = {}
        best: tuple[float, str] | None = None
        for score, measured in distances.items():
            per_kind = {kind: auroc(measured.suite, others) for kind, others in measured.nondigits.items()}
            mean = float(np.mean(list(per_kind.values())))
            self.candidates_[score] = {"auroc_mean": mean, "auroc": per_kind}
            if best is None or mean > best[0] + self.margin:
                best = (mean, score)
        assert best is not None
        self.score_ = best[1]
        chosen = distances[self.score_]
        self.reference_ = chosen.suite
        self.means_, self.precision_ = (means, precision) if self.score_ == "mahalanobis" else (None, None)
        typicality = Calibration(reference=self.reference_).typicality
        styles = {name: styles[name] for name in chosen.unlike if name in styles} if styles else {}
        read = {name: p.argmax(axis=1) == y for name, (p, y) in styles.items()}  # digits the model reads right
        cuts = [np.quantile(typicality(chosen.digits), self.digits_rejected, method="lower")]
        cuts += [
            np.quantile(typicality(d[read[name]] if name in read else d), self.style_rejected, method="lower")
            for name, d in chosen.unlike.items()
            if name not in read or read[name].any()
        ]
        self.reject_threshold_ = float(np.floor(min(cuts) * 1e6) / 1e6)
        judged = {"digits": self._judged(probabilities, labels, chosen.digits)}
        judged |= {name: self._judged(p, y, chosen.unlike[name]) for name, (p, y) in styles.items()}
        kept, sure, _ = judged["digits"]
        highest = [np.quantile(np.where(kept, sure, -1.0), 1 - self.digits_answered, method="lower")]
        highest += [
            np.quantile(np.where(kept, sure, -1.0)[right], 1 - self.style_answered, method="lower")
            for name, (kept, sure, right) in judged.items()
            if name != "digits" and right.mean() >= self.readable
        ]
        self.confidence_threshold_ = float(max(LOWEST_CONFIDENCE, np.floor(min(highest) * 1e6) / 1e6))
        self.validation_ = {name: self._figures(*j) for name, j in judged.items()}
        self.validation_kept_ = {
            k: float(np.mean(typicality(d) >= self.reject_threshold_)) for k, d in chosen.unlike.items()
        }
        self.validation_turned_away_ = {
            k: float(np.mean(typicality(d) < self.reject_threshold_)) for k, d in chosen.nondigits.items()
        }
        scaled = temperature_scaled(probabilities, self.temperature_)
        self.ece_before_ = expected_calibration_error(probabilities, labels)[0]
        self.ece_after_ = expected_calibration_error(scaled, labels)[0]
        return self

    def _judged(
        self, probabilities: np.ndarray, labels: np.ndarray, distance: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Of digits: which the reject threshold keeps, their calibrated confidence, whether their reading is right."""
        kept = Calibration(reference=self.reference_).typicality(distance) >= self.reject_threshold_
        scaled = temperature_scaled(probabilities, self.temperature_)
        return kept, scaled.max(axis=1, initial=0.0), scaled.argmax(axis=1) == labels

    def _figures(self, kept: np.ndarray, sure: np.ndarray, right: np.ndarray) -> dict[str, float]:
        """Shares answered, answered and right, and not a digit, at the fitted thresholds."""
        answered = kept & (sure >= self.confidence_threshold_)
        return {
            "answered": float(answered.mean()),
            "answered_right": float((answered & right).mean()),
            "not_a_digit": float(1 - kept.mean()),
        }

    def calibration(self) -> Calibration:
        """The fitted Calibration, as a predictor judges with it and stored.save keeps it."""
        check_is_fitted(self, "temperature_", msg="this Calibrator is not fitted yet: call fit(...) first")
        return Calibration(
            temperature=self.temperature_,
            score=self.score_,
            reject_threshold=self.reject_threshold_,
            confidence_threshold=self.confidence_threshold_,
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
            "validation": self.validation_,
            "validation_kept": self.validation_kept_,
            "validation_turned_away": self.validation_turned_away_,
            "validation_ece_before": self.ece_before_,
            "validation_ece_after": self.ece_after_,
        }
