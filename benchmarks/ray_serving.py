"""Ray Serve against one process: requests/s and latency of `serve --ray --replicas 2` beside `serve`.

Usage: python benchmarks/ray_serving.py [--model-run DIR] [--requests 2000] [--clients 8] [--rounds 3] [--replicas 2]

Both servers run side by side through the real command line and are loaded in turn (one, ray, one, ray...) by the
same raw asyncio client as benchmarks/serving.py (benchmarks/_stack.py: `clients` keep-alive connections on
127.0.0.1 posting multipart 28x28 PNGs of MNIST test digits); each figure is the median of the rounds. Without
--model-run the bundled fast CNN answers. Target (issue 26): on 2 cores, throughput at least one process's, p99
within 2x; the replicas' gain shows on machines with more cores than the client and the proxy take.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
from pathlib import Path

from _serve import free_port, served
from _stack import Outcome, interleaved
from rich.console import Console
from rich.table import Table


def compare(model: str, count: int, clients: int, rounds: int, replicas: int) -> dict[str, Outcome]:
    """`serve MODEL` and `serve MODEL --ray --replicas N`, each loaded with `count` requests a round after a warm-up,
    in turn for `rounds` rounds: per server, the median of each figure over the rounds."""
    ports = {"one process": free_port(), "ray": free_port()}
    ray_options = ("--ray", "--replicas", str(replicas))
    with served(Path(model), ports["one process"]), served(Path(model), ports["ray"], *ray_options):
        results = interleaved(ports, count, clients, rounds)
    return {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-run", help="A run directory (default: the bundled fast CNN).", default="bundled:cnn-fast"
    )
    parser.add_argument("--requests", type=int, default=2000, help="Requests a round, for each server.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    if importlib.util.find_spec("ray") is None:
        raise SystemExit("Ray Serve is not installed: pip install -e '.[ray]'")
    figures = compare(args.model_run, args.requests, args.clients, args.rounds, args.replicas)
    one, ray = figures["one process"], figures["ray"]
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    table = Table(title=f"serve vs serve --ray --replicas {args.replicas}, model {args.model_run}, {machine}")
    for column in ("measure", "one process", f"ray, {args.replicas} replicas", "ratio", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    title = f"requests/s ({args.requests:,} a round, {args.clients} clients, median of {args.rounds})"
    table.add_row(
        title,
        f"{one['per_second']:,.0f}",
        f"{ray['per_second']:,.0f}",
        f"{ray['per_second'] / one['per_second']:.2f}x",
        "≥ 1.00x",
    )
    table.add_row("median latency, ms", f"{one['median_ms']:.1f}", f"{ray['median_ms']:.1f}", "", "")
    table.add_row(
        "p99 latency, ms",
        f"{one['p99_ms']:.1f}",
        f"{ray['p99_ms']:.1f}",
        f"{ray['p99_ms'] / one['p99_ms']:.2f}x",
        "≤ 2.00x",
    )
    table.add_row("errors (non-200)", f"{one['errors']:.0f}", f"{ray['errors']:.0f}", "", "0")
    table.add_row("digits read right", f"{one['accuracy']:.2%}", f"{ray['accuracy']:.2%}", "", "")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
