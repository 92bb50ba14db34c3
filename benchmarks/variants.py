"""A digit is a digit: per run, how the verdicts treat digits in users' styles, and the non-digits they must refuse.

Usage: python benchmarks/variants.py [--run LABEL=DIR ...] [--per-kind 500] [--fashion 10000]

Without --run it trains the fast CNN and the default DNN first (ood.train, a few minutes). Rows, each against
issue 23's targets:
- the MNIST test set (all 10,000), as arrays;
- each kind of synthetic.VARIANTS, made from --per-kind MNIST test digits (the same digits for every kind; seed 20,
  which neither training nor calibration draws with), rendered as a file and prepared as `predict` prepares one;
  and "printed": digits in HELD_OUT_FONTS. A digit the preparation refused counts as `not_a_digit`;
- the non-digits of benchmarks/ood.py (Fashion-MNIST test, letters in handwriting fonts, scribbles, shapes, noise,
  textures, silhouettes, blends of two digits): turned away is any verdict but `digit`, refused ones included;
- prediction sets at 99% on the MNIST test set, where the calibration offers them.
"read right" is the share whose argmax is the true digit whatever the verdict: the gap to "answered & right" is what
the verdict costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
import ood

from mnist_classifier.data import load_dataset, synthetic
from mnist_classifier.errors import MnistClassifierError
from mnist_classifier.inference import Predictor

SEED = 20  # calibration's validation suite draws with seed 1, training with 0
SET_COVERAGE = 0.99
PRINTED = "printed"
TURNED_AWAY = {  # the non-digit sets' targets: the share turned away, at least
    "Fashion-MNIST": 0.99,
    "letters": 0.85,
    "scribbles": 0.98,
    "shapes": 0.98,
    "noise": 0.98,
    "textures": 0.98,
}


@dataclass
class Shares:
    """What the verdicts made of one set of digits, as shares of all its images (refused ones included)."""

    n: int
    answered: float  # verdict `digit`
    right: float  # verdict `digit` and the reading is the true digit
    not_a_digit: float  # verdict `not_a_digit`, or refused by the preparation
    uncertain: float
    read_right: float  # the argmax is the true digit, whatever the verdict (refused: not read)

    @property
    def accuracy(self) -> float:
        """Accuracy on the answered ones."""
        return self.right / self.answered if self.answered else float("nan")


def shares(predictor: Predictor, images: np.ndarray, labels: np.ndarray, found: np.ndarray) -> Shares:
    """Judge the prepared images the preparation found a digit in; count the rest as `not_a_digit`."""
    n = len(images)
    if not found.any():
        return Shares(n, 0.0, 0.0, 1.0 if n else 0.0, 0.0, 0.0)
    judged = predictor.judge(images[found])
    verdicts = np.array(judged.verdicts)
    read = judged.probabilities.argmax(axis=1) == labels[found]
    answered = verdicts == "digit"
    return Shares(
        n=n,
        answered=float(answered.sum()) / n,
        right=float((answered & read).sum()) / n,
        not_a_digit=float((verdicts == "not_a_digit").sum() + (~found).sum()) / n,
        uncertain=float((verdicts == "uncertain").sum()) / n,
        read_right=float(read.sum()) / n,
    )


def turned_away(predictor: Predictor, images: np.ndarray, refused: int) -> float:
    """The share of a non-digit set given any verdict but `digit`; refused images count as turned away."""
    n = len(images) + refused
    answered = int(np.sum(np.array(predictor.judge(images).verdicts) == "digit")) if len(images) else 0
    return 1 - answered / n if n else float("nan")


def prediction_sets(predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> tuple[float, float] | str:
    """Coverage and mean size of the prediction sets at SET_COVERAGE; or why there are none."""
    calibration = predictor.calibration
    if not hasattr(calibration, "prediction_sets"):
        return "n/a (no Calibration.prediction_sets)"
    try:
        sets = calibration.prediction_sets(predictor.judge(images).probabilities, SET_COVERAGE)
    except MnistClassifierError as e:
        return f"n/a ({e})"
    return float(sets[np.arange(len(labels)), labels].mean()), float(sets.sum(axis=1).mean())


def digit_sets(
    x: np.ndarray, y: np.ndarray, per_kind: int, seed: int = SEED, kinds: tuple[str, ...] = synthetic.VARIANTS
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each variant kind of the same `per_kind` digits drawn from (x, y), and the held-out printed digits: prepared
    images, labels and found."""
    pick = np.sort(np.random.default_rng(seed).choice(len(x), min(per_kind, len(x)), replace=False))
    out = {}
    for kind in kinds:
        images, found = synthetic.variant(x[pick], kind, seed)
        out[kind] = (images, y[pick], found)
    printed, printed_labels = synthetic.held_out_printed(per_kind, seed)
    out[PRINTED] = (printed, printed_labels, np.ones(len(printed), bool))
    return out


