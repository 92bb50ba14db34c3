"""The one-cycle learning-rate schedule, registered so a saved model (with its optimizer) loads in safe mode.

It is keras.optimizers.schedules.CosineDecay(peak / div, total - warmup, alpha=1 / final_div, warmup_target=peak,
warmup_steps=warmup) up to float32 rounding (2e-7 relative; tests/test_cnn.py), but that rounding moves seeded
figures (cnn fast, seed 42: 99.20% -> 99.19%), so it stays until the README's onecycle rows are re-measured."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mnist_classifier")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's one-cycle policy: a linear rise from peak/div to the peak over the first `warmup_steps`,
    then a cosine fall to peak/final_div at `total_steps` (and flat after)."""

    def __init__(
        self, peak: float, total_steps: int, warmup_steps: int, div: float = 25.0, final_div: float = 1e4
    ) -> None:
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.div = div
        self.final_div = final_div

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        start, end = self.peak / self.div, self.peak / self.final_div
        warmup = max(self.warmup_steps, 1)
        rise = start + (self.peak - start) * ops.minimum(step / warmup, 1.0)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        fall = end + (self.peak - end) * 0.5 * (1 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, rise, fall)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "div": self.div,
            "final_div": self.final_div,
        }
