"""Default DNN, end to end through the CLI: the whole `train` command on a first run and a warm one, and MNIST's load.

Usage: python benchmarks/dnn.py [--repeats 3]
Each repeat runs `mnist-classifier train` (what `make run` runs) in fresh processes, in turn:
- a first run on an empty cache folder without the shipped drawn sets (so it draws them all: the path before they
  shipped),
- the same command again on that now warm cache,
- a first run on another empty cache folder, reading the sets shipped in the package (drawn.npz): a new user's run.
The table gives each path's median wall seconds, training seconds and test accuracy; the targets are issue 24's.
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
from mnist_classifier.data.synthetic.cache import ENVIRONMENT

# path -> (whether it starts from an empty cache, whether the shipped sets are read, the target for the whole command)
PATHS = {
    "first run, drawing every set (no shipped sets)": (True, False, None),
    "warm cache": (False, True, 40.0),
    "first run, shipped sets": (True, True, 50.0),
}


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


def train(out: Path, cache: Path, shipped: bool) -> tuple[float, dict]:
    """Wall seconds of one `mnist-classifier train` and its metrics."""
    env = os.environ | {"MNIST_CLASSIFIER_CACHE": str(cache)} | ({} if shipped else {ENVIRONMENT: ""})
    start = time.perf_counter()
    command = [sys.executable, "-m", "mnist_classifier", "train", "--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start, json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=max(Console().width, 130))
    rows: dict[str, list[tuple[float, float, float]]] = {path: [] for path in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        first, cached = load_times(Path(tmp) / "load")
        for i in range(args.repeats):
            for j, (path, (empty, shipped, _)) in enumerate(PATHS.items()):
                cache = Path(tmp) / f"cache-{i}-{j}" if empty else Path(tmp) / f"cache-{i}-0"
                wall, metrics = train(Path(tmp) / f"run-{i}-{j}", cache, shipped)
                rows[path].append((wall, metrics["train_seconds"], metrics["accuracy"]))
                console.print(f"repeat {i + 1}, {path}: {wall:.1f} s")
    title = f"default DNN on MNIST, whole `train` command, {os.cpu_count()} cores, {platform.processor() or 'CPU'}"
    table = Table(title=title)
    for column in ("path", "whole command s (median)", "runs", "training s", "test accuracy", "target"):
        table.add_column(column, justify="right")
    for path, (_, _, target) in PATHS.items():
        walls = [r[0] for r in rows[path]]
        wall = statistics.median(walls)
        verdict = "" if target is None else f"≤ {target:.0f} s {'✓' if wall <= target else '✗'}"
        table.add_row(
            path,
            f"{wall:.1f}",
            " ".join(f"{w:.1f}" for w in walls),
            f"{statistics.median(r[1] for r in rows[path]):.1f}",
            f"{statistics.median(r[2] for r in rows[path]):.2%}",
            verdict,
        )
    console.print(table)
    console.print(f"MNIST load: first (verifying) {first:.2f} s, cached median of 5: {cached:.3f} s")


if __name__ == "__main__":
    main()
