"""Predictors: load a model (a run, a .keras file or an ensemble) once, then predict fast.

Two runtimes give the same probabilities. `Predictor` runs the Keras model (loaded in safe mode) through the
concrete function of a compiled forward pass instead of `model.predict`, whose per-call set-up costs
milliseconds. `fast_predictor` serves a command line that starts, reads a folder and exits: TensorFlow's
start-up alone takes seconds, so it runs an ONNX copy of the model in onnxruntime. The copy is converted
once, checked and cached by onnx_cache. Image files are decoded and prepared in a thread pool and fed to the
model in batches.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import verdicts as calib
from . import onnx_cache
from .verdicts import FALLBACK, Calibration
from .errors import ImageError, RunError
from .image_files import load_file
from .preprocess import scale
from .runs import CONFIG, METRICS, ensemble_members, load_model, model_file, read_json
from .utils import import_tensorflow_quietly

TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class DefaultCalibrationWarning(UserWarning):
    """A model without stored calibration (trained before it existed): its verdicts use defaults."""


def single_threaded_ops() -> None:
    """Run each TensorFlow op on one thread: for a server's small batches this halves the CPU per call
    (no hand-off between threads). Takes effect only before TensorFlow's first op."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow has already started in this process: its threads stay as they are
        pass


class Predictor:
    """A model loaded once with a compiled forward pass; safe to call from several threads."""

    _top_two: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None = None  # see _assess

    def __init__(self, path: Path, batch_size: int = 1024) -> None:
        import_tensorflow_quietly()
        import tensorflow as tf

        self.model = load_model(path)
        model = self.model
        reader = with_features(model)
        signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)]

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

        probabilities = tf.function(lambda x: model(x, training=False), input_signature=signature)
        both = tf.function(lambda x: reader(x, training=False), input_signature=signature)
        only = probabilities.get_concrete_function()
        with_penultimate = both.get_concrete_function()

        def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            out = with_penultimate(tf.constant(x))
            return (out[0].numpy(), out[1].numpy()) if isinstance(out, list | tuple) else (out.numpy(), None)

        def top_two(x: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
            out = compiled(temperature)(tf.constant(x)).numpy()
            return out[:, :-1], out[:, -1]

        self._setup(path, batch_size, model.input_shape[1:], model.output_shape[-1])
        self.architecture, self.parameters = model.name, int(model.count_params())
        self._both: Forward = forward
        self._probabilities: Callable[[np.ndarray], np.ndarray] = lambda x: only(tf.constant(x)).numpy()
        self._top_two = top_two if len(self.class_names) > 2 else None
        self._forward(np.zeros((1, *self.input_shape), np.float32))
        self._assess(np.zeros((1, *self.input_shape), np.float32), self.calibration.temperature)

    def _setup(self, path: Path, batch_size: int, input_shape: Sequence[int], classes: int) -> None:
        folder = path if path.is_dir() else path.parent
        self.folder = folder
        self.batch_size = batch_size
        self.input_shape = tuple(int(d) for d in input_shape)
        self.meta: dict[str, Any] = read_json(folder / CONFIG, missing_ok=True) if path.is_dir() else {}
        self.metrics: dict[str, Any] = read_json(folder / METRICS, missing_ok=True) if path.is_dir() else {}
        self.name = path.name if path.is_dir() else path.stem
        names = self.meta.get("meta", {}).get("class_names")
        self.class_names = tuple(names or (str(i) for i in range(int(classes))))
        self.architecture = str(self.meta.get("model", "unknown"))
        self.parameters = int(self.meta.get("meta", {}).get("parameters", 0))
        stored = calib.load(folder) if path.is_dir() else None
        self.calibration: Calibration = stored or FALLBACK
        if stored is None:
            warnings.warn(
                DefaultCalibrationWarning(
                    f"{path} has no stored calibration (trained before verdicts existed): its verdicts use defaults;"
                    f" `mnist-classifier calibrate {path}` fits them"
                ),
                stacklevel=3,
            )

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self._probabilities(x)

    def _assess(self, x: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """A batch's probabilities scaled by `temperature` (1: the model's own) and distances (higher: less like
        a digit; always of the model's own probabilities); the penultimate features are computed only for a score
        that needs them."""
        if self.calibration.score == "top_two" and self._top_two is not None:
            return self._top_two(x, temperature)
        if self.calibration.score == "mahalanobis":
            probs, features = self._both(x)
        else:
            probs, features = self._probabilities(x), None
        return calib.temperature_scaled(probs, temperature), self.calibration.distance(probs, features)

    def _checked(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == len(self.input_shape):
            images = images[None]
        if images.shape[1:] != self.input_shape:
            raise ImageError(f"expected images of shape {self.input_shape}, got {images.shape[1:]}")
        if images.dtype == np.uint8:  # in [0, 1] once scaled: nothing to check
            return scale(images)
        x = images.astype(np.float32)
        if not (x.min(initial=0) >= 0 and x.max(initial=0) <= 1):  # NaN fails both comparisons
            raise ImageError("pixel values must be finite and within [0, 1] (or uint8 0..255)")
        return x

    def features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw probabilities and penultimate features (None where the model has none to give) of images."""
        x = self._checked(images)
        parts = [self._both(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        if not parts:
            return np.zeros((0, len(self.class_names)), np.float32), None
        features = None if parts[0][1] is None else np.concatenate([f for _, f in parts])
        return np.concatenate([p for p, _ in parts]), features

    def assess(self, images: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, classes) scaled by `temperature` (1: the model's own) and distances (N,) of images;
        see `probabilities` for what images may be."""
        x = self._checked(images)
        if 0 < len(x) <= self.batch_size:
            return self._assess(x, temperature)
        parts = [self._assess(x[i : i + self.batch_size], temperature) for i in range(0, len(x), self.batch_size)]
        if not parts:
            return np.zeros((0, len(self.class_names)), np.float32), np.zeros(0)
        return np.concatenate([p for p, _ in parts]), np.concatenate([d for _, d in parts])

    def judge(self, images: np.ndarray, reject: bool = True, calibration: Calibration | None = None) -> Judgement:
        """Calibrated probabilities, typicality and a verdict for each image; `calibration` replaces the stored one
        (other thresholds), and without `reject` every reading is a digit (the raw argmax)."""
        calibration = calibration or self.calibration
        probs, distance = self.assess(images, calibration.temperature)
        return judgement(probs, distance, calibration, reject)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The model's own class probabilities (N, classes), before calibration, for images (N, H, W): uint8 0..255
        or float 0..1."""
        x = self._checked(images)
        out = [self._forward(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def top(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k most probable classes of one image's probabilities, most probable first."""
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [(self.class_names[i], float(probabilities[i])) for i in order]

    def read_files(
        self,
        paths: Sequence[Path],
        prepared: bool = True,
        multi_digit: bool = False,
        deskewing: bool = False,
        chunk: int = 2048,
        reject: bool = True,
        calibration: Calibration | None = None,
    ) -> Iterator[Reading]:
        """Each file's digits and probabilities, in order; an unreadable file gives a Reading with its error."""
        workers = min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(paths), chunk):
                batch = paths[start : start + chunk]
                step = max(1, len(batch) // (workers * 4))
                parts = pool.map(
                    lambda part: [load_file(p, prepared, multi_digit, deskewing) for p in part],
                    [batch[i : i + step] for i in range(0, len(batch), step)],
                )
                loaded = [item for part in parts for item in part]
                yield from self.readings(batch, loaded, reject, calibration)

    def readings(
        self,
        paths: Sequence[Path],
        loaded: Sequence[list[np.ndarray] | str],
        reject: bool = True,
        calibration: Calibration | None = None,
    ) -> Iterator[Reading]:
        images = [image for item in loaded if not isinstance(item, str) for image in item]
        judged = self.judge(
            np.stack(images) if images else np.zeros((0, *self.input_shape), np.uint8), reject, calibration
        )
        at = 0
        for path, item in zip(paths, loaded, strict=True):
            if isinstance(item, str):
                yield Reading(str(path), np.zeros((0, *self.input_shape), np.uint8), judged.probabilities[:0], item)
            else:
                part = slice(at, at + len(item))
                yield Reading(str(path), np.stack(item), judged.probabilities[part], None, judged.verdicts[part])
                at += len(item)


class OnnxPredictor(Predictor):
    """A Predictor that runs an ONNX copy of the model in onnxruntime: it starts without TensorFlow."""

    def __init__(self, path: Path, onnx_file: Path, batch_size: int = 1024) -> None:
        forward, input_shape, classes = onnx_cache.session(onnx_file)
        self._setup(path, batch_size, input_shape, classes)
        self._both = forward
        self._probabilities = lambda x: forward(x)[0]


class EnsemblePredictor(Predictor):
    """The mean of its members' probabilities, over the one-pixel shifted views of each image too when the
    ensemble was built with test-time augmentation: what `ensemble` and `train --ensemble` evaluated."""

    def __init__(self, path: Path, members: Sequence[Predictor]) -> None:
        first = members[0]
        self._setup(path, first.batch_size, first.input_shape, len(first.class_names))
        self.members = list(members)
        self.architecture = f"ensemble of {len(members)} {first.architecture}"
        self.parameters = sum(member.parameters for member in members)
        self.tta = bool(self.meta.get("tta"))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return ensemble_probabilities(self.members, x, self.tta)

    def _assess(self, x: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean probabilities (scaled by `temperature`), and as distance the mean of the members'
        atypicality (1 - typicality)."""
        assessed = [member._assess(x) for member in self.members]
        probs = self._forward(x) if self.tta else np.mean([p for p, _ in assessed], axis=0)
        atypical = [1.0 - m.calibration.typicality(d) for m, (_, d) in zip(self.members, assessed, strict=True)]
        distance = np.mean(atypical, axis=0)
        if self.calibration.score != "members":
            distance = self.calibration.distance(probs, None)
        return calib.temperature_scaled(probs, temperature), distance


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """The images and copies shifted by one pixel up, down, left and right (MNIST's borders are empty)."""
    return [np.roll(images, shift, axis=(1, 2)) for shift in TTA_SHIFTS]


def ensemble_probabilities(predictors: Sequence[Predictor], images: np.ndarray, tta: bool = False) -> np.ndarray:
    """The mean over members (and, with `tta`, over shifted views) of the class probabilities."""
    views = tta_views(images) if tta else [images]
    return np.mean([predictor.probabilities(view) for predictor in predictors for view in views], axis=0)


def load_predictor(path: Path, fast: bool = False) -> Predictor:
    """A run's, a .keras file's or an ensemble folder's predictor; `fast` starts it without TensorFlow
    where it can (see fast_predictor)."""
    members = ensemble_members(path)
    if members is None:
        return fast_predictor(path) if fast else Predictor(path)
    if not members:
        raise RunError(f"{path}: an ensemble folder whose config.json lists no members; build it again")
    loaded = []
    for member in members:
        try:
            loaded.append(fast_predictor(member) if fast else Predictor(member))
        except RunError as e:
            raise RunError(f"ensemble member {member}: {e}") from None
    if len({(p.input_shape, p.class_names) for p in loaded}) > 1:
        raise RunError(f"{path}: its members differ in input shape or classes; build the ensemble again")
    return EnsemblePredictor(path, loaded)


def fast_predictor(path: Path, batch_size: int = 1024) -> Predictor:
    """The quickest Predictor to start for a model: its cached ONNX copy in onnxruntime when there is one;
    otherwise the Keras model, converting it to ONNX for next time (a model that cannot be converted,
    or whose copy disagrees with it, keeps running in Keras)."""
    cached = onnx_cache.location(model_file(path))
    if cached.is_file():
        try:
            return OnnxPredictor(path, cached, batch_size)
        except Exception:  # a damaged cache entry: convert again
            cached.unlink(missing_ok=True)
    predictor = Predictor(path, batch_size)
    onnx_cache.convert(with_features(predictor.model), predictor.features, cached)
    return predictor


def with_features(model: Any) -> Any:
    """The model with its penultimate features (the last layer's input) as a second output, for the Mahalanobis
    score; the model itself when they cannot be had."""
    import keras

    try:
        reader = keras.Model(model.input, [model.outputs[0], model.layers[-1].input], name=model.name)
    except (AttributeError, ValueError, TypeError):
        return model
    reader(np.zeros((1, *model.input_shape[1:]), np.float32))  # called once: Keras exports only a called model
    return reader


@dataclass
class Judgement:
    """Images judged: calibrated probabilities (N, classes), distances (N,) and verdicts."""

    probabilities: np.ndarray
    distance: np.ndarray
    verdicts: list[str]
    calibration: Calibration

    @property
    def typicality(self) -> np.ndarray:
        """Each image's typicality in [0, 1] (see Calibration.typicality)."""
        return self.calibration.typicality(self.distance)


def judgement(probs: np.ndarray, distance: np.ndarray, calibration: Calibration, reject: bool = True) -> Judgement:
    """The judgement of readings from their calibrated probabilities (`Predictor.assess` with the calibration's
    temperature) and distances."""
    if not reject:
        return Judgement(probs, distance, ["digit"] * len(probs), calibration)
    verdicts = calib.verdicts(probs.max(axis=1), distance, calibration)
    return Judgement(probs, distance, verdicts, calibration)


@dataclass
class Reading:
    """What the model read in one image: the 28x28 arrays it was fed, their calibrated probabilities and verdicts,
    or an error."""

    source: str
    images: np.ndarray
    probabilities: np.ndarray
    error: str | None = None
    verdicts: list[str] | None = None

    @property
    def indices(self) -> list[int]:
        return [int(i) for i in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> float:
        """The probability of the whole reading: the product of its digits' top probabilities."""
        return float(np.prod(self.probabilities.max(axis=1)))
