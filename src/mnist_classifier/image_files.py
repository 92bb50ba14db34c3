"""From a user's images (files, or pictures as arrays) to the 28x28 digit arrays a model reads, and its readings."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import ImageError, ImageTooLargeError, NoDigitError
from .preprocess import MAX_DECODE_BYTES, as_is, decoded_bytes, load_digits, prepare
from .processes import Spread, in_order, spread_over, usable_cores

if TYPE_CHECKING:
    from .inference import Predictor
    from .verdicts import Calibration

FIRST_FILES = 64  # files read alone, twice, first: the time of the second lot decides whether workers read the rest
PARALLEL_SECONDS = 2.0  # reading that would take longer is spread over worker processes (they start in about 1 s)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


class NoDigit(str):
    """The reason an image holds no digit (blank, too faint, specks), as `load_file` gives it: a str like the reasons
    a file cannot be read, but the image was read, and its reading is "not a digit", not a failure."""


@dataclass
class Reading:
    """What the model read in one image: the 28x28 arrays it was fed, their calibrated probabilities, verdicts and
    prediction sets (a mask, when asked); or, with no arrays, the `reason` it holds no digit (a reading: not a
    digit) or the `error` that kept it from being read."""

    source: str
    images: np.ndarray
    probabilities: np.ndarray
    error: str | None = None
    verdicts: list[str] | None = None
    reason: str | None = None
    sets: np.ndarray | None = None

    @property
    def indices(self) -> list[int]:
        return [int(i) for i in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> float:
        """The probability of the whole reading: the product of its digits' top probabilities (0 with no digit)."""
        return float(np.prod(self.probabilities.max(axis=1))) if len(self.probabilities) else 0.0


def load_file(path: Path, prepared: bool, multi_digit: bool, deskewing: bool) -> list[np.ndarray] | str:
    """A file's digit arrays, or the one-line reason it has none: a NoDigit when it holds no digit, else a str
    saying why it cannot be read."""
    try:
        return load_digits(path.read_bytes(), prepared, multi_digit, deskewing)
    except OSError as e:
        return f"cannot read the file ({e.strerror or type(e).__name__})"
    except NoDigitError as e:
        return NoDigit(e)
    except ImageError as e:
        return str(e)


def image_arrays(images: np.ndarray, input_shape: tuple[int, ...], prepared: bool, deskewing: bool) -> np.ndarray:
    """Images given as an array: as they are when shaped as a model's input (one image, or a batch); otherwise one
    picture (height, width[, 1, 3 or 4 channels]), uint8 0..255 or float 0..1, read as the same picture saved as a
    PNG file would be (prepared MNIST-style unless `prepared` is False)."""
    images = np.asarray(images)
    if images.shape in (input_shape, images.shape[:1] + input_shape):
        return images
    channels = images.shape[2] if images.ndim == 3 else 0
    if images.ndim not in (2, 3) or channels not in (0, 1, 3, 4) or 0 in images.shape:
        raise ImageError(
            f"expected images of shape {input_shape} (or a batch of them) or one picture (height, width[, 1, 3 or 4"
            f" channels]), got an array of shape {images.shape}"
        )
    height, width = images.shape[:2]
    mode = "RGB" if channels == 3 else "RGBA" if channels == 4 else "L"  # Image.fromarray's, for uint8
    cost = decoded_bytes(mode, (width, height))
    if cost > MAX_DECODE_BYTES:  # before any copy of the pixels is made
        raise ImageTooLargeError(
            f"picture is {width}x{height} {mode}: too many pixels to read ({cost / 2**20:,.0f}"
            f" MiB, limit {MAX_DECODE_BYTES / 2**20:,.0f} MiB); scale it down"
        )
    if images.dtype != np.uint8:
        values = images.astype(np.float32)
        if not (values.min() >= 0 and values.max() <= 1):  # NaN fails both comparisons
            raise ImageError("pixel values must be finite and within [0, 1] (or uint8 0..255)")
        images = np.round(values * 255).astype(np.uint8)
    picture = Image.fromarray(images[..., 0] if channels == 1 else images)
    return np.stack(prepare(picture, False, deskewing) if prepared else [as_is(picture)])


