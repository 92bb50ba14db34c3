"""Generated inputs for every parser a user's data reaches: IDX files, config files, search spaces, images.

Each property allows only two outcomes: a correct result, or the project's own error (a MnistClassifierError
with a one-line message). The number of cases comes from the Hypothesis profile (see conftest.py): a few in the fast
tier, 1,500 under `--hypothesis-profile=full`; `--hypothesis-show-statistics` counts them.
"""

from __future__ import annotations

import gzip
import io
import json
import string
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_classifier.config import FIELDS, TrainConfig, read_config_file, resolve
from mnist_classifier.data.idx import DTYPES, encode_idx, parse_idx, read_idx
from mnist_classifier.errors import ConfigError, DataError, ImageError, MnistClassifierError
from mnist_classifier.preprocess import load_digits

from .images import png

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow warns about damaged TIFF metadata
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FOLDER = Path(tempfile.mkdtemp(prefix="mnist-classifier-fuzz-"))  # one scratch folder; files are overwritten


def one_line(error: MnistClassifierError) -> None:
    assert str(error) and "\n" not in str(error), repr(error)


def scratch(name: str, content: str | bytes) -> Path:
    path = FOLDER / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


# IDX ----------------------------------------------------------------------------------------------------------


@st.composite
def idx_files(draw: st.DrawFn) -> bytes:
    """IDX bytes near the valid ones: a known or unknown type code, a few dimensions of any size, and a payload
    that matches the declared shape, or falls short, or runs over."""
    code = draw(st.sampled_from([*DTYPES, 0x00, 0x0A, 0xFF]))
    shape = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=0, max_size=5))
    header = bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()
    size = DTYPES[code].itemsize * int(np.prod(shape, dtype=object)) if code in DTYPES else 0
    payload = draw(st.binary(min_size=size, max_size=size)) if size <= 512 else b""
    cut = draw(st.integers(-3, 3))
    data = header + payload
    return data[: len(data) + cut] if cut < 0 else data + bytes(cut)


@FUZZ
@given(st.one_of(st.binary(max_size=80), idx_files()))
@example(bytes([0, 0, 8, 4]) + (np.full(4, 2**16, ">u4")).tobytes())  # the product overflows int64 to 0
@example(bytes([0, 0, 8, 4]) + np.asarray([0, 2**32 - 1, 2**32 - 1, 2**32 - 1], ">u4").tobytes())
def test_idx_parser(data: bytes) -> None:
    try:
        array = parse_idx(data, "fuzz.idx")
    except DataError as e:
        one_line(e)
        return
    assert array.dtype.newbyteorder("=") == array.dtype and array.ndim == data[3]
    assert encode_idx(array) == data


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_idx_files_raw_or_gzip(data: bytes, compressed: bool) -> None:
    """A .gz file holding arbitrary bytes (or arbitrary bytes posing as gzip) is read or refused with DataError."""
    for path in (scratch("labels.gz", gzip.compress(data) if compressed else data), scratch("labels", data)):
        try:
            array = read_idx(path)
        except DataError as e:
            one_line(e)
            continue
        assert encode_idx(array) == (data if compressed or path.suffix != ".gz" else gzip.decompress(data))


# Config files ----------------------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
KEYS = st.one_of(st.sampled_from(sorted(FIELDS)), st.sampled_from(["meta", "Epochs", "", "model.name"]))


@st.composite
def config_texts(draw: st.DrawFn) -> tuple[str, str]:
    """(suffix, text): settings with known names and values of any type, as TOML or JSON, or arbitrary text."""
    suffix = draw(st.sampled_from([".toml", ".json"]))
    if draw(st.integers(0, 4)) == 0:
        return suffix, draw(st.text(string.printable, max_size=80))
    table = draw(st.dictionaries(KEYS, VALUES, max_size=5))
    if suffix == ".json":
        return suffix, json.dumps(table)
    try:
        return suffix, tomli_w.dumps(table)
    except (TypeError, ValueError):  # TOML has no NaN keys-less tables etc.; write JSON instead
        return ".json", json.dumps(table)


@FUZZ
@given(config_texts())
@example((".toml", "hidden_units = [64, 32]\n"))
@example((".json", '{"model": "cnn", "filters": [8, 16]}'))
@example((".json", '{"learning_rate": NaN}'))
def test_config_loader(case: tuple[str, str]) -> None:
    """read_config_file, then resolve (defaults, file, validation): a checked TrainConfig or a ConfigError."""
    suffix, text = case
    path = scratch("config" + suffix, text)
    try:
        values = read_config_file(path)
        assert set(values) <= set(FIELDS)
        config = resolve(path)
    except ConfigError as e:
        one_line(e)
        return
    assert isinstance(config, TrainConfig)
    for name, value in values.items():
        assert getattr(config, name) == value, name


