"""Work spread over the cores in worker processes, forked from a server process that never loads TensorFlow.

Python's threads take turns on small NumPy, SciPy and Pillow calls, so CPU-bound work on many small items (drawing
images, preparing image files) runs in processes. They come from multiprocessing's fork server, which imports the
modules the work needs once (PRELOAD) and forks each worker from that clean state: safe beside the threads TensorFlow
and ONNX Runtime start in the parent, and a worker starts in milliseconds once the server runs (about 1 s, once a
process). Workers ignore Ctrl-C: the parent cancels what is pending and stops them.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
PRELOAD = ("image_files", "data.synthetic")  # the modules whose functions workers run, imported once by the server


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main_reimport_safe() -> bool:
    """Whether workers may start: a worker imports the main script again (as multiprocessing does), which is safe
    for a notebook, `python -c`, `python -m package`, and a script whose work sits under `if __name__ == "__main__"`
    (the console scripts, pytest), but would run an unguarded script's work again in every worker."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    if path is None or (spec is not None and spec.name.endswith("__main__")):
        return True
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) for node in tree.body)


def ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` processes forked from the fork server; pending work is cancelled when the caller fails or
    is interrupted, and the pool is shut down on the way out."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([f"{__package__}.{module}" for module in PRELOAD])  # used when the server starts
    with ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_interrupts) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


Spread = Callable[[Callable[[Sequence[T]], list[R]], Sequence[T]], list[R]]


def in_order(function: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
    """A Spread without workers: `function` of all the items, here."""
    return function(items)


@contextmanager
def spread_over(workers: int) -> Iterator[Spread]:
    """A function that applies a function of a list (importable from PRELOAD's modules) to consecutive parts of a list
    in `workers` processes and concatenates the results in order; here, with one worker or where workers may not
    start (main_reimport_safe)."""
    if workers <= 1 or not main_reimport_safe():
        yield in_order
        return
    with worker_pool(workers) as pool:

        def spread(function: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
            step = max(1, -(-len(items) // (workers * 4)))  # a few parts a worker: one slow part idles no one
            parts = pool.map(function, [items[i : i + step] for i in range(0, len(items), step)])
            return [result for part in parts for result in part]

        yield spread
