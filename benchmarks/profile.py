"""Profile our side of a benchmark with pyinstrument: where does the time go?

    python -m benchmarks.profile decode [FRAMING [PAYLOAD [CHUNKING]]]
        e.g. decode len2 64 64k, decode lines 16384 random
    python -m benchmarks.profile echo [asyncio|uvloop|trio]
    python -m benchmarks.profile dns [udp|tcp]
    python -m benchmarks.profile axfr [RECORDS]

``decode`` profiles our framer decoding the benchmark's stream (20 times over),
in this process. ``echo`` and ``dns`` run the server under ``pyinstrument``
while the benchmark's own load runs against it for ``BENCH_PROFILE_SECONDS``
(default 5), then stop it with SIGINT, which makes pyinstrument write its
report. ``axfr`` serves the AXFR part's generated zone (100,000 records unless
told) and has ``kdig`` transfer it ``BENCH_PROFILE_TRANSFERS`` times (default 5);
loading the zone file is in the profile too, apart from the transfers. The
text report goes to stdout and to ``benchmarks/.build/profiles/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import BUILD, ROOT, env_float, env_int

PROFILES = BUILD / "profiles"


def profile_decode(framing: str, payload: int, chunking: str) -> str:
    from pyinstrument import Profiler

    from benchmarks import decode, decoders

    count = decode.frame_count(payload)
    payloads = decode.make_payloads(framing, payload, count, decode.SEED + payload)
    stream = decode.encode(framing, payloads)
    chunks = decode.cut(stream, decode.chunk_sizes(len(stream), chunking, decode.SEED))
    run = decoders.ours(framing)
    frames, _ = run(chunks)
    assert frames == payloads, "ours decoded the wrong frames"
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(20):
        run(chunks)
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def _under_pyinstrument(
    module_args: list[str], pattern: str, load: list[str], *, startup: float = 20.0
) -> str:
    """Run ``python -m pyinstrument -m ...`` as a server, put ``load`` on it, return the report."""
    from benchmarks.procs import server_matching

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "profile.txt"
        argv = [
            sys.executable,
            "-m",
            "pyinstrument",
            "-r",
            "text",
            "--no-color",
            "-o",
            str(report),
            "-m",
            *module_args,
        ]
        with server_matching(argv, pattern=pattern, startup=startup) as (match, pid):
            port = match.group(1)
            subprocess.run(
                [part.replace("{port}", port) for part in load],
                cwd=ROOT,
                capture_output=True,
                check=False,
                timeout=120,
            )
            # SIGINT: the server stops cleanly and pyinstrument writes its report.
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _written(report):
                time.sleep(0.2)
            time.sleep(1.0)
        return report.read_text() if report.exists() else "(no profile written)"


def _written(report: Path) -> bool:
    try:
        return "Program:" in report.read_text()
    except OSError:
        return False


def profile_echo(loop: str) -> str:
    seconds = env_float("BENCH_PROFILE_SECONDS", 5.0)
    return _under_pyinstrument(
        ["protocols.cli", "echo", "--framing", "length:2", "--port", "0", "--loop", loop, "-q"],
        r"listening on 127\.0\.0\.1:(\d+)",
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            "--port",
            "{port}",
            "--warmup",
            "0.5",
            "--duration",
            str(seconds),
        ],
    )


def profile_dns(mode: str) -> str:
    from benchmarks import dns_zone

    seconds = env_float("BENCH_PROFILE_SECONDS", 5.0)
    PROFILES.mkdir(parents=True, exist_ok=True)
    queries = PROFILES / "queries.txt"
    queries.write_text(dns_zone.query_file())
    return _under_pyinstrument(
        ["protocols.dns.cli", "--port", "0"],
        r"port (\d+) \(UDP and TCP\)",
        [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            "{port}",
            "-d",
            str(queries),
            "-m",
            mode,
            "-q",
            "100",
            "-l",
            str(seconds),
        ],
    )


def profile_axfr(records: int) -> str:
    from benchmarks import axfr

    transfers = env_int("BENCH_PROFILE_TRANSFERS", 5)
    PROFILES.mkdir(parents=True, exist_ok=True)
    zone_file = PROFILES / "axfr.test.zone"
    zone_file.write_text(axfr.zone_text(records))
    kdig = ["kdig", "@127.0.0.1", "-p", "{port}", "+time=60", "AXFR", axfr.ORIGIN]
    # One shell line: the transfers one after another, their output discarded.
    load = " ; ".join(" ".join(kdig) + " > /dev/null" for _ in range(transfers))
    return _under_pyinstrument(
        [
            "protocols.dns.cli",
            "--zone",
            str(zone_file),
            "--allow-transfer",
            "127.0.0.1",
            "--port",
            "0",
        ],
        r"port (\d+) \(UDP and TCP\)",
        ["sh", "-c", load],
        startup=600,
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("decode", "echo", "dns", "axfr"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, rest = argv[0], argv[1:]
    if kind == "decode":
        framing = rest[0] if rest else "len2"
        payload = int(rest[1]) if len(rest) > 1 else 64
        chunking = rest[2] if len(rest) > 2 else "64k"
        text = profile_decode(framing, payload, chunking)
        name = f"decode-{framing}-{payload}-{chunking}"
    elif kind == "axfr":
        records = int(rest[0]) if rest else 100_000
        text = profile_axfr(records)
        name = f"axfr-{records}"
    elif kind == "echo":
        loop = rest[0] if rest else "asyncio"
        text = profile_echo(loop)
        name = f"echo-{loop}"
    else:
        mode = rest[0] if rest else "udp"
        text = profile_dns(mode)
        name = f"dns-{mode}"
    PROFILES.mkdir(parents=True, exist_ok=True)
    (PROFILES / f"{name}.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
