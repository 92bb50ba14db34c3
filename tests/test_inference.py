"""Predictors: each back-end gives the model's probabilities, inputs are checked, pictures given as arrays read like
files, the ONNX cache converts a model once (or, when it cannot, says so once), `run.predict` reads as the Keras
model does, and an int8 copy reads and judges where the CPU has int8 units (float32 where not)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import mnist_classifier as mc
from mnist_classifier import hardware, image_files
from mnist_classifier import verdicts as calib
from mnist_classifier.backends import EnsembleBackend, KerasBackend, OnnxBackend, with_features
from mnist_classifier.data import load_dataset
from mnist_classifier.errors import ConfigError, ImageError, ImageTooLargeError, RunError
from mnist_classifier.image_files import image_arrays, load_file
from mnist_classifier.inference import Predictor, fast_predictor
from mnist_classifier.preprocess import scale
from mnist_classifier.runs import load_model

from .images import on_canvas


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor(tiny_run)


def test_compiled_forward_matches_keras_predict(tiny_run: Path) -> None:
    backend = KerasBackend(load_model(tiny_run))
    predictor = Predictor(tiny_run, batch_size=300, backend=backend)
    images = load_dataset("mnist").x_test[:1000]
    expected = backend.model.predict(scale(images), verbose=0)
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
def test_bad_arrays(predictor: Predictor, images: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        predictor.probabilities(images)


def test_not_a_model(tmp_path: Path) -> None:
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"not a zip")
    with pytest.raises(RunError, match="not a readable Keras model"):
        load_model(fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"without model\.keras"):
        load_model(tmp_path / "empty")


def test_fast_predictor_caches_a_checked_onnx_copy(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, predictor: Predictor
) -> None:
    """The first call converts the model and runs the copy in onnxruntime, as every later call does, with the Keras
    model's probabilities and distances; a damaged copy is converted again."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    images = load_dataset("mnist").x_test[:500]
    first = fast_predictor(tiny_run)
    assert isinstance(first.backend, OnnxBackend) and first.runtime == "onnxruntime float32"
    [cached] = (tmp_path / "onnx").glob("*.onnx")
    second = fast_predictor(tiny_run)
    assert isinstance(second.backend, OnnxBackend)
    assert second.class_names == predictor.class_names and second.input_shape == predictor.input_shape == (28, 28)
    assert second.metrics == predictor.metrics and second.name == predictor.name
    assert (second.architecture, second.parameters) == (predictor.architecture, predictor.parameters)
    np.testing.assert_allclose(second.probabilities(images), predictor.probabilities(images), atol=1e-5)
    np.testing.assert_allclose(second.assess(images)[1], predictor.assess(images)[1], rtol=1e-5, atol=1e-5)
    cached.write_bytes(b"damaged")
    assert isinstance(fast_predictor(tiny_run).backend, OnnxBackend)
    assert cached.stat().st_size > len(b"damaged")


class Bug(Exception):
    """An error no conversion is expected to raise."""


def test_a_failed_conversion_is_said_once_and_not_paid_for_again(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A model the converter refuses keeps running in Keras; the failure is logged once and remembered, so the next
    predictor does not convert again. An unexpected error is not swallowed."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path / "cache"))
    tries = []

    def refuse(model: keras.Model, *args: object, **kwargs: object) -> None:
        tries.append(model)
        raise ValueError("this layer has no ONNX equivalent")

    monkeypatch.setattr(keras.Model, "export", refuse)
    with caplog.at_level(logging.WARNING, logger="mnist_classifier.onnx_cache"):
        predictors = [fast_predictor(tiny_run) for _ in range(3)]
    assert all(isinstance(p.backend, KerasBackend) for p in predictors)
    assert len(tries) == 1, "the conversion is tried once"
    [said] = [r.getMessage() for r in caplog.records if r.name == "mnist_classifier.onnx_cache"]
    assert "this layer has no ONNX equivalent" in said and "keeps running in TensorFlow" in said
    assert not list((tmp_path / "cache" / "onnx").glob("*.onnx"))

    def crash(model: keras.Model, *args: object, **kwargs: object) -> None:
        raise Bug("a bug in the exporter")

    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path / "other"))
    monkeypatch.setattr(keras.Model, "export", crash)
    with pytest.raises(Bug):
        fast_predictor(tiny_run)


