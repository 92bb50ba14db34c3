"""Export a run's model (Keras, TensorFlow SavedModel, ONNX, TFLite) and check that the export
gives the original's predictions on the run's whole test set, through each format's own runtime."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .backends import KerasBackend
from .data import load_dataset
from .errors import ConfigError, ExportError, MnistClassifierError, first_line
from .inference import DefaultCalibrationWarning, Predictor
from .preprocess import scale
from .runs import load_model, run_config
from .utils import create_folder, import_tensorflow_quietly

if TYPE_CHECKING:
    import keras

FORMATS = ("keras", "savedmodel", "onnx", "tflite")
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class ExportCheck:
    """Where the export went and how its test-set predictions compare with the original's."""

    path: Path
    format: str
    dataset: str
    n: int
    agree: int
    max_difference: float


def write(model: keras.Model, format: str, out: Path) -> None:
    model(np.zeros((1, *model.input_shape[1:]), np.float32))  # Keras exports only a model that has been called
    if format == "keras":
        model.save(out)
    elif format == "savedmodel":
        model.export(out, format="tf_saved_model", verbose=False)
    elif format == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.export(out, format="onnx", verbose=False)
    else:
        model.export(out, format="litert", verbose=False)


def runner(format: str, out: Path) -> Runner:
    """A function that runs the exported file in its own runtime on a float32 batch."""
    if format == "keras":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DefaultCalibrationWarning)  # only its probabilities are compared
            exported = Predictor(out)
        return exported.probabilities
    if format == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(out))
        return lambda x: loaded.serve(x).numpy()
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=ort.get_available_providers())
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    return tflite_runner(out)


def tflite_runner(out: Path) -> Runner:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(out))
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source, list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target))

    return run


def compare(original: Runner, exported: Runner, images: np.ndarray, batch: int = 1000) -> tuple[int, float]:
    """How many argmax predictions agree, and the largest absolute probability difference."""
    agree, worst = 0, 0.0
    for start in range(0, len(images), batch):
        x = scale(images[start : start + batch])
        a, b = original(x), exported(x)
        agree += int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
        worst = max(worst, float(np.abs(a - b).max()))
    return agree, worst


def export_run(run_dir: Path, format: str, out: Path, limit: int | None = None) -> ExportCheck:
    """Write the run's model as `format` to `out` and check it on the test set (the first `limit` images). It is
    written under a temporary name beside `out` and renamed only once it agrees with the original, so a failed or
    disagreeing export leaves nothing behind."""
    if format not in FORMATS:
        raise ConfigError(f"--format: unknown value {format!r}; choose one of {', '.join(FORMATS)}")
    if out.exists():
        raise ConfigError(f"--out: {out} already exists; choose another path or remove it")
    if format == "keras" and out.suffix != ".keras":
        raise ConfigError(f"--out: a Keras model file must end in .keras, got {out.name!r}")
    config = run_config(run_dir)
    import_tensorflow_quietly()
    original = KerasBackend(load_model(run_dir))
    predictor = Predictor(run_dir, backend=original)
    data = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    images = data.x_test[:limit]
    create_folder(out.parent, "--out")
    partial = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.partial{out.suffix}")
    try:
        write(original.model, format, partial)
        agree, worst = compare(predictor.probabilities, runner(format, partial), images)
        if agree != len(images) or worst > 1e-3:
            raise ExportError(
                f"the {format} export disagrees with the original on {len(images) - agree} of {len(images)} test"
                f" images (largest probability difference {worst:.2g}); nothing was written to {out}"
            )
        os.replace(partial, out)
    except MnistClassifierError:
        raise
    except Exception as e:  # each format's converter and runtime raise their own types
        raise ExportError(f"{format} export failed: {first_line(e)}") from None
    finally:
        remove(partial)
    return ExportCheck(out, format, data.name, len(images), agree, worst)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
