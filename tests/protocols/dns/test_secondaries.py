"""Knot and NSD as secondaries of our server: AXFR, then NOTIFY and AXFR again after a reload.

Each test starts our server (``python -m protocols.dns.cli``) on a zone file
in a temporary directory, transfers allowed to loopback and NOTIFY sent to
the secondary's port, then the secondary (``knotd`` or ``nsd``) with a config
in the same directory, on a free loopback port. Both are stopped by their pid.
Every address in the zone and the configs is a loopback address.

The zone's refresh timer is two hours: a second transfer within the test can
only come from our NOTIFY, which the log shows answered.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from tests.conftest import require_tool
from tests.protocols.dns.test_knot import _free_port, _stop
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

ROOT = Path(__file__).resolve().parents[3]
ORIGIN = "cmp.test."
SERIAL = 2024060101
#: The zone after an edit: a higher serial, www's addresses changed.
EDITED = OPERATOR_ZONE_TEXT.replace(str(SERIAL), str(SERIAL + 1)).replace(
    "www         A     127.0.0.80\n            A     127.0.0.81\n", "www         A     127.0.0.82\n"
)
#: Long enough for a secondary to start and transfer on a loaded machine.
DEADLINE = 20


class _Primary:
    """Our server as a subprocess, its log (stderr) read in a thread."""

    def __init__(self, zone_file: Path, notify_port: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "protocols.dns.cli",
                "--port",
                "0",
                "--zone",
                str(zone_file),
                "--allow-transfer",
                "127.0.0.1",
                "--notify",
                f"127.0.0.1:{notify_port}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"port (\d+)", line)
        if match is None:
            _stop(self.process)
            pytest.fail(f"our server did not start: {line!r}")
        self.port = int(match.group(1))
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def logged(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in list(self.log))


@dataclass
class _Pair:
    """Our server and its secondary."""

    primary: _Primary
    secondary: subprocess.Popen[str]
    port: int
    saved: Path


def _start(command: list[str]) -> subprocess.Popen[str]:
    # Its output goes to a file, not a pipe nobody reads (a full pipe would block it).
    log = Path(command[-1]).with_suffix(".log").open("w")
    with log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)


def _log_of(pair: _Pair) -> str:
    path = pair.saved.parent / (pair.saved.parent.name + ".log")
    return path.read_text() if path.exists() else ""


def _soa_serial(port: int) -> int | None:
    """The serial the server on ``port`` gives for the zone, or ``None`` (no answer yet)."""
    query = dns.message.make_query(ORIGIN, "SOA")
    try:
        answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return None
    if answer.rcode() != 0 or not answer.answer:
        return None
    return int(answer.answer[0][0].serial)


def _wait(what: str, condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll ``condition`` every 0.1 s, at most ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the secondary exited with {process.returncode} before {what}")
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {DEADLINE} s")


def _addresses(port: int, name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "primary" / "cmp.test.zone"
    path.parent.mkdir()
    path.write_text(OPERATOR_ZONE_TEXT)
    return path


@pytest.fixture
def knot_secondary(tmp_path: Path, zone_file: Path) -> Iterator[_Pair]:
    """Our server, and knotd as its secondary."""
    knotd = require_tool("knotd")
    directory = tmp_path / "knot"
    directory.mkdir()
    port = _free_port()
    primary = _Primary(zone_file, port)
    config = directory / "knot.conf"
    config.write_text(
        f"server:\n"
        f"    listen: 127.0.0.1@{port}\n"
        f"    rundir: {directory}\n"
        f"database:\n"
        f"    storage: {directory}\n"
        f"log:\n"
        f"  - target: stdout\n"
        f"    any: info\n"
        f"remote:\n"
        f"  - id: primary\n"
        f"    address: 127.0.0.1@{primary.port}\n"
        f"acl:\n"
        f"  - id: notify_from_primary\n"
        f"    address: 127.0.0.1\n"
        f"    action: notify\n"
        f"zone:\n"
        f"  - domain: {ORIGIN}\n"
        f"    storage: {directory}\n"
        f"    file: cmp.test.zone\n"
        f"    master: primary\n"
        f"    acl: notify_from_primary\n"
        f"    zonefile-sync: 0\n"
        f"    journal-content: none\n"
    )
    knot = _start([knotd, "--config", str(config)])
    try:
        yield _Pair(primary, knot, port, directory / "cmp.test.zone")
    finally:
        _stop(knot)
        _stop(primary.process)


@pytest.fixture
def nsd_secondary(tmp_path: Path, zone_file: Path) -> Iterator[_Pair]:
    """Our server, and nsd as its secondary."""
    nsd = require_tool("nsd")
    directory = tmp_path / "nsd"
    directory.mkdir()
    port = _free_port()
    primary = _Primary(zone_file, port)
    config = directory / "nsd.conf"
    config.write_text(
        f"server:\n"
        f"    ip-address: 127.0.0.1\n"
        f"    port: {port}\n"
        f'    username: ""\n'
        f'    chroot: ""\n'
        f"    zonesdir: {directory}\n"
        f'    database: ""\n'
        f"    pidfile: {directory}/nsd.pid\n"
        f"    xfrdfile: {directory}/xfrd.state\n"
        f"    xfrdir: {directory}\n"
        f"    zonelistfile: {directory}/zone.list\n"
        f"    verbosity: 2\n"
        f"    server-count: 1\n"
        f"    zonefiles-write: 1\n"
        f"remote-control:\n"
        f"    control-enable: no\n"
        f"zone:\n"
        f"    name: {ORIGIN}\n"
        f"    zonefile: cmp.test.zone\n"
        f"    allow-notify: 127.0.0.1 NOKEY\n"
        f"    request-xfr: 127.0.0.1@{primary.port} NOKEY\n"
    )
    process = _start([nsd, "-d", "-c", str(config)])
    try:
        yield _Pair(primary, process, port, directory / "cmp.test.zone")
    finally:
        _stop(process)
        _stop(primary.process)


def _transfers_then_follows_notify(pair: _Pair, zone_file: Path) -> None:
    primary, port, process = pair.primary, pair.port, pair.secondary
    _wait("the first transfer", lambda: _soa_serial(port) == SERIAL, process)
    assert primary.logged(rf"sent [AI]XFR of {re.escape(ORIGIN)} to 127\.0\.0\.1:\d+")
    assert _addresses(port, "www.cmp.test.") == ["127.0.0.80", "127.0.0.81"]
    zone_file.write_text(EDITED)
    primary.process.send_signal(signal.SIGHUP)
    _wait("the transfer after NOTIFY", lambda: _soa_serial(port) == SERIAL + 1, process)
    assert primary.logged(
        rf"NOTIFY for {re.escape(ORIGIN)} serial {SERIAL + 1} to 127\.0\.0\.1:{port}: answered"
    )
    assert _addresses(port, "www.cmp.test.") == ["127.0.0.82"]
    assert primary.process.poll() is None


def _saved_zone(pair: _Pair, serial: int) -> str:
    """The zone file the secondary wrote, once it holds ``serial``."""

    def written() -> bool:
        if not pair.saved.exists():
            return False
        try:
            zone = dns.zone.from_text(pair.saved.read_text(), origin=ORIGIN, relativize=False)
        except dns.exception.DNSException:
            return False  # being written
        soa = zone.get_rdataset(ORIGIN, "SOA")
        return soa is not None and soa[0].serial == serial

    _wait(f"the zone file with serial {serial}", written, pair.secondary)
    return pair.saved.read_text()


def test_knot_transfers_from_us_and_again_after_notify(
    knot_secondary: _Pair, zone_file: Path
) -> None:
    """Issue 13: Knot as a secondary failed with "no usable master"."""
    _transfers_then_follows_notify(knot_secondary, zone_file)
    saved = _saved_zone(knot_secondary, SERIAL + 1)
    # What Knot saved is the zone we serve, as dnspython reads both files.
    assert dns.zone.from_text(saved, origin=ORIGIN) == dns.zone.from_text(EDITED)
    check = subprocess.run(
        [require_tool("kzonecheck"), "-o", ORIGIN, str(knot_secondary.saved)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr + _log_of(knot_secondary)


def test_nsd_transfers_from_us_and_again_after_notify(
    nsd_secondary: _Pair, zone_file: Path
) -> None:
    """Issue 13: NSD as a secondary failed to transfer."""
    _transfers_then_follows_notify(nsd_secondary, zone_file)
    saved = _saved_zone(nsd_secondary, SERIAL + 1)
    assert dns.zone.from_text(saved, origin=ORIGIN) == dns.zone.from_text(EDITED)
