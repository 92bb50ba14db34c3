"""Which score decides `not_a_digit`: the candidate digit-likeness scores side by side, on the validation split only.

Usage: python benchmarks/scores.py [--run LABEL=DIR ...]

Without --run it trains the fast CNN and the default DNN first (ood.train, a few minutes). Each run is measured on
its own validation split (data.split_validation with the run's config) and the suite its calibration is chosen on
(calibrate.validation_images: the clean validation digits, the same digits printed, photographed and in every other
style, and the validation non-digits of synthetic.validation_set). Candidates (higher: less like a digit):
- top_two, max_probability: of the model's own probabilities (verdicts.scores), top_two the one in use;
- mahalanobis: to the nearest class mean of 20,000 training features, as calibrate.candidates fits it;
- energy (-logsumexp of the logits) and max_logit (minus the largest logit), the logits being the penultimate
  features times the last Dense layer's weights, plus its bias;
- knn: one minus the cosine similarity to the 10th nearest of the same 20,000 training features (Sun et al. 2022);
- top_two+knn: the sum of the two scores' ranks among the validation suite's digits;
- detector: a logistic regression on the standardised penultimate features that tells the run's own training digits
  (20,000 of them, in the styles it trains on) from its training non-digits (the outlier-exposure pool), its log-odds
  of a non-digit: a separator learned on what training saw, never on the validation suite.
Columns: the AUROC of the validation suite's digits against all validation non-digits (the kinds are of one size, so
it is also the calibrator's criterion, the mean of each kind's AUROC); for each non-digit kind, the share called
`not_a_digit` at the reject threshold that verdicts.Calibrator's rule gives that score alone (at most 0.25% of the
clean validation digits and 2% of each style's digits read right turned away); and the score the calibrator keeps
when offered them all in the table's order (the first, unless another beats its AUROC by the calibrator's margin).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import warnings
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.special import logsumexp, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
import ood
import variants

from mnist_classifier import calibrate, training, verdicts
from mnist_classifier.data import load_dataset, split_validation
from mnist_classifier.errors import MnistClassifierError
from mnist_classifier.inference import DefaultCalibrationWarning, Predictor, load_predictor
from mnist_classifier.runs import run_config
from mnist_classifier.verdicts import Calibrator, Distances, auroc

NEIGHBOURS = 10
COMBINED = ("top_two", "knn")  # summed as ranks among the validation suite's digits
COMBINATION = "+".join(COMBINED)
CANDIDATES = ("top_two", "max_probability", "mahalanobis", "energy", "max_logit", "knn", COMBINATION, "detector")


def unit(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


class Scorer:
    """Every candidate score but the combination, of images, from one pass of the model; fitted on training images."""

    def __init__(
        self, predictor: Predictor, x_train: np.ndarray, y_train: np.ndarray, trained: np.ndarray, pool: np.ndarray
    ) -> None:
        _, features = predictor.features(x_train)
        _, seen = predictor.features(trained)
        _, outliers = predictor.features(pool)
        if features is None or seen is None or outliers is None:
            raise ValueError("the model gives no penultimate features (an ensemble or an ONNX copy)")
        self.detector = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
        self.detector.fit(np.concatenate([seen, outliers]), np.r_[np.zeros(len(seen)), np.ones(len(outliers))])
        self.predictor = predictor
        self.means, self.precision = verdicts.class_statistics(features, y_train, len(predictor.class_names))
        self.offsets = verdicts.scores.class_offsets(self.means, self.precision)
        self.bank = unit(features.astype(np.float32))
        weights, bias = predictor.backend.model.layers[-1].get_weights()
        self.weights, self.bias = weights.astype(np.float64), bias.astype(np.float64)

    def knn(self, features: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """One minus the cosine similarity of each feature row to its NEIGHBOURS-th nearest training feature."""
        rows = unit(features.astype(np.float32))
        kth = [
            np.partition(rows[i : i + chunk] @ self.bank.T, -NEIGHBOURS, axis=1)[:, -NEIGHBOURS]
            for i in range(0, len(rows), chunk)
        ]
        return 1.0 - np.concatenate(kth) if kth else np.zeros(0)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The model's own probabilities of images, and each score's distances."""
        probabilities, features = self.predictor.features(images)
        assert features is not None
        logits = features.astype(np.float64) @ self.weights + self.bias
        if not np.allclose(softmax(logits, axis=1), probabilities, atol=1e-3):
            raise ValueError("the last layer's logits do not give the model's probabilities: not a Dense softmax")
        return probabilities, {
            "top_two": verdicts.scores.top_two(probabilities),
            "max_probability": verdicts.scores.max_probability(probabilities),
            "mahalanobis": verdicts.scores.mahalanobis(features, self.means, self.precision, self.offsets),
            "energy": -logsumexp(logits, axis=1),
            "max_logit": -logits.max(axis=1),
            "knn": self.knn(features),
            "detector": self.detector.decision_function(features),
        }