def image_files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to read: each file given and the images in each folder (recursively, sorted); missing paths as errors."""
    files: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                Path(root, name)
                for root, _, names in os.walk(path)
                for name in names
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
            )
            if not found:
                missing.append((path, "folder holds no image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            missing.append((path, "no such file or folder"))
    return files, missing


def read_files(
    predictor: Predictor,
    paths: Sequence[Path],
    prepared: bool = True,
    multi_digit: bool = False,
    deskewing: bool = False,
    chunk: int = 2048,
    reject: bool = True,
    calibration: Calibration | None = None,
    coverage: float | None = None,
) -> Iterator[Reading]:
    """Each file's digits as `predictor` judges them (with prediction sets at `coverage` when given), in order; a
    file with no digit gives a Reading with its reason, an unreadable one a Reading with its error. Files are decoded
    and prepared `chunk` at a time (the first two FIRST_FILES alone) and each chunk judged in one call. When the
    second FIRST_FILES say that the rest would take more than PARALLEL_SECONDS, the rest are read in worker
    processes."""
    load = functools.partial(load_files, prepared=prepared, multi_digit=multi_digit, deskewing=deskewing)
    with contextlib.ExitStack() as stack:
        spread: Spread = in_order
        decided, start = False, 0
        while start < len(paths):
            batch = paths[start : start + (chunk if decided else FIRST_FILES)]
            began = time.perf_counter()
            loaded = spread(load, batch)
            seconds = time.perf_counter() - began
            start += len(batch)
            if not decided and start >= 2 * FIRST_FILES:  # the very first files also pay for warming up the decoders
                decided = True
                if seconds / len(batch) * (len(paths) - start) > PARALLEL_SECONDS and usable_cores() > 1:
                    spread = stack.enter_context(spread_over(usable_cores()))
            yield from readings(predictor, batch, loaded, reject, calibration, coverage)


def load_files(
    paths: Sequence[Path], prepared: bool, multi_digit: bool, deskewing: bool
) -> list[list[np.ndarray] | str]:
    """`load_file` of each path, in order."""
    return [load_file(path, prepared, multi_digit, deskewing) for path in paths]


def readings(
    predictor: Predictor,
    paths: Sequence[Path],
    loaded: Sequence[list[np.ndarray] | str],
    reject: bool = True,
    calibration: Calibration | None = None,
    coverage: float | None = None,
) -> Iterator[Reading]:
    """The Readings of files already loaded (their digit arrays, or the reason they have none), judged in one call
    of `predictor`."""
    shape = predictor.input_shape
    images = [image for item in loaded if not isinstance(item, str) for image in item]
    judged = predictor.judge(np.stack(images) if images else np.zeros((0, *shape), np.uint8), reject, calibration)
    sets = None if coverage is None else judged.calibration.prediction_sets(judged.probabilities, coverage)
    none = np.zeros((0, *shape), np.uint8)
    at = 0
    for path, item in zip(paths, loaded, strict=True):
        if isinstance(item, NoDigit):
            yield Reading(str(path), none, judged.probabilities[:0], None, [], item, None if sets is None else sets[:0])
        elif isinstance(item, str):
            yield Reading(str(path), none, judged.probabilities[:0], item)
        else:
            part = slice(at, at + len(item))
            found = None if sets is None else sets[part]
            yield Reading(
                str(path), np.stack(item), judged.probabilities[part], None, judged.verdicts[part], None, found
            )
            at += len(item)


Images = np.ndarray | str | Path | Sequence[str | Path]


def readable(
    images: Images, input_shape: tuple[int, ...], prepared: bool, deskewing: bool
) -> np.ndarray | list[np.ndarray | str]:
    """Each image's array as a model of `input_shape` reads it, or why it has none: a NoDigit reason when it holds no
    digit, else (a file) why it cannot be read; images given as an array that are all read stay one batch (no copy).
    An array of the wrong shape or values is an ImageError."""
    if isinstance(images, np.ndarray):
        try:
            arrays = image_arrays(images, input_shape, prepared, deskewing)
        except NoDigitError as e:
            return [NoDigit(e)]
        return arrays if arrays.shape != input_shape else arrays[None]
    paths = [Path(images)] if isinstance(images, str | Path) else [Path(p) for p in images]
    found: list[np.ndarray | str] = []
    for path in paths:
        loaded = load_file(path, prepared, False, deskewing)
        found += [loaded] if isinstance(loaded, str) else loaded
    return found


def stacked(arrays: np.ndarray | list[np.ndarray | str], input_shape: tuple[int, ...]) -> np.ndarray:
    """`readable`'s arrays as one batch, without the images that have none."""
    if isinstance(arrays, np.ndarray):
        return arrays
    images = [a for a in arrays if not isinstance(a, str)]
    return np.stack(images) if images else np.zeros((0, *input_shape), np.uint8)
