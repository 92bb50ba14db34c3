"""What TensorBoard's logging costs training: the fast CNN trained with and without it, alternating, in one process.

    python benchmarks/tracking.py [--rounds 3] [--train-samples N]

Each round trains the fast CNN (`--model cnn --preset fast`) once with tracking.epoch_logger (Keras' TensorBoard
callback, as every run has it) and once with a callback that does nothing in its place, the order alternating from
round to round; prints each run's training time (history.csv's elapsed), the medians and their ratio, then the time
spent inside the callback's hooks and the time of tracking.log_evaluation on the last run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import keras

from mnist_classifier import resolve, training
from mnist_classifier.evaluation import evaluate_run
from mnist_classifier.report import write_report
from mnist_classifier.runs import history_rows
from mnist_classifier.tracking import epoch_logger, log_evaluation

HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end", "on_epoch_begin",
         "on_epoch_end", "on_test_begin", "on_test_end", "on_train_begin", "on_train_end")  # fmt: skip


class Nothing(keras.callbacks.Callback):
    """A callback with no hooks of its own: Keras then runs as with no callback at all."""


def timed(callback: keras.callbacks.Callback, spent: list[float]) -> keras.callbacks.Callback:
    """The callback with each hook's time added to spent[0]."""
    for name in HOOKS:
        hook = getattr(callback, name)

        def wrapper(*args: Any, _hook: Any = hook, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(callback, name, wrapper)
    return callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=None, help="Default: the whole training split.")
    args = parser.parse_args()
    config = resolve(model="cnn", preset="fast", train_samples=args.train_samples)
    times: dict[str, list[float]] = {"without": [], "with": []}
    spent = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for case in ("with", "without") if i % 2 else ("without", "with"):
                make = (lambda run_dir: timed(epoch_logger(run_dir), spent)) if case == "with" else lambda _: Nothing()
                run_dir = Path(tmp) / f"{case}-{i}"
                with mock.patch.object(training, "epoch_logger", make):
                    training.train(config, run_dir, verbose=0)
                times[case].append(history_rows(run_dir)[-1]["elapsed"])
                print(f"round {i + 1} {case:<8} TensorBoard: {times[case][-1]:6.1f} s", flush=True)
        without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
        print(f"median training time without {without:.1f} s, with {with_:.1f} s: {with_ / without:.3f}x")
        print(f"inside the callback's hooks: {spent[0] / args.rounds:.2f} s a run")
        evaluate_run(run_dir)
        write_report(run_dir)
        start = time.perf_counter()
        log_evaluation(run_dir)
        print(f"log_evaluation: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
