"""Printed digits: digits in Matplotlib's fonts, drawn like the letters and prepared, unlike MNIST's hands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...preprocess import prepare
from .cache import POOL_VERSION, cached
from .fonts import TRAINING_FONTS, matplotlib_fonts
from .ink import letter
from .parallel import drawn, image_rng


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
    return drawn(font_digits_part, count, tuple(fonts), seed), np.arange(count) % 10


def font_digits_part(start: int, stop: int, fonts: Sequence[Path], seed: int) -> np.ndarray:
    """`font_digits`' images start..stop-1, each drawn with its own generator."""
    return np.stack(
        [
            prepare(letter(str(i % 10), fonts[(i // 10) % len(fonts)], image_rng(seed, i, "printed")))[0]
            for i in range(start, stop)
        ]
    )
