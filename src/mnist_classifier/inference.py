"""Predictors: load a model (a run, a .keras file or an ensemble) once, then predict fast.

Two runtimes give the same probabilities. `Predictor` runs the Keras model (loaded in safe mode) through the
concrete function of a compiled forward pass instead of `model.predict`, whose per-call set-up costs
milliseconds. `fast_predictor` serves a command line that starts, reads a folder and exits: TensorFlow's
start-up alone takes seconds, so it runs an ONNX copy of the model in onnxruntime. The copy is converted
once, checked and cached by onnx_cache. Image files are decoded and prepared in a thread pool and fed to the
model in batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import onnx_cache
from .errors import ImageError, RunError
from .image_files import load_file
from .preprocess import scale
from .runs import CONFIG, METRICS, ensemble_members, load_model, model_file, read_json
from .utils import import_tensorflow_quietly

TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


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

    def __init__(self, path: Path, batch_size: int = 1024) -> None:
        import_tensorflow_quietly()
        import tensorflow as tf

        self.model = load_model(path)
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)])
        def compiled(x: tf.Tensor) -> tf.Tensor:
            return model(x, training=False)

        concrete = compiled.get_concrete_function()

        def forward(x: np.ndarray) -> np.ndarray:
            return concrete(tf.constant(x)).numpy()

        self._setup(path, batch_size, model.input_shape[1:], model.output_shape[-1])
        self.architecture, self.parameters = model.name, int(model.count_params())
        self._forward: Callable[[np.ndarray], np.ndarray] = forward
        self._forward(np.zeros((1, *self.input_shape), np.float32))

    def _setup(self, path: Path, batch_size: int, input_shape: Sequence[int], classes: int) -> None:
        folder = path if path.is_dir() else path.parent
        self.batch_size = batch_size
        self.input_shape = tuple(int(d) for d in input_shape)
        self.meta: dict[str, Any] = read_json(folder / CONFIG, missing_ok=True) if path.is_dir() else {}
        self.metrics: dict[str, Any] = read_json(folder / METRICS, missing_ok=True) if path.is_dir() else {}
        self.name = path.name if path.is_dir() else path.stem
        names = self.meta.get("meta", {}).get("class_names")
        self.class_names = tuple(names or (str(i) for i in range(int(classes))))
        self.architecture = str(self.meta.get("model", "unknown"))
        self.parameters = int(self.meta.get("meta", {}).get("parameters", 0))

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
                yield from self.readings(batch, loaded)

    def readings(self, paths: Sequence[Path], loaded: Sequence[list[np.ndarray] | str]) -> Iterator[Reading]:
        images = [image for item in loaded if not isinstance(item, str) for image in item]
        probs = self.probabilities(np.stack(images)) if images else np.zeros((0, len(self.class_names)))
        at = 0
        for path, item in zip(paths, loaded, strict=True):
            if isinstance(item, str):
                yield Reading(str(path), np.zeros((0, *self.input_shape), np.uint8), probs[:0], item)
            else:
                yield Reading(str(path), np.stack(item), probs[at : at + len(item)])
                at += len(item)


class OnnxPredictor(Predictor):
    """A Predictor that runs an ONNX copy of the model in onnxruntime: it starts without TensorFlow."""

    def __init__(self, path: Path, onnx_file: Path, batch_size: int = 1024) -> None:
        forward, input_shape, classes = onnx_cache.session(onnx_file)
        self._setup(path, batch_size, input_shape, classes)
        self._forward = forward


class EnsemblePredictor(Predictor):
    """The mean of its members' probabilities, over the one-pixel shifted views of each image too when the
    ensemble was built with test-time augmentation: what `ensemble` and `train --ensemble` evaluated."""

    def __init__(self, path: Path, members: Sequence[Predictor]) -> None:
        first = members[0]
        self._setup(path, first.batch_size, first.input_shape, len(first.class_names))
        self.members = list(members)
        self.architecture = f"ensemble of {len(members)} {first.architecture}"
        self.parameters = sum(member.parameters for member in members)
        tta = bool(self.meta.get("tta"))
        self._forward = lambda x: ensemble_probabilities(self.members, x, tta)


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
    onnx_cache.convert(predictor.model, predictor.probabilities, cached)
    return predictor


@dataclass
class Reading:
    """What the model read in one image: the 28x28 arrays it was fed and their probabilities, or an error."""

    source: str
    images: np.ndarray
    probabilities: np.ndarray
    error: str | None = None

    @property
    def indices(self) -> list[int]:
        return [int(i) for i in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> float:
        """The probability of the whole reading: the product of its digits' top probabilities."""
        return float(np.prod(self.probabilities.max(axis=1)))
