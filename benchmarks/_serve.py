"""What the serving benchmarks share: the command line, a default DNN to serve, and `serve` started on 127.0.0.1.

Not a benchmark itself (`make bench` leaves out benchmarks/_*.py)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CLI = [sys.executable, "-m", "mnist_classifier"]
HOST = "127.0.0.1"


def train_model(folder: Path) -> Path:
    """The default DNN, trained through the command line into folder/dnn."""
    run = folder / "dnn"
    subprocess.run([*CLI, "train", "--out", str(run)], check=True, stdout=subprocess.DEVNULL)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(run: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`mnist-classifier serve RUN` on HOST:port, yielded once /health answers (at most 2 minutes); stopped after."""
    server = subprocess.Popen([*CLI, "serve", str(run), "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(30)
