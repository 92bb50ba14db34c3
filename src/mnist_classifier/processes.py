"""Work spread over the cores in worker processes, forked from a server process that never loads TensorFlow.

Python's threads take turns on small NumPy, SciPy and Pillow calls, so CPU-bound work on many small items (drawing
images, preparing image files) runs in processes. They come from multiprocessing's fork server, which imports the
modules the work needs once and forks each worker from that clean state: safe beside the threads TensorFlow and ONNX
Runtime start in the parent, and each worker starts in milliseconds. Workers ignore Ctrl-C: the parent stops them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


Spread = Callable[[Callable[[Sequence[T]], list[R]], Sequence[T]], list[R]]


def in_order(function: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
    """A Spread without workers: `function` of all the items, here."""
    return function(items)


@contextmanager
def spread_over(workers: int, preload: Sequence[str]) -> Iterator[Spread]:
    """A function that applies a function of a list to consecutive parts of a list in `workers` processes (forked
    from a server that has imported the modules in `preload`; the function must be importable from them) and
    concatenates the results in order; with one worker, in this process."""
    if workers <= 1:
        yield in_order
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))

    with ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_interrupts) as pool:

        def spread(function: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
            step = max(1, -(-len(items) // (workers * 4)))  # a few parts a worker: one slow part idles no one
            parts = pool.map(function, [items[i : i + step] for i in range(0, len(items), step)])
            return [result for part in parts for result in part]

        try:
            yield spread
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
