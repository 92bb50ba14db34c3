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

POOL_VERSION = 4  # bump when what training_pool, printed_digits or photographed draws changes: it keys their caches


def cached(name: str, count: int, draw: Callable[[], np.ndarray]) -> np.ndarray:
    """`count` images (N, 28, 28) uint8 that `draw` makes, drawn once (saying so on stderr: it takes seconds) and
    then kept in the cache folder."""
    path = cache_dir() / "nondigits" / f"{name}.npy"
    try:
        images = np.load(path, allow_pickle=False)
        if images.shape == (count, 28, 28) and images.dtype == np.uint8:
            return images
    except (OSError, ValueError):
        pass
    print(f"note: drawing {count:,} images ({name}) once; later runs read them from the cache", file=sys.stderr)
    images = draw()
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, images)
    except (OSError, WriteError):  # an unwritable cache only costs drawing them again next time
        pass
    return images
