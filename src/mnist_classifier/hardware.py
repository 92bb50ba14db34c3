"""What this CPU offers for fast training and inference: its bfloat16 and int8 units, as the kernel reports them.

Read from /proc/cpuinfo (Linux) or sysctl (macOS), never by starting TensorFlow, so `--help` and the config stay
light; a machine that tells nothing is taken to have none of them (float32, the safe path).
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

BF16 = ("amx_bf16", "avx512_bf16")  # units that compute in bfloat16 natively (Intel AMX; AVX-512 BF16 on Zen 4, Xeon)
INT8 = ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp")  # int8 dot products (Intel, AMD; Arm's dot product)
RELEVANT = (*BF16, *INT8)
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """Every feature flag of the first CPU listed (lower case); empty where the system does not say."""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return frozenset(value.lower().split())
        return frozenset()
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return frozenset()
        return frozenset(out.lower().replace(".", "_").split())
    return frozenset()


def relevant_flags() -> list[str]:
    """The bfloat16 and int8 flags this CPU has, in RELEVANT's order."""
    flags = cpu_flags()
    return [flag for flag in RELEVANT if flag in flags]


def has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AMX or AVX-512 BF16); without, oneDNN emulates it, slower."""
    return any(flag in cpu_flags() for flag in BF16)


def int8_units() -> str | None:
    """The CPU's first int8 dot-product unit (INT8's order) that onnxruntime's int8 kernels use, or None: without
    one an int8 copy of a model runs no faster than float32."""
    flags = cpu_flags()
    return next((flag for flag in INT8 if flag in flags), None)


def summary() -> dict[str, Any]:
    """What a run records of the machine it trained on: the processor, its relevant flags, and whether TensorFlow's
    oneDNN kernels are on (TF_ENABLE_ONEDNN_OPTS, on by default on x86 Linux) and capped (ONEDNN_MAX_CPU_ISA)."""
    out: dict[str, Any] = {"processor": processor(), "machine": platform.machine(), "flags": relevant_flags()}
    out["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        out["onednn_max_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    return out


@functools.cache
def processor() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (platform.processor() elsewhere)."""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"
