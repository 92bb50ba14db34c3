"""A character or mark drawn on a canvas, turned into a photo-like page: the look every synthetic image shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CANVAS = 96


def finish(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light ink on black as drawn, turned into dark ink on paper with a slight blur: a photo-like input."""
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    ink = np.asarray(canvas, np.float32) / 255
    paper = rng.uniform(200, 245) + rng.normal(0, 3, ink.shape)
    return Image.fromarray(np.clip(paper * (1 - ink) + rng.uniform(10, 60) * ink, 0, 255).astype(np.uint8), "L")


def letter(char: str, font: Path, rng: np.random.Generator) -> Image.Image:
    """`char` in `font` at a random size, slant and tilt, finished as a photo."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    size = int(rng.integers(40, 70))
    ImageDraw.Draw(canvas).text(
        (CANVAS / 2, CANVAS / 2), char, fill=255, font=ImageFont.truetype(str(font), size), anchor="mm"
    )
    shear = rng.uniform(-0.25, 0.25)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * CANVAS / 2, 0, 1, 0))
    return finish(canvas.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR), rng)
