"""Printed digits: digits in Matplotlib's fonts, drawn like the letters and prepared, unlike MNIST's hands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...preprocess import prepare
from .cache import POOL_VERSION, cached
from .fonts import TRAINING_FONTS, matplotlib_fonts
from .ink import letter


def printed_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits drawn in TRAINING_FONTS like the letters, prepared, with their labels (0, 1, ..., 9, 0, ...):
    digits unlike MNIST's that training shows as digits. Drawn once per size and seed, then cached."""
    fonts = matplotlib_fonts(TRAINING_FONTS)
    if not fonts:  # Matplotlib ships them, so only a broken installation lacks them all
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    images = cached(f"printed-v{POOL_VERSION}-{count}-{seed}", count, lambda: font_digits(fonts, count, seed)[0])
    return images, np.arange(count) % 10


def font_digits(fonts: Sequence[Path], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn like the letters (printed, photographed), prepared, with their labels: digits unlike MNIST's."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    return np.stack(
        [prepare(letter(str(d), fonts[(i // 10) % len(fonts)], rng))[0] for i, d in enumerate(labels)]
    ), labels
