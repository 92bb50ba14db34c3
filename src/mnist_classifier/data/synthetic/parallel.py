"""Image sets drawn in chunks across the cores this process may use, the same images whatever the split.

Every drawer gives each image its own generator (`image_rng`), so that a chunk is drawn alike in any process and
the concatenated chunks equal the set drawn in one go. The workers are processes.worker_pool's.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...processes import main_reimport_safe, usable_cores, worker_pool

# images in all below which workers do not pay (the fork server takes about 1 s to start, a pool 0.1 s after it)
AT_LEAST = 200
CHUNKS_PER_WORKER = 4  # so that a slow chunk does not leave the other workers idle at the end


@dataclass(frozen=True)
class Draw:
    """One set to draw: `function(start, stop, *args)` draws its images start..stop-1 (N, 28, 28) uint8, or with
    `items`, `function(items[start:stop], start, *args)`, so that each worker gets only its share of the items."""

    function: Callable[..., np.ndarray]
    count: int
    args: tuple[Any, ...] = ()
    items: np.ndarray | None = field(default=None, repr=False)

    def part(self, start: int, stop: int) -> tuple[Callable[..., np.ndarray], tuple[Any, ...]]:
        if self.items is None:
            return self.function, (start, stop, *self.args)
        return self.function, (self.items[start:stop], start, *self.args)


def image_rng(seed: int, index: int, name: str) -> np.random.Generator:
    """Image `index`'s own generator in the set `name` drawn with `seed`: independent of how the set is split."""
    return np.random.default_rng([seed, index, zlib.crc32(name.encode())])


def drawn(function: Callable[..., np.ndarray], count: int, *args: Any, items: np.ndarray | None = None) -> np.ndarray:
    """One set's images (see `Draw`), drawn across the cores when it is large enough to pay."""
    return drawn_sets([Draw(function, count, args, items)])[0]


def drawn_sets(
    draws: Sequence[Draw], workers: int | None = None, chunk: int | None = None, at_least: int = AT_LEAST
) -> list[np.ndarray]:
    """Each set's images, in order, drawn by `workers` processes (default: one per core) in chunks of `chunk` images
    (default: about CHUNKS_PER_WORKER per worker); in this process when there is one worker, fewer than `at_least`
    images in all, or a main script that a worker would run again (`main_reimport_safe`). A worker's error is raised
    here as it would be raised serially."""
    total = sum(d.count for d in draws)
    workers = usable_cores() if workers is None else workers
    chunk = chunk or max(1, math.ceil(total / (workers * CHUNKS_PER_WORKER)))
    jobs = [[d.part(a, min(a + chunk, d.count)) for a in range(0, d.count, chunk)] for d in draws]
    if workers <= 1 or total < at_least or not main_reimport_safe():
        parts = [[fn(*args) for fn, args in group] for group in jobs]
    else:
        parts = in_pool(jobs, workers)
    return [np.concatenate(p) if p else np.zeros((0, 28, 28), np.uint8) for p in parts]


def in_pool(jobs: list[list[tuple[Callable[..., np.ndarray], tuple[Any, ...]]]], workers: int) -> list[list[Any]]:
    """The jobs' results, grouped as the jobs are, from a pool of `workers` fork-server processes; pending jobs are
    cancelled when one fails or the caller is interrupted (Ctrl-C), and the pool is shut down on the way out."""
    with worker_pool(min(workers, sum(map(len, jobs)))) as pool:
        futures: list[list[Future[Any]]] = [[pool.submit(fn, *args) for fn, args in group] for group in jobs]
        return [[f.result() for f in group] for group in futures]
