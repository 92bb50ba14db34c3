"""Load a model once, then predict fast: a compiled TensorFlow forward function instead of
`model.predict`, whose per-call set-up costs milliseconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .errors import ImageError, RunError
from .preprocess import scale
from .schedules import OneCycle


def model_file(path: Path) -> Path:
    """The .keras file of a run directory or the file itself."""
    file = path / "model.keras" if path.is_dir() else path
    if not file.is_file():
        what = "a run directory without model.keras" if path.is_dir() else "no such file"
        raise RunError(f"{path}: {what}; give a run directory written by train or a .keras file")
    return file


def load_model(path: Path) -> keras.Model:
    """A run's (or a .keras file's) model, loaded in Keras' safe mode: no arbitrary code runs."""
    file = model_file(path)
    try:
        return keras.saving.load_model(file, custom_objects={"OneCycle": OneCycle}, safe_mode=True)
    except Exception as e:  # Keras raises many types for a corrupt or foreign file
        reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise RunError(f"{file}: not a readable Keras model ({reason})") from None


class Predictor:
    """A model loaded once with a compiled forward pass; safe to call from several threads."""

    def __init__(self, path: Path, batch_size: int = 1024) -> None:
        self.model = load_model(path)
        self.batch_size = batch_size
        self.input_shape = tuple(int(d) for d in self.model.input_shape[1:])
        config = model_file(path).parent / "config.json"
        self.meta: dict[str, Any] = json.loads(config.read_text()) if path.is_dir() and config.is_file() else {}
        classes = self.meta.get("meta", {}).get("class_names")
        self.class_names = tuple(classes or (str(i) for i in range(int(self.model.output_shape[-1]))))
        signature = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._forward = tf.function(lambda x: self.model(x, training=False), input_signature=[signature])
        self._forward(tf.zeros((1, *self.input_shape)))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for images (N, H, W): uint8 0..255 or float 0..1."""
        images = np.asarray(images)
        if images.ndim == len(self.input_shape):
            images = images[None]
        if images.shape[1:] != self.input_shape:
            raise ImageError(f"expected images of shape {self.input_shape}, got {images.shape[1:]}")
        x = scale(images) if images.dtype == np.uint8 else images.astype(np.float32)
        if not np.all(np.isfinite(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ImageError("pixel values must be finite and within [0, 1] (or uint8 0..255)")
        out = [self._forward(x[i : i + self.batch_size]).numpy() for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)
