"""Soak and attack: a served model under minutes of steady mixed load, then under hostile decompression-bomb PNGs.

Usage: python benchmarks/soak.py [--model-run DIR] [--minutes 5] [--attack-seconds 60]

Without --model-run it trains the default DNN first (about half a minute). It starts `mnist-classifier serve`
on 127.0.0.1 in a fresh process and drives it with its own asyncio clients (raw keep-alive HTTP/1.1, cheap so
they leave the cores to the server):
(a) steady load: 8 clients, four valid MNIST digits (multipart PNG) to one bad body (truncated PNG, text, a blank
    image, broken JSON), for --minutes; p50/p99 of the valid requests per minute, the server's resident memory
    at the start and the end;
(b) attack: 16 clients posting a 7000x7000 RGBA PNG (about 200 KB, transparent but one stroke) and a 16-megapixel
    1-bit PNG (a few KB) while 4 clients post valid digits, for --attack-seconds; the server's peak memory
    growth, the slowest hostile answer and its statuses, the valid clients' p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _serve import HOST, free_port, hostile_pngs, png, served, train_model
from PIL import Image
from rich.console import Console
from rich.table import Table

from mnist_classifier.data import load_dataset


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def request(port: int, body: bytes, content_type: str, multipart: bool = True) -> bytes:
    if multipart:
        boundary = "soakboundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Sample:
    at: float  # seconds since the phase began
    kind: str
    status: int
    seconds: float


@dataclass
class Phase:
    start: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)


async def client(port: int, bodies: list[tuple[str, bytes]], phase: Phase, until: float) -> None:
    """One keep-alive connection posting its bodies in turn until `until`; reconnects when the server closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    i = 0
    while time.perf_counter() < until:
        kind, message = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        writer.write(message)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next(int(line[15:]) for line in lines if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            phase.samples.append(Sample(start - phase.start, kind, 0, time.perf_counter() - start))
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, port)
            continue
        phase.samples.append(Sample(start - phase.start, kind, int(lines[0][9:12]), time.perf_counter() - start))
        if any(line.lower() == b"connection: close" for line in lines):
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, port)
    writer.close()


async def watch_memory(pid: int, until: float, peak: list[float]) -> None:
    while time.perf_counter() < until:
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.1)


