"""Side by side with Knot: one zone served by ``knotd`` and by us, answers compared field by field.

Both servers listen on 127.0.0.1, each on a free port, with their config and
zone in a temporary directory; each is stopped by its pid. Every address in the
zone is a loopback address, so nothing ever leaves the machine. Each query is
asked of both over UDP (with EDNS0) and over TCP (without): rcode, opcode, the
flags, the question, the OPT record and every record of every section must be
the same. Records are compared as sets per section (RFC 2181 5: order carries
no meaning), each by owner, class, type, TTL and data in wire form, with the
names in them in lower case (RFC 4343: Knot writes them in the query's case).

A difference is allowed only when listed in ``EXPECTED``, with the RFC that
allows it; a listed difference that no longer happens fails too, so the list
stays true.
"""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.conftest import require_tool
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 5

_NAMES = [
    "cmp.test.",
    "CmP.TeSt.",
    "www",
    "WwW",
    "ns1",
    "ns2",
    "mail",
    "web",
    "alias",
    "outside",
    "dangling",
    "loop1",
    "intosub",
    "sub",
    "www.sub",
    "ns.sub",
    "deep.ns.sub",
    "a.b.sub",
    "nods",
    "ns.nods",
    "wild",
    "x.wild",
    "a.b.wild",
    "*.wild",
    "exists.wild",
    "ent.wild",
    "x.ent.wild",
    "leaf.ent.wild",
    "x.cw",
    "x.cwl",
    "dn",
    "a.dn",
    "dz",
    "www.dz",
    "nope.dz",
    "a.dl1",
    "x.dsub",
    "tgt",
    "www.tgt",
    "empty",
    "leaf.empty",
    "nothing",
    "_443._tcp.www",
    "nap",
    "svc",
    "alias-svc",
    "key",
    "opaque",
]
_TYPES = ["A", "AAAA", "NS", "MX", "TXT", "CNAME", "DS"]
_OWN_TYPES = {
    "cmp.test.": ["SOA", "CAA", "HTTPS", "ANY"],
    "www": ["SSHFP", "DNAME", "ANY"],
    "_443._tcp.www": ["TLSA"],
    "nap": ["NAPTR"],
    "svc": ["SVCB"],
    "alias-svc": ["HTTPS"],
    "key": ["DNSKEY"],
    "opaque": ["TYPE65280"],
    "dn": ["DNAME"],
    "a.dn": ["DNAME"],
    "x.wild": ["ANY"],
    "sub": ["ANY", "SOA"],
}


def _questions() -> list[tuple[str, str]]:
    out = []
    for name in _NAMES:
        full = name if name.endswith(".") else f"{name}.cmp.test."
        out.extend((full, rtype) for rtype in [*_TYPES, *_OWN_TYPES.get(name, [])])
    out.extend([("www.example.", "A"), ("test.", "SOA")])  # not ours: REFUSED
    return out


QUESTIONS = _questions()

_ANY = (
    ("answer", "counts"),
    "RFC 8482 4.1: Knot answers ANY with one RRset; we give them all, as RFC 1035 did",
)
# The same where the NS or MX set we give brings addresses along.
_ANY_WITH_ADDRESSES = (("answer", "additional", "counts"), _ANY[1])
_LOOP = (
    ("counts",),
    "RFC 1034 3.6.2, RFC 2181 5: Knot follows a loop to its limit and repeats"
    " records; we stop at the first name seen again, so each record comes once",
)

#: Differences from Knot 3.2 that remain, by (question, type): the fields that
#: differ, and the RFC that allows it.
EXPECTED: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("cmp.test.", "ANY"): _ANY_WITH_ADDRESSES,
    ("www.cmp.test.", "ANY"): _ANY,
    ("x.wild.cmp.test.", "ANY"): _ANY_WITH_ADDRESSES,
    **{(name, rtype): _LOOP for name in ("x.cwl.cmp.test.", "a.dl1.cmp.test.") for rtype in _TYPES},
}
# Asked for the CNAME, neither follows the chain: no loop to differ on.
del EXPECTED[("x.cwl.cmp.test.", "CNAME")], EXPECTED[("a.dl1.cmp.test.", "CNAME")]


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP, at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen[str], port: int) -> None:
    query = dns.message.make_query("cmp.test.", "SOA")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}")
        try:
            if dns.query.udp(query, "127.0.0.1", port=port, timeout=0.3).answer:
                return
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    pytest.fail("the server did not answer within 20 seconds")


