"""The ways of running a model on a batch of checked images: a compiled Keras pass, ONNX Runtime, an ensemble's members.

Each back-end gives a batch's probabilities, its penultimate features where the model has them, and its assessment
(calibrated probabilities and distances) under a calibration; `inference.Predictor` adds the input checks, batching
and verdicts around whichever one runs the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import onnx_cache
from . import verdicts as calib
from .verdicts import Calibration

if TYPE_CHECKING:
    import keras

    from .inference import Predictor

TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class Backend(Protocol):
    """One way of running a model on float32 batches in [0, 1] of shape (N, *input_shape)."""

    input_shape: tuple[int, ...]
    classes: int
    architecture: str | None  # None: the run's config.json names it
    parameters: int | None
    runtime: str  # what runs the model, in what precision: "onnxruntime float32"

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The model's own class probabilities (N, classes)."""
        ...

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The probabilities and the penultimate features (None where the model has none to give)."""
        ...

    def assess(self, x: np.ndarray, temperature: float, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities scaled by `temperature` and the distances (higher: less like a digit) that
        `calibration`'s score gives, always of the model's own probabilities."""
        ...


def assessed(
    backend: Backend, x: np.ndarray, temperature: float, calibration: Calibration
) -> tuple[np.ndarray, np.ndarray]:
    """Backend.assess in NumPy: the penultimate features are computed only for a score that needs them."""
    if calibration.score == "mahalanobis":
        probs, features = backend.features(x)
    else:
        probs, features = backend.probabilities(x), None
    return calib.temperature_scaled(probs, temperature), calibration.distance(probs, features)


class KerasBackend:
    """A Keras model run through concrete functions of its compiled forward pass instead of `model.predict`, whose
    per-call set-up costs milliseconds; safe to call from several threads."""

    def __init__(self, model: keras.Model) -> None:
        import tensorflow as tf

        self.model = model
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        self.classes = int(model.output_shape[-1])
        self.architecture: str | None = model.name
        self.parameters: int | None = int(model.count_params())
        self.runtime = "keras (tensorflow) float32"
        self.reader = reader = with_features(model)
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]
        self._only = tf.function(lambda x: model(x, training=False), input_signature=signature).get_concrete_function()
        both = tf.function(lambda x: reader(x, training=False), input_signature=signature)
        self._both = both.get_concrete_function()

        def scored(x: tf.Tensor, temperature: float) -> tf.Tensor:
            """The probabilities scaled by `temperature` and the top_two distance (of the model's own) as an extra
            column, in one compiled pass: NumPy after TensorFlow's call costs more than this arithmetic."""
            probs = model(x, training=False)
            distance = 1.0 - tf.reduce_sum(tf.math.top_k(probs, 2).values, axis=1, keepdims=True)
            if temperature != 1.0:
                powered = tf.pow(probs, 1.0 / temperature)
                probs = powered / tf.reduce_sum(powered, axis=1, keepdims=True)
            return tf.concat([probs, distance], 1)

        @functools.lru_cache(maxsize=4)  # one graph per temperature in use: the stored one, and 1 (raw)
        def compiled(temperature: float) -> Callable[[tf.Tensor], tf.Tensor]:
            graph = tf.function(lambda x: scored(x, temperature), input_signature=signature)
            return graph.get_concrete_function()

        self._compiled = compiled
        self.probabilities(np.zeros((1, *self.input_shape), np.float32))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return self._only(tf.constant(x)).numpy()

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import tensorflow as tf

        out = self._both(tf.constant(x))
        return (out[0].numpy(), out[1].numpy()) if isinstance(out, list | tuple) else (out.numpy(), None)

    def assess(self, x: np.ndarray, temperature: float, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        """Backend.assess; the top_two score (of more than two classes) inside the compiled pass."""
        if calibration.score != "top_two" or self.classes <= 2:
            return assessed(self, x, temperature, calibration)
        import tensorflow as tf

        out = self._compiled(temperature)(tf.constant(x)).numpy()
        return out[:, :-1], out[:, -1]


class OnnxBackend:
    """An ONNX copy of a model run in onnxruntime: it starts without TensorFlow, and reads one image in a tenth of the
    time the compiled Keras pass takes."""

    architecture: str | None = None
    parameters: int | None = None

    def __init__(self, onnx_file: Path, precision: str = "float32", threads: int | None = None) -> None:
        self._forward = onnx_cache.Session(onnx_file, threads)
        self.input_shape, self.classes = self._forward.input_shape, self._forward.classes
        self.runtime = f"onnxruntime {precision}"

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self._forward.probabilities(x)

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._forward(x)

    def assess(self, x: np.ndarray, temperature: float, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        return assessed(self, x, temperature, calibration)


class EnsembleBackend:
    """The mean of its members' probabilities, over the one-pixel shifted views of each image too with `tta`
    (test-time augmentation): what `ensemble` and `train --ensemble` evaluated."""

    def __init__(self, members: Sequence[Predictor], tta: bool) -> None:
        first = members[0]
        self.members = list(members)
        self.tta = tta
        self.input_shape = first.input_shape
        self.classes = len(first.class_names)
        self.architecture: str | None = f"ensemble of {len(members)} {first.architecture}"
        self.parameters: int | None = sum(member.parameters for member in members)
        self.runtime = ", ".join(sorted({member.runtime for member in members}))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return ensemble_probabilities(self.members, x, self.tta)

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.probabilities(x), None

    def assess(self, x: np.ndarray, temperature: float, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean probabilities (scaled by `temperature`); with the `members` score, the distance is the
        mean of the members' atypicality (1 - typicality) under their own calibrations."""
        if self.tta and calibration.score != "members":  # nothing of the members' own assessments would be used
            probs = self.probabilities(x)
            return calib.temperature_scaled(probs, temperature), calibration.distance(probs, None)
        assessed = [member.assess(x) for member in self.members]
        probs = self.probabilities(x) if self.tta else np.mean([p for p, _ in assessed], axis=0)
        if calibration.score == "members":
            atypical = [1.0 - m.calibration.typicality(d) for m, (_, d) in zip(self.members, assessed, strict=True)]
            distance = np.mean(atypical, axis=0)
        else:
            distance = calibration.distance(probs, None)
        return calib.temperature_scaled(probs, temperature), distance


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """The images and copies shifted by one pixel up, down, left and right (MNIST's borders are empty)."""
    return [np.roll(images, shift, axis=(1, 2)) for shift in TTA_SHIFTS]


def ensemble_probabilities(predictors: Sequence[Predictor], images: np.ndarray, tta: bool = False) -> np.ndarray:
    """The mean over members (and, with `tta`, over shifted views) of the class probabilities."""
    views = tta_views(images) if tta else [images]
    return np.mean([predictor.probabilities(view) for predictor in predictors for view in views], axis=0)


def with_features(model: Any) -> Any:
    """The model with its penultimate features (the last layer's input) as a second output, for the Mahalanobis
    score; the model itself when the last layer has no single input to give."""
    import keras

    try:
        last = model.layers[-1].input
        if len(model.outputs) != 1 or not isinstance(last, keras.KerasTensor):  # several outputs or last inputs
            return model
        reader = keras.Model(model.input, [model.outputs[0], last], name=model.name)
    except (AttributeError, ValueError):  # no graph to read (a subclassed model), or a last layer outside it
        return model
    reader(np.zeros((1, *model.input_shape[1:]), np.float32))  # called once: Keras exports only a called model
    return reader
