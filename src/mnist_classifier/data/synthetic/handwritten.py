"""Letters written by hand: each letter's pen strokes, drawn with a wobbling round pen, finished as a photo.

No font holds these shapes: they are the project's own single-stroke skeletons (x right, y down; capitals in a unit
box, small letters from x-height 0.45 to the baseline 1, ascenders from 0, descenders to 1.3), so that training meets
letters in a hand unlike every font it is judged on. Only NONDIGIT letters have a skeleton: a letter that looks like
a digit (nondigits.LOOK_ALIKES) is never a non-digit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .ink import CANVAS, finish

Path = list[np.ndarray]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> np.ndarray:
    """Points on an ellipse's arc from angle `start` to `stop` in degrees (0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, stop, max(8, int(abs(stop - start) / 9))))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=float)


def dot(x: float, y: float) -> np.ndarray:
    return line((x, y), (x + 0.01, y + 0.01))


BOWL = arc(0.45, 0.73, 0.3, 0.27, 0, 360)
HUMP = (180, 360)  # an arch over a stem, from its left foot over the top
SKELETONS: dict[str, Path] = {
    "A": [line((0.1, 1), (0.5, 0), (0.9, 1)), line((0.28, 0.6), (0.72, 0.6))],
    "C": [arc(0.55, 0.5, 0.42, 0.5, 50, 310)],
    "D": [line((0.15, 0), (0.15, 1)), arc(0.15, 0.5, 0.72, 0.5, -90, 90)],
    "E": [line((0.85, 0), (0.15, 0), (0.15, 1), (0.85, 1)), line((0.15, 0.5), (0.7, 0.5))],
    "F": [line((0.85, 0), (0.15, 0), (0.15, 1)), line((0.15, 0.5), (0.7, 0.5))],
    "H": [line((0.15, 0), (0.15, 1)), line((0.85, 0), (0.85, 1)), line((0.15, 0.5), (0.85, 0.5))],
    "J": [line((0.3, 0), (0.9, 0)), np.concatenate([line((0.65, 0)), arc(0.4, 0.72, 0.25, 0.28, 0, 180)])],
    "K": [line((0.15, 0), (0.15, 1)), line((0.85, 0), (0.15, 0.6)), line((0.38, 0.45), (0.85, 1))],
    "L": [line((0.15, 0), (0.15, 1), (0.85, 1))],
    "M": [line((0.1, 1), (0.15, 0), (0.5, 0.65), (0.85, 0), (0.9, 1))],
    "N": [line((0.15, 1), (0.15, 0), (0.85, 1), (0.85, 0))],
    "P": [line((0.15, 1), (0.15, 0)), arc(0.15, 0.27, 0.65, 0.27, -90, 90)],
    "Q": [arc(0.5, 0.5, 0.4, 0.5, 0, 360), line((0.6, 0.72), (0.95, 1.05))],
    "R": [line((0.15, 1), (0.15, 0)), arc(0.15, 0.27, 0.65, 0.27, -90, 90), line((0.4, 0.54), (0.85, 1))],
    "T": [line((0.05, 0), (0.95, 0)), line((0.5, 0), (0.5, 1))],
    "U": [np.concatenate([line((0.15, 0)), arc(0.5, 0.62, 0.35, 0.38, 180, 0), line((0.85, 0))])],
    "V": [line((0.1, 0), (0.5, 1), (0.9, 0))],
    "W": [line((0.05, 0), (0.28, 1), (0.5, 0.35), (0.72, 1), (0.95, 0))],
    "X": [line((0.1, 0), (0.9, 1)), line((0.9, 0), (0.1, 1))],
    "Y": [line((0.1, 0), (0.5, 0.5), (0.9, 0)), line((0.5, 0.5), (0.5, 1))],
    "a": [BOWL, line((0.75, 0.45), (0.75, 1))],
    "c": [arc(0.5, 0.73, 0.32, 0.27, 50, 310)],
    "d": [BOWL, line((0.75, 0), (0.75, 1))],
    "e": [np.concatenate([line((0.18, 0.72)), arc(0.5, 0.72, 0.32, 0.28, 0, -310)])],
    "f": [np.concatenate([arc(0.62, 0.2, 0.22, 0.2, -20, -180), line((0.4, 1))]), line((0.18, 0.45), (0.68, 0.45))],
    "h": [line((0.2, 0), (0.2, 1)), np.concatenate([arc(0.45, 0.68, 0.25, 0.22, *HUMP), line((0.7, 1))])],
    "i": [line((0.5, 0.45), (0.5, 1)), dot(0.5, 0.2)],
    "j": [np.concatenate([line((0.6, 0.45)), arc(0.38, 1.08, 0.22, 0.22, 0, 160)]), dot(0.6, 0.2)],
    "k": [line((0.2, 0), (0.2, 1)), line((0.72, 0.45), (0.2, 0.8)), line((0.38, 0.7), (0.78, 1))],
    "m": [
        line((0.1, 1), (0.1, 0.45)),
        np.concatenate([arc(0.27, 0.64, 0.17, 0.19, *HUMP), line((0.44, 1))]),
        np.concatenate([arc(0.61, 0.64, 0.17, 0.19, *HUMP), line((0.78, 1))]),
    ],
    "n": [line((0.2, 1), (0.2, 0.45)), np.concatenate([arc(0.45, 0.68, 0.25, 0.22, *HUMP), line((0.7, 1))])],
    "p": [line((0.2, 0.45), (0.2, 1.3)), arc(0.47, 0.73, 0.27, 0.27, 0, 360)],
    "r": [line((0.25, 0.45), (0.25, 1)), arc(0.5, 0.68, 0.25, 0.22, 180, 300)],
    "t": [np.concatenate([line((0.45, 0.1)), arc(0.62, 0.85, 0.17, 0.15, 180, 60)]), line((0.2, 0.45), (0.75, 0.45))],
    "u": [np.concatenate([line((0.2, 0.45)), arc(0.45, 0.78, 0.25, 0.22, 180, 0)]), line((0.7, 0.45), (0.7, 1))],
    "v": [line((0.15, 0.45), (0.5, 1), (0.85, 0.45))],
    "w": [line((0.05, 0.45), (0.27, 1), (0.5, 0.6), (0.73, 1), (0.95, 0.45))],
    "x": [line((0.15, 0.45), (0.85, 1)), line((0.85, 0.45), (0.15, 1))],
    "y": [line((0.15, 0.45), (0.5, 0.95)), line((0.85, 0.45), (0.35, 1.3))],
}


