"""Preparing real images MNIST-style: polarity, lighting, cropping, centring, several digits, bad files."""

from __future__ import annotations

import io
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageDraw
from scipy import ndimage

from mnist_classifier.data import load_dataset
from mnist_classifier.errors import ImageError, ImageTooLargeError, NotAnImageError
from mnist_classifier.preprocess import (
    dark_ink,
    decoded_bytes,
    deskew,
    digit_groups,
    grey,
    load_digits,
    open_image,
)

from .images import broken_files, on_canvas, png, png_header_only


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_dataset("mnist").x_test[:40]


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The pixel metric of these tests: mean absolute difference in [0, 1] and Pearson correlation."""
    x, y = a.astype(np.float64) / 255, b.astype(np.float64) / 255
    return float(np.abs(x - y).mean()), float(np.corrcoef(x.ravel(), y.ravel())[0, 1])


def test_large_inverted_off_centre_digit_becomes_mnist_like(digits: np.ndarray) -> None:
    """Dark digits 280 px tall at random places on a 1200x900 white page come back within a mean absolute
    pixel difference of 0.05 and a mean correlation of 0.9 of the MNIST originals."""
    rng = np.random.default_rng(1)
    differences, correlations = [], []
    for digit in digits:
        page = on_canvas(digit, 280, (1200, 900), (int(rng.integers(0, 920)), int(rng.integers(0, 620))))
        (prepared,) = load_digits(png(page))
        assert prepared.shape == (28, 28) and prepared.dtype == np.uint8
        difference, correlation = similarity(prepared, digit)
        differences.append(difference)
        correlations.append(correlation)
    assert np.mean(differences) < 0.05, np.mean(differences)
    assert np.mean(correlations) > 0.9, np.mean(correlations)
    assert np.abs(digits[0] / 255).mean() > 0.08, "the metric tells a digit from nothing"


def test_mnist_format_digit_is_read_as_it_is_in_either_polarity(digits: np.ndarray) -> None:
    """A 28x28 file that already is an MNIST digit, light on black or dark on white, needs no preparation: its
    pixels (inverted where the ink is dark) are what the model reads."""
    for digit in digits[:10]:
        assert np.array_equal(load_digits(png(digit))[0], digit)
        assert np.array_equal(load_digits(png(255 - digit))[0], digit)
    grey_page = np.full((28, 28), 128, np.uint8)
    grey_page[8:20, 12:16] = 0
    assert not np.array_equal(load_digits(png(grey_page))[0], 255 - grey_page), "a grey page is prepared"


def test_polarity_is_read_from_the_image(digits: np.ndarray) -> None:
    page = on_canvas(digits[0], 100, (300, 200), (40, 50))
    dark_on_light = grey(page)
    assert dark_ink(dark_on_light)
    assert not dark_ink(1 - dark_on_light)
    (a,) = load_digits(png(page))
    (b,) = load_digits(png(Image.fromarray(255 - np.asarray(page))))
    assert similarity(a, b)[0] < 0.01, "both polarities give the same prepared digit"


def test_uneven_lighting_and_paper_texture(digits: np.ndarray) -> None:
    """A digit on paper lit from one side (white to mid-grey) with grain reads like the clean page."""
    page = np.asarray(on_canvas(digits[2], 140, (400, 300), (200, 80)), np.float64)
    light = np.linspace(1.0, 0.45, page.shape[1])[None, :]
    grain = np.random.default_rng(0).normal(0, 6, page.shape)
    shaded = np.clip(page * light + grain, 0, 255).astype(np.uint8)
    (clean,) = load_digits(png(np.asarray(page, np.uint8)))
    (prepared,) = load_digits(png(shaded))
    difference, correlation = similarity(prepared, clean)
    assert difference < 0.05 and correlation > 0.9, (difference, correlation)


def test_transparent_background_rgba(digits: np.ndarray) -> None:
    """Black strokes on a transparent background (whose hidden colour is also black) are found."""
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., 3] = np.asarray(Image.fromarray(digits[3]).resize((140, 140)))
    (prepared,) = load_digits(png(Image.fromarray(rgba, "RGBA")))
    assert similarity(prepared, digits[3])[1] > 0.85


def test_mnist_digits_pass_unchanged(digits: np.ndarray) -> None:
    for digit in digits[:5]:
        assert np.array_equal(load_digits(png(digit))[0], digit)


def test_blank_and_near_blank_images_are_errors() -> None:
    noise = np.random.default_rng(0).normal(200, 3, (300, 300)).clip(0, 255).astype(np.uint8)
    for image in (np.full((64, 64), 255, np.uint8), np.zeros((500, 400), np.uint8), noise):
        with pytest.raises(ImageError, match="no digit found"):
            load_digits(png(image))


def test_bad_files_raise_one_line_errors(digits: np.ndarray) -> None:
    bad = broken_files(digits[0])
    expected = {
        "not-an-image": (NotAnImageError, "not an image format"),
        "truncated": (ImageError, "corrupt or truncated"),
        "empty": (ImageError, "empty file"),
        "zero-size": (ImageError, "corrupt PNG image"),
        "huge": (ImageTooLargeError, "too many pixels"),
        "bomb": (ImageTooLargeError, "too many pixels"),
        "blank": (ImageError, "no digit found"),
    }
    for name, (kind, message) in expected.items():
        with pytest.raises(kind, match=message) as caught:
            load_digits(bad[name])
        assert "\n" not in str(caught.value)
    assert not isinstance(caught.value, (NotAnImageError, ImageTooLargeError))


def test_size_limit_refuses_before_decoding() -> None:
    """The limit is on the bytes the decoded pixels take, so it depends on the mode: the same 7000x7000 PNG is
    read in grey (49 MB) and refused in RGBA (196 MB) from its header alone, before any pixel is decoded."""
    with pytest.raises(ImageTooLargeError, match=r"7000x7000 RGBA: too many pixels to read \(decoding takes 187 MiB"):
        open_image(png_header_only(7000, 7000, colour_type=6))
    with pytest.raises(ImageError, match="corrupt or truncated") as caught:
        open_image(png_header_only(7000, 7000))
    assert not isinstance(caught.value, ImageTooLargeError), "within the limit: decoding starts (and finds no data)"
    assert decoded_bytes("1", (4000, 4000)) == decoded_bytes("L", (4000, 4000)) == 16_000_000
    assert decoded_bytes("I;16", (100, 100)) == 20_000 and decoded_bytes("RGB", (100, 100)) == 40_000
    with pytest.raises(ImageTooLargeError, match="limit 1 MiB"):
        load_digits(png(Image.new("L", (1100, 1000))), max_bytes=2**20)


def test_pillows_decompression_bomb_warning_is_silenced_only_where_it_arises() -> None:
    """An image between Pillow's pixel limit and twice it makes Pillow warn; open_image judges it by its cost instead,
    without a warning, and leaves the process's warning filters as they were (no global filter on import)."""
    header = png_header_only(10_000, 10_000)  # 100 megapixels: above Pillow's 89, below twice that
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        image = open_image(header, max_bytes=2**30, load=False)
        assert warnings.filters == filters
    assert image.size == (10_000, 10_000) and not caught, [str(w.message) for w in caught]


