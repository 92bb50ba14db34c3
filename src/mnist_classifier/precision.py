"""The precision a run trains in (float32, or bfloat16 where the CPU has the units and it measured faster), and its
model saved in float32 for every runtime."""

from __future__ import annotations

import keras

from . import hardware
from .config import BF16_FASTER, TrainConfig


def chosen_precision(config: TrainConfig) -> tuple[str, str | None]:
    """The precision training uses, and a note when the CPU lacks bf16 units: "auto" takes bfloat16 only where the CPU
    has them and bfloat16 measured faster for the model (config.BF16_FASTER); float32 elsewhere, never an error."""
    native = hardware.has_bf16()
    if config.precision == "bfloat16":
        return "bfloat16", None if native else "training in bfloat16 without bf16 units: emulated, slower than float32"
    if config.precision == "float32":
        return "float32", None
    if not native:
        return "float32", "training in float32: this CPU has no bf16 units"
    return ("bfloat16" if BF16_FASTER.get(config.model, False) else "float32"), None


def in_float32(model: keras.Model) -> keras.Model:
    """The model to save for inference: a bfloat16-trained one rebuilt in float32 with its (float32) weights, so that
    every runtime loads it (onnxruntime refuses bfloat16 convolutions) and its predictions need no bf16 units."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy
