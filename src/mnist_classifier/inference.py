"""Predictors: a model (a run, a .keras file or an ensemble) loaded once, judged with its calibration.

A `Predictor` composes a back-end (backends: the compiled Keras pass, ONNX Runtime, an ensemble's members) with what
every way of running a model shares: input checks, batching, calibration and verdicts. `fast_predictor` serves a
command line that starts, reads a folder and exits, and the Python API's `Run.predict`: TensorFlow's start-up alone
takes seconds and its call costs ten times onnxruntime's on one image, so they run an ONNX copy of the model in
onnxruntime, converted once, checked and cached by onnx_cache (in int8 where asked and the CPU has the units); a
bundled model runs the ONNX copy it ships, checked by its SHA-256 (bundled).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import bundled, hardware, onnx_cache
from . import verdicts as calib
from .backends import Backend, EnsembleBackend, KerasBackend, OnnxBackend
from .errors import ConfigError, ImageError, MnistClassifierError, RunError
from .preprocess import scale
from .runs import CONFIG, METRICS, ensemble_members, load_model, model_file, read_json
from .utils import import_tensorflow_quietly, set_threads
from .verdicts import FALLBACK, Calibration

PRECISIONS = ("float32", "int8")
CALIBRATION_IMAGES = 1000  # training images that set an int8 copy's activation ranges
log = logging.getLogger(__name__)


class DefaultCalibrationWarning(UserWarning):
    """A model without stored calibration (trained before it existed): its verdicts use defaults."""


class Predictor:
    """A model's back-end with the input checks, batching, calibration and verdicts around it; safe to call from
    several threads. Without a `backend`, the run's Keras model (loaded in safe mode) runs in a compiled pass."""

    def __init__(self, path: Path, batch_size: int = 1024, backend: Backend | None = None) -> None:
        if backend is None:
            import_tensorflow_quietly()
            backend = KerasBackend(load_model(path))
        self.backend = backend
        self.folder = path if path.is_dir() else path.parent
        self.batch_size = batch_size
        self.input_shape = backend.input_shape
        self.meta: dict[str, Any] = read_json(self.folder / CONFIG, missing_ok=True) if path.is_dir() else {}
        self.metrics: dict[str, Any] = read_json(self.folder / METRICS, missing_ok=True) if path.is_dir() else {}
        self.name = path.name if path.is_dir() else path.stem
        described = self.meta.get("meta", {})
        self.class_names = tuple(described.get("class_names") or (str(i) for i in range(backend.classes)))
        self.architecture = backend.architecture or str(self.meta.get("model", "unknown"))
        self.parameters = backend.parameters if backend.parameters is not None else int(described.get("parameters", 0))
        stored = calib.load(self.folder) if path.is_dir() else None
        self.calibration: Calibration = stored or FALLBACK
        if stored is None:
            warnings.warn(
                DefaultCalibrationWarning(
                    f"{path} has no stored calibration (trained before verdicts existed): its verdicts use defaults;"
                    f" `mnist-classifier calibrate {path}` fits them"
                ),
                stacklevel=2,
            )
        self.assess(np.zeros((1, *self.input_shape), np.float32), self.calibration.temperature)  # compiles its pass

    @property
    def runtime(self) -> str:
        """What runs the model, in what precision ("onnxruntime float32", "onnxruntime int8", "keras (tensorflow)
        float32"): what `GET /model` and `predict --verbose` name."""
        return self.backend.runtime

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

    def _batches(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[i : i + self.batch_size] for i in range(0, len(x), self.batch_size)]

    def features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw probabilities and penultimate features (None where the model has none to give) of images."""
        parts = [self.backend.features(batch) for batch in self._batches(self._checked(images))]
        if not parts:
            return np.zeros((0, len(self.class_names)), np.float32), None
        features = None if parts[0][1] is None else np.concatenate([f for _, f in parts])
        return np.concatenate([p for p, _ in parts]), features

    def assess(self, images: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, classes) scaled by `temperature` (1: the model's own) and distances (N,) of images (higher:
        less like a digit; always of the model's own probabilities); see `probabilities` for what images may be."""
        x = self._checked(images)
        if 0 < len(x) <= self.batch_size:
            return self.backend.assess(x, temperature, self.calibration)
        parts = [self.backend.assess(batch, temperature, self.calibration) for batch in self._batches(x)]
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
        out = [self.backend.probabilities(batch) for batch in self._batches(self._checked(images))]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)


