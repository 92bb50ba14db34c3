"""A user's image files: find them in the paths given, and read each into the digit arrays a model takes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import ImageError
from .preprocess import load_digits

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


def load_file(path: Path, prepared: bool, multi_digit: bool, deskewing: bool) -> list[np.ndarray] | str:
    """A file's digit arrays, or the one-line reason it cannot be read."""
    try:
        return load_digits(path.read_bytes(), prepared, multi_digit, deskewing)
    except OSError as e:
        return f"cannot read the file ({e.strerror or type(e).__name__})"
    except ImageError as e:
        return str(e)


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
