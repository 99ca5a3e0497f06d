"""Part 5 (``BENCH=scale``): ``--workers 1`` and ``2``, and HAProxy with PROXY v2 in front.

- **DNS**: ``dnsperf`` over UDP and TCP (8 client sockets, so that the kernel's
  ``SO_REUSEPORT`` hash has flows to spread) against ``framing dns --workers N``
  and unbound with ``num-threads: N`` (local data, as in part 4), N = 1 and 2.
- **Echo**: the load generator of part 3 against ``framing echo --framing
  length:2 --workers N``.
- **HAProxy** (TCP mode, one thread, one backend) in front of ``framing echo
  --framing length:2``: with ``send-proxy-v2`` and ``--proxy-protocol 127.0.0.1``,
  without either (the PROXY cost is the ratio of the two), and with
  ``send-proxy-v2`` in front of the hand-written asyncio Protocol that skips
  the header (``echo_peers asyncio-protocol-proxy``).

The load generator shares the machine's cores with the servers, so qps alone
says little when two workers compete with it: each row also gives the CPU
seconds the server spent per million queries or messages (the whole process
tree: supervisor and workers; unbound's threads), measured from ``/proc``
over the load generator's whole run, divided by every answer it received.
"""

from __future__ import annotations

import json
import math
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks import dns_zone
from benchmarks.common import env_float, env_int, log, quick
from benchmarks.loadgen import cpu_of
from benchmarks.procs import ServerFailed, framing_command, free_port, server_matching

WORKERS = (1, 2)
CLIENTS = 8  # dnsperf -c: client sockets (UDP source ports, TCP connections)

#: HAProxy's configuration: that of tests/protocols/test_haproxy.py, with one
#: backend and one thread (the same front for every server measured).
HAPROXY_CONFIG = """\
global
    maxconn 4096
    nbthread 1

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend clients
    bind 127.0.0.1:{port}
    default_backend echoes

backend echoes
    server echo1 127.0.0.1:{backend} {send_proxy}
"""

#: (key, label, backend argv, HAProxy's server option). Ours first.
BEHIND_HAPROXY: tuple[tuple[str, str, list[str], str], ...] = (
    (
        "ours-proxy-v2",
        "framing echo --proxy-protocol, send-proxy-v2",
        framing_command(
            "echo",
            "--framing",
            "length:2",
            "--port",
            "0",
            "--quiet",
            "--proxy-protocol",
            "127.0.0.1",
        ),
        "send-proxy-v2",
    ),
    (
        "ours-plain",
        "framing echo, no PROXY",
        framing_command("echo", "--framing", "length:2", "--port", "0", "--quiet"),
        "",
    ),
    (
        "asyncio-protocol-proxy",
        "hand-written asyncio Protocol, send-proxy-v2",
        [sys.executable, "-m", "benchmarks.echo_peers", "asyncio-protocol-proxy"],
        "send-proxy-v2",
    ),
)

ECHO_PORT = r"listening on 127\.0\.0\.1:(\d+)"
DNS_PORT = r"port (\d+) \(UDP and TCP\)"


# -- CPU of a process tree ---------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and every descendant of it alive now (from each process's parent in /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes, all their threads."""
    return sum(cpu for cpu in map(cpu_of, pids) if not math.isnan(cpu))  # an ended one


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_million(cpu: float, count: float) -> float | None:
    return cpu / count * 1e6 if count else None


# -- servers -----------------------------------------------------------------------------


def _each(pattern: str, times: int) -> str:
    """A pattern matching ``times`` lines of ``pattern``, its first group the first's."""
    rest = pattern.replace(r"(\d+)", r"\d+")
    return pattern + "".join(r"[\s\S]*?" + rest for _ in range(times - 1))


@contextmanager
def dns_server(kind: str, workers: int, workdir: Path) -> Iterator[tuple[int, int]]:
    """``framing dns --workers N`` or unbound with N threads; yield (port, pid)."""
    if kind == "ours":
        argv = framing_command("dns", "--port", "0", "--workers", str(workers))
        with server_matching(argv, pattern=_each(DNS_PORT, workers)) as (match, pid):
            yield int(match.group(1)), pid
    else:
        port = free_port()
        conf = workdir / f"unbound-{workers}.conf"
        text = dns_zone.unbound_conf(str(workdir), port)
        conf.write_text(text.replace("num-threads: 1", f"num-threads: {workers}"))
        with server_matching(["unbound", "-d", "-c", str(conf)], pattern="start of service") as (
            _,
            pid,
        ):
            yield port, pid


_STATS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "qps": r"Queries per second:\s+([\d.]+)",
}


