"""On-the-fly data augmentation in TensorFlow: random shifts, rotations, scaling and elastic distortion
(Simard et al., 2003), applied to a whole batch with one bilinear resampling.

Randomness is stateless and keyed by (seed, step), so a seeded run sees the same augmented batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Augmentation:
    """Maximum shift (pixels), rotation (degrees), scale change (fraction) and elastic strength (alpha, pixels)
    with its smoothness (sigma, pixels); zero turns a transform off."""

    shift: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0

    @property
    def active(self) -> bool:
        return bool(self.shift or self.rotation or self.scale or self.elastic)


def gaussian_kernel(sigma: float) -> tf.Tensor:
    radius = max(1, math.ceil(2 * sigma))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-(x**2) / (2 * sigma**2))
    return kernel / tf.reduce_sum(kernel)


def smooth_noise(seed: tf.Tensor, shape: tf.Tensor, sigma: float) -> tf.Tensor:
    """Uniform noise in [-1, 1] of `shape` (batch, height, width, 2), blurred by a separable Gaussian."""
    noise = tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
    kernel = gaussian_kernel(sigma)
    size = int(kernel.shape[0])
    rows = tf.tile(tf.reshape(kernel, (size, 1, 1, 1)), (1, 1, 2, 1))
    cols = tf.tile(tf.reshape(kernel, (1, size, 1, 1)), (1, 1, 2, 1))
    noise = tf.nn.depthwise_conv2d(noise, rows, (1, 1, 1, 1), "SAME")
    return tf.nn.depthwise_conv2d(noise, cols, (1, 1, 1, 1), "SAME")


def augment(images: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Randomly transform a batch of images (B, H, W) in [0, 1]; `seed` is a shape (2,) int tensor.

    Each output pixel reads the input at the inverse affine transform of its position about the centre,
    plus a smooth random displacement when elastic distortion is on. Pixels stay within [0, 1]."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    uniform = lambda i: tf.random.stateless_uniform((batch, 1, 1), seeds[i], -1.0, 1.0)  # noqa: E731
    angle = uniform(0) * (aug.rotation * math.pi / 180)
    zoom = 1 + uniform(1) * aug.scale
    ty, tx = uniform(2) * aug.shift, uniform(3) * aug.shift
    cy = (tf.cast(height, tf.float32) - 1) / 2
    cx = (tf.cast(width, tf.float32) - 1) / 2
    grid_y, grid_x = tf.meshgrid(
        tf.range(height, dtype=tf.float32) - cy, tf.range(width, dtype=tf.float32) - cx, indexing="ij"
    )
    oy, ox = grid_y[None] - ty, grid_x[None] - tx
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    ys = cos * oy - sin * ox + cy
    xs = sin * oy + cos * ox + cx
    if aug.elastic:
        field = aug.elastic * smooth_noise(seeds[4], tf.stack([batch, height, width, 2]), aug.elastic_sigma)
        ys += field[..., 0]
        xs += field[..., 1]
    return tf.clip_by_value(sample_bilinear(images, ys, xs), 0.0, 1.0)


# Not keras.ops.image.map_coordinates: 2.3x slower (12.2 vs 5.4 ms, 128 images), 1 ulp off: seeded runs change
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
