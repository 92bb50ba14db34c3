"""The ONNX copy of a Keras model: converted once, checked against the original, cached under the model's SHA-256.

onnxruntime starts in a fraction of the time TensorFlow takes, so a command that starts, predicts and exits runs
the copy. A copy that cannot be made, or that disagrees with the original, is not kept: the failure is logged once
and remembered beside where the copy would be, so later commands do not pay for the conversion again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data.datasets import cache_dir
from .errors import ExportError, MnistClassifierError, RunError, WriteError, first_line
from .processes import usable_cores
from .utils import atomic_path, write_text

if TYPE_CHECKING:
    import keras

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
FAILED = ".failed"  # the suffix of the note that a model's conversion failed
CHUNK = 256  # onnxruntime reads a batch in chunks this size: their intermediates stay in cache (2.5x on the DNN)
# the graph our layers export to: part of a copy's name, so a copy made before layers.py changed is made again
CONVERSION = 2
log = logging.getLogger(__name__)


def location(model_file: Path) -> Path:
    """Where the copy of this model file is (or would be) cached."""
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    return cache_dir() / "onnx" / f"{digest}-v{CONVERSION}-features.onnx"


def runtime_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's own exceptions for a file it cannot load or run (each derives from Exception directly)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (
        state.Fail,
        state.InvalidArgument,
        state.NoSuchFile,
        state.NoModel,
        state.InvalidProtobuf,
        state.InvalidGraph,
        state.NotImplemented,
        state.RuntimeException,
        state.EngineError,
    )


class Session:
    """An onnxruntime session over float32 batches: called, the probabilities and the penultimate features (None when
    the copy has none); `probabilities` alone copies no features out. A file onnxruntime cannot load is a RunError."""

    def __init__(self, onnx_file: Path, threads: int | None = None) -> None:
        """`threads`: the cores one call uses (default: every usable core). With one, the thread does not spin
        waiting for work between calls: a server's one-image call then costs about 0.12 ms of CPU, against 0.86 ms
        with two spinning threads (the serving profile, default DNN)."""
        self._file = onnx_file
        self._cores = threads or usable_cores()
        self._runtime = self._session(self._cores)
        source, targets = self._runtime.get_inputs()[0], self._runtime.get_outputs()
        self._source = source.name
        self._names = [target.name for target in targets[:2]]
        self.input_shape = tuple(int(d) for d in source.shape[1:])
        self.classes = int(targets[0].shape[-1])

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        if threads == 1:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self._file), options, providers=ort.get_available_providers())
        except runtime_errors() as e:
            raise RunError(
                f"{self._file}: onnxruntime cannot load it ({first_line(e)}); convert the model again"
            ) from None

    @functools.cached_property
    def _chunked(self) -> tuple[Any, ThreadPoolExecutor] | None:
        """For calls of several chunks with several cores: a one-thread session whose chunks run side by side, one
        a core, made on the first such call. On 2 cores, `run.predict` on 10,000 images: 1.14x (fast CNN) and 1.15x
        (DNN) the images/s of the session's own threads splitting every op of one chunk after another, spinning
        between chunks against our Python (A/B, docs/results/inference.md); one image stays on those (the DNN: 0.10
        against 0.17 ms on one thread)."""
        if self._cores == 1:
            return None
        return self._session(1), ThreadPoolExecutor(self._cores, thread_name_prefix="onnxruntime")

    def _run(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
        if len(x) <= CHUNK:
            return self._runtime.run(names, {self._source: x})
        feeds = [{self._source: x[i : i + CHUNK]} for i in range(0, len(x), CHUNK)]
        if self._chunked is None:
            parts = [self._runtime.run(names, feed) for feed in feeds]
        else:
            session, pool = self._chunked
            parts = list(pool.map(functools.partial(session.run, names), feeds))
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self._run(x, self._names)
        return out[0], out[1] if len(out) > 1 else None

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, self._names[:1])[0]


def convert(model: keras.Model, forward: Forward, cached: Path) -> None:
    """Export `model` to ONNX at `cached`, keeping it only if its outputs on random images are within 1e-4 of
    `forward`'s. Failing here only costs speed: a conversion that fails the way conversions do (the converter
    refuses the model, onnxruntime refuses the copy, the copy disagrees, the cache cannot be written) is logged
    and remembered, and never tried again for this model; anything else is a bug and propagates."""
    failed = cached.with_suffix(FAILED)
    if failed.is_file():
        return
    images = np.random.default_rng(0).random((64, *model.input_shape[1:]), np.float32)
    try:
        with atomic_path(cached) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(tmp, format="onnx", verbose=False)
            copy = Session(tmp)
            ours, theirs = copy(images), forward(images)
            if len(ours) != len(theirs) or not all(
                (a is None and b is None) or (a is not None and b is not None and np.allclose(a, b, rtol=0, atol=1e-4))
                for a, b in zip(ours, theirs, strict=True)
            ):
                raise ExportError("the ONNX copy disagrees with the Keras model")
    except refusals() as e:
        remember(
            failed,
            f"the model cannot run in onnxruntime ({first_line(e)}): it keeps running in TensorFlow, slower to start",
        )


def refusals() -> tuple[type[Exception], ...]:
    """The ways a conversion or quantization fails that cost only speed (anything else is a bug)."""
    return (
        ImportError,
        ValueError,
        TypeError,
        NotImplementedError,
        RuntimeError,
        KeyError,
        MnistClassifierError,
        *runtime_errors(),
    )


def remember(failed: Path, said: str) -> None:
    """Log a failed conversion once and write its note, so that later commands do not pay for it again."""
    log.warning("%s; %s remembers this (delete it to try again)", said, failed)
    with contextlib.suppress(WriteError):  # an unwritable cache: the next command tries (and logs) again
        write_text(failed, said + "\n")


def int8_location(float_copy: Path) -> Path:
    """Where the int8 copy of a float32 copy is (or would be) cached."""
    return float_copy.with_name(float_copy.stem + "-int8.onnx")


def quantize(float_copy: Path, images: np.ndarray, cached: Path) -> bool:
    """Write a static int8 (QDQ, per-channel) copy of `float_copy` at `cached`, its activations' ranges calibrated on
    `images` (float32, from the training split); whether there is one. Kept in float32: the first convolution (one
    input channel: slower in int8), the last layer and the softmax (the verdicts read small probability gaps), and
    any op but convolutions and matrix products (the deskewing layer's coordinates). A copy whose readings agree
    with float32's on under 99% of `images`, or that fails as conversions do, is remembered as failed (convert)."""
    failed = cached.with_suffix(FAILED)
    if cached.is_file():
        return True
    if failed.is_file():
        return False
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with atomic_path(cached) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = tmp.with_name(tmp.name + ".pre.onnx")
            try:
                quant_pre_process(str(float_copy), str(prepared), skip_symbolic_shape=True)
                import onnx

                nodes = list(onnx.load(str(prepared)).graph.node)
                source = onnx.load(str(prepared)).graph.input[0].name
                products = [n.name for n in nodes if n.op_type in ("MatMul", "Gemm")]
                convolutions = [n.name for n in nodes if n.op_type == "Conv"]
                excluded = [n.name for n in nodes if n.op_type == "Softmax"] + products[-1:] + convolutions[:1]
                batches = iter([{source: images[i : i + 100]} for i in range(0, len(images), 100)])

                class Reader(CalibrationDataReader):
                    def get_next(self) -> dict[str, np.ndarray] | None:
                        return next(batches, None)

                quantize_static(
                    str(prepared),
                    str(tmp),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                    nodes_to_exclude=excluded,
                )
            finally:
                prepared.unlink(missing_ok=True)
            ours, theirs = Session(tmp).probabilities(images), Session(float_copy).probabilities(images)
            if np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1)) < 0.99:
                raise ExportError("the int8 copy reads under 99% of the calibration images as float32 does")
    except refusals() as e:
        remember(failed, f"the model cannot run in int8 ({first_line(e)}): it runs in float32")
        return False
    return True
