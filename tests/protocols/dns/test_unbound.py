"""unbound as a resolver in front of us: a child zone reached through our referral, over TCP.

Two instances of our server: the parent ``cmp.test.`` on 127.0.0.1 (a free port),
which delegates ``sub.cmp.test.`` to ``ns.sub.cmp.test.`` with glue
127.0.0.153; and the child ``sub.cmp.test.`` on 127.0.0.153. unbound knows only
the parent (a stub-zone) and sends every query over TCP (``tcp-upstream:
yes``); it must follow the parent's referral to the child. A resolver asks a
name server on port 53, whatever port its parent is on, so the child listens
on 127.0.0.153 port 53: a loopback address no other server uses (the test
runs as root on CI, and fails, never skips, when that port cannot be had).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import require_tool
from tests.protocols.dns.test_knot import _free_port, _stop

ROOT = Path(__file__).resolve().parents[3]
CHILD_ADDRESS = "127.0.0.153"

PARENT = """$ORIGIN cmp.test.
$TTL 300
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
         NS    ns1
ns1      A     127.0.0.1
www      A     127.0.0.80
sub      NS    ns.sub
ns.sub   A     127.0.0.153
"""
CHILD = """$ORIGIN sub.cmp.test.
$TTL 300
@        SOA   ns hostmaster 1 7200 3600 1209600 300
         NS    ns
ns       A     127.0.0.153
www      A     127.0.0.88
alias    CNAME www
"""


def _ours(zone: Path, host: str, port: int) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protocols.dns.cli",
            "--zone",
            str(zone),
            "--host",
            host,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    match = re.search(r"port (\d+)", process.stdout.readline())
    if match is None:
        _stop(process)
        error = process.stderr.read() if process.stderr else ""
        pytest.fail(f"our server on {host} port {port} did not start: {error}")
    return process, int(match.group(1))


@pytest.fixture
def resolver(tmp_path: Path) -> Iterator[int]:
    """unbound in front of the parent and, through its referral, the child; its port."""
    unbound = require_tool("unbound")
    (tmp_path / "parent.zone").write_text(PARENT)
    (tmp_path / "child.zone").write_text(CHILD)
    processes: list[subprocess.Popen[str]] = []
    try:
        child, _ = _ours(tmp_path / "child.zone", CHILD_ADDRESS, 53)
        processes.append(child)
        parent, parent_port = _ours(tmp_path / "parent.zone", "127.0.0.1", 0)
        processes.append(parent)
        port = _free_port()
        config = tmp_path / "unbound.conf"
        config.write_text(
            f"server:\n"
            f"    interface: 127.0.0.1\n"
            f"    port: {port}\n"
            f'    username: ""\n'
            f'    chroot: ""\n'
            f'    directory: "{tmp_path}"\n'
            f'    pidfile: "{tmp_path}/unbound.pid"\n'
            f"    use-syslog: no\n"
            f'    logfile: ""\n'
            f"    verbosity: 1\n"
            f"    do-ip6: no\n"
            f"    do-not-query-localhost: no\n"
            f"    tcp-upstream: yes\n"
            f"    qname-minimisation: no\n"
            f'    module-config: "iterator"\n'
            f'    local-zone: "test." nodefault\n'
            f"stub-zone:\n"
            f'    name: "cmp.test."\n'
            f"    stub-addr: 127.0.0.1@{parent_port}\n"
            f"remote-control:\n"
            f"    control-enable: no\n"
        )
        log = (tmp_path / "unbound.log").open("w")
        with log:
            processes.append(
                subprocess.Popen([unbound, "-d", "-c", str(config)], stdout=log, stderr=log)
            )
        _wait_for(port, processes[-1])
        yield port
    finally:
        for process in reversed(processes):
            _stop(process)


def _wait_for(port: int, process: subprocess.Popen[str]) -> None:
    """Until unbound answers anything (a REFUSED or SERVFAIL will do), at most 20 s."""
    deadline = time.monotonic() + 20
    query = dns.message.make_query("www.cmp.test.", "A")
    while time.monotonic() < deadline:
        assert process.poll() is None, f"unbound exited with {process.returncode}"
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    pytest.fail("unbound did not answer within 20 s")


def test_unbound_resolves_the_child_zone_through_our_referral(resolver: int) -> None:
    """Issue 13: a delegated child zone, resolved through the referral, upstream over TCP."""
    for name, expected in [
        ("www.sub.cmp.test.", ["127.0.0.88"]),
        ("alias.sub.cmp.test.", ["127.0.0.88"]),
        ("www.cmp.test.", ["127.0.0.80"]),
    ]:
        answer = dns.query.udp(
            dns.message.make_query(name, "A"), "127.0.0.1", port=resolver, timeout=10
        )
        assert answer.rcode() == dns.rcode.NOERROR, answer
        assert answer.flags & dns.flags.RA
        addresses = [r.to_text() for rrset in answer.answer if rrset.rdtype == 1 for r in rrset]
        assert addresses == expected, answer
    missing = dns.query.udp(
        dns.message.make_query("nothing.sub.cmp.test.", "A"), "127.0.0.1", port=resolver, timeout=10
    )
    assert missing.rcode() == dns.rcode.NXDOMAIN
    # The SOA of the NXDOMAIN is the child's: the answer came from the child server.
    assert missing.authority[0].name.to_text() == "sub.cmp.test."
