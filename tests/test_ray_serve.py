"""`serve --ray`: two Ray Serve replicas of the bundled model on a local Ray instance, started once for the module
through the real command line: both answer and share the load, a killed replica is replaced while the service
answers, hostile inputs get the single server's 4xx, and SIGTERM stops everything.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mnist_classifier.data import load_dataset
from mnist_classifier.verdicts import VERDICTS

from .conftest import require
from .images import broken_files, png
from .test_server import BAD_IMAGES, BAD_JSON, LIMIT

HEADER = "x-replica"


@dataclass
class RayServer:
    url: str
    process: subprocess.Popen[bytes]

    def replicas(self, count: int, path: str = "/model") -> Counter[str]:
        """Which replica answered each of `count` GET requests, each on a new connection."""
        return Counter(httpx.get(f"{self.url}{path}", timeout=30).headers[HEADER] for _ in range(count))

    def process_ids(self, count: int = 40) -> set[int]:
        return {httpx.get(f"{self.url}/model", timeout=30).json()["process_id"] for _ in range(count)}


@pytest.fixture(scope="module")
def ray_server() -> Iterator[RayServer]:
    """`mnist-classifier serve --ray --replicas 2` (the bundled model) on a free port, once /health answers; SIGTERM
    afterwards must stop it with exit code 0 and leave no replica running."""
    require(importlib.util.find_spec("ray") is not None, "Ray Serve is not installed (pip install '.[ray]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "mnist_classifier", "serve", "--ray", "--replicas", "2", "--port", str(port)]
    command += ["--max-upload-mb", str(LIMIT / 2**20)]
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while server.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    else:
        server.kill()
        raise RuntimeError(f"serve --ray did not start: {server.communicate()[1].decode()[-2000:]}")
    ray_server = RayServer(url, server)
    pids = ray_server.process_ids(10)
    yield ray_server
    pids |= ray_server.process_ids(10)
    server.send_signal(signal.SIGTERM)
    out, err = server.communicate(timeout=120)
    assert server.returncode == 0, err.decode()[-2000:]
    assert "with 2 replicas on Ray Serve" in out.decode()
    time.sleep(2)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.fixture(scope="module")
def digit() -> bytes:
    return png(load_dataset("mnist").x_test[0])


def test_two_replicas_answer_and_share_the_load(ray_server: RayServer, digit: bytes) -> None:
    assert len(ray_server.replicas(40)) == 2
    assert len(ray_server.process_ids()) == 2
    answered: Counter[str] = Counter()
    for _ in range(60):
        response = httpx.post(f"{ray_server.url}/predict", content=digit, headers={"content-type": "image/png"})
        assert response.status_code == 200 and response.json()["digit"] == "7", response.text
        assert response.json()["verdict"] in VERDICTS
        answered[response.headers[HEADER]] += 1
    assert len(answered) == 2 and min(answered.values()) >= 10, answered


@pytest.mark.parametrize(("name", "status", "message"), BAD_IMAGES)
def test_bad_images_get_the_single_servers_answers(
    ray_server: RayServer, digit: bytes, name: str, status: int, message: str
) -> None:
    data = broken_files(load_dataset("mnist").x_test[0])[name]
    with httpx.Client(base_url=ray_server.url, timeout=60) as client:
        for response in (
            client.post("/predict", files={"file": (f"{name}.png", data, "image/png")}),
            client.post("/predict", json={"image": base64.b64encode(data).decode()}),
        ):
            assert response.status_code == status, response.text
            detail = response.json()["detail"]
            assert message in detail and "\n" not in detail


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json_gets_the_single_servers_answers(ray_server: RayServer, body: object, message: str) -> None:
    response = httpx.post(
        f"{ray_server.url}/predict", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_upload_limits_and_content_types_hold_behind_the_proxy(ray_server: RayServer) -> None:
    url = f"{ray_server.url}/predict"
    response = httpx.post(url, files={"file": ("big.png", b"\0" * (LIMIT + 1), "image/png")})
    assert response.status_code == 413 and "200,000-byte limit" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"\0" * 10_000

    response = httpx.post(url, content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413, "a body without Content-Length is counted as it streams"
    response = httpx.post(url, content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "unsupported content type 'text/plain'" in response.json()["detail"]


def test_a_killed_replica_is_replaced_while_the_service_answers(ray_server: RayServer, digit: bytes) -> None:
    """After the other tests of the server (pytest keeps file order): it kills one replica's process."""
    before = ray_server.process_ids()
    assert len(before) == 2
    os.kill(min(before), signal.SIGKILL)
    statuses: Counter[int] = Counter()
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while not (seen - before and len(seen - {min(before)}) == 2) and time.monotonic() < deadline:
        response = httpx.post(
            f"{ray_server.url}/predict", content=digit, headers={"content-type": "image/png"}, timeout=30
        )
        statuses[response.status_code] += 1
        model = httpx.get(f"{ray_server.url}/model", timeout=30)
        statuses[model.status_code] += 1
        if model.status_code == 200:
            seen.add(model.json()["process_id"])
        time.sleep(0.1)
    assert seen - before, f"no new replica within 2 minutes; answered by {seen}"
    assert statuses[200] >= 0.9 * sum(statuses.values()), statuses


