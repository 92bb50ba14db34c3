"""Drawn image sets kept in the cache folder, so that each is drawn once per machine; and the sets a run on MNIST's
own split draws, shipped prepared in the package, so that a first run draws none of them.

The cache folder keeps its old name, `nondigits`, so that sets drawn before the move are found. The shipped sets
(drawn.npz, written by `make drawn-sets`: tools/ship_drawn_sets.py) are one compressed NumPy archive keyed by the
same names, with drawn.json beside it: POOL_VERSION, the archive's SHA-256 and size, and each set's image count. A
set's name carries POOL_VERSION (and the digits it was drawn from, by hash), so a changed drawing never reads a stale
shipped set: it draws, as it did before.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...errors import WriteError
from ...utils import atomic_path
from ..datasets import cache_dir

POOL_VERSION = 6  # bump when what training_pool, printed_digits or photographed draws changes: it keys their caches
SHIPPED = Path(__file__).with_name("drawn.npz")
ENVIRONMENT = "MNIST_CLASSIFIER_DRAWN_SETS"  # another shipped archive; empty: none (`make drawn-sets` draws them all)


def cached(name: str, count: int, draw: Callable[[], np.ndarray]) -> np.ndarray:
    """`count` images (N, 28, 28) uint8 that `draw` makes, drawn once (saying so on stderr: it takes seconds) and
    then kept in the cache folder; read from the shipped sets when they hold `name`."""
    images = load(name, count)
    if images is None:
        note(name, count)
        images = draw()
        store(name, images)
    return images


def load(name: str, count: int | None = None) -> np.ndarray | None:
    """The set `name` (of `count` images; any number for None) from the cache folder or the shipped sets, or None when
    neither holds it whole."""
    try:
        images = np.load(cache_dir() / "nondigits" / f"{name}.npy", allow_pickle=False)
    except (OSError, ValueError):
        images = shipped_set(name)
    whole = images is not None and images.shape[1:] == (28, 28) and images.dtype == np.uint8
    return images if whole and (count is None or len(images) == count) else None


def shipped_set(name: str) -> np.ndarray | None:
    archive = shipped()
    if archive is None or name not in archive.files:
        return None
    return archive[name]


@functools.cache
def shipped() -> np.lib.npyio.NpzFile | None:
    """The shipped sets, checked against drawn.json's SHA-256 once per process; None where there are none, or (with one
    note) where the archive is damaged: its sets are then drawn as on a machine without it."""
    where = os.environ.get(ENVIRONMENT, str(SHIPPED))
    if not where:
        return None
    path = Path(where)
    try:
        manifest = json.loads(path.with_suffix(".json").read_text())
        # read only an archive of the size its manifest gives: never a stray large file
        content = path.read_bytes() if path.stat().st_size == manifest.get("bytes") else b""
    except (OSError, ValueError, AttributeError):
        return None
    if hashlib.sha256(content).hexdigest() != manifest.get("sha256"):
        print(
            f"note: {path.name} does not match its SHA-256; drawing its sets instead (reinstall mnist-classifier)",
            file=sys.stderr,
        )
        return None
    return np.load(io.BytesIO(content), allow_pickle=False)


def note(name: str, count: int) -> None:
    print(f"note: drawing {count:,} images ({name}) once; later runs read them from the cache", file=sys.stderr)


def store(name: str, images: np.ndarray) -> None:
    """Keep the set `name` in the cache folder; an unwritable cache only costs drawing it again next time."""
    try:
        with atomic_path(cache_dir() / "nondigits" / f"{name}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, images)
    except (OSError, WriteError):
        pass
