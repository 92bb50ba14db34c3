"""Exports give the original model's predictions, each through its own runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_classifier import export
from mnist_classifier.data import load_dataset
from mnist_classifier.errors import ExportError, RunError
from mnist_classifier.export import FORMATS, export_run, runner
from mnist_classifier.inference import Predictor
from mnist_classifier.preprocess import scale

SUFFIX = {"keras": ".keras", "savedmodel": "", "onnx": ".onnx", "tflite": ".tflite"}


@pytest.mark.parametrize("format", FORMATS)
def test_each_format_predicts_like_the_original(dnn_run: Path, tmp_path: Path, format: str) -> None:
    out = tmp_path / f"model{SUFFIX[format]}"
    check = export_run(dnn_run, format, out, limit=500)
    assert out.exists() and check.n == 500 and check.agree == 500 and check.max_difference < 1e-4
    images = scale(load_dataset("mnist").x_test[500:1000])
    original = Predictor(dnn_run).probabilities(images)
    exported = runner(format, out)(images)
    assert np.array_equal(exported.argmax(axis=1), original.argmax(axis=1))
    np.testing.assert_allclose(exported, original, atol=1e-4)


def test_export_command(cli, dnn_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "model.onnx"
    result = cli("export", str(dnn_run), "--format", "onnx", "--out", str(out))
    assert result.code == 0, result.err
    assert "10,000 of 10,000 predictions equal the original's" in result.out and out.is_file()
    for args, message in [
        (["--format", "onnx", "--out", str(out)], "already exists"),
        (["--format", "pickle", "--out", str(tmp_path / "m")], "--format: unknown value 'pickle'"),
        (["--format", "keras", "--out", str(tmp_path / "m.h5")], "must end in .keras"),
    ]:
        result = cli("export", str(dnn_run), *args)
        assert result.code == 2 and message in result.err and result.err.count("\n") == 1
    with pytest.raises(RunError, match="not a run directory"):
        export_run(tmp_path, "onnx", tmp_path / "x.onnx")


def test_an_export_that_disagrees_leaves_nothing_behind(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export is written under a temporary name and renamed only once it agrees with the original: one that
    disagrees, or whose writing fails, leaves no file at --out nor any partial one beside it."""
    folder = tmp_path / "out"
    check = export_run(tiny_run, "keras", folder / "model.keras", limit=100)
    assert check.agree == 100 and [p.name for p in folder.iterdir()] == ["model.keras"]

    def disagreeing(format: str, out: Path) -> export.Runner:
        exported = runner(format, out)
        return lambda x: np.roll(exported(x), 1, axis=1)

    monkeypatch.setattr(export, "runner", disagreeing)
    with pytest.raises(ExportError, match="disagrees with the original on"):
        export_run(tiny_run, "keras", folder / "other.keras", limit=100)
    assert [p.name for p in folder.iterdir()] == ["model.keras"]

    def failing(model: object, format: str, out: Path) -> None:
        out.write_bytes(b"half a model")
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(export, "write", failing)
    with pytest.raises(ExportError, match="keras export failed: the disk went away"):
        export_run(tiny_run, "keras", folder / "third.keras", limit=100)
    assert [p.name for p in folder.iterdir()] == ["model.keras"]