def compare(predictor: Predictor, run: Path) -> tuple[list[str], list[list[str]]]:
    """The validation non-digits' kinds, and the table's rows for one run: each candidate's AUROC, the share of each
    kind turned away, and the one kept."""
    config = run_config(run)
    dataset = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    splits = training.prepare(config, dataset)
    pool = training.outlier_pool(config, dataset, splits)
    if pool is None:
        raise ValueError("the run trained without outlier exposure: no training non-digits for the detector")
    n = calibrate.TRAIN_FEATURES
    trained = splits.x_train[np.random.default_rng(0).permutation(len(splits.x_train))[:n]]
    scorer = Scorer(predictor, x_train[:n], y_train[:n], trained, pool)
    others, unlike = calibrate.validation_images(predictor, x_val, y_val)
    raw_val, digits = scorer(x_val)
    nondigits = {kind: scorer(images)[1] for kind, images in others.items()}
    styled = {name: scorer(images) for name, (images, _) in unlike.items()}
    styles = {name: (styled[name][0], labels) for name, (_, labels) in unlike.items()}

    def distances(of: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Distances:
        return Distances(
            digits=of(digits),
            nondigits={kind: of(scores) for kind, scores in nondigits.items()},
            unlike={name: of(scores) for name, (_, scores) in styled.items()},
        )

    measured = {score: distances(itemgetter(score)) for score in digits}
    suites = {name: measured[name].suite for name in COMBINED}
    measured[COMBINATION] = distances(
        lambda scores: sum(np.searchsorted(suites[n], scores[n], side="right") / len(suites[n]) for n in COMBINED)
    )
    kept = Calibrator().fit(raw_val, y_val, {score: measured[score] for score in CANDIDATES}, styles=styles).score_
    rows = []
    for score in CANDIDATES:
        candidate = measured[score]
        alone = Calibrator().fit(raw_val, y_val, {score: candidate}, styles=styles)
        pooled = auroc(candidate.suite, np.concatenate(list(candidate.nondigits.values())))
        turned_away = [f"{alone.validation_turned_away_[kind]:.1%}" for kind in others]
        rows.append([score, f"{pooled:.4f}", *turned_away, "kept" if score == kept else ""])
    return list(others), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="LABEL=DIR of a single run (repeatable).")
    args = parser.parse_args()
    console = Console(width=170)
    command = f"python benchmarks/scores.py {shlex.join(sys.argv[1:])}".rstrip()
    console.print(f"{variants.machine()} · commit {variants.commit()} · {command}", highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        given = dict(item.split("=", 1) for item in args.run)
        runs = {label: Path(path) for label, path in given.items()} or ood.train(Path(tmp))
        table: Table | None = None
        for label, run in runs.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DefaultCalibrationWarning)
                    predictor = load_predictor(run)
                kinds, rows = compare(predictor, run)
            except (ValueError, MnistClassifierError) as e:
                console.print(f"{label}: skipped, {e}", highlight=False)
                continue
            if table is None:
                table = Table(
                    title="Candidate scores on the validation split: AUROC, and non-digits called not_a_digit"
                )
                for column in ("run", "score", "AUROC", *kinds, "calibrator keeps"):
                    table.add_column(column, justify="left" if column in ("run", "score") else "right")
            else:
                table.add_section()
            for row in rows:
                table.add_row(label, *row)
        if table is not None:
            console.print(table)


if __name__ == "__main__":
    main()
