"""What the CPU this process runs on can do (read from /proc/cpuinfo on Linux; nothing elsewhere)."""

from __future__ import annotations

import functools
from pathlib import Path

INFERENCE_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16")
"""The /proc/cpuinfo flags that decide how fast a network runs on a CPU, in the order they are reported."""

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""Flags of CPUs with native bf16 arithmetic; without them bf16 is emulated and slower than fp32."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """All flags of the first CPU in /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return next((frozenset(line.split(":", 1)[1].split()) for line in text.splitlines()
                 if line.startswith("flags")), frozenset())


def inference_flags() -> list[str]:
    """The `INFERENCE_FLAGS` this CPU has, e.g. ["avx2", "fma"]."""
    flags = cpu_flags()
    return [f for f in INFERENCE_FLAGS if f in flags]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), so bf16 autocast can beat fp32."""
    return bool(BF16_FLAGS & cpu_flags())
