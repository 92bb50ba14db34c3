"""How good verdicts are: calibration error of the probabilities, and separation of digits from non-digits."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

BINS = 15


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


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """How well a distance tells digits (low) from non-digits (high): 1 perfect, 0.5 chance."""
    truth = np.r_[np.zeros(len(digits)), np.ones(len(others))]
    return float(roc_auc_score(truth, np.r_[digits, others]))
