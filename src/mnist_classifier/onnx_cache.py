"""The ONNX copy of a Keras model: converted once, checked against the original, cached under the model's SHA-256.

onnxruntime starts in a fraction of the time TensorFlow takes, so a command that starts, predicts and exits runs
the copy. A copy that cannot be made, or that disagrees with the original, is not kept: the failure is logged once
and remembered beside where the copy would be, so later commands do not pay for the conversion again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data.datasets import cache_dir
from .errors import ExportError, MnistClassifierError, RunError, WriteError, first_line
from .utils import atomic_path, write_text

if TYPE_CHECKING:
    import keras

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
FAILED = ".failed"  # the suffix of the note that a model's conversion failed
log = logging.getLogger(__name__)


def location(model_file: Path) -> Path:
    """Where the copy of this model file is (or would be) cached."""
    return cache_dir() / "onnx" / f"{hashlib.sha256(model_file.read_bytes()).hexdigest()}-features.onnx"


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


def session(onnx_file: Path) -> tuple[Forward, tuple[int, ...], int]:
    """An onnxruntime forward pass over float32 batches (probabilities, and penultimate features when the copy has
    them), with the model's input shape and class count; a file onnxruntime cannot load is a RunError."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.log_severity_level = 3
    try:
        runtime = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    except runtime_errors() as e:
        raise RunError(f"{onnx_file}: onnxruntime cannot load it ({first_line(e)}); convert the model again") from None
    source, targets = runtime.get_inputs()[0], runtime.get_outputs()
    names = [target.name for target in targets[:2]]
    shape = tuple(int(d) for d in source.shape[1:])

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = runtime.run(names, {source.name: x})
        return out[0], out[1] if len(out) > 1 else None

    return forward, shape, int(targets[0].shape[-1])


def convert(model: keras.Model, forward: Forward, cached: Path) -> None:
    """Export `model` to ONNX at `cached`, keeping it only if its outputs on random images are within 1e-4 of
    `forward`'s. Failing here only costs speed: a conversion that fails the way conversions do (the converter
    refuses the model, onnxruntime refuses the copy, the copy disagrees, the cache cannot be written) is logged
    and remembered, and never tried again for this model; anything else is a bug and propagates."""
    failed = cached.with_suffix(FAILED)
    if failed.is_file():
        return
    images = np.random.default_rng(0).random((64, *model.input_shape[1:]), np.float32)
    refusals: tuple[type[Exception], ...] = (
        ImportError,
        ValueError,
        TypeError,
        NotImplementedError,
        RuntimeError,
        MnistClassifierError,
        *runtime_errors(),
    )
    try:
        with atomic_path(cached) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(tmp, format="onnx", verbose=False)
            copy, _, _ = session(tmp)
            ours, theirs = copy(images), forward(images)
            if len(ours) != len(theirs) or not all(
                (a is None and b is None) or (a is not None and b is not None and np.allclose(a, b, rtol=0, atol=1e-4))
                for a, b in zip(ours, theirs, strict=True)
            ):
                raise ExportError("the ONNX copy disagrees with the Keras model")
    except refusals as e:
        reason = first_line(e)
        log.warning(
            "the model cannot run in onnxruntime (%s): it keeps running in TensorFlow, slower to start;"
            " %s remembers this (delete it to try again)",
            reason,
            failed,
        )
        with contextlib.suppress(WriteError):  # an unwritable cache: the next command tries (and logs) again
            write_text(failed, reason + "\n")
