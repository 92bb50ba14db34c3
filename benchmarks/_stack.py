"""The server against the HTTP stack's limit: requests/s of `serve` beside a bare FastAPI app only reading the upload.

Both are served by uvicorn with the same settings and hit by the same raw asyncio client (cheap, so that it leaves
the cores to the server): `clients` keep-alive connections on 127.0.0.1 posting multipart 28x28 PNGs of MNIST test
digits. Both servers run side by side and are loaded in turn (bare, real, bare, real...), so each round compares them
in the same seconds of a shared machine; the figure is the median of the rounds and the ratio of those medians.

Not a benchmark itself: benchmarks/serving.py prints its rows (`--http-only` for these alone).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import statistics
import time
from pathlib import Path

from _serve import free_port, served
from PIL import Image

from mnist_classifier.data import load_dataset

Outcome = dict[str, float]


def multipart_request(port: int, png: bytes) -> bytes:
    boundary = "benchmarkboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def client(port: int, requests: list[tuple[bytes, int]], latencies: list[float], outcome: list[int]) -> None:
    """One keep-alive connection sending its requests one after another; outcome = [errors, correct digits]."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for request, label in requests:
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
        body = await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        if head[9:12] != b"200":
            outcome[0] += 1
        elif json.loads(body).get("digit") == str(label):
            outcome[1] += 1
    writer.close()


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process has used so far (Linux's /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, requests: list[tuple[bytes, int]], clients: int, pid: int | None = None) -> Outcome:
    """`requests` shared among `clients` connections: requests/s, median and 99th percentile latency (ms), errors
    (non-200), the share of digits read right and, given the server's `pid`, its CPU time a request (µs)."""
    before = math.nan if pid is None else cpu_seconds(pid)

    async def run() -> tuple[list[float], list[int], float]:
        latencies: list[float] = []
        outcome = [0, 0]
        start = time.perf_counter()
        await asyncio.gather(*(client(port, requests[i::clients], latencies, outcome) for i in range(clients)))
        return latencies, outcome, time.perf_counter() - start

    latencies, (errors, correct), seconds = asyncio.run(run())
    cpu_us = math.nan if pid is None else (cpu_seconds(pid) - before) / len(latencies) * 1e6
    ms = sorted(x * 1000 for x in latencies)
    return {
        "per_second": len(ms) / seconds,
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)],
        "errors": errors,
        "accuracy": correct / len(ms),
        "cpu_us": cpu_us,
    }


def digit_pngs(count: int = 500) -> list[tuple[bytes, int]]:
    data = load_dataset("mnist")
    pngs = []
    for image, label in zip(data.x_test[:count], data.y_test[:count], strict=True):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        pngs.append((buffer.getvalue(), int(label)))
    return pngs


def interleaved(
    ports: dict[str, int], count: int, clients: int, rounds: int, pids: dict[str, int] | None = None
) -> dict[str, list[Outcome]]:
    """Each server (by name: its port, and its process id in `pids` for its CPU time) loaded with `count` MNIST test
    PNGs per round after a warm-up, in turn for `rounds` rounds: each round's figures, per server."""
    pngs = digit_pngs()
    requests = {
        name: [(multipart_request(port, pngs[i % len(pngs)][0]), pngs[i % len(pngs)][1]) for i in range(count)]
        for name, port in ports.items()
    }
    for name, port in ports.items():
        load(port, requests[name][:400], clients)
    results: dict[str, list[Outcome]] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            results[name].append(load(port, requests[name], clients, (pids or {}).get(name)))
    return results


def compare(run: Path, count: int, clients: int, rounds: int = 3, *options: str) -> dict[str, Outcome]:
    """The bare app and `serve RUN OPTIONS`, each loaded with `count` requests per round after a warm-up, in turn for
    `rounds` rounds: per server, the median of each figure over the rounds (and "ratio": real/bare requests/s)."""
    bare_port, real_port = free_port(), free_port()
    with served(None, bare_port) as bare, served(run, real_port, *options) as real:
        pids = {"bare": bare.pid, "real": real.pid}  # with --workers N, the parent's alone: its workers' is not counted
        results = interleaved({"bare": bare_port, "real": real_port}, count, clients, rounds, pids)
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    medians["ratio"] = {"per_second": medians["real"]["per_second"] / medians["bare"]["per_second"]}
    medians["rounds"] = {f"{name}_{i}": r["per_second"] for name, runs in results.items() for i, r in enumerate(runs)}
    return medians