def dnsperf(port: int, mode: str, queries: Path, seconds: float, pid: int) -> dict[str, Any]:
    """One dnsperf run; its figures and the CPU both sides spent per million queries."""
    outstanding = env_int("BENCH_DNS_OUTSTANDING", 100)
    argv = [
        "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-m", mode,
        "-c", str(CLIENTS), "-q", str(outstanding), "-l", str(seconds),
    ]  # fmt: skip
    pids = tree(pid)
    server0, client0 = tree_cpu(pids), children_cpu()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    server1, client1 = tree_cpu(pids), children_cpu()
    text = out.stdout + out.stderr
    result: dict[str, Any] = {"command": " ".join(argv[:1] + argv[5:]), "exit": out.returncode}
    for key, pattern in _STATS.items():
        match = re.search(pattern, text)
        result[key] = float(match.group(1)) if match else None
    completed = result["completed"] or 0.0
    result["server_cpu_per_m"] = per_million(server1 - server0, completed)
    result["client_cpu_per_m"] = per_million(client1 - client0, completed)
    if result["qps"] is None:
        result["error"] = text[-800:]
    return result


def loadgen(port: int, pid: int, settings: dict[str, Any]) -> dict[str, Any]:
    """One echo load run against ``port``; the server tree's CPU per million messages."""
    argv = [
        sys.executable, "-m", "benchmarks.loadgen", "--port", str(port),
        "--connections", str(settings["connections"]), "--depth", str(settings["depth"]),
        "--size", str(settings["size"]), "--warmup", str(settings["warmup"]),
        "--duration", str(settings["duration"]),
    ]  # fmt: skip
    pids = tree(pid)
    server0 = tree_cpu(pids)
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=settings["duration"] + settings["warmup"] + 60,
        check=False,
    )
    server1 = tree_cpu(pids)
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise ServerFailed(f"the load generator failed: {out.stderr[-500:]}")
    row: dict[str, Any] = json.loads(lines[-1])
    row["verified"] = not row["errors"] and row["bytes_unechoed"] == 0
    # Every message echoed in the run, warm-up included, as the CPU was measured.
    echoed = row["bytes_verified"] / (2 + settings["size"])
    row["server_cpu_per_m"] = per_million(server1 - server0, echoed)
    row["client_cpu_per_m"] = (
        per_million(row["client_cpu"], row["msgs_per_s"]) if row["msgs_per_s"] else None
    )
    return row


@contextmanager
def haproxy(backend: int, send_proxy: str, workdir: Path) -> Iterator[int]:
    """HAProxy in front of ``backend``; yield its port."""
    port = free_port()
    conf = workdir / "haproxy.cfg"
    conf.write_text(HAPROXY_CONFIG.format(port=port, backend=backend, send_proxy=send_proxy))
    # -db: stay in the foreground; -V: print the polling mechanism, once configured.
    argv = ["haproxy", "-db", "-V", "-f", str(conf)]
    with server_matching(argv, pattern=r"as the polling mechanism"):
        deadline = time.monotonic() + 10
        while True:  # bounded: until it listens (a probe the backend sees end at once)
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port


# -- the runs ----------------------------------------------------------------------------


def run_scale() -> dict[str, Any]:
    """DNS and echo with 1 and 2 workers, then the HAProxy runs; passes in alternating order."""
    seconds = env_float("BENCH_SCALE_SECONDS", 2.0 if quick() else 4.0)
    passes = env_int("BENCH_SCALE_PASSES", 1 if quick() else 2)
    settings: dict[str, Any] = {
        "connections": env_int("BENCH_ECHO_CONNECTIONS", 8),
        "depth": env_int("BENCH_ECHO_DEPTH", 32),
        "size": env_int("BENCH_ECHO_SIZE", 64),
        "warmup": env_float("BENCH_ECHO_WARMUP", 0.5),
        "duration": seconds,
        "passes": passes,
        "clients": CLIENTS,
        "outstanding": env_int("BENCH_DNS_OUTSTANDING", 100),
    }
    notes: list[str] = []
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    started = time.monotonic()
    runs = _plan(notes)
    with tempfile.TemporaryDirectory(prefix="framing-bench-scale-") as tmp:
        workdir = Path(tmp)
        queries = workdir / "queries.txt"
        queries.write_text(dns_zone.query_file())
        for number in range(passes):
            for run in runs if number % 2 == 0 else list(reversed(runs)):
                try:
                    for row in _measure(run, workdir, queries, settings):
                        key = (row["part"], row["server"], row["workers"], row.get("mode", ""))
                        rate = row.get("qps") or row.get("msgs_per_s") or 0.0
                        old = best.get(key)
                        if old is None or rate > (old.get("qps") or old.get("msgs_per_s") or 0):
                            best[key] = row
                except (ServerFailed, OSError, subprocess.TimeoutExpired) as exc:
                    notes.append(f"{run}: not measured in pass {number + 1} ({exc})")
                    log(f"scale {run}: not measured: {exc}")
    rows = sorted(best.values(), key=_order)
    return {
        "rows": rows,
        "notes": notes,
        "settings": settings,
        "seconds": time.monotonic() - started,
    }


