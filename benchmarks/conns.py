"""Part 5: the cost of a connection, ours against the peers.

Two runs per server, each server in its own process and the load generator
(``benchmarks.connload``) in another:

- idle: 1k, 5k and 20k connections (or as many as the hard limit on open
  descriptors allows), each opened, echoed once and left open, against a fresh
  server: memory per connection, open rate, the latency of one extra
  connection's echoes under that load, and the CPU time to tear them down;
- churn: 16 clients in loops of connect, echo one message, close.

The soft limit on open descriptors is raised to the hard limit here, which the
servers inherit (the peers and the load generator also raise their own).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import env_float, env_int, log, quick
from benchmarks.connload import raise_nofile
from benchmarks.echo import PORT_PATTERN
from benchmarks.procs import ServerFailed, framing_command, server

#: Descriptors kept back from the hard limit for everything else a process opens.
FD_MARGIN = 100


def _ours(loop: str, max_connections: int) -> list[str]:
    return framing_command(
        "echo",
        "--framing",
        "length:2",
        "--port",
        "0",
        "--loop",
        loop,
        "--quiet",
        "--max-connections",
        str(max_connections),
    )


def _peer(kind: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.echo_peers", kind]


def servers(max_connections: int) -> tuple[tuple[str, str, list[str]], ...]:
    """(key, label, argv) of every server, ours first."""
    return (
        ("ours-asyncio", "framing echo on asyncio", _ours("asyncio", max_connections)),
        ("ours-uvloop", "framing echo on uvloop", _ours("uvloop", max_connections)),
        ("ours-trio", "framing echo on trio", _ours("trio", max_connections)),
        ("asyncio-protocol", "hand-written asyncio Protocol", _peer("asyncio-protocol")),
        ("uvloop-protocol", "hand-written asyncio Protocol on uvloop", _peer("uvloop-protocol")),
        ("twisted", "Twisted Int16StringReceiver", _peer("twisted")),
    )


def counts(limit: int) -> list[int]:
    """The idle connection counts: 1k, 5k, 20k, each capped by the descriptor limit."""
    wanted = [200, 1000] if quick() else [1000, 5000, 20000]
    most = env_int("BENCH_CONNS_MAX", 0)
    if most:
        wanted = [c for c in wanted if c < most] + [most]
    return sorted({min(c, limit - FD_MARGIN) for c in wanted})


def run_conns() -> dict[str, Any]:
    """Every server at every idle count, then the churn run, in alternating order."""
    hard = raise_nofile()
    sizes = counts(hard)
    settings = {
        "counts": sizes,
        "nofile": hard,
        "window": env_int("BENCH_CONNS_WINDOW", 64),
        "rounds": env_int("BENCH_CONNS_ROUNDS", 500),
        "sources": env_int("BENCH_CONNS_SOURCES", 16),
        "clients": env_int("BENCH_CHURN_CLIENTS", 16),
        "warmup": env_float("BENCH_CHURN_WARMUP", 0.5),
        "duration": env_float("BENCH_CHURN_SECONDS", 1.5 if quick() else 3.0),
    }
    table = servers(max(sizes) + FD_MARGIN)
    rows: list[dict[str, Any]] = []
    churn: list[dict[str, Any]] = []
    notes: list[str] = []
    started = time.monotonic()
    for number, n in enumerate(sizes):
        order = table if number % 2 == 0 else tuple(reversed(table))
        for key, label, argv in order:
            row, note = _measure(key, label, argv, ["idle", "--count", str(n)], settings)
            if note:
                notes.append(note)
            if row is not None:
                rows.append(row)
                log(
                    f"conns {key:17} n={row['count']:6}  {row['kib_per_conn']:6.2f} KiB/conn"
                    f"  open {row['open_per_s'] / 1e3:6.1f} k/s  p50 {row['p50_us']:.0f} us"
                    f"  p99 {row['p99_us']:.0f} us  teardown cpu {row['teardown_cpu_s']:.2f} s"
                    + ("" if row["verified"] else f"  FAILED {row['errors'][:2]}")
                )
    for key, label, argv in reversed(table):
        row, note = _measure(key, label, argv, ["churn"], settings)
        if note:
            notes.append(note)
        if row is not None:
            churn.append(row)
            log(
                f"churn {key:17} {row['conns_per_s'] / 1e3:6.1f} k conn/s"
                f"  server {row['server_cpu_us_per_conn']:.0f} us/conn"
                + ("" if row["verified"] else f"  FAILED {row['errors'][:2]}")
            )
    keys = [k for k, _, _ in table]
    rows.sort(key=lambda r: (r["count"], keys.index(r["server"])))
    churn.sort(key=lambda r: keys.index(r["server"]))
    return {
        "rows": rows,
        "churn": churn,
        "notes": notes,
        "settings": settings,
        "seconds": time.monotonic() - started,
    }


def _measure(
    key: str, label: str, argv: list[str], mode: list[str], settings: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """One fresh server, one load run: (the row or None, a note or "")."""
    row: dict[str, Any] = {"server": key, "label": label}
    extra = [
        "--window",
        str(settings["window"]),
        "--rounds",
        str(settings["rounds"]),
        "--sources",
        str(settings["sources"]),
        "--clients",
        str(settings["clients"]),
        "--warmup",
        str(settings["warmup"]),
        "--duration",
        str(settings["duration"]),
    ]
    try:
        with server(argv, port_pattern=PORT_PATTERN) as (port, pid):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.connload",
                    *mode,
                    "--port",
                    str(port),
                    "--server-pid",
                    str(pid),
                    *extra,
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
    except (ServerFailed, subprocess.TimeoutExpired) as exc:
        log(f"conns {key}: not measured: {exc}")
        return None, f"{label} ({mode[0]}): not measured ({exc})"
    lines = out.stdout.strip().splitlines()
    if not lines:
        log(f"conns {key}: load generator failed: {out.stderr[-2000:]}")
        return None, f"{label} ({mode[0]}): the load generator failed: {out.stderr[-300:]}"
    row.update(json.loads(lines[-1]))
    row["verified"] = not row["errors"]
    if not row["verified"]:
        return row, f"{label} ({mode[0]}): FAILED: {row['errors'][:3]}"
    return row, ""
