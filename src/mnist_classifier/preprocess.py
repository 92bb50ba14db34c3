"""Pixel scaling: uint8 images to float32 in [0, 1], the study's normalisation."""

from __future__ import annotations

import numpy as np


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 to float32 0..1."""
    return images.astype(np.float32) / np.float32(255)
