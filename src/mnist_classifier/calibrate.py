"""Calibrate a run or ensemble folder: measure its model on its validation split, fit a Calibrator, store the result.

The caller's half of verdicts.Calibrator: loading the run's data and model, drawing the validation images (printed
digits in Matplotlib's fonts and validation digits photographed, for a model of MNIST's digits; and
synthetic.validation_set, non-digits never used for the benchmark's figures), measuring each candidate score's
distances, and writing calibration.json. Training calls `calibrate_run` at its end; `mnist-classifier calibrate RUN`
calls it for a run trained before.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import verdicts
from .data import load_dataset, split_validation, synthetic
from .data.datasets import DIGITS
from .errors import RunError
from .inference import DefaultCalibrationWarning, Predictor, load_predictor
from .runs import ensemble_members, run_config
from .verdicts import Calibration, Calibrator, Distances

TRAIN_FEATURES = 20_000  # training images whose penultimate features give the class means and covariance
NONDIGITS_PER_KIND = 200
FONT_DIGITS = 300
PHOTOGRAPHED = 1000  # validation digits photographed and prepared
PER_STYLE = 200  # validation digits drawn in each other style (synthetic.VARIANTS)
STYLES_SEED = 1  # training draws its digits in other styles with seed 0, the benchmark with 20


def validation_images(
    predictor: Predictor, x_val: np.ndarray, y_val: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The validation non-digits by kind; and for a model of MNIST's digits, the validation suite's digits unlike its
    validation digits, with their labels: printed ones, and validation digits photographed and drawn in each other
    style users bring."""
    others = synthetic.validation_set(NONDIGITS_PER_KIND)
    if predictor.class_names != DIGITS or predictor.input_shape != (28, 28):
        return others, {}
    fonts = synthetic.matplotlib_fonts()
    printed = {"printed": synthetic.font_digits(fonts, FONT_DIGITS, seed=3)} if fonts else {}
    photographed = synthetic.photographed(x_val[:PHOTOGRAPHED], seed=1), y_val[:PHOTOGRAPHED]
    styles = [kind for kind in synthetic.VARIANTS if kind != "photographed"]
    drawn = synthetic.variants(x_val[:PER_STYLE], STYLES_SEED, styles)
    return others, printed | {"photographed": photographed} | {
        kind: (images[found], y_val[:PER_STYLE][found]) for kind, (images, found) in drawn.items()
    }


def candidates(predictor: Predictor, ensemble: bool, x_train: np.ndarray, y_train: np.ndarray) -> list[Calibration]:
    """The scores to choose from, in order of preference: an ensemble's `members`, else `mahalanobis` with its class
    statistics where the model gives features; then `top_two`."""
    base = Calibration(score="top_two", fitted=True)
    if ensemble:
        return [dataclasses.replace(base, score="members"), base]
    _, features = predictor.features(x_train)
    if features is None:
        return [base]
    means, precision = verdicts.class_statistics(features, y_train, len(predictor.class_names))
    return [dataclasses.replace(base, score="mahalanobis", means=means, precision=precision), base]


def measured(
    predictor: Predictor,
    candidate: Calibration,
    x_val: np.ndarray,
    others: dict[str, np.ndarray],
    unlike: dict[str, tuple[np.ndarray, np.ndarray]],
) -> Distances:
    """The distances under `candidate`'s score of the validation digits, non-digits and unlike digits. It sets the
    predictor's calibration: the predictor is the one `calibrate_run` loaded for this."""
    predictor.calibration = candidate
    return Distances(
        digits=predictor.assess(x_val)[1],
        nondigits={kind: predictor.assess(images)[1] for kind, images in others.items()},
        unlike={name: predictor.assess(images)[1] for name, (images, _) in unlike.items()},
    )


def calibrate_run(folder: Path) -> dict[str, Any]:
    """Fit and store the calibration of a run or ensemble folder (an ensemble's members first have theirs); return
    the settings and the figures that chose them, as stored in calibration.json."""
    members = ensemble_members(folder)
    config = run_config(members[0] if members else folder)
    dataset = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DefaultCalibrationWarning)
        predictor = load_predictor(folder)
    if predictor.class_names != tuple(dataset.class_names):
        raise RunError(f"{folder}: its classes differ from its dataset's; it cannot be calibrated")
    raw_val = predictor.probabilities(x_val)
    others, unlike = validation_images(predictor, x_val, y_val)
    scored = candidates(predictor, members is not None, x_train[:TRAIN_FEATURES], y_train[:TRAIN_FEATURES])
    distances = {candidate.score: measured(predictor, candidate, x_val, others, unlike) for candidate in scored}
    statistics = scored[0]
    styles = {name: (predictor.probabilities(images), labels) for name, (images, labels) in unlike.items()}
    calibrator = Calibrator().fit(raw_val, y_val, distances, statistics.means, statistics.precision, styles)
    calibration, figures = calibrator.calibration(), calibrator.figures()
    calibration = dataclasses.replace(calibration, conformal=verdicts.nonconformity(raw_val, y_val))
    verdicts.save(folder, calibration, figures)
    return calibration.settings() | {"figures": figures}