def test_ray_options_are_refused_in_one_line_before_anything_starts(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for args, message in (
        (["--replicas", "2"], "error: --replicas needs --ray"),
        (["--max-replicas", "3"], "error: --max-replicas needs --ray"),
        (["--ray", "--workers", "2"], "error: --workers is for one machine without Ray"),
        (["--ray", "--replicas", "0"], "error: --replicas must be at least 1, got 0"),
    ):
        result = cli("serve", *args)
        assert result.code == 2 and result.err.startswith(message) and result.err.count("\n") == 1, result.err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    result = cli("serve", "--ray", "--replicas", "2")
    assert result.code == 2 and "pip install 'mnist-classifier[ray]'" in result.err and result.err.count("\n") == 1


def test_an_address_that_does_not_answer_is_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    require(importlib.util.find_spec("ray") is not None, "Ray Serve is not installed (pip install '.[ray]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    for address in (f"127.0.0.1:{port}", "no-port-here"):
        start = time.monotonic()
        result = cli("serve", "--ray", "--address", address)
        error = result.err.splitlines()[-1]  # after the line naming the bundled model
        assert result.code == 2 and result.err.count("error:") == 1, result.err
        assert error.startswith(f"error: cannot reach the Ray cluster at '{address}'"), result.err
        assert time.monotonic() - start < 30


def test_replicas_or_autoscaling_bounds() -> None:
    require(importlib.util.find_spec("ray") is not None, "Ray Serve is not installed (pip install '.[ray]')")
    from mnist_classifier.errors import ConfigError
    from mnist_classifier.server.ray_serve import Scale

    assert Scale(3).options() == {"num_replicas": 3} and Scale().options() == {"num_replicas": 1}
    bounds = Scale(None, 0, 4).options()["autoscaling_config"]
    assert (bounds["min_replicas"], bounds["max_replicas"], bounds["initial_replicas"]) == (0, 4, 1)
    assert Scale(None, 2, None).most == 2 and Scale(None, None, 5).describe() == "1 to 5 replicas (autoscaling)"
    with pytest.raises(ConfigError, match="not both"):
        Scale(2, 1, None)
    with pytest.raises(ConfigError, match="--min-replicas 3 is above --max-replicas 2"):
        Scale(None, 3, 2)


def test_the_builder_for_rays_own_tools_checks_its_arguments(tmp_path: Path) -> None:
    """`mnist_classifier.server.ray_serve:build` (serve run, serve deploy, KubeRay) refuses what `serve` refuses."""
    require(importlib.util.find_spec("ray") is not None, "Ray Serve is not installed (pip install '.[ray]')")
    from ray.serve import Application

    from mnist_classifier.errors import ConfigError, RunError
    from mnist_classifier.server.ray_serve import build

    assert isinstance(build({}), Application)
    assert isinstance(build({"model": "bundled:cnn-fast", "max_upload_mb": "1", "max_decode_mb": "16"}), Application)
    with pytest.raises(ConfigError, match="unknown argument 'modle'"):
        build({"modle": "bundled:cnn-fast"})
    with pytest.raises(ConfigError, match="numbers of MiB"):
        build({"max_upload_mb": "five"})
    with pytest.raises(RunError, match="no such file"):
        build({"model": str(tmp_path / "nowhere")})
