"""Part 5: AXFR of a 100,000-record zone from ``framing dns`` and from Knot, ``kdig`` the client.

One zone file is generated into a temporary directory (seeded, so every run
has the same records): the apex's SOA and NS set, then a mix of A, AAAA, TXT,
MX, CNAME, SRV and PTR records. Every address in it is a loopback address
(A in 127/8, AAAA IPv4-mapped 127/8), and nothing in the configurations
sends NOTIFY: nothing leaves the machine.

Both servers load that file: ``framing dns --zone F --allow-transfer
127.0.0.1`` and ``knotd`` as its primary (``benchmarks.knot``), each on a free
loopback port. The client is ``kdig AXFR`` for both, its output read whole.
First one transfer from each, not timed: its records must be the zone's, the
same from both servers (compared as sorted lines of kdig's output), or the
part says so and its target is not met. Then ``passes`` transfers from each,
interleaved (ours, Knot, Knot, ours, ...); each is timed from starting kdig to
its exit, and the median is reported with the ratio ours / Knot.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import knot
from benchmarks.common import env_int, log, quick
from benchmarks.procs import ServerFailed, framing_command, server_matching

ORIGIN = "axfr.test."
SEED = 13
#: The zone's size, the apex's records included.
RECORDS = 100_000
#: The apex's SOA, its two NS and their addresses (glue-like, in the zone).
_APEX = (
    "@           SOA   ns1 hostmaster 2024060101 7200 3600 1209600 300",
    "@           NS    ns1",
    "@           NS    ns2",
    "ns1         A     127.0.0.53",
    "ns2         A     127.0.0.54",
)
#: The share of each type among the generated records.
MIX = {"A": 35, "AAAA": 15, "TXT": 15, "MX": 10, "CNAME": 10, "PTR": 10, "SRV": 5}

LABELS = {"ours": "framing dns", "knot": knot.LABEL}


def zone_text(records: int = RECORDS, seed: int = SEED) -> str:
    """The zone file: ``records`` records in all, each distinct by construction.

    A, AAAA, TXT and MX records share owners (``h<n>``, about four records
    each); CNAME, SRV and PTR records each have an owner of their own, so no
    CNAME sits beside other data. Record ``i``'s data holds ``i`` (addresses
    count up through 127/8), so no two records are the same.
    """
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=records - len(_APEX))
    hosts = max(1, (records - len(_APEX)) // 4)
    lines = [f"$ORIGIN {ORIGIN}", "$TTL 3600", *_APEX]
    for i, kind in enumerate(kinds):
        owner = f"h{i // 4}"
        quad = f"127.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}"
        target = f"h{rng.randrange(hosts)}"
        if kind == "A":
            lines.append(f"{owner} A {quad}")
        elif kind == "AAAA":
            lines.append(f"{owner} AAAA ::ffff:{quad}")
        elif kind == "TXT":
            lines.append(f'{owner} TXT "v=bench{i}" "seed {rng.getrandbits(32):08x}"')
        elif kind == "MX":
            lines.append(f"{owner} MX {i % 1000} {target}")
        elif kind == "CNAME":
            lines.append(f"c{i} CNAME {target}")
        elif kind == "PTR":
            lines.append(f"{i}.rev PTR {target}")
        else:
            lines.append(f"_s{i}._tcp SRV 10 {rng.randrange(100)} {1024 + i % 60000} {target}")
    return "\n".join(lines) + "\n"


_FOOTER = re.compile(r";; Received (\d+) B \((\d+) messages, (\d+) records\)")
_ELAPSED = re.compile(r";; From \S+ in ([\d.]+) ms")


def kdig_axfr(port: int, *, check: bool = False) -> dict[str, Any]:
    """One ``kdig AXFR``: wall time and what kdig counted; with ``check``, the records too.

    The records are kdig's output lines (whitespace collapsed), counted and
    digested in sorted order, after the clock has stopped.
    """
    argv = ["kdig", "@127.0.0.1", "-p", str(port), "+time=60", "AXFR", ORIGIN]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    footer = _FOOTER.search(out.stdout)
    elapsed = _ELAPSED.search(out.stdout)
    result: dict[str, Any] = {
        "seconds": seconds,
        "exit": out.returncode,
        "bytes": int(footer.group(1)) if footer else None,
        "messages": int(footer.group(2)) if footer else None,
        "records": int(footer.group(3)) if footer else None,
        "kdig_ms": float(elapsed.group(1)) if elapsed else None,
    }
    if footer is None or out.returncode:
        result["error"] = (out.stdout + out.stderr)[-500:]
    if check:
        lines = sorted(
            " ".join(x.split()) for x in out.stdout.splitlines() if x and not x.startswith(";")
        )
        result["lines"] = len(lines)
        result["digest"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return result


def run_axfr() -> dict[str, Any]:
    """Both servers on one zone file; a checked transfer from each, then timed passes."""
    records = env_int("BENCH_AXFR_RECORDS", 20_000 if quick() else RECORDS)
    passes = env_int("BENCH_AXFR_PASSES", 2 if quick() else 5)
    started = time.monotonic()
    notes: list[str] = []
    settings = {"records": records, "passes": passes, "mix": MIX, "seed": SEED}
    missing = [tool for tool in ("kdig", "knotd") if shutil.which(tool) is None]
    if "kdig" in missing:
        notes.append("kdig is not installed: the AXFR benchmark did not run")
        return {"rows": [], "notes": notes, "settings": settings, "seconds": 0.0}
    with tempfile.TemporaryDirectory(prefix="framing-bench-axfr-") as tmp:
        workdir = Path(tmp)
        zone_file = workdir / "axfr.test.zone"
        zone_file.write_text(zone_text(records))
        log(f"axfr: {records} records in {zone_file.stat().st_size / 2**20:.1f} MiB of zone file")
        ours_argv = framing_command(
            "dns", "--zone", str(zone_file), "--allow-transfer", "127.0.0.1", "--port", "0"
        )
        times: dict[str, list[dict[str, Any]]] = {"ours": [], "knot": []}
        try:
            with server_matching(ours_argv, pattern=r"port (\d+) \(UDP and TCP\)", startup=600) as (
                match,
                _pid,
            ):
                ports = {"ours": int(match.group(1))}
                if "knotd" in missing:
                    notes.append("knotd is not installed: Knot left out")
                    _passes(ports, passes, times)
                else:
                    with knot.start(workdir / "knot", ORIGIN, zone_file) as knot_port:
                        ports["knot"] = knot_port
                        _passes(ports, passes, times)
        except (ServerFailed, OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"not measured: {exc}")
            log(f"axfr: not measured: {exc}")
    rows = []
    for kind, runs in times.items():
        if not runs:
            continue
        first, timed = runs[0], runs[1:]
        ok = [r for r in timed if "error" not in r]
        rows.append(
            {
                "server": kind,
                "label": LABELS[kind],
                "first_s": first["seconds"],
                "times_s": [r["seconds"] for r in timed],
                "median_s": statistics.median(r["seconds"] for r in ok) if ok else None,
                "kdig_ms": [r["kdig_ms"] for r in timed],
                "records": first["records"],
                "messages": first["messages"],
                "bytes": first["bytes"],
                "record_lines": first["lines"],
                "digest": first["digest"],
                "failed": len(timed) - len(ok),
            }
        )
    expected = records + 1  # the SOA comes first and last (RFC 5936 2.2)
    same = len(rows) == 2 and rows[0]["digest"] == rows[1]["digest"]
    whole = bool(rows) and all(r["records"] == expected == r["record_lines"] for r in rows)
    if rows and not whole:
        notes.append(
            f"a transfer did not carry the {expected} records expected: "
            + ", ".join(f"{r['server']} {r['records']} ({r['record_lines']} lines)" for r in rows)
        )
    if len(rows) == 2 and not same:
        notes.append("ours and Knot transferred different records (sorted kdig output differs)")
    median = {r["server"]: r["median_s"] for r in rows}
    ratio = (
        median["ours"] / median["knot"]
        if median.get("ours") and median.get("knot") and same and whole
        else None
    )
    return {
        "rows": rows,
        "same_records": same,
        "whole": whole,
        "expected_records": expected,
        "ratio": ratio,
        "notes": notes,
        "settings": settings,
        "seconds": time.monotonic() - started,
    }


def _passes(ports: dict[str, int], passes: int, times: dict[str, list[dict[str, Any]]]) -> None:
    """A first transfer from each (checked, not in the median), then the passes, interleaved."""
    kinds = list(ports)
    for kind in kinds:
        first = kdig_axfr(ports[kind], check=True)
        times[kind].append(first)
        log(
            f"axfr {kind:5} first: {first['seconds']:.2f} s, {first['records']} records, "
            f"{first['messages']} messages, {first['lines']} lines"
        )
    for number in range(passes):
        for kind in kinds if number % 2 == 0 else reversed(kinds):
            result = kdig_axfr(ports[kind])
            times[kind].append(result)
            log(f"axfr {kind:5} pass {number + 1}: {result['seconds']:.3f} s")
