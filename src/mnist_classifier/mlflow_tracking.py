"""Log runs and tuning studies to an MLflow tracking server (the optional `mlflow` extra), never at the run's cost.

Imported only when a user asks for tracking (`--tracking URI`, `MLFLOW_TRACKING_URI`), and light (no Keras; mlflow
after the probe): the server is probed in bounded time before anything trains; once a run is under way, a server
that fails is said once on stderr and the rest of the logging is skipped, while the local run folder is written as
always.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, TrackingError
from .runs import CONFIG, METRICS, RESUME

if TYPE_CHECKING:
    import keras

EXPERIMENT = "mnist-classifier"  # unless MLFLOW_EXPERIMENT_NAME names another, as in mlflow's own clients
PROBE_SECONDS = 5.0
# mlflow's client retries a failed request 7 times over ~4 minutes by default; a tracker gives up sooner, unless the
# user set these themselves
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
ARTIFACTS = "run"  # the run folder's files under this artifact path: what `mc.load_run` reads once downloaded
# metrics.json's headline figures, named apart from the per-epoch training figures
HEADLINE = {"accuracy": "test_accuracy", "loss": "test_loss", "errors": "test_errors", "train_seconds": "train_seconds"}


def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as e:
        raise ConfigError("--tracking needs MLflow: pip install 'mnist-classifier[mlflow]'") from e
    return mlflow


def probe(uri: str, timeout: float = PROBE_SECONDS) -> None:
    """Raise TrackingError unless an http(s) tracking server answers within `timeout` seconds (any answer below 500,
    an authentication request included, is a server there); other stores (a folder, a database) are opened by
    mlflow itself."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    query = urllib.parse.urlencode({"experiment_name": EXPERIMENT})
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as e:
        if e.code < 500:
            return
        problem = f"answered HTTP {e.code}"
    except (OSError, ValueError) as e:
        problem = f"cannot be reached ({getattr(e, 'reason', e)})"
    raise TrackingError(f"the MLflow tracking server {uri} {problem}; start it, or train without --tracking")


def flat_params(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Settings as MLflow parameters: nested dicts joined by dots, lists as JSON, None left out."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out |= flat_params(value, f"{prefix}{key}.")
        elif value is not None:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


class Tracker:
    """One connection to a tracking server: opens runs (a parent and its children for tuning), logs parameters,
    per-epoch metrics and a run folder; after the first failure it logs nothing more and says so once."""

    def __init__(self, uri: str, register: str | None = None) -> None:
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        probe(uri)
        mlflow = import_mlflow()
        self.uri, self.register = uri, register
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.failed = False
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        try:
            found = self.client.get_experiment_by_name(name)
            self.experiment = found.experiment_id if found else self.client.create_experiment(name)
        except Exception as e:
            raise TrackingError(f"the MLflow tracking store {uri} cannot be used: {one_line(e)}") from e

    def attempt(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call(*args, **kwargs)`, or None once tracking has failed; the first failure is one line on stderr."""
        if self.failed:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as e:
            self.failed = True
            print(
                f"warning: MLflow tracking to {self.uri} failed while {what} ({one_line(e)}); the local run goes on"
                " and nothing more is sent to MLflow",
                file=sys.stderr,
            )
            return None

    @contextlib.contextmanager
    def run(self, name: str, params: dict[str, Any], parent: str | None = None) -> Iterator[str | None]:
        """An MLflow run (a child of `parent` when given) with `params` logged, ended FINISHED, or FAILED when the
        block raises; yields its id, None when tracking has failed."""
        tags = {"mlflow.parentRunId": parent} if parent else {}
        created = self.attempt("creating a run", self.client.create_run, self.experiment, run_name=name, tags=tags)
        run_id = created.info.run_id if created is not None else None
        self.log_params(run_id, params)
        status = "FAILED"
        try:
            yield run_id
            status = "FINISHED"
        finally:
            if run_id is not None:
                self.attempt("ending the run", self.client.set_terminated, run_id, status)

    def log_params(self, run_id: str | None, params: dict[str, Any]) -> None:
        """`params` flattened (see flat_params), in batches of 100, the most log_batch takes."""
        if run_id is None:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flat_params(params).items()]
        for start in range(0, len(items), 100):
            self.attempt("logging parameters", self.client.log_batch, run_id, params=items[start : start + 100])

    def tag(self, run_id: str | None, key: str, value: str) -> None:
        if run_id is not None:
            self.attempt("tagging the run", self.client.set_tag, run_id, key, value)

    def log_metrics(self, run_id: str | None, metrics: dict[str, Any], step: int = 0) -> None:
        """Numeric `metrics` at `step`; anything else in the dict is left out."""
        if run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        found = [Metric(k, float(v), now, step) for k, v in metrics.items() if isinstance(v, int | float)]
        if found:
            self.attempt("logging metrics", self.client.log_batch, run_id, metrics=found)

    def callback(self, run_id: str | None) -> keras.callbacks.Callback:
        """A Keras callback that logs each epoch's metrics (loss, accuracy, val_*, learning rate) to `run_id`, the
        epoch as the step."""
        import keras

        def log(epoch: int, logs: dict[str, Any] | None) -> None:
            self.log_metrics(run_id, dict(logs or {}), step=epoch + 1)

        return keras.callbacks.LambdaCallback(on_epoch_end=log)

    def log_run_folder(self, run_id: str | None, run_dir: Path) -> None:
        """The finished run: its test metrics, and its folder (report, confusion matrix, model, config) as artifacts
        under `run/`; registered as a new version of the model named `register` if one was given."""
        if run_id is None:
            return
        metrics_file = run_dir / METRICS
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text())
            self.log_metrics(
                run_id, {f"test_{k}" if k in ("accuracy", "loss", "errors") else k: metrics.get(k) for k in HEADLINE}
            )
        config = json.loads((run_dir / CONFIG).read_text())
        self.log_device(run_id, config.get("meta", {}))
        skipped = {RESUME}
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and path.name not in skipped:
                self.attempt("uploading the run folder", self.client.log_artifact, run_id, str(path), ARTIFACTS)
            elif path.is_dir():
                self.attempt(
                    "uploading the run folder", self.client.log_artifacts, run_id, str(path), f"{ARTIFACTS}/{path.name}"
                )
        if self.register and not self.failed:
            self.attempt("registering the model", self.register_version, run_id)

    def log_files(self, run_id: str | None, files: list[Path], artifact_path: str) -> None:
        """The files of `files` that exist, as artifacts under `artifact_path`."""
        for path in files:
            if run_id is not None and path.is_file():
                self.attempt("uploading files", self.client.log_artifact, run_id, str(path), artifact_path)

    def log_device(self, run_id: str, meta: dict[str, Any]) -> None:
        device = meta.get("device")
        if isinstance(device, dict):
            for key, value in device.items():
                self.tag(run_id, f"device.{key}", json.dumps(value) if isinstance(value, list) else str(value))

    def register_version(self, run_id: str) -> Any:
        """A new version of the registered model `register` (created if new) whose source is the run's folder."""
        from mlflow.exceptions import MlflowException

        assert self.register is not None
        try:
            self.client.create_registered_model(self.register)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{ARTIFACTS}"
        return self.client.create_model_version(self.register, source, run_id)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def tracker_for(tracking: str | None, register: str | None) -> Tracker | None:
    """A connection to the MLflow tracking server `tracking`, checked before anything trains; None without one."""
    if tracking is None:
        if register is not None:
            raise ConfigError("register names a model in an MLflow registry: give a tracking URI with it")
        return None
    return Tracker(tracking, register)
