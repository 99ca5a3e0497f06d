"""Part 3: loopback echo of 64-byte length:2 messages, ours against the peers.

Each server runs in its own process; the load generator (``benchmarks.loadgen``)
in another, with 8 connections and 32 messages in flight on each, for a fixed
time after a warm-up. Client and server share the machine's cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import env_float, env_int, log, quick
from benchmarks.procs import ServerFailed, framing_command, server

#: (key, label, argv). Ours first.
SERVERS: tuple[tuple[str, str, list[str]], ...] = (
    (
        "ours-asyncio",
        "framing echo --quiet (serve_inline) on asyncio",
        framing_command(
            "echo", "--framing", "length:2", "--port", "0", "--loop", "asyncio", "--quiet"
        ),
    ),
    (
        "ours-uvloop",
        "framing echo --quiet (serve_inline) on uvloop",
        framing_command(
            "echo", "--framing", "length:2", "--port", "0", "--loop", "uvloop", "--quiet"
        ),
    ),
    (
        "ours-trio",
        "framing echo --quiet (serve_pipelined, a task each) on trio",
        framing_command(
            "echo", "--framing", "length:2", "--port", "0", "--loop", "trio", "--quiet"
        ),
    ),
    (
        "asyncio-protocol",
        "hand-written asyncio Protocol",
        [sys.executable, "-m", "benchmarks.echo_peers", "asyncio-protocol"],
    ),
    (
        "uvloop-protocol",
        "hand-written asyncio Protocol on uvloop",
        [sys.executable, "-m", "benchmarks.echo_peers", "uvloop-protocol"],
    ),
    (
        "twisted",
        "Twisted Int16StringReceiver",
        [sys.executable, "-m", "benchmarks.echo_peers", "twisted"],
    ),
    (
        "asyncio-streams",
        "asyncio streams (readexactly, write + drain)",
        [sys.executable, "-m", "benchmarks.echo_peers", "asyncio-streams"],
    ),
    (
        "anyio-natural",
        "natural anyio (receive_exactly, one send per message)",
        [sys.executable, "-m", "benchmarks.echo_peers", "anyio-natural"],
    ),
)

PORT_PATTERN = r"listening on 127\.0\.0\.1:(\d+)"


def run_echo() -> dict[str, Any]:
    """Every server, in passes of alternating order; each server's best pass is kept.

    A burst of load from elsewhere then hurts one pass of a server, not its result,
    and the servers measured early and late trade places between passes.
    """
    duration = env_float("BENCH_ECHO_SECONDS", 2.0 if quick() else 4.0)
    warmup = env_float("BENCH_ECHO_WARMUP", 0.5)
    passes = env_int("BENCH_ECHO_PASSES", 1 if quick() else 2)
    settings = {
        "connections": env_int("BENCH_ECHO_CONNECTIONS", 8),
        "depth": env_int("BENCH_ECHO_DEPTH", 32),
        "size": env_int("BENCH_ECHO_SIZE", 64),
        "warmup": warmup,
        "duration": duration,
        "passes": passes,
    }
    best: dict[str, dict[str, Any]] = {}
    failed: dict[str, dict[str, Any]] = {}
    # Each pass's rates, for the targets that must hold in every pass.
    by_pass: list[dict[str, float]] = []
    notes: list[str] = []
    started = time.monotonic()
    for number in range(passes):
        order = SERVERS if number % 2 == 0 else tuple(reversed(SERVERS))
        by_pass.append({})
        for key, label, argv in order:
            row, note = _measure(key, label, argv, settings)
            if note:
                notes.append(note)
            if row is None:
                continue
            if not row["verified"]:
                failed.setdefault(key, row)
                continue
            by_pass[-1][key] = row["msgs_per_s"]
            if key not in best or row["msgs_per_s"] > best[key]["msgs_per_s"]:
                best[key] = row
    rows = [failed.get(key) or best[key] for key, _, _ in SERVERS if key in best or key in failed]
    return {
        "rows": rows,
        "by_pass": by_pass,
        "notes": notes,
        "settings": settings,
        "seconds": time.monotonic() - started,
    }


def _measure(
    key: str, label: str, argv: list[str], settings: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """One server, one load run: (the row or None, a note or "")."""
    row: dict[str, Any] = {"server": key, "label": label}
    try:
        with server(argv, port_pattern=PORT_PATTERN) as (port, pid):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.loadgen",
                    "--port",
                    str(port),
                    "--connections",
                    str(settings["connections"]),
                    "--depth",
                    str(settings["depth"]),
                    "--size",
                    str(settings["size"]),
                    "--warmup",
                    str(settings["warmup"]),
                    "--duration",
                    str(settings["duration"]),
                    "--server-pid",
                    str(pid),
                ],
                capture_output=True,
                text=True,
                timeout=settings["duration"] + settings["warmup"] + 60,
                check=False,
            )
    except (ServerFailed, subprocess.TimeoutExpired) as exc:
        log(f"echo {key}: not measured: {exc}")
        return None, f"{label}: not measured ({exc})"
    lines = out.stdout.strip().splitlines()
    if not lines:
        log(f"echo {key}: load generator failed: {out.stderr[-2000:]}")
        return None, f"{label}: the load generator failed: {out.stderr[-500:]}"
    row.update(json.loads(lines[-1]))
    row["verified"] = not row["errors"] and row["bytes_unechoed"] == 0
    log(
        f"echo {key:17} {row['msgs_per_s'] / 1e3:8.1f} k msgs/s  p50 {row['p50_us']:.0f} us"
        f"  p99 {row['p99_us']:.0f} us  cpu server {row['server_cpu']:.0%}"
        f" client {row['client_cpu']:.0%}" + ("" if row["verified"] else "  FAILED")
    )
    if not row["verified"]:
        return row, f"{label}: VERIFICATION FAILED: {row['errors']}"
    return row, ""
