"""Shared fixtures: a private data cache, a CLI runner, and skips that CI turns into failures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

REQUIRE_ALL = os.environ.get("MNIST_CLASSIFIER_REQUIRE_ALL") == "1"

# Generated-input tests (tests/test_fuzz.py) run 1,500 cases each in CI, 150 otherwise; tests that set their own
# max_examples keep it. No deadline: a shared CI machine's timing says nothing about the code.
settings.register_profile("ci", max_examples=1500, deadline=None, print_blob=True)
settings.register_profile("default", max_examples=150, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") or REQUIRE_ALL else "default")


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


@pytest.fixture(scope="session")
def dnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of the default DNN on the full training set, evaluated on the test set."""
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
