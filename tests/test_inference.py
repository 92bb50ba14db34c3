from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_classifier.data import load_dataset
from mnist_classifier.errors import ImageError, RunError
from mnist_classifier.inference import Predictor, load_model
from mnist_classifier.preprocess import scale


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