@pytest.fixture(scope="module")
def zone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zone") / "cmp.test.zone"
    path.write_text(OPERATOR_ZONE_TEXT)
    return path


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory, zone_file: Path) -> Iterator[int]:
    """``knotd`` as the primary of cmp.test.; its port."""
    knotd = require_tool("knotd")
    directory = tmp_path_factory.mktemp("knot")
    port = _free_port()
    config = directory / "knot.conf"
    config.write_text(
        f"server:\n"
        f"    listen: 127.0.0.1@{port}\n"
        f"    rundir: {directory}\n"
        f"database:\n"
        f"    storage: {directory}\n"
        f"log:\n"
        f"  - target: stderr\n"
        f"    any: warning\n"
        f"zone:\n"
        f"  - domain: cmp.test.\n"
        f"    storage: {zone_file.parent}\n"
        f"    file: {zone_file.name}\n"
        f"    zonefile-sync: -1\n"
        f"    journal-content: none\n"
    )
    process = subprocess.Popen(
        [knotd, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_serving(process, port)
        yield port
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def ours(zone_file: Path) -> Iterator[int]:
    """``python -m protocols.dns.cli --zone`` on the same zone; its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "protocols.dns.cli", "--zone", str(zone_file), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"on (\S+) port (\d+)", process.stdout.readline())
        assert match, process.stderr.read() if process.stderr else ""
        yield int(match.group(2))
    finally:
        _stop(process)


_Record = tuple[str, int, int, int, bytes]


def _section(rrsets: list[dns.rrset.RRset]) -> list[_Record]:
    return sorted(
        (
            rrset.name.to_text().lower(),
            int(rrset.rdclass),
            int(rrset.rdtype),
            rrset.ttl,
            rdata.to_digestable(),
        )
        for rrset in rrsets
        for rdata in rrset
    )


def _fields(wire: bytes) -> dict[str, object]:
    """Every field a client could see, in a form that compares as DNS compares."""
    response = dns.message.from_wire(wire)
    return {
        # dnspython folds repeated records into one: count them on the wire.
        "counts": struct.unpack(">4H", wire[4:12]),
        "rcode": response.rcode(),
        "opcode": response.opcode(),
        "flags": dns.flags.to_text(response.flags),
        "question": [(q.name.to_text().lower(), q.rdtype, q.rdclass) for q in response.question],
        "edns": (response.edns, response.payload, response.ednsflags, response.options),
        "answer": _section(response.answer),
        "authority": _section(response.authority),
        "additional": _section(response.additional),
    }


def _ask(query: dns.message.Message, port: int, *, tcp: bool) -> bytes:
    """The answer's bytes, over UDP or over TCP (a 2-byte length before each message)."""
    wire = query.to_wire()
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", port))
        if not tcp:
            sock.send(wire)
            return sock.recv(65535)
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        stream = sock.makefile("rb")
        size = int.from_bytes(stream.read(2), "big")
        return bytes(stream.read(size))


def _differences(knot: int, ours: int, *, tcp: bool) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for name, rtype in QUESTIONS:
        # RD is set, as a stub would: both copy it and neither recurses.
        query = dns.message.make_query(name, rtype, use_edns=None if tcp else 0, payload=1232)
        theirs, mine = _fields(_ask(query, knot, tcp=tcp)), _fields(_ask(query, ours, tcp=tcp))
        differing = [
            f"{key}: knot {theirs[key]!r}, ours {mine[key]!r}"
            for key in theirs
            if theirs[key] != mine[key]
        ]
        if differing:
            found[(name.lower(), rtype)] = differing
    return found


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_answers_are_knots_but_for_the_listed_differences(
    knot: int, ours: int, transport: str
) -> None:
    """Issue 13: a wildcard, a delegation with glue, DNAMEs, chains, the new types."""
    assert len(QUESTIONS) >= 300
    found = _differences(knot, ours, tcp=transport == "tcp")
    unexpected = {q: d for q, d in found.items() if q not in EXPECTED}
    gone = sorted(q for q in EXPECTED if q not in found)
    assert not unexpected, "\n".join(f"{q}: {'; '.join(d)}" for q, d in unexpected.items())
    assert not gone, f"listed differences that no longer happen: {gone}"
    # Each expected difference is in the fields listed, and only there.
    for question, differing in found.items():
        fields, _ = EXPECTED[question]
        assert {d.split(":")[0] for d in differing} == set(fields), (question, differing)


@pytest.mark.parametrize("opcode", [dns.opcode.STATUS, 3, 15])
def test_other_opcodes_are_answered_as_knot_does(knot: int, ours: int, opcode: int) -> None:
    """NOTIMP with the question and the OPT record, from both (RFC 6891 7)."""
    query = dns.message.make_query("www.cmp.test.", "A", use_edns=0)
    query.set_opcode(opcode)
    theirs = _fields(_ask(query, knot, tcp=False))
    mine = _fields(_ask(query, ours, tcp=False))
    assert mine == theirs
    assert mine["rcode"] == dns.rcode.NOTIMP
