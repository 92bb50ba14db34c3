"""Synthetic images that are not digits (letters, scribbles, shapes, silhouettes, noise, textures), as a model sees
them.

Sets kept apart, each with its own letter fonts (all shipped inside Matplotlib, so installed wherever the package
is) and its own seeds. `training_pool` is what training shows the model as things to answer with uniform
probabilities (outlier exposure); `validation_set` is what the verdict's score and thresholds are chosen on;
`held_out_set` is what `evaluate` measures them on. benchmarks/ood.py draws its own, with handwriting fonts and
seed 20, for the official figures. Letters, scribbles and shapes go through preprocess.prepare, the MNIST-style
preparation that `predict` and the server apply to a user's image; the RAW_KINDS are resized only, as arrays
given to the Python API or the server's `pixels`. Beside them, digits unlike MNIST's that training shows as digits:
printed ones, and MNIST digits photographed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import string
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .data.datasets import cache_dir
from .errors import ImageError, WriteError
from .preprocess import prepare
from .utils import atomic_path

# Letters that look like digits in many hands (O 0, I l 1, S s 5, Z z 2, B 8, G g q 9 6, b 6): never counted as
# non-digits, since reading them as digits is not a mistake.
LOOK_ALIKES = "OoIlSsZzBGgqb"
LETTERS = "".join(c for c in string.ascii_letters if c not in LOOK_ALIKES)
KINDS = ("letters", "scribbles", "shapes", "noise", "textures")
# as arrays given to the API: the preparation finds no ink in most noise and textures, and fills the frame with a
# silhouette's outline
RAW_KINDS = ("noise", "textures", "silhouettes")
CANVAS = 96
Maker = Callable[[np.random.Generator], Image.Image]


VALIDATION_FONTS = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSerif",
    "DejaVuSerif-Italic",
    "DejaVuSansMono",
    "STIXGeneral",
    "STIXGeneralItalic",
    "cmr10",
    "cmss10",
)
TRAINING_FONTS = (
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono-Bold",
    "DejaVuSansMono-Oblique",
    "DejaVuSerif-Bold",
    "DejaVuSerif-BoldItalic",
    "STIXGeneralBol",
    "STIXGeneralBolIta",
    "cmb10",
    "cmti10",
    "cmtt10",
)
HELD_OUT_FONTS = ("cmmi10",)  # Computer Modern math italic: a-z and A-Z in a hand seen nowhere else
POOL_VERSION = 3  # bump when what training_pool, printed_digits or photographed draws changes: it keys their caches


def matplotlib_fonts(names: Sequence[str] = VALIDATION_FONTS) -> list[Path]:
    """Fonts shipped with Matplotlib (a dependency), so always installed: by default the validation set's."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / f"{name}.ttf" for name in names if (folder / f"{name}.ttf").is_file()]


