"""Resampling of image batches at float coordinates: bilinear (augmentation) and along rows (the Deskew layer)."""

from __future__ import annotations

import tensorflow as tf


# Not keras.ops.image.map_coordinates: 2.3x slower (12.2 vs 5.4 ms, 128 images, when Deskew used this), 1 ulp off:
# seeded runs change
def sample_bilinear(images: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor) -> tf.Tensor:
    """images (B, H, W) read at float coordinates (B, H, W); outside the image reads 0."""
    batch, height, width = tf.unstack(tf.shape(images))
    flat = tf.reshape(images, [-1])
    y0, x0 = tf.floor(ys), tf.floor(xs)
    out = tf.zeros_like(ys)
    base = tf.reshape(tf.range(batch) * height * width, (-1, 1, 1))
    for dy in (0.0, 1.0):
        for dx in (0.0, 1.0):
            y, x = y0 + dy, x0 + dx
            weight = (1 - tf.abs(ys - y)) * (1 - tf.abs(xs - x))
            inside = (
                (y >= 0) & (y <= tf.cast(height - 1, tf.float32)) & (x >= 0) & (x <= tf.cast(width - 1, tf.float32))
            )
            yi = tf.clip_by_value(tf.cast(y, tf.int32), 0, height - 1)
            xi = tf.clip_by_value(tf.cast(x, tf.int32), 0, width - 1)
            values = tf.gather(flat, base + yi * width + xi)
            out += tf.where(inside, weight * values, 0.0)
    return out


def sample_rows(images: tf.Tensor, xs: tf.Tensor) -> tf.Tensor:
    """images (B, H, W) read along each row at float columns xs (B, H, W); outside the image reads 0. The same values
    as sample_bilinear at ys = each row's index (its other two taps weigh exactly 0), in half the gathers."""
    batch, height, width = tf.unstack(tf.shape(images))
    flat = tf.reshape(images, [-1])
    x0 = tf.floor(xs)
    out = tf.zeros_like(xs)
    base = tf.reshape(tf.range(batch * height) * width, (batch, height, 1))
    for dx in (0.0, 1.0):
        x = x0 + dx
        inside = (x >= 0) & (x <= tf.cast(width - 1, tf.float32))
        xi = tf.clip_by_value(tf.cast(x, tf.int32), 0, width - 1)
        out += tf.where(inside, (1 - tf.abs(xs - x)) * tf.gather(flat, base + xi), 0.0)
    return out
