"""Keras layers of our own that models carry inside them; registered, so saved models load in safe mode."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mnist_classifier")
class Deskew(keras.layers.Layer):
    """Straighten each digit of a batch (B, H, W) in [0, 1]: shear its rows sideways so that its principal axis
    is vertical, about its centre of mass (preprocess.deskew's transform, inside the model). A blank image
    passes unchanged.

    A row moves by one shift for all its pixels, so the moments come from each row's ink and first moment, and each
    pixel is two reads of its row, padded with zeros on both sides, at the shift's whole part, weighed by its
    fraction: in onnxruntime 0.68x the time of bilinear sampling at every pixel's own column (the same pixels within
    3e-6; docs/results/inference.md)."""

    def call(self, images: Any) -> Any:
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        rows = tf.cast(tf.range(height), images.dtype)[None, :]  # (1, H)
        ink = tf.reduce_sum(images, axis=2)  # (B, H): each row's ink
        moment = tf.reduce_sum(images * tf.cast(tf.range(width), images.dtype), axis=2)  # (B, H): its column moment
        total = tf.maximum(tf.reduce_sum(ink, axis=1, keepdims=True), 1e-6)
        row = tf.reduce_sum(ink * rows, axis=1, keepdims=True) / total
        col = tf.reduce_sum(moment, axis=1, keepdims=True) / total
        rise = rows - row
        variance = tf.reduce_sum(rise * rise * ink, axis=1, keepdims=True) / total
        covariance = tf.reduce_sum(rise * (moment - col * ink), axis=1, keepdims=True) / total
        skew = tf.where(variance > 1e-6, covariance / tf.maximum(variance, 1e-6), 0.0)
        # a row moved by a whole width or more is blank: the shift is clipped there, so that W + 1 zeros either side
        # are enough padding for every read
        limit = tf.cast(width, images.dtype)
        shift = tf.clip_by_value(skew * rise, -limit, limit)  # (B, H)
        whole = tf.floor(shift)
        fraction = (shift - whole)[..., None]
        padded = tf.reshape(tf.pad(images, [[0, 0], [0, 0], [width + 1, width + 1]]), [-1])
        stride = 3 * width + 2
        start = tf.reshape(tf.range(batch * height) * stride, (batch, height)) + tf.cast(whole, tf.int32) + width + 1
        index = start[..., None] + tf.range(width)
        out = (1 - fraction) * tf.gather(padded, index) + fraction * tf.gather(padded, index + 1)
        return tf.clip_by_value(out, 0.0, 1.0)


def deskewed(images: np.ndarray, batch: int = 8192) -> np.ndarray:
    """`images` (N, H, W) in [0, 1] straightened by the Deskew layer, a batch at a time: the same pixels the model's
    own layer gives them."""
    layer = Deskew()
    parts = [np.asarray(layer(images[i : i + batch])) for i in range(0, len(images), batch)]
    return np.concatenate(parts) if parts else images
