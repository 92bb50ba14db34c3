"""Drawn image sets kept in the cache folder, so that each is drawn once per machine.

The folder keeps its old name, `nondigits`, so that sets drawn before the move are found.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from ...errors import WriteError
from ...utils import atomic_path
from ..datasets import cache_dir

POOL_VERSION = 6  # bump when what training_pool, printed_digits or photographed draws changes: it keys their caches


def cached(name: str, count: int, draw: Callable[[], np.ndarray]) -> np.ndarray:
    """`count` images (N, 28, 28) uint8 that `draw` makes, drawn once (saying so on stderr: it takes seconds) and
    then kept in the cache folder."""
    images = load(name, count)
    if images is None:
        note(name, count)
        images = draw()
        store(name, images)
    return images


def load(name: str, count: int) -> np.ndarray | None:
    """The set `name` from the cache folder, or None when it is not there whole."""
    try:
        images = np.load(cache_dir() / "nondigits" / f"{name}.npy", allow_pickle=False)
        if images.shape == (count, 28, 28) and images.dtype == np.uint8:
            return images
    except (OSError, ValueError):
        pass
    return None


def note(name: str, count: int) -> None:
    print(f"note: drawing {count:,} images ({name}) once; later runs read them from the cache", file=sys.stderr)


def store(name: str, images: np.ndarray) -> None:
    """Keep the set `name` in the cache folder; an unwritable cache only costs drawing it again next time."""
    try:
        with atomic_path(cache_dir() / "nondigits" / f"{name}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, images)
    except (OSError, WriteError):
        pass