def test_predict_starts_without_tensorflow_once_cached(tiny_run: Path, tmp_path: Path, python_process) -> None:  # type: ignore[no-untyped-def]
    """The command line's second prediction with a model never imports TensorFlow (seconds of start-up)."""
    image = tmp_path / "digit.png"
    digit = load_dataset("mnist").x_test[0]
    Image.fromarray(digit).save(image)
    env = {"MNIST_CLASSIFIER_CACHE": str(tmp_path / "cache")}
    program = (
        "import sys; from mnist_classifier.cli import main; sys.argv = ['mnist-classifier', *sys.argv[1:]]\n"
        "try: main()\n"
        "finally: print('tensorflow' in sys.modules, 'sklearn' in sys.modules)"
    )
    runs = [
        python_process.run("-c", program, "predict", str(tiny_run), str(image), env=os.environ | env) for _ in range(2)
    ]
    assert runs[0].stdout.splitlines()[-1].startswith("True"), runs[0]
    assert runs[1].stdout.splitlines()[-1] == "False False", runs[1]
    expected = str(int(Predictor(tiny_run).probabilities(digit).argmax()))
    assert runs[0].stdout.split()[1] == runs[1].stdout.split()[1] == expected


def test_the_compiled_top_two_distance_is_the_calibrations(predictor: Predictor) -> None:
    """The Keras back-end computes the top_two distance and the temperature scaling inside its compiled forward
    pass; they must equal the calibration's own (NumPy) definitions, which the ONNX and ensemble back-ends use."""
    stored = predictor.calibration
    predictor.calibration = dataclasses.replace(stored, score="top_two")
    try:
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
    finally:
        predictor.calibration = stored


