"""Keras layers of our own that models carry inside them; registered, so saved models load in safe mode."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .resample import sample_rows


@keras.saving.register_keras_serializable(package="mnist_classifier")
class Deskew(keras.layers.Layer):
    """Straighten each digit of a batch (B, H, W) in [0, 1]: shear its rows sideways so that its principal axis
    is vertical, about its centre of mass (preprocess.deskew's transform, inside the model). A blank image
    passes unchanged."""

    def call(self, images: Any) -> Any:
        shape = tf.shape(images)
        rows = tf.cast(tf.range(shape[1]), images.dtype)[None, :, None]
        cols = tf.cast(tf.range(shape[2]), images.dtype)[None, None, :]

        total = tf.maximum(tf.reduce_sum(images, axis=(1, 2), keepdims=True), 1e-6)

        def mean(values: tf.Tensor) -> tf.Tensor:
            return tf.reduce_sum(values * images, axis=(1, 2), keepdims=True) / total

        row, col = mean(rows), mean(cols)
        variance = mean((rows - row) ** 2)
        skew = tf.where(variance > 1e-6, mean((rows - row) * (cols - col)) / tf.maximum(variance, 1e-6), 0.0)
        return tf.clip_by_value(sample_rows(images, cols + skew * (rows - row)), 0.0, 1.0)


def deskewed(images: np.ndarray, batch: int = 8192) -> np.ndarray:
    """`images` (N, H, W) in [0, 1] straightened by the Deskew layer, a batch at a time: the same pixels the model's
    own layer gives them."""
    layer = Deskew()
    parts = [np.asarray(layer(images[i : i + batch])) for i in range(0, len(images), batch)]
    return np.concatenate(parts) if parts else images
