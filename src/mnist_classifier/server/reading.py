"""A request's image or pixels read into an answer: decoded in bounded pools, then judged by the shared model.

`read_and_predict` is a plain coroutine of bytes or pixels, options and the objects the server holds; the route only
gets those out of the HTTP request. Decoding and PNG encoding run in worker threads, never on the event loop, but
for a small file that already is an MNIST digit, whose header says so: reading it costs less than the thread hop.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from fastapi import HTTPException
from PIL import Image

from ..errors import ConfigError, NoDigitError, RunError
from ..inference import Predictor, judgement
from ..preprocess import SIZE, decoded_bytes, load_digits, mnist_style, open_image
from ..readings import digit_json, members, no_digit_json, no_number_json, number_json
from ..verdicts import Calibration, require_scores
from .batcher import Batcher
from .bodies import Options

SMALL_IMAGE_BYTES = 4 * 2**20  # images that decode to at most this many bytes have a pool of their own
INLINE_FILE_BYTES = 16 * 2**10  # files up to this size may be MNIST digits read without a thread hop


def decode_threads() -> int:
    """The CPU cores this process may use: decoding more images at once only adds memory."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Decoding:
    """How images are decoded: the memory budget of one image, and two pools of `threads` workers, one for small
    images (and every image's header, JSON body and PNG answer) and one for large images, so those never delay the
    rest."""

    max_decode_bytes: int
    small: anyio.CapacityLimiter
    large: anyio.CapacityLimiter

    @classmethod
    def pools(cls, max_decode_bytes: int, threads: int | None = None) -> Decoding:
        return cls(
            max_decode_bytes,
            anyio.CapacityLimiter(threads or decode_threads()),
            anyio.CapacityLimiter(threads or decode_threads()),
        )


async def read_and_predict(
    source: bytes | np.ndarray, options: Options, predictor: Predictor, batcher: Batcher, decoding: Decoding
) -> dict[str, Any]:
    """The answer (the JSON shape of a Digit or, with `multi_digit`, a Number) to an image file's bytes (prepared
    MNIST-style) or to pixels (used as they are, one digit). An image that holds no digit is answered, not_a_digit
    with its reason."""
    calibration = options.calibration(predictor.calibration)
    if options.set_coverage is not None:
        try:
            require_scores(calibration, options.set_coverage, predictor.name)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        except RunError as e:
            raise HTTPException(422, f"set_coverage: {e}") from None
    if isinstance(source, np.ndarray):
        if source.shape != predictor.input_shape:
            expected, got = ("x".join(map(str, shape)) for shape in (predictor.input_shape, source.shape))
            raise HTTPException(422, f'"pixels" must be a {expected} array, got {got or "a single number"}')
        return await answer(source[None], options, False, predictor, batcher, decoding, calibration)
    read = functools.partial(load_digits, source, True, options.multi_digit, options.deskew, decoding.max_decode_bytes)

    def read_if_small() -> list[np.ndarray] | None:
        """The image's digits if it is small once decoded (one thread hop for the common case), else None."""
        image = open_image(source, decoding.max_decode_bytes, load=False)
        return read() if decoded_bytes(image.mode, image.size) <= SMALL_IMAGE_BYTES else None

    try:
        ready = None if options.multi_digit or options.deskew else mnist_digit(source, decoding.max_decode_bytes)
        digits = [ready] if ready is not None else await anyio.to_thread.run_sync(read_if_small, limiter=decoding.small)
        if digits is None:
            digits = await anyio.to_thread.run_sync(read, limiter=decoding.large)
    except NoDigitError as e:
        if options.multi_digit:
            return no_number_json(str(e))
        return no_digit_json(str(e), with_set=options.set_coverage is not None)
    return await answer(np.stack(digits), options, options.multi_digit, predictor, batcher, decoding, calibration)


def mnist_digit(source: bytes, max_decode_bytes: int) -> np.ndarray | None:
    """The pixels of a small file that already is an MNIST digit (preprocess.mnist_style), read on the event loop,
    else None. Its header is read first, so only a file of MNIST's size is decoded here: tens of microseconds, less
    than the hop to a decoding thread; any other image waits for the pools."""
    if len(source) > INLINE_FILE_BYTES:
        return None
    image = open_image(source, max_decode_bytes, load=False)
    if image.size != (SIZE, SIZE):
        return None
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError):  # a damaged file: the pools' reading says what is wrong
        return None
    return mnist_style(image)


async def answer(
    images: np.ndarray,
    options: Options,
    multi_digit: bool,
    predictor: Predictor,
    batcher: Batcher,
    decoding: Decoding,
    calibration: Calibration,
) -> dict[str, Any]:
    """The images read by the model in a shared batch, then judged with this request's calibration (its thresholds),
    with prediction sets when asked: a Number's JSON shape with `multi_digit`, else a Digit's."""
    probs, distances = await batcher.assess(images)
    judged = judgement(probs, distances, calibration, options.reject)
    coverage = options.set_coverage
    sets = None if coverage is None else calibration.prediction_sets(judged.probabilities, coverage)
    names = predictor.class_names
    if multi_digit:
        number = number_json(names, judged.probabilities, judged.verdicts, sets=sets)
        if options.include_input:
            for digit, image in zip(number["digits"], await inputs(images, decoding), strict=True):
                digit["input"] = image
        return number
    digit = digit_json(
        names, judged.probabilities[0], judged.verdicts[0], None, members(names, None if sets is None else sets[0])
    )
    if options.include_input:
        digit["input"] = (await inputs(images, decoding))[0]
    return digit


async def inputs(images: np.ndarray, decoding: Decoding) -> list[str]:
    """The images fed to the model as PNG data URLs, made in the decoding pool for small work."""
    return await anyio.to_thread.run_sync(lambda: [png_base64(image) for image in images], limiter=decoding.small)


def png_base64(image: np.ndarray) -> str:
    """An image as a data: URL of a PNG, for `include_input`."""
    pixels = image if image.dtype == np.uint8 else np.round(image * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