def mark(value: float, bound: float, at_least: bool, text: str) -> str:
    met = value >= bound if at_least else value <= bound
    return f"{text} {'≥' if at_least else '≤'} {bound:.1%} {'✓' if met else '✗'}"


def pct(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.1%}"


def report(console: Console, label: str, measured: dict, header: str) -> None:
    """One table per run: the digits' shares, the non-digits turned away, the prediction sets; targets marked."""
    table = Table(title=f"{label}: digits in users' styles and non-digits ({header})")
    columns = ("figure", "n", "answered", "answered & right", "not a digit", "uncertain", "read right", "targets")
    for column in columns:
        table.add_column(column, justify="left" if column in ("figure", "targets") else "right")
    mnist: Shares = measured["MNIST test"]
    cnn = "cnn" in label.lower()
    targets = [
        mark(mnist.answered, 0.985, True, "answered"),
        mark(mnist.not_a_digit, 0.005, False, "not a digit"),
        mark(mnist.accuracy, 0.998, True, "accuracy on answered") if cnn else "accuracy on answered: fast CNN's",
    ]
    rows: list[tuple[str, Shares, str]] = [
        (f"MNIST test (accuracy on answered {mnist.accuracy:.2%})", mnist, " · ".join(targets))
    ]
    for kind, s in measured["digits"].items():
        target = f"{mark(s.right, 0.90, True, 'right')} · {mark(s.not_a_digit, 0.03, False, 'not a digit')}"
        rows.append((kind, s, target))
    for name, s, target in rows:
        table.add_row(
            name,
            f"{s.n:,}",
            pct(s.answered),
            pct(s.right),
            pct(s.not_a_digit),
            pct(s.uncertain),
            pct(s.read_right),
            target,
        )
    table.add_section()
    for name, (share, n, refused) in measured["others"].items():
        bound = TURNED_AWAY.get(name)
        refused_text = f" ({refused:,} refused by the preparation)" if refused else ""
        table.add_row(
            f"{name} turned away{refused_text}",
            f"{n:,}",
            pct(1 - share),
            "",
            "",
            "",
            "",
            mark(share, bound, True, f"turned away {share:.1%}") if bound else f"turned away {share:.1%}",
        )
    table.add_section()
    sets = measured["sets"]
    if isinstance(sets, str):
        table.add_row(f"prediction sets at {SET_COVERAGE:.0%}, MNIST test", "", "", "", "", "", "", sets)
    else:
        coverage, size = sets
        table.add_row(
            f"prediction sets at {SET_COVERAGE:.0%}, MNIST test: coverage {coverage:.2%}, mean size {size:.3f}",
            f"{mnist.n:,}",
            "",
            "",
            "",
            "",
            "",
            f"{mark(coverage, 0.99, True, 'coverage')} · mean size ≤ 1.1 {'✓' if size <= 1.1 else '✗'}",
        )
    console.print(table)


def measure(
    predictor: Predictor,
    mnist: tuple[np.ndarray, np.ndarray],
    digits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    others: dict[str, tuple[np.ndarray, int]],
) -> dict:
    x, y = mnist
    return {
        "MNIST test": shares(predictor, x, y, np.ones(len(x), bool)),
        "digits": {kind: shares(predictor, *data) for kind, data in digits.items()},
        "others": {
            name: (turned_away(predictor, images, refused), len(images) + refused, refused)
            for name, (images, refused) in others.items()
        },
        "sets": prediction_sets(predictor, x, y),
    }


def machine() -> str:
    """The CPU's model name and cores (as lscpu gives them), else what platform knows."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else ""
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def commit() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent)
        return run.stdout.strip() if run.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "--", "../src") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="LABEL=DIR of a run or ensemble (repeatable).")
    parser.add_argument("--per-kind", type=int, default=500, help="Digits of each variant kind; non-digits per kind.")
    parser.add_argument("--fashion", type=int, default=10_000, help="Fashion-MNIST test images.")
    args = parser.parse_args()
    console = Console(width=170)
    header = f"{machine()} · commit {commit()} · python benchmarks/variants.py {' '.join(sys.argv[1:])}".rstrip()
    console.print(header, highlight=False)
    data = load_dataset("mnist")
    digits = digit_sets(data.x_test, data.y_test, args.per_kind)
    others, fonts = ood.out_of_distribution(args.per_kind, args.fashion, data)
    console.print(f"letters' fonts: {', '.join(fonts)}", highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        for label, run, predictor in ood.loaded(args.run, Path(tmp), console):
            measured = measure(predictor, (data.x_test, data.y_test), digits, others)
            report(console, f"{label} ({run.name})", measured, header)


if __name__ == "__main__":
    main()
