"""Sets of synthetic non-digits (letters, scribbles, shapes, silhouettes, noise, textures), as a model sees them.

Sets kept apart, each with its own letter fonts (fonts.py) and its own seeds; letters written by hand
(handwritten.py) are in each, from its own seed. `training_pool` is what training shows
the model as things to answer with uniform probabilities (outlier exposure); `validation_set` is what the verdict's
score and thresholds are chosen on; `held_out_set` is what `evaluate` measures them on. benchmarks/ood.py draws its
own, with handwriting fonts and seed 20, for the official figures. Letters, scribbles and shapes go through
preprocess.prepare, the MNIST-style preparation that `predict` and the server apply to a user's image; the RAW_KINDS
are resized only, as arrays given to the Python API or the server's `pixels`.
"""

from __future__ import annotations

import functools
import hashlib
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import ImageError
from ...preprocess import prepare
from .cache import POOL_VERSION, cached, load, note, store
from .fonts import HELD_OUT_FONTS, TRAINING_FONTS, VALIDATION_FONTS, matplotlib_fonts
from .handwritten import hand_letter
from .ink import letter
from .marks import MAKERS
from .parallel import Draw, drawn, drawn_sets, image_rng

# Letters that look like digits in many hands (O 0, I l 1, S s 5, Z z 2, B 8, G g q 9 6, b 6): never counted as
# non-digits, since reading them as digits is not a mistake.
LOOK_ALIKES = "OoIlSsZzBGgqb"
LETTERS = "".join(c for c in string.ascii_letters if c not in LOOK_ALIKES)

# as arrays given to the API: the preparation finds no ink in most noise and textures, and fills the frame with a
# silhouette's outline
RAW_KINDS = ("noise", "textures", "silhouettes")


def prepared(images: Sequence[Image.Image]) -> tuple[np.ndarray, int]:
    """The images prepared (N, 28, 28) uint8, and how many the preparation refused (no ink found: never a digit)."""
    arrays = []
    for image in images:
        try:
            arrays.append(prepare(image)[0])
        except ImageError:
            continue
    return np.stack(arrays) if arrays else np.zeros((0, 28, 28), np.uint8), len(images) - len(arrays)


def letters(
    fonts: Sequence[Path], count: int, seed: int, chars: str = LETTERS, pen: bool = False
) -> tuple[np.ndarray, int]:
    """`count` letters (cycling through `chars` and `fonts`; with `pen`, traced again as a hand writes them),
    prepared; and how many the preparation refused."""
    images = drawn(letters_part, count, tuple(fonts), seed, chars, pen)
    return images, count - len(images)


def letters_draw(fonts: Sequence[Path], count: int, seed: int, pen: bool = False) -> Draw:
    return Draw(letters_part, count, (tuple(fonts), seed, LETTERS, pen))