def _plan(notes: list[str]) -> list[tuple[str, str, int]]:
    """(part, server, workers) of every run this machine can do."""
    runs: list[tuple[str, str, int]] = []
    if shutil.which("dnsperf") is None:
        notes.append("dnsperf is not installed: the DNS runs did not happen")
    else:
        kinds = ["ours"] + (["unbound"] if shutil.which("unbound") else [])
        if "unbound" not in kinds:
            notes.append("unbound is not installed: left out")
        runs += [("dns", kind, n) for n in WORKERS for kind in kinds]
    runs += [("echo", "ours", n) for n in WORKERS]
    if shutil.which("haproxy") is None:
        notes.append("haproxy is not installed: the HAProxy runs did not happen")
    else:
        runs += [("haproxy", key, 1) for key, _, _, _ in BEHIND_HAPROXY]
    return runs


def _measure(
    run: tuple[str, str, int], workdir: Path, queries: Path, settings: dict[str, Any]
) -> list[dict[str, Any]]:
    part, kind, workers = run
    base = {"part": part, "server": kind, "workers": workers}
    if part == "dns":
        rows = []
        with dns_server(kind, workers, workdir) as (port, pid):
            for mode in ("udp", "tcp"):
                row = {
                    **base,
                    "mode": mode,
                    **dnsperf(port, mode, queries, settings["duration"], pid),
                }
                _log(row)
                rows.append(row)
        return rows
    if part == "echo":
        argv = framing_command(
            "echo", "--framing", "length:2", "--port", "0", "--quiet", "--workers", str(workers)
        )
        with server_matching(argv, pattern=_each(ECHO_PORT, workers)) as (match, pid):
            row = {**base, **loadgen(int(match.group(1)), pid, settings)}
        _log(row)
        return [row]
    _, label, argv, send_proxy = next(b for b in BEHIND_HAPROXY if b[0] == kind)
    with ExitStack() as stack:
        match, pid = stack.enter_context(server_matching(argv, pattern=ECHO_PORT))
        port = stack.enter_context(haproxy(int(match.group(1)), send_proxy, workdir))
        row = {**base, "label": label, **loadgen(port, pid, settings)}
    _log(row)
    return [row]


def _log(row: dict[str, Any]) -> None:
    rate = row.get("qps") if row["part"] == "dns" else row.get("msgs_per_s")
    cpu = row.get("server_cpu_per_m")
    log(
        f"scale {row['part']:7} {row['server']:22} workers {row['workers']} {row.get('mode', ''):3}"
        f" {rate or 0:9.0f}/s  server {cpu or 0:6.1f} CPU-s per M"
        + (f"  lost {row['lost']:.0f}" if row.get("lost") else "")
        + ("" if row.get("verified", True) else "  FAILED")
    )


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    parts = ("dns", "echo", "haproxy")
    servers = ("ours", "unbound", *(b[0] for b in BEHIND_HAPROXY))
    return (
        parts.index(row["part"]),
        row.get("mode", ""),
        row["workers"],
        servers.index(row["server"]),
    )


# -- report ------------------------------------------------------------------------------


def _get(
    rows: list[dict[str, Any]], part: str, server: str, workers: int = 1, mode: str = ""
) -> dict[str, Any] | None:
    for r in rows:
        if (r["part"], r["server"], r["workers"], r.get("mode", "")) == (
            part,
            server,
            workers,
            mode,
        ):
            return r
    return None


def _rate(row: dict[str, Any] | None) -> float | None:
    if row is None:
        return None
    return (
        row.get("qps")
        if row["part"] == "dns"
        else (row.get("msgs_per_s") if row.get("verified") else None)
    )


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def proxy_ratio(rows: list[dict[str, Any]]) -> float | None:
    """Echo msgs/s through HAProxy with PROXY v2, over the same without PROXY."""
    return _div(
        _rate(_get(rows, "haproxy", "ours-proxy-v2")), _rate(_get(rows, "haproxy", "ours-plain"))
    )


