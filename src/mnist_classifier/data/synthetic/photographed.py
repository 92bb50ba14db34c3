"""MNIST digits photographed: enlarged, redrawn with another pen, put on paper and prepared as `predict` would."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageFilter

from ...errors import ImageError
from ...preprocess import prepare
from .cache import POOL_VERSION, cached
from .ink import CANVAS, finish
from .parallel import drawn, image_rng


def photographed(digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """Digits (N, 28, 28) uint8 as `predict` sees a photo of them: enlarged onto a canvas, a quarter drawn with a
    thicker pen and some with a thinner one, slanted, dark ink on paper (as `finish` makes it), then prepared. Drawn
    once per set of digits and seed, then cached."""
    key = hashlib.blake2b(digits.tobytes(), digest_size=8).hexdigest()
    return cached(f"photographed-v{POOL_VERSION}-{key}-{seed}", len(digits), lambda: photograph(digits, seed))


def photograph(digits: np.ndarray, seed: int) -> np.ndarray:
    """The digits photographed and prepared; one the preparation cannot find stays as it was. Drawn across the cores."""
    return drawn(photograph_part, len(digits), seed, items=digits)


def photograph_part(digits: np.ndarray, start: int, seed: int) -> np.ndarray:
    """`photograph` of digits start, start + 1, ... of a set: each drawn with its own generator."""
    out = digits.copy()
    for i, digit in enumerate(digits):
        rng = image_rng(seed, start + i, "photographed")
        size = int(rng.integers(40, 80))
        ink = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
        pen = rng.random()
        if pen < 0.25:
            ink = ink.filter(ImageFilter.MaxFilter(3 if size < 60 else 5))
        elif pen < 0.4:
            ink = ink.filter(ImageFilter.MinFilter(3))
        canvas = Image.new("L", (CANVAS, CANVAS), 0)
        canvas.paste(ink, (int(rng.integers(CANVAS - size + 1)), int(rng.integers(CANVAS - size + 1))))
        shear = rng.uniform(-0.2, 0.2)
        matrix = (1, shear, -shear * CANVAS / 2, 0, 1, 0)
        canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
        try:
            out[i] = prepare(finish(canvas.rotate(rng.uniform(-8, 8), Image.Resampling.BILINEAR), rng))[0]
        except ImageError:  # too faint to find: it stays as it was
            continue
    return out
