from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_classifier import verdicts as calib
from mnist_classifier.data import load_dataset
from mnist_classifier.errors import ImageError, RunError
from mnist_classifier.inference import OnnxPredictor, Predictor, fast_predictor
from mnist_classifier.preprocess import scale
from mnist_classifier.runs import load_model


def test_compiled_forward_matches_keras_predict(dnn_run: Path) -> None:
    predictor = Predictor(dnn_run, batch_size=300)
    images = load_dataset("mnist").x_test[:1000]
    expected = predictor.model.predict(scale(images), verbose=0)
    probs = predictor.probabilities(images)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(predictor.probabilities(scale(images[:1]))[0], probs[0], atol=1e-6)
    assert predictor.probabilities(images[0]).shape == (1, 10)
    assert predictor.class_names == tuple("0123456789")


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 27, 28), np.uint8), "expected images of shape"),
        (np.full((1, 28, 28), np.nan, np.float32), "finite and within"),
        (np.full((1, 28, 28), 2.0, np.float32), "finite and within"),
        (np.where(np.eye(28, dtype=bool), np.nan, 0.5)[None], "finite and within"),  # NaN among valid pixels
        (np.full((1, 28, 28), -np.inf), "finite and within"),
        (np.full((1, 28, 28), -0.1), "finite and within"),
    ],
)
def test_bad_arrays(dnn_run: Path, images: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        Predictor(dnn_run).probabilities(images)


def test_not_a_model(tmp_path: Path) -> None:
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"not a zip")
    with pytest.raises(RunError, match="not a readable Keras model"):
        load_model(fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"without model\.keras"):
        load_model(tmp_path / "empty")


def test_fast_predictor_caches_a_checked_onnx_copy(
    dnn_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call converts the model and keeps running Keras; the next runs the cached ONNX copy in
    onnxruntime, with the same probabilities; a damaged copy is converted again."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    images = load_dataset("mnist").x_test[:500]
    first = fast_predictor(dnn_run)
    assert type(first) is Predictor
    [cached] = (tmp_path / "onnx").glob("*.onnx")
    second = fast_predictor(dnn_run)
    assert isinstance(second, OnnxPredictor)
    assert second.class_names == first.class_names and second.input_shape == first.input_shape == (28, 28)
    assert second.metrics == first.metrics and second.name == first.name
    np.testing.assert_allclose(second.probabilities(images), first.probabilities(images), atol=1e-5)
    cached.write_bytes(b"damaged")
    assert type(fast_predictor(dnn_run)) is Predictor
    assert isinstance(fast_predictor(dnn_run), OnnxPredictor)


def test_predict_starts_without_tensorflow_once_cached(dnn_run: Path, tmp_path: Path) -> None:
    """The command line's second prediction with a model never imports TensorFlow (seconds of start-up)."""
    image = tmp_path / "digit.png"
    Image.fromarray(load_dataset("mnist").x_test[0]).save(image)
    env = {**os.environ, "MNIST_CLASSIFIER_CACHE": str(tmp_path / "cache")}
    program = (
        "import sys; from mnist_classifier.cli import main; sys.argv = ['mnist-classifier', *sys.argv[1:]]\n"
        "try: main()\n"
        "finally: print('tensorflow' in sys.modules, 'sklearn' in sys.modules)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", program, "predict", str(dnn_run), str(image)],
            env=env,
            text=True,
            capture_output=True,
        )
        for _ in range(2)
    ]
    assert runs[0].stdout.splitlines()[-1].startswith("True"), runs[0]
    assert runs[1].stdout.splitlines()[-1] == "False False", runs[1]
    assert runs[0].stdout.split()[1] == runs[1].stdout.split()[1] == "7"


def test_the_compiled_top_two_distance_is_the_calibrations(dnn_run: Path) -> None:
    """The Keras predictor computes the top_two distance and the temperature scaling inside its compiled forward
    pass; they must equal the calibration's own (NumPy) definitions, which the ONNX and ensemble predictors use."""
    predictor = Predictor(dnn_run)
    assert predictor.calibration.score == "top_two"
    x = load_dataset("mnist").x_test[:500]
    probs, distance = predictor.assess(x)
    np.testing.assert_allclose(probs, predictor.probabilities(x), atol=1e-6)
    np.testing.assert_allclose(distance, predictor.calibration.distance(probs, None), atol=1e-6)
    for temperature in (0.5, predictor.calibration.temperature, 2.0):
        scaled, same = predictor.assess(x, temperature)
        np.testing.assert_allclose(scaled, calib.temperature_scaled(probs, temperature), atol=1e-6)
        np.testing.assert_array_equal(same, distance)
    judged = predictor.judge(x)
    np.testing.assert_allclose(
        judged.probabilities, calib.temperature_scaled(probs, judged.calibration.temperature), atol=1e-6
    )