def targets(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's target: PROXY parsing costs under 5% of throughput behind HAProxy."""
    ratio = proxy_ratio(scale["rows"])
    return [
        {
            "target": "PROXY v2 behind HAProxy costs < 5% (echo with / without PROXY >= 0.95x)",
            "need": 0.95,
            "ratio": ratio,
            "met": None if ratio is None else ratio >= 0.95,
            "where": "",
        }
    ]


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def markdown(scale: dict[str, Any], chart: str | None) -> list[str]:
    """The RESULTS.md section."""
    s = scale.get("settings", {})
    rows = scale["rows"]
    lines = [
        "## 6. Workers and HAProxy (issue 14)",
        "",
        f"{s.get('duration', 0):g} s per run, {s.get('passes', 1)} pass(es) in alternating "
        "order, the best of each shown. **CPU-s/M** is the CPU seconds the server spent "
        "(its whole process tree: the supervisor and its workers; unbound's threads) per "
        "million answers, measured from `/proc` over the load generator's run: the load "
        "generator shares the cores, so with 2 workers qps says less than this figure.",
        "",
        f"DNS: `dnsperf -c {s.get('clients', CLIENTS)} -q {s.get('outstanding', 100)}` "
        "(8 sockets, so `SO_REUSEPORT` has flows to spread) against `framing dns --workers N` "
        "and unbound (`num-threads: N`, local data as in part 4).",
        "",
    ]
    if chart:
        lines += [f"![scale]({chart})", ""]
    body = []
    for r in rows:
        if r["part"] != "dns":
            continue
        unbound = _get(rows, "dns", "unbound", r["workers"], r["mode"])
        body.append([
            "framing dns" if r["server"] == "ours" else "unbound",
            str(r["workers"]),
            r["mode"].upper(),
            _fmt(r.get("qps"), ".0f"),
            _fmt(r.get("lost"), ".0f"),
            _fmt(r.get("server_cpu_per_m")),
            _fmt(r.get("client_cpu_per_m")),
            _x(_div(r.get("qps"), _rate(unbound))) if r["server"] == "ours" else "",
        ])  # fmt: skip
    if body:
        lines += _table(
            ["server", "workers / threads", "transport", "queries/s", "lost",
             "server CPU-s/M", "dnsperf CPU-s/M", "ours ÷ unbound"],
            body,
        )  # fmt: skip
    one = _rate(_get(rows, "echo", "ours", 1))
    body = [
        [
            str(r["workers"]),
            _fmt(r.get("msgs_per_s"), ".0f") + ("" if r.get("verified") else " **FAILED**"),
            _fmt(r.get("p99_us"), ".0f"),
            _fmt(r.get("server_cpu_per_m")),
            _x(_div(_rate(r), one)),
        ]
        for r in rows
        if r["part"] == "echo"
    ]
    if body:
        lines += [
            f"Echo: the load generator of part 3 ({s.get('connections')} connections x "
            f"{s.get('depth')} in flight, {s.get('size')}-byte messages) against "
            "`framing echo --framing length:2 --workers N`.",
            "",
            *_table(["workers", "msgs/s", "p99 µs", "server CPU-s/M", "÷ 1 worker"], body),
        ]
    plain = _rate(_get(rows, "haproxy", "ours-plain"))
    body = [
        [
            r.get("label", r["server"]),
            _fmt(r.get("msgs_per_s"), ".0f") + ("" if r.get("verified") else " **FAILED**"),
            _fmt(r.get("p99_us"), ".0f"),
            _fmt(r.get("server_cpu_per_m")),
            _x(_div(_rate(r), plain)),
        ]
        for r in rows
        if r["part"] == "haproxy"
    ]
    if body:
        lines += [
            "HAProxy (TCP mode, `nbthread 1`, one backend) in front of each echo server; "
            "the same load. PROXY v2's cost is the first row over the second (the target: "
            f"at least 0.95x); measured: **{_x(proxy_ratio(rows))}**.",
            "",
            *_table(
                ["behind HAProxy", "msgs/s", "p99 µs", "server CPU-s/M", "÷ ours without PROXY"],
                body,
            ),
        ]
    notes = scale.get("notes") or []
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return [*out, *("| " + " | ".join(row) + " |" for row in rows), ""]


def chart(plt: Any, rows: list[dict[str, Any]]) -> Any:
    """Server CPU-s per million answers, each run (lower is better)."""
    rows = [r for r in rows if r.get("server_cpu_per_m") is not None]
    fig, ax = plt.subplots(figsize=(9, 5))
    labels = [
        f"{r['part']} {r.get('label', r['server'])}"
        + (f" {r['mode'].upper()}" if r.get("mode") else "")
        + (f" x{r['workers']}" if r["part"] != "haproxy" else "")
        for r in rows
    ]
    colors = [
        "tab:gray" if r["server"] in ("unbound", "asyncio-protocol-proxy") else "tab:blue"
        for r in rows
    ]
    ax.barh(labels, [r["server_cpu_per_m"] for r in rows], color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("server CPU seconds per million answers (lower is better)")
    ax.set_title("Workers and HAProxy (ours in blue)")
    return fig


if __name__ == "__main__":  # a quick look without the rest: python -m benchmarks.scale
    print(json.dumps(run_scale(), indent=1))