def test_an_ensemble_backend_judges_through_its_members_public_calls(tiny_run: Path, predictor: Predictor) -> None:
    """Two copies of one model: the ensemble's probabilities are the member's, with test-time augmentation the mean
    over the shifted views, and the `members` score is the members' mean atypicality."""
    x = load_dataset("mnist").x_test[:64]
    members = [predictor, Predictor(tiny_run)]
    ensemble = Predictor(tiny_run, backend=EnsembleBackend(members, tta=False))
    assert ensemble.architecture == f"ensemble of 2 {predictor.architecture}"
    assert ensemble.parameters == 2 * predictor.parameters
    np.testing.assert_allclose(ensemble.probabilities(x), predictor.probabilities(x), atol=1e-6)
    ensemble.calibration = dataclasses.replace(ensemble.calibration, score="members")
    _, distance = ensemble.assess(x)
    np.testing.assert_allclose(distance, 1 - predictor.calibration.typicality(predictor.assess(x)[1]), atol=1e-6)
    shifted = Predictor(tiny_run, backend=EnsembleBackend(members, tta=True))
    views = [np.roll(x, shift, axis=(1, 2)) for shift in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    expected = np.mean([predictor.probabilities(view) for view in views], axis=0)
    np.testing.assert_allclose(shifted.probabilities(x), expected, atol=1e-6)


def photo(digit: np.ndarray) -> np.ndarray:
    """An MNIST digit as a phone photo of paper would hold it: large, dark on white, off centre, in colour."""
    page = np.asarray(on_canvas(digit, 300, (640, 480), (250, 90)).convert("RGB")).copy()
    page[..., 2] = (page[..., 2] * 0.9).astype(np.uint8)  # a warm cast
    return page


def test_a_picture_as_an_array_is_read_like_the_same_picture_in_a_file(tiny_run: Path, tmp_path: Path) -> None:
    """run.predict(array) with prepare (the default) prepares a camera frame as it prepares the same image saved as
    a PNG: the same 28x28 fed to the model, the same reading; arrays shaped as the model's input stay as they are."""
    run = mc.load_run(tiny_run)
    digits = load_dataset("mnist").x_test[:3]
    pictures = [photo(digits[0]), photo(digits[1])[..., 0], photo(digits[2])[..., :1]]
    for i, (picture, given) in enumerate(zip(pictures, [pictures[0], pictures[1], pictures[2] / 255], strict=True)):
        file = tmp_path / f"picture-{i}.png"
        Image.fromarray(np.squeeze(picture)).save(file)
        for prepared in (True, False):
            from_file = load_file(file, prepared, False, False)
            assert not isinstance(from_file, str), from_file
            np.testing.assert_array_equal(image_arrays(given, (28, 28), prepared, False), np.stack(from_file))
        by_array, by_file = run.predict(given), run.predict(file)
        assert by_array.digits == by_file.digits and by_array.verdicts == by_file.verdicts
        np.testing.assert_array_equal(by_array.probabilities, by_file.probabilities)
    np.testing.assert_array_equal(run.probabilities(digits), run.predictor.probabilities(digits))
    np.testing.assert_array_equal(run.probabilities(digits[0]), run.predictor.probabilities(digits[0]))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 30, 30, 3), np.uint8), r"or one picture \(height, width"),
        (np.zeros((40, 30, 2), np.uint8), r"got an array of shape \(40, 30, 2\)"),
        (np.zeros((0, 30), np.uint8), r"got an array of shape \(0, 30\)"),
        (np.full((40, 30), np.nan), "finite and within"),
        (np.full((40, 30), 1.5), "finite and within"),
    ],
)
def test_arrays_that_are_no_picture_are_refused(images: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        image_arrays(images, (28, 28), True, False)


def test_a_picture_array_over_the_decoding_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture given as an array is held to the limit a file is (its pixels at Pillow's cost)."""
    monkeypatch.setattr(image_files, "MAX_DECODE_BYTES", 100 * 100 * 4 - 1)
    assert image_arrays(np.zeros((100, 100), np.uint8), (28, 28), False, False).shape == (1, 28, 28)
    with pytest.raises(ImageTooLargeError, match="too many pixels"):
        image_arrays(np.zeros((100, 100, 3), np.uint8), (28, 28), False, False)


class Subclassed(keras.Model):
    """A model with no graph of layers to read its penultimate features from."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(10, activation="softmax")

    def call(self, x: object) -> object:
        return self.dense(keras.ops.reshape(x, (-1, 784)))


def test_penultimate_features_where_a_model_has_them() -> None:
    """A model of layers gives its last layer's input as a second output; a subclassed model (no graph to read) or
    one with two outputs runs as it is (the Mahalanobis score falls back)."""
    x = np.zeros((2, 28, 28), np.float32)
    inputs = keras.Input((28, 28))
    flat = keras.layers.Flatten()(inputs)
    plain = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dense(32)(flat)))
    probs, features = with_features(plain)(x)
    assert probs.shape == (2, 10) and features.shape == (2, 32)
    two = keras.Model(inputs, [keras.layers.Dense(10)(flat), keras.layers.Dense(3)(flat)])
    subclassed = Subclassed()
    subclassed(x)
    for model in (two, subclassed):
        assert with_features(model) is model


def test_run_predict_reads_and_judges_as_the_keras_model_does(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, predictor: Predictor
) -> None:
    """run.predict runs the ONNX copy: the Keras back-end's calibrated probabilities and verdicts, one image or many,
    given thresholds too; a blank picture is still not a digit."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    run = mc.load_run(tiny_run)
    images = load_dataset("mnist").x_test[:400]
    read = run.predict(images)
    assert run.predictor.runtime == "onnxruntime float32" and predictor.runtime == "keras (tensorflow) float32"
    judged = predictor.judge(images)
    np.testing.assert_allclose(read.probabilities, judged.probabilities, atol=1e-5)
    assert read.verdicts == judged.verdicts and read.digits == [str(d) for d in judged.probabilities.argmax(axis=1)]
    np.testing.assert_allclose(read.confidence, judged.probabilities.max(axis=1), atol=1e-5)
    one = run.predict(images[7], reject_threshold=0.5, confidence_threshold=0.99)
    strict = predictor.judge(
        images[7:8],
        calibration=dataclasses.replace(predictor.calibration, reject_threshold=0.5, confidence_threshold=0.99),
    )
    assert one.verdicts == strict.verdicts and one.digits == read.digits[7:8]
    blank = run.predict(np.zeros((40, 40), np.uint8))  # a picture, prepared: it holds no digit
    assert blank.verdicts == ["not_a_digit"] and blank.digits == [None]
    with pytest.raises(ConfigError, match="precision"):
        mc.load_run(tiny_run, precision="int4")


def test_an_int8_copy_loads_reads_and_judges(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU with int8 units (claimed here, so the test runs on any machine: onnxruntime's int8 kernels run
    everywhere), precision int8 quantizes the float32 copy once and reads the digits as float32 does."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware, "int8_units", lambda: "avx512_vnni")
    images = load_dataset("mnist").x_test[:500]
    full = fast_predictor(tiny_run)
    int8 = fast_predictor(tiny_run, precision="int8")
    assert int8.runtime == "onnxruntime int8" and len(list((tmp_path / "onnx").glob("*-int8.onnx"))) == 1
    judged, expected = int8.judge(images), full.judge(images)
    agree = np.mean(judged.probabilities.argmax(axis=1) == expected.probabilities.argmax(axis=1))
    assert agree >= 0.97, agree
    assert set(judged.verdicts) <= {"digit", "uncertain", "not_a_digit"}
    assert np.mean(np.array(judged.verdicts) == np.array(expected.verdicts)) >= 0.95
    assert fast_predictor(tiny_run, precision="int8").runtime == "onnxruntime int8"  # from the cache
    run = mc.load_run(tiny_run, precision="int8")
    assert run.predictor.runtime == "onnxruntime int8" and len(run.predict(images[:3])) == 3


def test_without_int8_units_or_a_quantizable_model_it_runs_in_float32(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A CPU without int8 units (the path turned off) and a model the quantizer refuses both read in float32, with
    a note; the refusal is remembered, so the next predictor does not quantize again."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware, "int8_units", lambda: None)
    with caplog.at_level(logging.WARNING):
        assert fast_predictor(tiny_run, precision="int8").runtime == "onnxruntime float32"
    assert any("no int8 dot-product units" in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / "onnx").glob("*-int8.onnx"))

    import onnxruntime.quantization

    tries = []

    def refuse(*args: object, **kwargs: object) -> None:
        tries.append(args)
        raise ValueError("no int8 kernel for this op")

    monkeypatch.setattr(hardware, "int8_units", lambda: "amx_int8")
    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", refuse)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        runtimes = [fast_predictor(tiny_run, precision="int8").runtime for _ in range(2)]
    assert runtimes == ["onnxruntime float32"] * 2 and len(tries) == 1
    assert any("no int8 kernel for this op" in r.getMessage() for r in caplog.records)


def test_a_batch_of_many_chunks_read_side_by_side_comes_back_in_order() -> None:
    """With several cores, the chunks of a large batch run side by side on one-thread sessions: the same numbers, in
    the same order, as one thread reading them one after another."""
    from mnist_classifier import bundled, onnx_cache

    copy = bundled.load("dnn").path / "model.onnx"
    images = scale(load_dataset("mnist").x_test[: onnx_cache.CHUNK * 4 + 3])
    alone, side_by_side = onnx_cache.Session(copy, threads=1), onnx_cache.Session(copy, threads=3)
    for ours, theirs in zip(side_by_side(images), alone(images), strict=True):
        assert ours is not None and theirs is not None and len(ours) == len(images)
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(side_by_side.probabilities(images[:1]), alone.probabilities(images[:1]), atol=1e-6)