def dense(stroke: np.ndarray, step: float = 0.03) -> np.ndarray:
    """The stroke's points resampled every `step` along its length, so that a straight line bends like an arc."""
    lengths = np.r_[0, np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))]
    at = np.linspace(0, lengths[-1], max(2, round(lengths[-1] / step) + 1))
    return np.stack([np.interp(at, lengths, stroke[:, i]) for i in range(2)], axis=1)


def hand_letter(char: str, rng: np.random.Generator) -> Image.Image:
    """`char` written with a round pen along its skeleton: a random size, width, slant and tilt, every stroke bent
    a little and each point shaken, then finished as a photo (ink.finish)."""
    size = rng.uniform(36, 60)
    aspect = rng.uniform(0.6, 1.0)
    slant = rng.uniform(-0.35, 0.35)
    angle = np.radians(rng.uniform(-12, 12))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    width = int(rng.integers(3, 9))
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in SKELETONS[char]:
        points = dense(stroke)
        shake = ndimage.gaussian_filter1d(rng.normal(0, 0.08, points.shape), 4.0, axis=0, mode="nearest")
        points = points + rng.normal(0, 0.025, (1, 2)) + shake
        x = (points[:, 0] - 0.5) * aspect + slant * (0.5 - points[:, 1])
        xy = (np.stack([x, points[:, 1] - 0.6], axis=1) @ rotation.T) * size + CANVAS / 2
        pairs = [(float(a), float(b)) for a, b in xy]
        draw.line(pairs, fill=255, width=width, joint="curve")
        for a, b in (pairs[0], pairs[-1]):
            draw.ellipse((a - width / 2, b - width / 2, a + width / 2, b + width / 2), fill=255)
    return finish(canvas, rng)
