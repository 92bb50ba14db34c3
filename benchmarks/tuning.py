"""Grid search of the DNN on full MNIST with and without pruning: wall time, best validation accuracy, time saved,
then the test accuracy of the best configuration retrained.

Usage: python benchmarks/tuning.py [--epochs 10]
Runs the shipped 12-point grid (src/mnist_classifier/spaces/dnn-grid.toml) twice, each time as a fresh study in a
temporary folder: once with --pruner none, once with the median pruner; then continues the pruned study with the
final retrain, as `tune` does by default.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mnist_classifier import resolve, tuning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    console = Console(soft_wrap=True, width=160)
    space = tuning.SPACES / "dnn-grid.toml"
    base = resolve(epochs=args.epochs)
    results: dict[str, tuple[float, tuning.TuneResult]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ("none", "median"):
            plan = tuning.settings(base, space, "grid", pruner, out=Path(tmp) / pruner, final_train=False)
            console.print(f"[bold]grid search, pruner {pruner}[/]")
            start = time.perf_counter()
            result = tuning.tune(plan, lambda line: console.print(line, highlight=False))
            results[pruner] = (time.perf_counter() - start, result)
        plan = tuning.settings(base, space, "grid", "median", out=Path(tmp) / "median")
        start = time.perf_counter()
        final = tuning.tune(plan).final_metrics
        final_seconds = time.perf_counter() - start
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    table = Table(title=f"12-point DNN grid on MNIST, {args.epochs} epochs per trial, {machine}")
    for column in ("pruner", "wall time", "complete", "pruned", "epochs trained", "best val accuracy", "best trial"):
        table.add_column(column, justify="right")
    for pruner, (seconds, result) in results.items():
        epochs = sum(int(row["epochs"] or 0) for row in result.rows)
        best = result.best
        assert best is not None
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        table.add_row(
            pruner,
            f"{seconds:.0f} s",
            str(result.counts["complete"]),
            str(result.counts["pruned"]),
            str(epochs),
            f"{best.value:.2%}",
            params,
        )
    console.print(table)
    (plain, unpruned), (pruned_seconds, pruned) = results["none"], results["median"]
    assert unpruned.best is not None and pruned.best is not None
    same = unpruned.best.params == pruned.best.params
    console.print(
        f"pruning saved {1 - pruned_seconds / plain:.0%} of the time ({plain - pruned_seconds:.0f} s);"
        f" same best configuration: {'yes' if same else 'no'}"
    )
    assert final is not None
    console.print(
        f"best DNN retrained ({final_seconds:.0f} s): test accuracy [bold]{final['accuracy']:.2%}[/]"
        f" (validation {final['best_val_accuracy']:.2%}; target ≥ 98.50%)"
    )


if __name__ == "__main__":
    main()
