"""Temperature scaling: the one number that makes a model's probabilities honest without changing any argmax."""

from __future__ import annotations

import numpy as np


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities after temperature scaling: softmax(log p / T), the same as softmax(logits / T), computed
    as p^(1/T) normalised: the same, in three array operations. It cannot underflow to all zeros: the top
    probability is at least 1/classes and T is at least e^-3 (fit_temperature)."""
    if temperature == 1.0:
        return probabilities
    powered = np.power(probabilities, np.float32(1 / temperature), dtype=np.float32)
    return powered / powered.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [e^-3, e^3] that minimises the negative log-likelihood of the labels."""
    from scipy.optimize import minimize_scalar  # here: reading a digit (temperature_scaled) needs no optimiser

    def nll(log_t: float) -> float:
        scaled = temperature_scaled(probabilities, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1))))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