def load_predictor(path: Path, fast: bool = False, precision: str = "float32", threads: int | None = None) -> Predictor:
    """A run's, a .keras file's or an ensemble folder's predictor; `fast` runs it in onnxruntime where it can, without
    TensorFlow once converted, in `precision`, on `threads` cores a call (see fast_predictor)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    members = ensemble_members(path)
    if members is None:
        return fast_predictor(path, precision=precision, threads=threads) if fast else Predictor(path)
    if not members:
        raise RunError(f"{path}: an ensemble folder whose config.json lists no members; build it again")
    loaded = []
    for member in members:
        try:
            loaded.append(fast_predictor(member, precision=precision, threads=threads) if fast else Predictor(member))
        except RunError as e:
            raise RunError(f"ensemble member {member}: {e}") from None
    if len({(p.input_shape, p.class_names) for p in loaded}) > 1:
        raise RunError(f"{path}: its members differ in input shape or classes; build the ensemble again")
    tta = bool(read_json(path / CONFIG, missing_ok=True).get("tta"))
    return Predictor(path, loaded[0].batch_size, EnsembleBackend(loaded, tta))


def fast_predictor(
    path: Path, batch_size: int = 1024, precision: str = "float32", threads: int | None = None
) -> Predictor:
    """The quickest Predictor to start and to call for a model: its ONNX copy in onnxruntime, converted now (in
    TensorFlow, once) when none is cached; with `precision` "int8", its int8 copy where the CPU has int8 units (see
    int8_backend). A model that cannot be converted, or whose copy disagrees with it, runs in Keras (see
    onnx_cache.convert). `threads`: the cores a call uses, in onnxruntime and in TensorFlow if it starts here
    (default: every core)."""
    shipped = bundled.shipped_onnx(path)
    cached = shipped or onnx_cache.location(model_file(path))
    copy = OnnxBackend(shipped, threads=threads) if shipped else onnx_backend(cached, threads=threads)
    if copy is None:
        if threads:
            set_threads(threads)  # starts TensorFlow quietly, on that many threads
        else:
            import_tensorflow_quietly()
        backend = KerasBackend(load_model(path))
        onnx_cache.convert(backend.reader, backend.features, cached)
        copy = onnx_backend(cached, threads=threads)
        if copy is None:
            return Predictor(path, batch_size, backend)
    if precision == "int8":
        target = onnx_cache.int8_location(onnx_cache.location(model_file(path)) if shipped else cached)
        copy = int8_backend(path, cached, target, threads) or copy
    return Predictor(path, batch_size, copy)


def onnx_backend(onnx_file: Path, precision: str = "float32", threads: int | None = None) -> OnnxBackend | None:
    """The cached copy in onnxruntime; None when there is none, or a damaged one (removed: converted again)."""
    if not onnx_file.is_file():
        return None
    try:
        return OnnxBackend(onnx_file, precision, threads)
    except RunError:
        onnx_file.unlink(missing_ok=True)
        return None


def int8_backend(path: Path, float_copy: Path, target: Path, threads: int | None = None) -> OnnxBackend | None:
    """The int8 copy of a model's float32 ONNX copy, quantized once (onnx_cache.quantize) into `target` (in the
    cache, even for a bundled model's shipped copy) with activation ranges from the run's training split; None,
    logged, where the CPU has no int8 units or the model cannot be quantized."""
    if hardware.int8_units() is None:
        log.warning("this CPU has no int8 dot-product units (VNNI, AMX): the model runs in float32")
        return None
    if not target.is_file():
        meta = read_json(path / CONFIG, missing_ok=True) if path.is_dir() else {}
        try:
            from .data import load_dataset

            data_dir = meta.get("data_dir")
            train = load_dataset(meta.get("dataset") or "mnist", Path(data_dir) if data_dir else None).x_train
        except MnistClassifierError as e:
            log.warning("no training images to calibrate an int8 copy with (%s): the model runs in float32", e)
            return None
        pick = np.sort(np.random.default_rng(0).choice(len(train), min(CALIBRATION_IMAGES, len(train)), replace=False))
        if not onnx_cache.quantize(float_copy, scale(train[pick]), target):
            return None
    return onnx_backend(target, "int8", threads)


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
