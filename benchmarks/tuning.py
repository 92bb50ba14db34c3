"""Grid search of the DNN on full MNIST: pruning, several workers, killed workers.

Usage: python benchmarks/tuning.py [--epochs 10] [--part pruning|workers|kills|all] [--train-samples N]
All parts run the shipped 12-point grid (src/mnist_classifier/spaces/dnn-grid.toml), each time as a fresh study in
a temporary folder.
- pruning: once with --pruner none, once with the median pruner; then continues the pruned study with the final
  retrain, as `tune` does by default: wall time, best validation accuracy, time saved, test accuracy.
- workers: `tune` processes with --threads 1 each, 1 of them and then 2 started together on one SQLite study:
  wall time, trials per minute and grid points evaluated twice (target: 2 workers in at most 0.65 of 1's time).
- kills: a worker SIGKILLed at a random moment of a trial 10 times over one study, then one that finishes it:
  kills survived, completed trials lost (target 0) and grid points evaluated twice.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from mnist_classifier import resolve, tuning

SPACE = tuning.SPACES / "dnn-grid.toml"
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"


def worker(out: Path, args: argparse.Namespace, *extra: str) -> list[str]:
    """A `tune` command on the shipped grid, one thread, no pruning and no final retrain."""
    sizes = ["--train-samples", str(args.train_samples)] if args.train_samples else []
    options = ["--space", str(SPACE), "--sampler", "grid", "--pruner", "none", "--no-final-train", "--threads", "1"]
    options += ["--out", str(out), "--epochs", str(args.epochs), *sizes]
    return [sys.executable, "-m", "mnist_classifier", "tune", *options, *extra]


def study_trials(storage: str, study: str = "dnn-mnist-grid") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def twice(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Grid points evaluated more than once."""
    counts = collections.Counter(json.dumps(t.params, sort_keys=True) for t in trials if t.state in DONE)
    return sum(n - 1 for n in counts.values())


def workers(args: argparse.Namespace, console: Console) -> None:
    table = Table(title=f"12-point DNN grid, {args.epochs} epochs per trial, --threads 1 per worker, {machine()}")
    for column in ("workers", "wall time", "trials", "trials/min", "evaluated twice"):
        table.add_column(column, justify="right")
    seconds: dict[int, float] = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            console.print(f"[bold]{n} worker(s)[/]")
            start = time.perf_counter()
            processes = [subprocess.Popen(worker(Path(tmp) / "out", args), stdout=subprocess.DEVNULL) for _ in range(n)]
            assert [p.wait() for p in processes] == [0] * n
            seconds[n] = time.perf_counter() - start
            found = study_trials(f"sqlite:///{Path(tmp) / 'out' / 'study.db'}")
            done = sum(t.state in DONE for t in found)
            table.add_row(str(n), f"{seconds[n]:.0f} s", str(done), f"{done / seconds[n] * 60:.1f}", str(twice(found)))
    console.print(table)
    console.print(f"2 workers took {seconds[2] / seconds[1]:.2f} of 1 worker's time (target ≤ 0.65)")


def kills(args: argparse.Namespace, console: Console) -> None:
    rng = random.Random(7)
    completed: dict[int, float | None] = {}
    lost: set[int] = set()
    survived = 0
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'study.db'}"
        command = worker(Path(tmp) / "out", args, "--storage", storage)
        start = time.perf_counter()
        for kill in range(1, 11):
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert process.stdout is not None
            process.stdout.readline()  # the study line: the worker has started; kill it within its next trial
            time.sleep(rng.uniform(3, 3 + 2 * args.epochs))
            process.send_signal(signal.SIGKILL)
            process.wait()
            now = {t.number: t.value for t in study_trials(storage) if t.state == TrialState.COMPLETE}
            newly_lost = {n for n in completed if now.get(n) != completed[n]}
            survived += not newly_lost
            lost |= newly_lost
            completed |= now
            console.print(f"kill {kill}: {len(now)} trials complete")
        assert subprocess.run(command, stdout=subprocess.DEVNULL).returncode == 0
        seconds = time.perf_counter() - start
        found = study_trials(storage)
    lost |= {n for n in completed if n not in {t.number for t in found if t.state == TrialState.COMPLETE}}
    done = collections.Counter(json.dumps(t.params, sort_keys=True) for t in found if t.state in DONE)
    table = Table(title=f"10 workers killed at random moments, then one to finish; {args.epochs} epochs, {machine()}")
    for column in ("kills survived", "grid points complete", "trials lost", "evaluated twice", "failed (killed)"):
        table.add_column(column, justify="right")
    failed = sum(t.state == TrialState.FAIL for t in found)
    table.add_row(f"{survived}/10", f"{len(done)}/12", str(len(lost)), str(twice(found)), str(failed))
    console.print(table)
    console.print(f"all in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--part", choices=("pruning", "workers", "kills", "all"), default="all")
    parser.add_argument("--train-samples", type=int, help="train each trial on this many images (a quick smoke run)")
    args = parser.parse_args()
    console = Console(soft_wrap=True, width=160)
    if args.part in ("workers", "all"):
        workers(args, console)
    if args.part in ("kills", "all"):
        kills(args, console)
    if args.part in ("pruning", "all"):
        pruning(args, console)


def pruning(args: argparse.Namespace, console: Console) -> None:
    space = SPACE
    base = resolve(epochs=args.epochs, train_samples=args.train_samples)
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
    table = Table(title=f"12-point DNN grid on MNIST, {args.epochs} epochs per trial, {machine()}")
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
