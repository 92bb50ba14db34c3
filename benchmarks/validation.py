"""Compare trained runs on the validation split they share: each run's errors and log loss, then those of every
combination of them (the mean of its members' probabilities, as `ensemble` takes it). The test set is not read.

Usage: python benchmarks/validation.py RUN_DIR RUN_DIR ... [--largest K] [--verdicts] [--per-kind 1000]
[--photographed 3000]
The figures by which the best preset was chosen; give member folders (e.g. DIR/cnn-best-seed42/member-1 from
`time_to_accuracy.py --keep DIR`) or any runs trained with the same --validation-fraction and split seed.
--verdicts adds, for each run of MNIST's digits at its stored thresholds, the share of the validation non-digits
(synthetic.validation_set, --per-kind of each kind) judged not a digit, and of validation digits photographed
(synthetic.photographed, seed 1, the first --photographed) kept: the figures by which the DNN's deskewing was chosen.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from mnist_classifier.data import load_dataset, synthetic
from mnist_classifier.evaluation import compute_metrics, split_arrays
from mnist_classifier.inference import Predictor
from mnist_classifier.runs import run_config
from mnist_classifier.utils import import_tensorflow_quietly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--largest", type=int, default=4, help="largest combination to score (default 4)")
    parser.add_argument("--verdicts", action="store_true", help="also the verdicts on validation images")
    parser.add_argument("--per-kind", type=int, default=1000, help="validation non-digits of each kind")
    parser.add_argument("--photographed", type=int, default=3000, help="validation digits photographed")
    args = parser.parse_args()
    import_tensorflow_quietly()
    configs = [run_config(run) for run in args.runs]
    if len({c.validation_split for c in configs}) > 1:
        parser.error("the runs hold out different validation splits; give runs that share one")
    data = load_dataset(configs[0].dataset, Path(configs[0].data_dir) if configs[0].data_dir else None)
    x, y = split_arrays(configs[0], data, "val")
    predictors = {run: Predictor(run) for run in args.runs}
    probs = {run: predictor.probabilities(x) for run, predictor in predictors.items()}
    base = Path(os.path.commonpath([run.parent for run in args.runs]))
    names = {run: str(run.relative_to(base)) for run in args.runs}
    table = Table(title=f"validation split of {len(y):,} images (seed {configs[0].validation_seed})")
    for column in ("runs", "errors", "accuracy", "log loss"):
        table.add_column(column, justify="left" if column == "runs" else "right")
    for size in range(1, min(args.largest, len(args.runs)) + 1):
        for group in itertools.combinations(args.runs, size):
            metrics = compute_metrics(y, np.mean([probs[run] for run in group], axis=0), data.class_names)
            table.add_row(
                " + ".join(names[run] for run in group),
                str(metrics["errors"]),
                f"{metrics['accuracy']:.2%}",
                f"{metrics['loss']:.4f}",
            )
    Console(width=160).print(table)
    if args.verdicts:
        Console(width=160).print(verdicts(predictors, names, x, args.per_kind, args.photographed))


def verdicts(
    predictors: dict[Path, Predictor], names: dict[Path, str], x: np.ndarray, per_kind: int, photographed: int
) -> Table:
    """Per run, at its stored calibration: the shares of photographed validation digits kept (not judged not a
    digit) and of each kind of validation non-digit judged not a digit."""
    others = synthetic.validation_set(per_kind)
    photos = synthetic.photographed(x[:photographed], seed=1)
    table = Table(
        title=f"verdicts at each run's stored thresholds: {len(photos):,} validation digits photographed, "
        f"{per_kind:,} validation non-digits of each kind"
    )
    for column in ("run", "photographed kept", *(f"{kind} rejected" for kind in others)):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run, predictor in predictors.items():
        shares = [kept(predictor, photos), *(1 - kept(predictor, images) for images in others.values())]
        table.add_row(names[run], *(f"{share:.1%}" for share in shares))
    return table


def kept(predictor: Predictor, images: np.ndarray) -> float:
    """The share of images not judged not a digit at the predictor's stored reject threshold."""
    calibration = predictor.calibration
    return float(np.mean(calibration.typicality(predictor.assess(images)[1]) >= calibration.reject_threshold))


if __name__ == "__main__":
    main()
