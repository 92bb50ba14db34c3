"""What logging a run to MLflow costs: the fast CNN trained with and without `--tracking` to a local server.

Usage: python benchmarks/mlflow_cost.py [--repeats N] [--url http://127.0.0.1:PORT]

Starts `mlflow server` on 127.0.0.1 (SQLite backend, artifacts in a temporary folder) unless --url names one, then
trains `--model cnn --preset fast` in fresh processes, with and without tracking interleaved, --repeats times (3),
and prints the medians of the training time (metrics.json's train_seconds) and of the whole command's wall time
(training, evaluation, report and, tracked, the upload of the run folder). Target: at most 5% more training time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

TRAIN = ["-m", "mnist_classifier", "train", "--model", "cnn", "--preset", "fast"]


@contextmanager
def local_server(root: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")]
    with (root / "server.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"mlflow server did not start; see {root / 'server.log'}") from None
                    time.sleep(0.5)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


def train(out: Path, tracking: str | None) -> tuple[float, float]:
    """(train_seconds, wall seconds) of one training in a fresh process."""
    extra = ["--tracking", tracking] if tracking else []
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    started = time.perf_counter()
    subprocess.run([sys.executable, *TRAIN, "--out", str(out), *extra], check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    return json.loads((out / "metrics.json").read_text())["train_seconds"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="an MLflow server already running (default: start one here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with local_server(root) if args.url is None else _given(args.url) as url:
            times: dict[str, list[tuple[float, float]]] = {"without tracking": [], "with --tracking": []}
            for i in range(args.repeats):
                times["without tracking"].append(train(root / f"plain-{i}", None))
                times["with --tracking"].append(train(root / f"tracked-{i}", url))
    table = Table(title=f"fast CNN, median of {args.repeats} (interleaved, fresh processes)")
    for column in ("", "train s", "command s", "train vs without"):
        table.add_column(column, justify="right")
    base = statistics.median(t for t, _ in times["without tracking"])
    for label, found in times.items():
        trained, wall = statistics.median(t for t, _ in found), statistics.median(w for _, w in found)
        table.add_row(label, f"{trained:.1f}", f"{wall:.1f}", f"{trained / base - 1:+.1%}")
    Console().print(table)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