def letters_part(start: int, stop: int, fonts: Sequence[Path], seed: int, chars: str, pen: bool) -> np.ndarray:
    """`letters`' images start..stop-1 that the preparation kept, each drawn with its own generator."""
    return prepared(
        [
            letter(chars[i % len(chars)], fonts[(i // len(chars)) % len(fonts)], image_rng(seed, i, "letters"), pen)
            for i in range(start, stop)
        ]
    )[0]


def hand_letters_part(start: int, stop: int, seed: int) -> np.ndarray:
    """Letters start..stop-1 written by hand (handwritten.hand_letter), cycling through LETTERS, prepared."""
    return prepared(
        [hand_letter(LETTERS[i % len(LETTERS)], image_rng(seed, i, "hand letters")) for i in range(start, stop)]
    )[0]


def as_array(image: Image.Image) -> np.ndarray:
    """An image given to the Python API as a 28x28 array, without preparation: resized, light on dark."""
    pixels = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BOX))
    return 255 - pixels if np.median(pixels) > 127 else pixels


def generated(kind: str, count: int, seed: int, raw: bool = False) -> tuple[np.ndarray, int]:
    """`count` images of one of the kinds but letters, prepared (or with `raw`, only resized: what reaches a model
    given arrays); and how many the preparation refused."""
    images = drawn(generated_part, count, kind, seed, raw)
    return images, count - len(images)


def generated_part(start: int, stop: int, kind: str, seed: int, raw: bool) -> np.ndarray:
    """`generated`'s images start..stop-1 that the preparation kept (all of them with `raw`), each with its own
    generator."""
    images = [MAKERS[kind](image_rng(seed, i, kind)) for i in range(start, stop)]
    return np.stack([as_array(image) for image in images]) if raw else prepared(images)[0]


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
    """`per_kind` images of each kind by name (fewer where the preparation refused some): letters in `fonts` (none
    without fonts), then MAKERS' kinds. The kinds not in the cache yet are drawn together, across the cores; read-only.
    """
    draws = {"letters": letters_draw(fonts, per_kind, seed)} if fonts else {}
    draws["hand letters"] = Draw(hand_letters_part, per_kind, (seed,))
    for i, kind in enumerate(MAKERS, 1):
        draws[kind] = Draw(generated_part, per_kind, (kind, seed * 1000 + i, kind in RAW_KINDS))
    names = {kind: f"nondigits-v{POOL_VERSION}-{kind.replace(' ', '-')}-{per_kind}-{seed}" for kind in draws}
    if fonts:  # the letters drawn depend on which fonts this Matplotlib has
        typefaces = hashlib.blake2b("|".join(font.name for font in fonts).encode(), digest_size=4).hexdigest()
        names["letters"] += f"-{typefaces}"
    sets = {kind: images for kind, name in names.items() if (images := load(name)) is not None}
    missing = [kind for kind in draws if kind not in sets]
    if missing:
        note(f"non-digits: {', '.join(missing)}, seed {seed}", per_kind * len(missing))
    for kind, images in zip(missing, drawn_sets([draws[kind] for kind in missing]), strict=True):
        store(names[kind], images)
        sets[kind] = images
    sets = {kind: sets[kind] for kind in draws}
    for images in sets.values():
        images.setflags(write=False)
    return sets


def training_pool(count: int, seed: int = 0) -> np.ndarray:
    """`count` non-digits (N, 28, 28) uint8 for outlier exposure: letters in TRAINING_FONTS, as printed and as
    traced with a pen, letters written by hand (handwritten.py), scribbles and shapes (prepared), shapes, noise and
    textures (raw). Drawn once per size and seed, then cached."""
    return cached(f"pool-v{POOL_VERSION}-{count}-{seed}", count, lambda: draw_pool(count, seed))


def draw_pool(count: int, seed: int) -> np.ndarray:
    shares = {"letters": 0.1, "pen letters": 0.15, "hand letters": 0.2, "scribbles": 0.15, "shapes": 0.15}
    shares |= {"raw shapes": 0.05, "noise": 0.05, "textures": 0.05, "silhouettes": 0.1}
    sizes = {kind: int(count * share) for kind, share in shares.items()}
    sizes["letters"] += count - sum(sizes.values())
    fonts = matplotlib_fonts(TRAINING_FONTS)
    draws = [letters_draw(fonts, sizes["letters"], seed), letters_draw(fonts, sizes["pen letters"], seed + 1, pen=True)]
    draws.append(Draw(hand_letters_part, sizes["hand letters"], (seed + 2,)))
    for i, kind in enumerate(sizes, 500):  # raw shapes fill the frame, as a photo of an object given as an array
        if kind not in ("letters", "pen letters", "hand letters"):
            maker, raw = kind.removeprefix("raw "), kind.startswith("raw ") or kind in RAW_KINDS
            draws.append(Draw(generated_part, sizes[kind], (maker, seed * 1000 + i, raw)))
    pool = np.concatenate(drawn_sets(draws))
    if len(pool) < count:  # the preparation refused a few: fill up with noise, which it never sees
        pool = np.concatenate([pool, generated("noise", count - len(pool), seed * 1000 + 599, raw=True)[0]])
    return pool


def blends(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` images of two digits of different classes in one, averaged or drawn over each other: no single digit
    is the answer."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(len(images), size=(2, 2 * count))
    differ = labels[first] != labels[second]
    a, b = images[first[differ][:count]], images[second[differ][:count]]
    averaged = rng.random(len(a))[:, None, None] < 0.5
    return np.where(averaged, (a.astype(np.float32) + b) / 2, np.maximum(a, b)).astype(images.dtype)