def finish(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light ink on black as drawn, turned into dark ink on paper with a slight blur: a photo-like input."""
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    ink = np.asarray(canvas, np.float32) / 255
    paper = rng.uniform(200, 245) + rng.normal(0, 3, ink.shape)
    return Image.fromarray(np.clip(paper * (1 - ink) + rng.uniform(10, 60) * ink, 0, 255).astype(np.uint8), "L")


def letter(char: str, font: Path, rng: np.random.Generator) -> Image.Image:
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    size = int(rng.integers(40, 70))
    ImageDraw.Draw(canvas).text(
        (CANVAS / 2, CANVAS / 2), char, fill=255, font=ImageFont.truetype(str(font), size), anchor="mm"
    )
    shear = rng.uniform(-0.25, 0.25)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * CANVAS / 2, 0, 1, 0))
    return finish(canvas.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR), rng)


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


def prepared(images: Sequence[Image.Image]) -> tuple[np.ndarray, int]:
    """The images prepared (N, 28, 28) uint8, and how many the preparation refused (no ink found: never a digit)."""
    arrays = []
    for image in images:
        try:
            arrays.append(prepare(image)[0])
        except ImageError:
            continue
    return np.stack(arrays) if arrays else np.zeros((0, 28, 28), np.uint8), len(images) - len(arrays)


def letters(fonts: Sequence[Path], count: int, seed: int, chars: str = LETTERS) -> tuple[np.ndarray, int]:
    """`count` letters (cycling through `chars` and `fonts`), prepared; and how many the preparation refused."""
    rng = np.random.default_rng(seed)
    return prepared([letter(chars[i % len(chars)], fonts[(i // len(chars)) % len(fonts)], rng) for i in range(count)])


def as_array(image: Image.Image) -> np.ndarray:
    """An image given to the Python API as a 28x28 array, without preparation: resized, light on dark."""
    pixels = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BOX))
    return 255 - pixels if np.median(pixels) > 127 else pixels


def generated(kind: str, count: int, seed: int, raw: bool = False) -> tuple[np.ndarray, int]:
    """`count` images of one of the kinds but letters, prepared (or with `raw`, only resized: what reaches a model
    given arrays); and how many the preparation refused."""
    rng = np.random.default_rng(seed)
    images = [MAKERS[kind](rng) for _ in range(count)]
    return (np.stack([as_array(image) for image in images]), 0) if raw else prepared(images)


def validation_set(per_kind: int = 200, seed: int = 1) -> dict[str, np.ndarray]:
    """The non-digits the method's score and thresholds are chosen on: letters in VALIDATION_FONTS, and the other
    kinds from their own seeds (noise, textures and silhouettes as raw arrays)."""
    return drawn_set(tuple(matplotlib_fonts(VALIDATION_FONTS)), per_kind, seed)


def held_out_set(per_kind: int = 200, seed: int = 7) -> dict[str, np.ndarray]:
    """Non-digits that neither training nor calibration sees, for the figures `evaluate` records: letters in
    HELD_OUT_FONTS, the other kinds from seeds of their own."""
    return drawn_set(tuple(matplotlib_fonts(HELD_OUT_FONTS)), per_kind, seed)


@functools.cache
def drawn_set(fonts: tuple[Path, ...], per_kind: int, seed: int) -> dict[str, np.ndarray]:
    """`per_kind` images of each kind by name: letters in `fonts` (none without fonts), then MAKERS' kinds. Drawn
    once per process (a few seconds), read-only."""
    sets = {"letters": letters(fonts, per_kind, seed)[0]} if fonts else {}
    for i, kind in enumerate(MAKERS, 1):
        sets[kind] = generated(kind, per_kind, seed * 1000 + i, raw=kind in RAW_KINDS)[0]
    for images in sets.values():
        images.setflags(write=False)
    return sets


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


def training_pool(count: int, seed: int = 0) -> np.ndarray:
    """`count` non-digits (N, 28, 28) uint8 for outlier exposure: letters in TRAINING_FONTS, scribbles and shapes
    (prepared), shapes, noise and textures (raw). Drawn once per size and seed, then cached."""
    return cached(f"pool-v{POOL_VERSION}-{count}-{seed}", count, lambda: draw_pool(count, seed))


def draw_pool(count: int, seed: int) -> np.ndarray:
    shares = {"letters": 0.35, "scribbles": 0.15, "shapes": 0.15, "raw shapes": 0.05, "noise": 0.05, "textures": 0.05}
    shares["silhouettes"] = 0.2
    sizes = {kind: int(count * share) for kind, share in shares.items()}
    sizes["letters"] += count - sum(sizes.values())
    parts = [letters(matplotlib_fonts(TRAINING_FONTS), sizes["letters"], seed)[0]]
    for i, kind in enumerate(sizes, 500):  # raw shapes fill the frame, as a photo of an object given as an array
        if kind != "letters":
            maker, raw = kind.removeprefix("raw "), kind.startswith("raw ") or kind in RAW_KINDS
            parts.append(generated(maker, sizes[kind], seed * 1000 + i, raw=raw)[0])
    pool = np.concatenate(parts)
    if len(pool) < count:  # the preparation refused a few: fill up with noise, which it never sees
        pool = np.concatenate([pool, generated("noise", count - len(pool), seed * 1000 + 599, raw=True)[0]])
    return pool


def printed_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits drawn in TRAINING_FONTS like the letters, prepared, with their labels (0, 1, ..., 9, 0, ...):
    digits unlike MNIST's that training shows as digits. Drawn once per size and seed, then cached."""
    fonts = matplotlib_fonts(TRAINING_FONTS)
    if not fonts:  # Matplotlib ships them, so only a broken installation lacks them all
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    images = cached(f"printed-v{POOL_VERSION}-{count}-{seed}", count, lambda: font_digits(fonts, count, seed)[0])
    return images, np.arange(count) % 10


def photographed(digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """Digits (N, 28, 28) uint8 as `predict` sees a photo of them: enlarged onto a canvas, a quarter drawn with a
    thicker pen and some with a thinner one, slanted, dark ink on paper (as `finish` makes it), then prepared. Drawn
    once per set of digits and seed, then cached."""
    key = hashlib.blake2b(digits.tobytes(), digest_size=8).hexdigest()
    return cached(f"photographed-v{POOL_VERSION}-{key}-{seed}", len(digits), lambda: photograph(digits, seed))


def photograph(digits: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = digits.copy()
    for i, digit in enumerate(digits):
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


def blends(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` images of two digits of different classes in one, averaged or drawn over each other: no single digit
    is the answer."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(len(images), size=(2, 2 * count))
    differ = labels[first] != labels[second]
    a, b = images[first[differ][:count]], images[second[differ][:count]]
    averaged = rng.random(len(a))[:, None, None] < 0.5
    return np.where(averaged, (a.astype(np.float32) + b) / 2, np.maximum(a, b)).astype(images.dtype)


def font_digits(fonts: Sequence[Path], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn like the letters (printed, photographed), prepared, with their labels: digits unlike MNIST's."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    return np.stack(
        [prepare(letter(str(d), fonts[(i // 10) % len(fonts)], rng))[0] for i, d in enumerate(labels)]
    ), labels
