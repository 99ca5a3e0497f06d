"""Shared helpers: settings from the environment, timing, the machine's description."""

from __future__ import annotations

import gc
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / ".build"

#: The sections, in the order a full run does them.
SECTIONS = ("decode", "scaling", "echo", "dns", "axfr", "scale", "conns")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def quick() -> bool:
    """``BENCH_QUICK=1``: smaller streams, shorter runs (a smoke test, not a result)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the collector off while timing (as ``timeit`` does)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def best_of(repeats: int, run: Callable[[], tuple[T, int]]) -> tuple[T, int, list[int]]:
    """Run ``run`` (which returns a result and its own elapsed ns) and keep the fastest.

    Returns the last result, the best time and every time.
    """
    times: list[int] = []
    result: Any = None
    for _ in range(repeats):
        with gc_paused():
            result, elapsed = run()
        times.append(elapsed)
    return result, min(times), times


def timed(fn: Callable[[], T]) -> tuple[T, int]:
    start = time.perf_counter_ns()
    result = fn()
    return result, time.perf_counter_ns() - start


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout + out.stderr).strip().splitlines()
    # The first line that carries a version number (dnsperf starts with its title).
    return next((x.strip() for x in lines if any(c.isdigit() for c in x)), "unknown")


def load() -> str:
    """The 1, 5 and 15-minute load averages: how busy the machine was besides us."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """The machine, the interpreter and every package and tool version, for RESULTS.md."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "kernel": platform.release(),
        "load": load(),
        "python": sys.version.split()[0] + " (" + platform.python_implementation() + ")",
        "packages": {
            name: _version(name)
            for name in (
                "framing",
                "anyio",
                "trio",
                "uvloop",
                "Twisted",
                "dnslib",
                "construct",
                "matplotlib",
                "pyinstrument",
            )
        },
        "tools": {
            "cc": _tool_version(["cc", "--version"]),
            "dnsperf": _tool_version(["dnsperf", "-h"]) if shutil.which("dnsperf") else "",
            "unbound": _tool_version(["unbound", "-V"]),
            "knotd": _tool_version(["knotd", "-V"]),
            "kdig": _tool_version(["kdig", "-V"]),
        },
    }
