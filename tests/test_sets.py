"""Prediction sets (split conformal, verdicts/sets.py): the quantile, the coverage guarantee, storage; no model."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mnist_classifier import verdicts
from mnist_classifier.errors import ConfigError, RunError
from mnist_classifier.verdicts import Calibration, nonconformity, prediction_sets, temperature_scaled
from mnist_classifier.verdicts.sets import quantile, rank


def exchangeable(seed: int, n: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of n images and labels drawn from them: every image alike, so any split is exchangeable."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(classes, 0.3), n).astype(np.float32)
    labels = np.array([rng.choice(classes, p=p / p.sum()) for p in probabilities.astype(np.float64)])
    return probabilities, labels


def test_the_quantile_is_the_ceil_n_plus_one_order_statistic_at_small_n() -> None:
    scores = np.linspace(0.1, 1.0, 10, dtype=np.float32)
    assert [rank(10, c) for c in (0.5, 0.9, 0.91, 0.09)] == [6, 10, 11, 1]
    assert quantile(scores, 0.5) == pytest.approx(0.6) and quantile(scores, 0.9) == pytest.approx(1.0)
    assert quantile(scores, 0.05) == pytest.approx(0.1)
    assert quantile(scores, 0.91) == np.inf  # more than 10 digits can promise: every class, as the textbook says
    assert quantile(np.zeros(99, np.float32), 0.99) == 0.0, "99 scores are just enough for 0.99"


def test_a_set_is_every_class_whose_score_is_within_the_quantile() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.6], np.float32)  # coverage 0.6: rank ceil(3.0) = 3, q = 0.3
    probabilities = np.array([[0.8, 0.15, 0.05], [0.45, 0.35, 0.2], [0.5, 0.45, 0.05]], np.float32)
    sets = prediction_sets(probabilities, scores, 0.6)
    assert sets.tolist() == [[True, False, False], [False, False, False], [False, False, False]]
    sets = prediction_sets(probabilities, scores, 0.8)  # rank 4: q = 0.6
    assert sets.tolist() == [[True, False, False], [True, False, False], [True, True, False]]


@settings(max_examples=200)  # each case draws up to 5,000 points: the full profile's 1,500 cost half a minute
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(20, 3000),
    coverage=st.floats(0.5, 0.99),
)
def test_coverage_holds_on_held_out_exchangeable_points(seed: int, n: int, coverage: float) -> None:
    """The guarantee: on points exchangeable with the n held-out ones, the set holds the true class at least
    `coverage` of the time, less the sampling error of both draws (five standard deviations)."""
    assume(rank(n, coverage) <= n)
    probabilities, labels = exchangeable(seed, n + 2000)
    scores = nonconformity(probabilities[:n], labels[:n])
    sets = prediction_sets(probabilities[n:], scores, coverage)
    covered = float(sets[np.arange(2000), labels[n:]].mean())
    spread = math.sqrt(coverage * (1 - coverage) * (1 / (n + 2) + 1 / 2000))
    assert covered >= coverage - 5 * spread - 1e-9, (covered, coverage, spread)


def test_coverage_on_average_is_at_least_the_stated_one() -> None:
    """Averaged over many draws of the held-out digits the coverage is k / (n + 1) >= coverage, within 1%."""
    covered = []
    for seed in range(200):
        probabilities, labels = exchangeable(seed, 49 + 200)
        sets = prediction_sets(probabilities[49:], nonconformity(probabilities[:49], labels[:49]), 0.9)
        covered.append(sets[np.arange(200), labels[49:]].mean())
    assert np.mean(covered) >= 0.9 - 0.01 and np.mean(covered) <= rank(49, 0.9) / 50 + 0.01


@given(seed=st.integers(0, 2**32 - 1), low=st.floats(0.05, 0.98), high=st.floats(0.05, 0.98))
def test_sets_grow_with_the_coverage(seed: int, low: float, high: float) -> None:
    low, high = sorted((low, high))
    probabilities, labels = exchangeable(seed, 300)
    scores = nonconformity(probabilities[:200], labels[:200])
    small, large = (prediction_sets(probabilities[200:], scores, c) for c in (low, high))
    assert not (small & ~large).any()


def test_calibrated_probabilities_give_the_sets_of_the_models_own() -> None:
    """The scores are of the model's own probabilities; the temperature the calibrated ones carry is undone."""
    probabilities, labels = exchangeable(7, 1200)
    scores = nonconformity(probabilities[:1000], labels[:1000])
    own = prediction_sets(probabilities[1000:], scores, 0.9)
    for temperature in (0.5, 1.7):
        calibrated = temperature_scaled(probabilities[1000:], temperature)
        np.testing.assert_array_equal(prediction_sets(calibrated, scores, 0.9, temperature), own)
        stored = Calibration(temperature=temperature, conformal=scores)
        np.testing.assert_array_equal(stored.prediction_sets(calibrated, 0.9), own)


@pytest.mark.parametrize("coverage", [0, 1, 1.5, -0.1, float("nan"), "most", None])
def test_a_coverage_outside_zero_to_one_is_refused(coverage: object) -> None:
    with pytest.raises(ConfigError, match="set_coverage"):
        verdicts.check_coverage(coverage)
    assert verdicts.check_coverage("0.99") == 0.99


def test_a_calibration_without_scores_says_to_calibrate_again() -> None:
    with pytest.raises(RunError, match=r"no prediction-set scores .* run `mnist-classifier calibrate RUN`$"):
        verdicts.FALLBACK.prediction_sets(np.full((1, 10), 0.1, np.float32), 0.9)


def test_the_scores_are_stored_and_loaded_with_the_calibration(tmp_path: Path) -> None:
    scores = nonconformity(*exchangeable(3, 500))
    calibration = Calibration(temperature=1.3, score="top_two", fitted=True, reference=np.sort(np.arange(5.0)))
    verdicts.save(tmp_path, calibration, {})
    loaded = verdicts.load(tmp_path)
    assert loaded is not None and loaded.conformal is None, "a calibration without scores stores none"
    verdicts.save(tmp_path, dataclasses.replace(calibration, conformal=scores), {})
    loaded = verdicts.load(tmp_path)
    assert loaded is not None and loaded.conformal is not None and loaded.conformal.dtype == np.float32
    np.testing.assert_array_equal(loaded.conformal, scores)
    np.savez(tmp_path / verdicts.FEATURE_STATS, reference=np.arange(5.0), conformal=np.array([0.1, np.nan]))
    with pytest.raises(RunError, match="prediction-set scores"):
        verdicts.load(tmp_path)
