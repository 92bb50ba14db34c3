"""Real training on the bundled MNIST; the shared run is trained once per session."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mnist_classifier import resolve
from mnist_classifier.evaluation import evaluate_run
from mnist_classifier.runs import load_model
from mnist_classifier.training import BestCheckpoint, train

from .conftest import require


def test_short_training_learns(dnn_run: Path) -> None:
    metrics = json.loads((dnn_run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.95
    assert metrics["n"] == 10000 and metrics["epochs"] == 2
    rows = list(csv.DictReader((dnn_run / "history.csv").open()))
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert float(rows[1]["learning_rate"]) < float(rows[0]["learning_rate"]), "cosine decay lowers the rate"


def test_accuracy_is_the_confusion_matrix_trace(dnn_run: Path) -> None:
    metrics = json.loads((dnn_run / "metrics.json").read_text())
    rows = list(csv.reader((dnn_run / "confusion_matrix.csv").open()))
    assert rows[0][1:] == [str(d) for d in range(10)]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert matrix.sum() == 10000
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert metrics["errors"] == matrix.sum() - np.trace(matrix)
    wrong = np.load(dnn_run / "misclassified.npz")
    assert len(wrong["true"]) == metrics["errors"] and np.all(wrong["true"] != wrong["predicted"])


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    settings = resolve(epochs=1, hidden_units=[64], validation_fraction=0.5)
    a = train(settings, tmp_path / "a", verbose=0)
    b = train(settings, tmp_path / "b", verbose=0)
    history = [next(iter(csv.DictReader((run / "history.csv").open()))) for run in (a, b)]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[0][key] == history[1][key]


def test_interrupted_training_leaves_only_complete_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the second epoch: the first epoch's checkpoint is a whole model, nothing else is half-written."""
    original = BestCheckpoint.on_epoch_end

    def interrupt(self: BestCheckpoint, epoch: int, logs: dict | None = None) -> None:
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(BestCheckpoint, "on_epoch_end", interrupt)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(resolve(epochs=3, hidden_units=[32], validation_fraction=0.5), run_dir, verbose=0)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "model.keras"]
    assert load_model(run_dir).count_params() > 0


def test_refuses_to_overwrite_a_run(dnn_run: Path) -> None:
    from mnist_classifier.errors import ConfigError

    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(resolve(epochs=1), dnn_run, verbose=0)


def test_fashion_mnist_trains_one_epoch(tmp_path: Path) -> None:
    require(Path("/usr/share/datasets/fashion-mnist").is_dir(), "Debian's dataset-fashion-mnist is not installed")
    run_dir = train(resolve(dataset="fashion-mnist", epochs=1), tmp_path / "f", verbose=0)
    metrics = evaluate_run(run_dir)
    assert metrics["dataset"] == "fashion-mnist" and metrics["accuracy"] > 0.80
    assert "Ankle boot" in metrics["per_class"]