def test_threads_opening_images_at_once_leave_the_warning_filters_as_they_were() -> None:
    """catch_warnings swaps the process's filter list: two threads inside it at once can restore each other's copy
    and leave Pillow's warning silenced for good (the server and `predict` decode in thread pools)."""
    data, interval = png(Image.new("L", (28, 28))), sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that a race shows
    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(4) as pool:
            warnings.resetwarnings()  # not even pyproject.toml's filter for Pillow's warning
            for _ in range(5):
                list(pool.map(lambda _: open_image(data), range(1000)))
                assert warnings.filters == []
    finally:
        sys.setswitchinterval(interval)


def test_hostile_transparent_png_is_refused_and_large_photos_are_read(digits: np.ndarray) -> None:
    """A 7000x7000 RGBA PNG, all transparent but one stroke (about 200 KB), is refused by the default limit
    and read when the limit allows; a 24-megapixel JPEG is reduced while decoding and a 12-megapixel PNG is
    reduced a band at a time, and both read like the small page."""
    stroke = Image.new("RGBA", (7000, 7000), (0, 0, 0, 0))
    ImageDraw.Draw(stroke).line([(3000, 1500), (3400, 5500)], fill=(20, 20, 20, 255), width=300)
    hostile = png(stroke)
    assert len(hostile) < 400_000
    with pytest.raises(ImageTooLargeError, match="too many pixels"):
        load_digits(hostile)
    (read,) = load_digits(hostile, max_bytes=256 * 2**20)
    assert read.max() == 255 and read[:, :8].max() == 0 and read[:, 20:].max() == 0, "a vertical bar in the middle"
    small = on_canvas(digits[0], 100, (400, 300), (150, 100))
    (expected,) = load_digits(png(small))
    for size, kind in (((6000, 4500), "JPEG"), ((4000, 3000), "PNG")):
        buffer = io.BytesIO()
        small.resize(size, Image.Resampling.BILINEAR).convert("RGB").save(buffer, kind)
        (got,) = load_digits(buffer.getvalue())
        assert similarity(got, expected)[1] > 0.95, kind


def test_exif_orientation_is_applied_after_reduction(digits: np.ndarray) -> None:
    """A page stored on its side with EXIF orientation 6 (rotate 90 degrees clockwise to view) reads as upright."""
    page = on_canvas(digits[0], 300, (1600, 1200), (600, 400))
    (upright,) = load_digits(png(page))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    page.transpose(Image.Transpose.ROTATE_90).save(buffer, "PNG", exif=exif)
    (turned,) = load_digits(buffer.getvalue())
    assert similarity(turned, upright)[1] > 0.95


def test_several_digits_read_left_to_right(digits: np.ndarray) -> None:
    page = Image.new("L", (700, 260), 255)
    for i, digit in enumerate(digits[:3]):
        page.paste(Image.fromarray(255 - digit).resize((180, 180), Image.Resampling.BILINEAR), (30 + i * 220, 40))
    prepared = load_digits(png(page), multi_digit=True)
    assert len(prepared) == 3
    for got, digit in zip(prepared, digits[:3], strict=True):
        assert similarity(got, digit)[1] > 0.85


def test_components_overlapping_horizontally_are_one_digit() -> None:
    bar = (slice(0, 5), slice(10, 30))
    body = (slice(8, 40), slice(8, 32))
    other = (slice(5, 40), slice(45, 70))
    slightly = (slice(5, 40), slice(66, 90))
    assert [sorted(g) for g in digit_groups([bar, body, other, slightly])] == [[1, 2], [3], [4]]


def test_deskew_straightens_a_slanted_digit(digits: np.ndarray) -> None:
    one = digits[2].astype(np.float32) / 255
    slanted = ndimage.affine_transform(one, np.array([[1.0, 0.0], [0.4, 1.0]]), offset=(0, -5.6), order=1)

    def slant(image: np.ndarray) -> float:
        rows, cols = np.mgrid[:28, :28]
        total = image.sum()
        r, c = (rows * image).sum() / total, (cols * image).sum() / total
        return float(((rows - r) * (cols - c) * image).sum() / ((rows - r) ** 2 * image).sum())

    assert abs(slant(slanted)) > 0.3
    assert abs(slant(deskew(slanted))) < 0.05
