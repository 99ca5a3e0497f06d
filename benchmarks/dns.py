"""Part 4: dnsperf over TCP and UDP against ``framing dns``, unbound, dnslib and Knot.

The same query file (``benchmarks.dns_zone.MIX``) goes to each server, with
100 queries outstanding, for a fixed time. Before the load, every server is
asked every query of the mix once (with dnslib's client, over UDP and TCP) and
its answer sections must equal ours: the servers do the same work.

A second mix (``dns_zone.wild_query_file``: wildcards, a delegation, DNAME
and CNAME chains) goes to ``framing dns`` and to Knot, both serving the same
zone file (``dns_zone.zone_text``); before the load their answers to it must
be the same in every section, with the same rcode and AA flag. unbound's
local-data and dnslib's ZoneResolver serve neither referrals nor DNAME, so
they only get the first mix.

unbound runs from a temporary directory with a configuration of our own: local
data only, on 127.0.0.1 only, one thread, no chroot, no privilege change, no
daemon, no remote control; it is stopped (SIGTERM) when its runs end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import dns_zone, knot
from benchmarks.common import env_float, env_int, log, quick
from benchmarks.procs import ServerFailed, framing_command, free_port, server_matching

LABELS = {
    "ours": "framing dns",
    "unbound": "unbound (1 thread, local-data)",
    "dnslib": "dnslib DNSServer + ZoneResolver",
    "knot": knot.LABEL,
}
#: The query mixes: the plain record sets, and wildcards, referrals and chains.
MIXES = {"plain": "plain record sets", "wild": "wildcards, referrals, DNAME/CNAME chains"}


def ours_command(zone_file: Path) -> list[str]:
    """``framing dns --zone F --port 0``; ``python -m protocols.dns.cli`` without ``framing``."""
    argv = framing_command("dns", "--zone", str(zone_file), "--port", "0")
    probe = subprocess.run(
        [*argv[:-5], "dns", "--help"], capture_output=True, timeout=60, check=False
    )
    if probe.returncode == 0:
        return argv
    return [sys.executable, "-m", "protocols.dns.cli", *argv[-4:]]


@contextmanager
def start(kind: str, workdir: Path) -> Iterator[dict[str, int]]:
    """Start one server; yield its ports {"udp": ..., "tcp": ...}."""
    zone_file = workdir / "framing.test.zone"
    if kind == "ours":
        argv = ours_command(zone_file)
        with server_matching(argv, pattern=r"port (\d+) \(UDP and TCP\)") as (match, _pid):
            port = int(match.group(1))
            yield {"udp": port, "tcp": port}
    elif kind == "knot":
        with knot.start(workdir / "knot", dns_zone.origin(), zone_file) as port:
            yield {"udp": port, "tcp": port}
    elif kind == "unbound":
        port = free_port()
        conf = workdir / "unbound.conf"
        conf.write_text(dns_zone.unbound_conf(str(workdir), port))
        argv = ["unbound", "-d", "-c", str(conf)]
        with server_matching(argv, pattern=r"(start of service)"):
            yield {"udp": port, "tcp": port}
    else:
        argv = [sys.executable, "-m", "benchmarks.dnslib_server"]
        with server_matching(argv, pattern=r"dnslib udp (\d+) tcp (\d+)") as (match, _pid):
            yield {"udp": int(match.group(1)), "tcp": int(match.group(2))}


def answers(port: int, *, tcp: bool, mix: str = "plain") -> dict[str, list[str]]:
    """Each query of a mix asked once: its rcode and sorted answer records.

    For the second mix, also the AA flag and the authority and additional
    sections: a referral is those, and glue served as an answer is a bug.
    """
    from dnslib import QTYPE, DNSRecord

    def text(section: str, rr: Any) -> str:
        return f"{section} {rr.rname} {rr.ttl} {QTYPE[rr.rtype]} {rr.rdata.toZone()}".lower()

    out: dict[str, list[str]] = {}
    lines = dns_zone.query_file() if mix == "plain" else dns_zone.wild_query_file()
    for line in dict.fromkeys(lines.splitlines()):
        name, rtype = line.split()
        query = DNSRecord.question(name, rtype)
        reply = DNSRecord.parse(query.send("127.0.0.1", port, tcp=tcp, timeout=5))
        rcode = reply.header.rcode
        if mix == "plain":
            records = sorted(
                f"{rr.rname} {rr.ttl} {QTYPE[rr.rtype]} {rr.rdata.toZone()}".lower()
                for rr in reply.rr
            )
            out[line] = [f"rcode {rcode}", *records]
        else:
            records = sorted(
                [text("an", rr) for rr in reply.rr]
                + [text("ns", rr) for rr in reply.auth]
                + [text("ar", rr) for rr in reply.ar if rr.rtype != QTYPE.OPT]
            )
            out[line] = [f"rcode {rcode} aa {reply.header.aa}", *records]
    return out


_STATS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "latency_s": r"Average Latency \(s\):\s+([\d.]+)",
    "run_time": r"Run time \(s\):\s+([\d.]+)",
}


def dnsperf(
    port: int, mode: str, queries: Path, seconds: float, outstanding: int
) -> dict[str, Any]:
    argv = [
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(queries),
        "-m",
        mode,
        "-q",
        str(outstanding),
        "-l",
        str(seconds),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = out.stdout + out.stderr
    result: dict[str, Any] = {"command": " ".join(argv[:1] + argv[5:]), "exit": out.returncode}
    for key, pattern in _STATS.items():
        match = re.search(pattern, text)
        result[key] = float(match.group(1)) if match else None
    codes = re.search(r"Response codes:\s+(.*)", text)
    result["rcodes"] = codes.group(1).strip() if codes else ""
    if result["qps"] is None:
        result["error"] = text[-800:]
    return result


def run_dns() -> dict[str, Any]:
    """Every server, in passes of alternating order; each run's best pass is kept.

    Lost queries are summed over all passes: zero lost means zero in every pass.
    """
    seconds = env_float("BENCH_DNS_SECONDS", 2.0 if quick() else 4.0)
    outstanding = env_int("BENCH_DNS_OUTSTANDING", 100)
    passes = env_int("BENCH_DNS_PASSES", 1 if quick() else 2)
    notes: list[str] = []
    started = time.monotonic()
    if shutil.which("dnsperf") is None:
        notes.append("dnsperf is not installed: the DNS benchmark did not run")
        return {"rows": [], "notes": notes, "seconds": 0.0}
    kinds = ["ours", "unbound", "dnslib", "knot"]
    if shutil.which("unbound") is None:
        notes.append("unbound is not installed: left out")
        kinds.remove("unbound")
    if not knot.available():
        notes.append("knotd is not installed: the second mix's answers are not checked")
        kinds.remove("knot")
    reference: dict[tuple[str, str], dict[str, list[str]]] = {}
    same: dict[tuple[str, str], bool] = {}
    best: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    lost: dict[tuple[str, str, str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="framing-bench-dns-") as tmp:
        workdir = Path(tmp)
        (workdir / "framing.test.zone").write_text(dns_zone.zone_text())
        queries = {"plain": workdir / "queries.txt", "wild": workdir / "wild.txt"}
        queries["plain"].write_text(dns_zone.query_file())
        queries["wild"].write_text(dns_zone.wild_query_file())
        for number in range(passes):
            for kind in kinds if number % 2 == 0 else reversed(kinds):
                try:
                    with start(kind, workdir) as ports:
                        for mix in _mixes(kind):
                            if (kind, mix) not in same:
                                _same_answers(
                                    kind, mix, ports, reference=reference, same=same, notes=notes
                                )
                        for mix, mode, depth in _runs(kind, outstanding, first_pass=number == 0):
                            result = dnsperf(ports[mode], mode, queries[mix], seconds, depth)
                            result.update(
                                server=kind,
                                label=LABELS[kind],
                                mix=mix,
                                mode=mode,
                                outstanding=depth,
                            )
                            log(
                                f"dns {kind:8} {mix:5} {mode} q={depth}: "
                                f"{result['qps'] or 0:9.0f} q/s, "
                                f"lost {result['lost']}, {result['rcodes']}"
                            )
                            key = (kind, mix, mode, depth)
                            lost[key] = lost.get(key, 0.0) + (result["lost"] or 0.0)
                            if key not in best or (result["qps"] or 0) > (best[key]["qps"] or 0):
                                best[key] = result
                except (ServerFailed, OSError, subprocess.TimeoutExpired) as exc:
                    notes.append(f"{LABELS[kind]}: not measured in pass {number + 1} ({exc})")
                    log(f"dns {kind}: not measured: {exc}")
    rows = []
    for key, row in best.items():
        row["lost_all_passes"] = lost[key]
        row["same"] = same.get((key[0], key[1]))
        rows.append(row)
    order = {kind: i for i, kind in enumerate(LABELS)}
    rows.sort(key=lambda r: (r["mix"] != "plain", order[r["server"]], r["mode"], -r["outstanding"]))
    return {
        "rows": rows,
        "notes": notes,
        "settings": {
            "seconds": seconds,
            "outstanding": outstanding,
            "passes": passes,
            "mix": dns_zone.MIX,
            "wild_shares": dns_zone.WILD_SHARES,
            "wild_queries": dns_zone.WILD_QUERIES,
            "wild_names": len(set(dns_zone.wild_mix())),
        },
        "seconds": time.monotonic() - started,
    }


def _mixes(kind: str) -> list[str]:
    """The mixes a server gets: ours both, Knot the second, unbound and dnslib the first."""
    return {"ours": ["plain", "wild"], "knot": ["wild"]}.get(kind, ["plain"])


def _runs(kind: str, outstanding: int, *, first_pass: bool) -> list[tuple[str, str, int]]:
    runs = [(mix, mode, outstanding) for mix in _mixes(kind) for mode in ("tcp", "udp")]
    if kind == "dnslib" and first_pass:
        # dnslib's TCP handler answers one query per connection and drops the rest
        # of what it read: pipelined queries are lost. Also measure it one query at a
        # time, its best case (once: each of its TCP runs waits out dnsperf's timeouts).
        runs.append(("plain", "tcp", 1))
    elif kind == "dnslib":
        runs = [("plain", "udp", outstanding)]
    return runs


def _same_answers(
    kind: str,
    mix: str,
    ports: dict[str, int],
    *,
    reference: dict[tuple[str, str], dict[str, list[str]]],
    same: dict[tuple[str, str], bool],
    notes: list[str],
) -> None:
    """Ask a mix once over each transport; compare with the first server asked (ours).

    For the second mix ours is checked against Knot: both get the verdict.
    """
    verdict = True
    for mode in ("tcp", "udp"):
        got = answers(ports[mode], tcp=mode == "tcp", mix=mix)
        if (mix, mode) not in reference:
            # Ours is first; when it cannot run, the first peer is the yardstick.
            reference[(mix, mode)] = got
        elif got != reference[(mix, mode)]:
            verdict = False
            want = reference[(mix, mode)]
            diff = [q for q in got if got[q] != want.get(q)]
            notes.append(
                f"{LABELS[kind]} answers the {mix} mix differently from ours over {mode} "
                f"for {len(diff)} queries, e.g. {diff[:2]}: "
                f"{[got[q] for q in diff[:1]]} vs {[want.get(q) for q in diff[:1]]}"
            )
    if kind != "ours" or mix == "plain":
        same[(kind, mix)] = verdict
    if kind != "ours" and mix == "wild":
        same[("ours", mix)] = verdict and same.get(("ours", mix), True)
