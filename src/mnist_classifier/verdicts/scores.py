"""The digit-likeness scores: how unlike the digits a model knows each image is (higher: less like one).

`mahalanobis`: the distance of the network's penultimate features to the nearest class mean (one covariance shared
by the classes, fitted on training features). `top_two`: one minus the probability of the two likeliest classes (high
when it is spread over many: unlike every digit; a digit between two classes keeps it low, and is `uncertain`
instead). `members`: an ensemble's mean of its members' atypicality, which the ensemble computes itself.
`max_probability`: one minus the top probability, the default of runs calibrated before the others existed.
"""

from __future__ import annotations

import numpy as np

SCORES = ("mahalanobis", "top_two", "members", "max_probability")


def class_statistics(features: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class means of the features and the precision (inverse) of their shared covariance, slightly regularised."""
    features = features.astype(np.float64)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(classes)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(centred)
    covariance += np.eye(len(covariance)) * 1e-3 * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    return means, np.linalg.inv(covariance)


def mahalanobis(
    features: np.ndarray, means: np.ndarray, precision: np.ndarray | None, offsets: np.ndarray | None
) -> np.ndarray:
    """The squared Mahalanobis distance of each feature row to the nearest class mean; `offsets` are each mean's own
    term (`class_offsets`)."""
    assert precision is not None and offsets is not None
    f = features.astype(np.float64)
    fp = f @ precision
    return ((fp * f).sum(axis=1)[:, None] - 2 * fp @ means.T + offsets).min(axis=1)


def class_offsets(means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Each class mean's own term of the Mahalanobis distance, computed once per calibration."""
    return np.einsum("cd,de,ce->c", means, precision, means)


def top_two(probabilities: np.ndarray) -> np.ndarray:
    """One minus the probability of each image's two likeliest classes."""
    return 1.0 - np.partition(probabilities, -2, axis=1)[:, -2:].sum(axis=1)


def max_probability(probabilities: np.ndarray) -> np.ndarray:
    """One minus each image's top probability."""
    return 1.0 - probabilities.max(axis=1, initial=0.0)
