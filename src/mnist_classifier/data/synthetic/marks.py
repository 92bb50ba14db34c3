"""Drawers of the non-digit kinds other than letters: scribbles, shapes, noise, textures, silhouettes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .ink import CANVAS, finish

Maker = Callable[[np.random.Generator], Image.Image]


def scribble(rng: np.random.Generator) -> Image.Image:
    """A random pen path of several smooth turns, sometimes several paths."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        points = rng.uniform(12, CANVAS - 12, (int(rng.integers(6, 12)), 2))
        t = np.linspace(0, 1, 80)[:, None]
        path = np.concatenate([(1 - t) * a + t * b for a, b in itertools.pairwise(points)])
        kernel = np.ones(9) / 9
        smooth = np.stack([np.convolve(path[:, i], kernel, mode="valid") for i in (0, 1)], axis=1)
        draw.line([tuple(p) for p in smooth], fill=255, width=int(rng.integers(4, 9)), joint="curve")
    return finish(canvas, rng)


def shape(rng: np.random.Generator) -> Image.Image:
    """Filled or outlined boxes, triangles, polygons and stars, one to three of them (no discs or rings: the
    preparation thins a disc to a ring, and a ring is a 0)."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy, r = *rng.uniform(25, CANVAS - 25, 2), rng.uniform(12, 35)
        kind = int(rng.integers(3))
        filled = bool(rng.random() < 0.6)
        width = int(rng.integers(3, 7))
        if kind == 0:
            box = (cx - r, cy - r * rng.uniform(0.5, 1), cx + r, cy + r * rng.uniform(0.5, 1))
            draw.rectangle(box, fill=255 if filled else None, outline=255, width=width)
        else:
            corners = 3 if kind == 1 else int(rng.integers(5, 8)) * 2
            angles = np.linspace(0, 2 * np.pi, corners, endpoint=False) + rng.uniform(0, np.pi)
            radii = np.where(np.arange(corners) % 2, r * 0.45, r) if kind == 2 else np.full(corners, r)
            points = [(cx + q * np.cos(a), cy + q * np.sin(a)) for q, a in zip(radii, angles, strict=True)]
            draw.polygon(points, fill=255 if filled else None, outline=255, width=width)
    return finish(canvas, rng)


def noise(rng: np.random.Generator) -> Image.Image:
    """Pixel noise, salt and pepper, or smooth blotches."""
    kind = int(rng.integers(3))
    if kind == 0:
        values = rng.uniform(0, 255, (CANVAS, CANVAS))
    elif kind == 1:
        values = np.where(rng.random((CANVAS, CANVAS)) < rng.uniform(0.02, 0.2), 0, 230.0)
    else:
        small = rng.normal(0, 1, (int(rng.integers(3, 9)),) * 2).astype(np.float32)
        values = np.asarray(Image.fromarray(small, "F").resize((CANVAS, CANVAS), Image.Resampling.BICUBIC))
        values = 128 + 60 * values
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


def texture(rng: np.random.Generator) -> Image.Image:
    """A photo-like texture: stripes, checks, weave or wood grain, with uneven light."""
    ys, xs = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS
    angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 14)
    u, v = xs * np.cos(angle) + ys * np.sin(angle), -xs * np.sin(angle) + ys * np.cos(angle)
    kind = int(rng.integers(4))
    if kind == 0:
        values = np.sin(2 * np.pi * freq * u)
    elif kind == 1:
        values = np.sign(np.sin(2 * np.pi * freq * u) * np.sin(2 * np.pi * freq * v))
    elif kind == 2:
        values = np.sin(2 * np.pi * freq * u) + np.sin(2 * np.pi * freq * v + rng.uniform(0, 6))
    else:
        values = np.sin(2 * np.pi * freq * (u + 0.1 * np.sin(2 * np.pi * 2 * v)) + 3 * rng.random())
    light = rng.uniform(0, 40) * (xs - 0.5)
    image = 128 + 50 * values / np.abs(values).max() + light + rng.normal(0, 8, values.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "L")


def silhouette(rng: np.random.Generator) -> Image.Image:
    """A photo of an object cut out on black: one or two large filled outlines, lit unevenly, with some texture."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = rng.uniform(35, CANVAS - 35, 2)
        corners = int(rng.integers(4, 12))
        angles = np.linspace(0, 2 * np.pi, corners, endpoint=False) + rng.uniform(-0.3, 0.3, corners)
        radii = rng.uniform(22, 42, corners) * rng.uniform(0.45, 1, 2)[:, None]
        points = [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for rx, ry, a in zip(*radii, angles, strict=True)]
        draw.polygon(points, fill=255)
    mask = np.asarray(canvas.filter(ImageFilter.GaussianBlur(1.0)), np.float32) / 255
    ys, xs = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS
    light = rng.uniform(90, 230) + rng.uniform(-60, 60) * (xs - 0.5) + rng.uniform(-60, 60) * (ys - 0.5)
    values = mask * (light + rng.normal(0, rng.uniform(2, 25), mask.shape))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


MAKERS: dict[str, Maker] = {
    "scribbles": scribble,
    "shapes": shape,
    "noise": noise,
    "textures": texture,
    "silhouettes": silhouette,
}
