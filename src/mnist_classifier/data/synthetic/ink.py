"""A character or mark drawn on a canvas, turned into a photo-like page: the look every synthetic image shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

CANVAS = 96


def finish(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light ink on black as drawn, turned into dark ink on paper with a slight blur: a photo-like input."""
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    ink = np.asarray(canvas, np.float32) / 255
    paper = rng.uniform(200, 245) + rng.normal(0, 3, ink.shape)
    return Image.fromarray(np.clip(paper * (1 - ink) + rng.uniform(10, 60) * ink, 0, 255).astype(np.uint8), "L")


def letter(char: str, font: Path, rng: np.random.Generator, pen: bool = False) -> Image.Image:
    """`char` in `font` at a random size, slant and tilt, finished as a photo; with `pen`, traced again with a round
    pen of one width and bent a little, as a hand writes it (`pen_traced`)."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    size = int(rng.integers(40, 70))
    ImageDraw.Draw(canvas).text(
        (CANVAS / 2, CANVAS / 2), char, fill=255, font=ImageFont.truetype(str(font), size), anchor="mm"
    )
    shear = rng.uniform(-0.25, 0.25)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * CANVAS / 2, 0, 1, 0))
    if pen:
        canvas = pen_traced(canvas, rng)
    return finish(canvas.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR), rng)


def pen_traced(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A glyph's strokes as a pen writes them: its centre line (the ridge of the distance to the background), drawn
    again with a round pen of one random width, then bent by a smooth random displacement."""
    glyph = np.asarray(canvas) > 127
    depth = ndimage.distance_transform_edt(glyph)
    ridge = glyph & (depth >= ndimage.maximum_filter(depth, size=3) - 0.9)
    radius = float(rng.uniform(2.5, 4.5))
    ink = ndimage.distance_transform_edt(~ridge) <= radius
    shape = ink.shape
    field = [ndimage.gaussian_filter(rng.uniform(-1, 1, shape), 8) * 60 for _ in range(2)]  # a few pixels at most
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    bent = ndimage.map_coordinates(ink.astype(np.float32), [rows + field[0], cols + field[1]], order=1)
    return Image.fromarray((np.clip(bent, 0, 1) * 255).astype(np.uint8))
