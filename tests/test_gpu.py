"""The GPU: the `gpu` extra resolves beside the CPU build, and a run records and shows the device it trained on."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from .conftest import require

ROOT = Path(__file__).parent.parent
OFFLINE = ("Could not fetch", "NewConnectionError", "Network is unreachable", "Temporary failure in name resolution")


def test_a_run_records_its_device_in_config_metrics_and_report(tiny_run: Path) -> None:
    device = json.loads((tiny_run / "config.json").read_text())["meta"]["device"]
    assert device["type"] in ("CPU", "GPU") and device["name"]
    assert json.loads((tiny_run / "metrics.json").read_text())["device"] == device


def test_the_report_names_a_gpu() -> None:
    from mnist_classifier.report.run import _path

    metrics = {"precision": "float32", "device": {"type": "GPU", "name": "NVIDIA H100 80GB HBM3", "gpus": 2}}
    assert _path("6 epochs", metrics) == "6 epochs · float32 · GPU NVIDIA H100 80GB HBM3 (of 2)"
    cpu = {"precision": "float32", "cpu_flags": ["avx512_bf16"], "device": {"type": "CPU", "name": "x", "gpus": 0}}
    assert _path("6 epochs", cpu) == "6 epochs · float32 (avx512_bf16)"


def test_the_gpu_extra_resolves_beside_the_cpu_build(python_process: Any) -> None:
    """pip resolves the `gpu` extra's requirement against this environment: TensorFlow of tensorflow-cpu's version
    with its CUDA libraries, and no installed package changed."""
    [requirement] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    version = metadata.version("tensorflow-cpu")
    pinned = f"{requirement.split('>=')[0]}=={version}"
    done = python_process.run("-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", pinned, timeout=600)
    require(not any(word in done.stderr for word in OFFLINE), f"pip cannot reach its index: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    chosen = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    assert chosen.get("tensorflow") == version
    assert any(name.startswith("nvidia-cudnn") for name in chosen)
    installed = {canonical(d.metadata["Name"]) for d in metadata.distributions()}
    assert not {canonical(name) for name in chosen} & installed  # pip replaces nothing of the CPU build


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
