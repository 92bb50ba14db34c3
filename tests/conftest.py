"""Shared fixtures, and the test tiers they decide.

A test's tier comes from the fixtures it uses (pytest_collection_modifyitems), never from a marker written by hand:
- integration: it starts a process or a server (`python_process`, `live_server`, `ray_server`, `postgres`, `browser`,
  `mlflow_server`);
- slow: it trains for real (`trainer`, `dnn_run`, or a fixture built on them);
- fast: everything else, including tests that need *a* model (`tiny_run`). `make test` runs only these.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REQUIRE_ALL = os.environ.get("MNIST_CLASSIFIER_REQUIRE_ALL") == "1"
INTEGRATION = {"python_process", "live_server", "ray_server", "postgres", "browser", "mlflow_server"}
SLOW = {"trainer", "dnn_run"}

# Generated-input tests run a few cases in the fast tier, 1,500 each under `--hypothesis-profile=full` (make test-all);
# tests that set their own max_examples keep it. No deadline: a shared machine's timing says nothing about the code.
settings.register_profile("full", max_examples=1500, deadline=None, print_blob=True)
settings.register_profile("fast", max_examples=30, deadline=None)
settings.load_profile("fast")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, read off the fixtures it uses (directly or through other fixtures)."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in ("slow", "integration")):
            raise pytest.UsageError(f"{item.nodeid}: tiers come from fixtures (conftest.py), not from a marker by hand")
        used = set(getattr(item, "fixturenames", ()))
        if used & INTEGRATION:
            item.add_marker(pytest.mark.integration)
        elif used & SLOW:
            item.add_marker(pytest.mark.slow)


def require(condition: bool, reason: str) -> None:
    """Skip with a reason when a system package is absent; fail instead when CI demands every test."""
    if not condition:
        if REQUIRE_ALL:
            pytest.fail(f"MNIST_CLASSIFIER_REQUIRE_ALL=1 forbids this skip: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MNIST_CLASSIFIER_CACHE")
    os.environ["MNIST_CLASSIFIER_CACHE"] = str(path)
    yield path
    if old is None:
        del os.environ["MNIST_CLASSIFIER_CACHE"]
    else:
        os.environ["MNIST_CLASSIFIER_CACHE"] = old


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `mnist-classifier ARGS` in-process through its real entry point; return code, stdout, stderr."""
    from mnist_classifier.cli import main

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["mnist-classifier", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


class PythonProcess:
    """Runs `python ARGS` (this interpreter) as a child process: `run` waits for it, `start` does not."""

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], **{"capture_output": True, "text": True} | kwargs)

    def start(self, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen([sys.executable, *args], **kwargs)

    @contextlib.contextmanager
    def warm(self, *modules: str) -> Iterator[Launcher]:
        """A process that imports `modules` once and forks each `start` from there (tests/launcher.py): for a test that
        starts and kills many processes, each pays its own work but not the imports. Its children die with it."""
        script = str(Path(__file__).with_name("launcher.py"))
        launcher = self.start(script, *modules, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert launcher.stdout is not None and launcher.stdout.readline() == "ready\n", "the launcher did not start"
            yield Launcher(launcher)
        finally:
            if launcher.stdin is not None:
                launcher.stdin.close()  # the launcher kills the children still running, then ends
            try:
                launcher.wait(60)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()


class Launcher:
    """Starts `python -m MODULE ARG...` as a fork of a warm process (PythonProcess.warm)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def ask(self, *request: object) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def start(self, *args: str) -> Forked:
        """The child, its stdio on /dev/null."""
        return Forked(self, self.ask("start", *args))


class Forked:
    """A launcher's child, with the part of Popen's interface that tests use: pid, poll, wait, kill."""

    def __init__(self, launcher: Launcher, pid: int) -> None:
        self.launcher, self.pid = launcher, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.launcher.ask("poll", self.pid)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.launcher.ask("wait", self.pid)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


@pytest.fixture
def python_process() -> PythonProcess:
    """Child Python processes; a test that uses this is in the integration tier."""
    return PythonProcess()


@pytest.fixture(scope="session")
def trainer() -> Callable[..., Path]:
    """`training.train`, for a test that trains for real; a test that uses this is in the slow tier. Session-scoped,
    so that a module- or session-scoped fixture that trains (and its tests) can use it too."""
    from mnist_classifier.training import train

    return train


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default DNN after one epoch on 2,000 MNIST images, calibrated and evaluated: *a* model, in seconds. Tests
    that need a model but no particular accuracy use it, and stay in the fast tier."""
    from mnist_classifier import resolve
    from mnist_classifier.evaluation import evaluate_run
    from mnist_classifier.training import train

    run_dir = train(resolve(epochs=1, train_samples=2000), tmp_path_factory.mktemp("runs") / "tiny", verbose=0)
    evaluate_run(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def dnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of the default DNN on the full training set, evaluated on the test set (slow tier)."""
    from mnist_classifier import resolve
    from mnist_classifier.evaluation import evaluate_run
    from mnist_classifier.training import train

    run_dir = train(resolve(epochs=2), tmp_path_factory.mktemp("runs") / "dnn", verbose=0)
    evaluate_run(run_dir)
    return run_dir


@dataclass
class LiveServer:
    url: str
    app: object


@pytest.fixture(scope="session")
def live_server(dnn_run: Path) -> Iterator[LiveServer]:
    """The API for the `dnn_run` model served by a real Uvicorn on 127.0.0.1 (a free port), stopped afterwards."""
    import socket
    import threading
    import time

    import uvicorn

    from mnist_classifier.inference import Predictor
    from mnist_classifier.server import create_app

    app = create_app(Predictor(dnn_run), max_upload_bytes=1024 * 1024)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 (a free port) with a SQLite backend and its artifacts in a temporary folder;
    yields its URL. Skips (fails under MNIST_CLASSIFIER_REQUIRE_ALL) without the mlflow extra."""
    import importlib.util
    import socket
    import time
    import urllib.request

    require(importlib.util.find_spec("mlflow") is not None, "mlflow is not installed: pip install -e '.[mlflow]'")
    root = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")]
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240  # its first start creates the database's tables: a minute on a loaded machine
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    said = (root / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"mlflow server did not start: {said}") from None
                time.sleep(0.5)
        yield url
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)  # its own group: the server and the uvicorn workers it started
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
