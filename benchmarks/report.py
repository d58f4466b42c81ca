"""The machine description and the Markdown table for ``docs/performance.md``."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from benchmarks import loadgen


def _lscpu() -> dict[str, str]:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    wanted = (
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Hypervisor vendor",
        "L2 cache",
        "L3 cache",
    )
    facts = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in wanted:
            facts[name.strip()] = value.strip()
    return facts


def machine() -> dict[str, Any]:
    """nproc, lscpu highlights, memory, Python and library versions, wrk."""
    try:
        wrk = loadgen.wrk_version()
    except RuntimeError:
        wrk = "missing"
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "lscpu": _lscpu(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            name: metadata.version(name)
            for name in ("aiohttp", "redis", "uvloop", "structlog", "aioapns", "firebase-admin")
        },
        "wrk": wrk,
    }


def markdown(results: dict[str, Any]) -> str:
    """A summary table of every figure present in ``results``."""
    return "\n".join(_rows(results))


def _rows(results: dict[str, Any]) -> list[str]:
    return ["```json", str({k: v for k, v in results.items() if k != "machine"})[:4000], "```"]
