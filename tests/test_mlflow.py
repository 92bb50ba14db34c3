"""MLflow tracking: a real server reads back what train and tune logged; an unreachable one stops before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mnist_classifier as mc
from mnist_classifier.errors import TrackingError

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_unreachable_server_is_one_line_before_training(cli: Any, tmp_path: Path) -> None:
    result = cli("train", "--epochs", "1", "--out", str(tmp_path / "run"), "--tracking", UNREACHABLE)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "MLflow tracking server http://127.0.0.1:9 cannot be reached" in result.err
    assert not (tmp_path / "run").exists()


def test_tracking_uri_comes_from_the_environment(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    result = cli("tune", "--trials", "1", "--out", str(tmp_path / "tune"))
    assert result.code == 2 and "cannot be reached" in result.err
    assert not (tmp_path / "tune").exists()


def test_register_needs_a_tracking_uri(cli: Any) -> None:
    result = cli("train", "--register", "digits")
    assert result.code == 2 and "give a tracking URI" in result.err


def test_a_failing_server_is_said_once_and_logging_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    from mnist_classifier.mlflow_tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    calls = []

    def down(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise ConnectionError("connection reset by peer")

    with tracker.run("r", {"epochs": 3}) as run_id:
        monkeypatch.setattr(tracker.client, "log_batch", down)
        callback = tracker.callback(run_id)
        for epoch in range(3):
            callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    assert len(calls) == 1 and tracker.failed
    warning = capsys.readouterr().err
    assert warning.count("warning: MLflow tracking") == 1 and "the local run goes on" in warning


def test_probe_refuses_a_server_error() -> None:
    pytest.importorskip("mlflow")
    from mnist_classifier.mlflow_tracking import probe

    with pytest.raises(TrackingError, match="cannot be reached"):
        probe(UNREACHABLE, timeout=2)
    probe("sqlite:///anything.db")  # a local store has nothing to probe


def test_train_logs_params_epochs_artifacts_and_model_version(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    run = mc.train(
        out=tmp_path / "run", verbose=0, tracking=mlflow_server, register="digits", epochs=2, train_samples=2000
    )
    client = MlflowClient(mlflow_server)
    [version] = client.search_model_versions("name = 'digits'")
    logged = client.get_run(version.run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["model"] == "dnn" and logged.data.params["epochs"] == "2"
    assert logged.data.params["train_samples"] == "2000"
    history = client.get_metric_history(version.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2]
    assert [round(m.value, 6) for m in history] == [round(v, 6) for v in run.history["val_accuracy"]]
    assert logged.data.metrics["test_accuracy"] == pytest.approx(run.metrics["accuracy"])
    files = {a.path for a in client.list_artifacts(version.run_id, "run")}
    assert {"run/model.keras", "run/report.html", "run/confusion_matrix.csv", "run/config.json"} <= files
    assert version.source.endswith("/run")
    download = Path(client.download_artifacts(version.run_id, "run", str(tmp_path / "download")))
    images = np.random.default_rng(0).random((4, 28, 28), np.float32)
    assert np.allclose(mc.load_run(download).probabilities(images, prepare=False), run.probabilities(images, False))


def test_tune_logs_a_parent_run_with_a_child_per_trial(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    result = mc.tune(
        {"hidden_units": [[16], [32]]},
        sampler="grid",
        out=tmp_path / "tune",
        final_train=False,
        tracking=mlflow_server,
        epochs=1,
        train_samples=1000,
    )
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("mnist-classifier")
    runs = client.search_runs([experiment.experiment_id], f"tags.mlflow.runName = 'tune {result.study}'")
    [parent] = runs
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.params["hidden_units"] for c in children) == ["[16]", "[32]"]
    assert all(c.info.status == "FINISHED" and c.data.tags["state"] == "complete" for c in children)
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(result.best.value)
    assert "study/leaderboard.csv" in {a.path for a in client.list_artifacts(parent.info.run_id, "study")}