async def run_phase(
    port: int, pid: int, groups: list[tuple[int, list[tuple[str, bytes]]]], seconds: float
) -> tuple[Phase, float]:
    phase = Phase()
    until = phase.start + seconds
    peak = [rss_mb(pid)]
    tasks = [client(port, bodies[i::count] or bodies, phase, until) for count, bodies in groups for i in range(count)]
    await asyncio.gather(watch_memory(pid, until, peak), *tasks)
    return phase, peak[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-run", type=Path, help="A run directory to serve instead of training the default DNN.")
    parser.add_argument("--minutes", type=float, default=5.0, help="Length of the steady load.")
    parser.add_argument("--attack-seconds", type=float, default=60.0, help="Length of the attack.")
    args = parser.parse_args()
    console = Console(width=120)
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    data = load_dataset("mnist")
    hostile = hostile_pngs()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.model_run or train_model(Path(tmp))
        port = free_port()
        valid = [("valid", request(port, png(Image.fromarray(image)), "image/png")) for image in data.x_test[:400]]
        whole = png(Image.fromarray(data.x_test[0]))
        bad = [
            ("bad", request(port, whole[: len(whole) // 2], "image/png")),
            ("bad", request(port, b"this is a text file, not a picture\n" * 20, "image/png")),
            ("bad", request(port, png(Image.new("L", (200, 300), 255)), "image/png")),
            ("bad", request(port, b'{"pixels": [[0.5, ', "application/json", multipart=False)),
        ]
        steady = [valid[i] if i % 5 else bad[(i // 5) % len(bad)] for i in range(len(valid))]
        attack = [(name, request(port, body, "image/png")) for name, body in hostile.items()]
        with served(run, port) as server:
            asyncio.run(run_phase(port, server.pid, [(8, valid)], 5))  # warm-up
            rss_start = rss_mb(server.pid)
            soak, soak_peak = asyncio.run(run_phase(port, server.pid, [(8, steady)], args.minutes * 60))
            rss_end = rss_mb(server.pid)
            rss_before_attack = rss_end
            hit, attack_peak = asyncio.run(run_phase(port, server.pid, [(16, attack), (4, valid)], args.attack_seconds))
            rss_after_attack = rss_mb(server.pid)

    table = Table(title=f"soak and attack, model {run.name}, {machine}, server on {HOST}")
    for column in ("measure", "result", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    valid_samples = [s for s in soak.samples if s.kind == "valid"]
    bad_samples = [s for s in soak.samples if s.kind == "bad"]
    minutes = max(1, math.ceil(args.minutes))
    p99s = []
    for minute in range(minutes):
        ms = [s.seconds * 1000 for s in valid_samples if minute * 60 <= s.at < (minute + 1) * 60]
        p99s.append(percentile(ms, 0.99))
        table.add_row(
            f"steady, minute {minute + 1}: valid requests, p50 / p99",
            f"{len(ms):,}, {percentile(ms, 0.5):.1f} / {p99s[-1]:.1f} ms",
            "",
        )
    table.add_row(
        f"steady, {args.minutes:g} min, 8 clients: valid answered 200",
        f"{sum(s.status == 200 for s in valid_samples):,} of {len(valid_samples):,}",
        "all",
    )
    bad_statuses = statistics_of(bad_samples)
    table.add_row("steady: bad bodies, statuses", bad_statuses, "4xx")
    table.add_row("steady: last minute's p99 / first minute's", f"{p99s[-1] / p99s[0]:.2f}x", "≤ 1.5x")
    table.add_row(
        "steady: server RSS start → end (peak)",
        f"{rss_start:.0f} → {rss_end:.0f} MB ({soak_peak:.0f}), {100 * (rss_end / rss_start - 1):+.1f}%",
        "< +10%",
    )
    hostile_samples = [s for s in hit.samples if s.kind != "valid"]
    attack_valid = [s.seconds * 1000 for s in hit.samples if s.kind == "valid"]
    for name in hostile:
        mine = [s for s in hostile_samples if s.kind == name]
        table.add_row(
            f"attack, {args.attack_seconds:g} s, 16 clients: {name} ({len(hostile[name]) / 1000:,.0f} KB), statuses",
            statistics_of(mine),
            "413 or 200",
        )
        table.add_row(f"attack: {name}, slowest answer", f"{max(s.seconds for s in mine):.2f} s", "≤ 2 s")
    table.add_row(
        "attack: 4 valid clients, p50 / p99",
        f"{len(attack_valid):,}, {percentile(attack_valid, 0.5):.1f} / {percentile(attack_valid, 0.99):.1f} ms",
        "p99 < 100 ms",
    )
    table.add_row(
        "attack: valid answered 200",
        f"{sum(s.status == 200 for s in hit.samples if s.kind == 'valid'):,} of {len(attack_valid):,}",
        "all",
    )
    table.add_row(
        "attack: server RSS before → peak (after)",
        f"{rss_before_attack:.0f} → {attack_peak:.0f} MB ({rss_after_attack:.0f}),"
        f" +{attack_peak - rss_before_attack:.0f} MB",
        "≤ +300 MB",
    )
    console.print(table)
    console.print(
        "tool: benchmarks/soak.py's asyncio clients (raw keep-alive HTTP/1.1); command: python benchmarks/soak.py "
        + " ".join(sys.argv[1:])
    )


def statistics_of(samples: list[Sample]) -> str:
    counts: dict[int, int] = {}
    for s in samples:
        counts[s.status] = counts.get(s.status, 0) + 1
    return ", ".join(f"{status or 'closed'}: {n:,}" for status, n in sorted(counts.items())) or "none"


if __name__ == "__main__":
    main()
