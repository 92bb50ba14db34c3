"""Image files for tests: MNIST digits written as photos would be, and broken files of every kind."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png(image: Image.Image | np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(image) if isinstance(image, np.ndarray) else image).save(buffer, "PNG")
    return buffer.getvalue()


def on_canvas(digit: np.ndarray, size: int, canvas: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """An MNIST digit scaled to size x size, dark on white, pasted at `at` on a white canvas."""
    big = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)
    page = Image.new("L", canvas, 255)
    page.paste(big, at)
    return page


def png_header_only(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG that declares width x height (8-bit grey, or RGBA with colour type 6) but holds almost no data
    (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def bomb() -> bytes:
    """A valid 1-bit PNG of 12000x12000 pixels (144 megapixels) that compresses to a few kilobytes."""
    return png(Image.new("1", (12000, 12000)))


def broken_files(digit: np.ndarray) -> dict[str, bytes]:
    """Each kind of bad image the CLI and the API must refuse with a one-line reason."""
    whole = png(digit)
    return {
        "not-an-image": b"this is a text file, not a picture\n" * 20,
        "truncated": whole[: len(whole) // 2],
        "empty": b"",
        "zero-size": png_header_only(0, 0),
        "huge": png_header_only(100_000, 100_000),
        "bomb": bomb(),
        "blank": png(np.full((200, 300), 255, np.uint8)),
    }