# Search spaces ----------------------------------------------------------------------------------------------------

TUNABLE = sorted(set(FIELDS) - {"model", "dataset", "data_dir"})
RANGES = st.fixed_dictionaries(
    {"low": SCALARS, "high": SCALARS},
    optional={"log": st.one_of(st.booleans(), SCALARS), "step": SCALARS, "other": SCALARS},
)


@st.composite
def space_texts(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(string.printable, max_size=80))
    names = st.one_of(st.sampled_from(TUNABLE), st.sampled_from(["model", "dataset", "nonsense"]))
    table = draw(st.dictionaries(names, st.one_of(st.lists(VALUES, max_size=4), RANGES, SCALARS), max_size=4))
    try:
        return tomli_w.dumps(table)
    except (TypeError, ValueError):
        return json.dumps(table)  # not TOML: the loader must say so


@FUZZ
@given(space_texts(), st.sampled_from(["grid", "tpe", "random"]))
def test_search_space_loader(text: str, sampler: str) -> None:
    from mnist_classifier import tuning

    path = scratch("space.toml", text)
    try:
        space = tuning.read_space(path, resolve(), sampler)
    except ConfigError as e:
        one_line(e)
        return
    assert space and set(space) <= set(TUNABLE)


# Images -----------------------------------------------------------------------------------------------------------

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "I", "I;16", "F", "CMYK", "YCbCr", "LAB", "HSV"]


def check_digits(source: bytes, valid: bool = False, **options: Any) -> None:
    """Digits read, or a one-line ImageError; for a `valid` file (one Pillow wrote), only "no digit found"."""
    try:
        digits = load_digits(source, **options)
    except ImageError as e:
        one_line(e)
        assert not valid or str(e).startswith("no digit found"), f"a valid image refused: {e}"
        return
    assert digits and all(d.shape == (28, 28) and d.dtype == np.uint8 for d in digits)
    assert len(digits) == 1 or options.get("multi_digit")


@st.composite
def small_images(draw: st.DrawFn) -> Image.Image:
    """A small image of any mode: random pixels, or a bar on a plain background (something to read)."""
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    image = Image.new("L", (width, height), draw(st.integers(0, 255)))
    if draw(st.booleans()):
        noise = draw(st.binary(min_size=width * height, max_size=width * height))
        image = Image.frombytes("L", (width, height), noise)
    else:
        top, left = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
        image.paste(draw(st.integers(0, 255)), (left, top, left + draw(st.integers(1, 20)), height))
    if mode == "PA":
        return image.convert("P").convert("PA")
    converted = image.convert(mode) if mode != "I;16" else image.convert("I").convert("I;16")
    if mode == "RGBA" and draw(st.booleans()):
        converted.putalpha(draw(st.integers(0, 255)))
    return converted


def encoded(image: Image.Image, kind: str) -> bytes | None:
    """The image in that format, or None when Pillow cannot write this mode to it."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, kind)
    except (OSError, ValueError, KeyError):
        return None
    return buffer.getvalue()


@FUZZ
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_image_reader_on_arbitrary_bytes(data: bytes, multi_digit: bool, deskew: bool) -> None:
    check_digits(data, multi_digit=multi_digit, deskewing=deskew)


@FUZZ
@given(small_images(), st.sampled_from(FORMATS), st.booleans(), st.booleans())
def test_image_reader_on_small_images_of_every_mode_and_format(
    image: Image.Image, kind: str, multi_digit: bool, deskew: bool
) -> None:
    data = encoded(image, kind)
    if data is None:
        reject()
    check_digits(data, valid=True, multi_digit=multi_digit, deskewing=deskew)


def seeds() -> list[bytes]:
    """Valid files of each format to damage: an MNIST-like digit, and a photo-like grey page."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    page = Image.fromarray(255 - np.kron(digit, np.ones((3, 3), np.uint8)))
    files = [png(digit)]
    for kind in FORMATS:
        files += [data for data in (encoded(page, kind), encoded(page.convert("RGB"), kind)) if data]
    return files


SEEDS = seeds()


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(8, 4000)),
)
def test_image_reader_on_damaged_files(seed: bytes, changes: list[tuple[int, int]], cut: int | None) -> None:
    """Valid PNG/JPEG/GIF/BMP/TIFF/WebP files with bytes overwritten (headers included) and maybe truncated."""
    data = bytearray(seed)
    for at, value in changes:
        data[at % len(data)] = value
    check_digits(bytes(data[:cut]))
