"""Default DNN: data loading time, training time and test accuracy, end to end through the CLI.

Usage: python benchmarks/dnn.py [--repeats 3]
Each repeat runs `mnist-classifier train` (what `make run` runs) in a fresh process and reads
its metrics.json; the table gives every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mnist_classifier.data import load_dataset


def load_times(cache: Path, repeats: int = 5) -> tuple[float, float]:
    """Seconds of the first, verifying load into an empty cache, and the median of cached loads."""
    os.environ["MNIST_CLASSIFIER_CACHE"] = str(cache)
    start = time.perf_counter()
    load_dataset("mnist")
    first = time.perf_counter() - start
    cached = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_dataset("mnist")
        cached.append(time.perf_counter() - start)
    return first, statistics.median(cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        first, cached = load_times(Path(tmp) / "cache")
        rows = []
        for i in range(args.repeats):
            out = Path(tmp) / f"run{i}"
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "mnist_classifier", "train", "--out", str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
                env=os.environ,
            )
            wall = time.perf_counter() - start
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append((wall, metrics["train_seconds"], metrics["accuracy"], metrics["epochs"]))
    table = Table(title=f"default DNN on MNIST, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    for column in ("run", "epochs", "training s", "train + evaluate + report s", "test accuracy"):
        table.add_column(column, justify="right")
    for i, (wall, seconds, accuracy, epochs) in enumerate(rows, 1):
        table.add_row(str(i), str(epochs), f"{seconds:.1f}", f"{wall:.1f}", f"{accuracy:.2%}")
    median = [statistics.median(r[k] for r in rows) for k in range(3)]
    table.add_row("median", "", f"{median[1]:.1f}", f"{median[0]:.1f}", f"{median[2]:.2%}", style="bold")
    console.print(table)
    console.print(f"MNIST load: first (verifying) {first:.2f} s, cached median of 5: {cached:.3f} s")


if __name__ == "__main__":
    main()
