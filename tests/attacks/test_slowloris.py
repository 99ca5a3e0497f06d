"""Slowloris: connections that send one byte and then nothing.

Two promises of DESIGN.md ("Timeouts and load") against ``framing echo`` and
``framing dns`` running as subprocesses, on the asyncio and the trio loop:

- ``idle_timeout`` means no byte received for that long, whatever the framer
  holds: a connection stalled one byte into a frame is closed after it, with no
  ``--message-timeout`` needed (issue 11, point 1).
- At the connection limit a newcomer is served by shedding the connection that
  has waited longest for its next byte, not refused while stalled connections
  hold the table (issue 11, point 2; RFC 7766 6.2.3).

Each test gathers everything it saw, then fails with all of it at once: which
connections, how long, what the newcomer got.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.attacks.conftest import _run
from tests.attacks.harness import (
    Peer,
    Server,
    Snapshot,
    connect,
    dns_server,
    echo_server,
    frame,
    open_fds,
    open_peers,
    peers,
    recv_exactly,
    spans,
    watch,
)
from tests.conftest import require_tool

pytestmark = pytest.mark.timeout(60)

# --- the idle timeout, whatever the framer holds -----------------------------------

#: The idle timeout of the echo servers below, in seconds (small, to keep CI fast).
IDLE = 1.0
#: How long after its idle timeout a stalled connection may still be seen open:
#: the server's timer, its scheduling on a shared CI core, our polling.
MARGIN = 1.5
#: How many connections stall at once.
STALLERS = 50


@pytest.mark.parametrize(
    ("spec", "first"),
    # raw holds no partial message: the control, which passes before the fix too.
    [("length:2", b"\x00"), ("line", b"a"), ("raw", b"a")],
    ids=["length2", "line", "raw"],
)
def test_idle_timeout_closes_connections_stalled_one_byte_into_a_frame(
    loop: str, spec: str, first: bytes
) -> None:
    # framing echo --framing SPEC --max-size 4096 --idle-timeout 1, no --message-timeout.
    server = echo_server(spec, loop, "--max-size", "4096", limits=("--idle-timeout", str(IDLE)))
    server.start()
    try:
        before = server.snapshot()
        with peers() as group:
            open_peers(group, server.port, STALLERS, first)
            watch(group, until=group[-1].sent + IDLE + MARGIN, tick=server.sample)
            checked = time.monotonic()
        open_ = [p for p in group if p.ended is None]
        late = [p for p in group if p.ended is not None and p.ended - p.sent > IDLE + MARGIN]
        early = [p for p in group if p.ended is not None and p.ended - p.sent < 0.9 * IDLE]
        problems = []
        if open_:
            oldest = max(checked - p.sent for p in open_)
            problems.append(
                f"{len(open_)} of {STALLERS} connections stalled after one byte ({first!r}) "
                f"still open {oldest:.1f} s after that byte, with --idle-timeout {IDLE}: "
                f"connections {spans([p.index for p in open_])}"
            )
        if late:
            problems.append(
                f"{len(late)} closed later than {IDLE} + {MARGIN} s: "
                + ", ".join(f"#{p.index} after {_after(p):.2f} s" for p in late[:10])
            )
        if early:
            problems.append(
                f"{len(early)} closed before the idle timeout ({IDLE} s): "
                + ", ".join(f"#{p.index} after {_after(p):.2f} s" for p in early[:10])
            )
        _recover(server, before, problems)
        if problems:
            pytest.fail("\n".join(problems))
    finally:
        server.stop()


def _after(peer: Peer) -> float:
    assert peer.ended is not None
    return peer.ended - peer.sent


def _recover(server: Server, before: Snapshot, problems: list[str]) -> None:
    """``server.assert_recovered(before)``, its failure added to ``problems``."""
    try:
        server.assert_recovered(before)
    except AssertionError as exc:
        problems.append(f"after the attack: {exc}")


# --- shedding at the connection limit ----------------------------------------------

#: The table: ``framing dns``'s default --max-connections, and the echo server's below.
TABLE = 150
#: Stalled connections opened: more than the table holds.
ATTACKERS = 200
#: A well-behaved newcomer is answered within this many seconds.
SERVED_WITHIN = 1.0
#: The stalled connections' own timeout (DNS: the 5 s message timeout; echo: the
#: idle timeout below). The newcomer must be done well before it frees slots.
STALL_TIMEOUT = 5.0
#: Server descriptors beyond the baseline allowed during the attack: the table,
#: plus one being shed and a few for the loop's own use.
FD_HEADROOM = TABLE + 5


@pytest.fixture(scope="module")
def dns_defaults(loop: str) -> Iterator[Server]:
    """``framing dns`` with its own limits: 150 connections, 5 s message timeout."""
    yield from _run(dns_server(loop, limits=()))


@pytest.fixture(scope="module")
def echo_150(loop: str) -> Iterator[Server]:
    """``framing echo --framing length:2 --max-connections 150 --idle-timeout 5``."""
    limits = ("--max-connections", str(TABLE), "--idle-timeout", str(STALL_TIMEOUT))
    yield from _run(echo_server("length:2", loop, limits=limits))


def _dnspython(server: Server) -> str | None:
    """A TCP query with dnspython, timeout SERVED_WITHIN; ``None`` if answered, else why not."""
    query = dns.message.make_query("www.framing.test.", "A")
    try:
        reply = dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=SERVED_WITHIN)
    except Exception as exc:  # any failure is the finding: report it
        return f"dns.query.tcp raised {exc!r}"
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return f"dns.query.tcp got rcode {dns.rcode.to_text(reply.rcode())}, {reply.answer}"
    return None


def _dig(server: Server) -> str | None:
    """``dig +tcp +tries=1 +time=1``; ``None`` if answered, else why not."""
    dig = require_tool("dig")
    argv = [dig, "+tcp", "+tries=1", "+time=1", "@127.0.0.1", "-p", str(server.port)]
    result = subprocess.run(
        [*argv, "www.framing.test.", "A"], capture_output=True, text=True, timeout=10, check=False
    )
    if result.returncode != 0 or "status: NOERROR" not in result.stdout:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        return f"dig exited {result.returncode}: {' | '.join(tail)}"
    if "ANSWER SECTION" not in result.stdout:
        return "dig: NOERROR with no answer"
    return None


def _echo_round_trip(server: Server) -> str | None:
    """A framed echo round trip within SERVED_WITHIN; ``None`` if echoed, else why not."""
    wire = frame("length:2", b"well-behaved")
    try:
        with connect(server.port, timeout=SERVED_WITHIN) as sock:
            sock.sendall(wire)
            got = recv_exactly(sock, len(wire), timeout=SERVED_WITHIN)
    except (OSError, AssertionError) as exc:
        return f"echo round trip failed: {exc!r}"
    return None if got == wire else f"echo round trip got {got!r}"


def _shedding(server: Server, newcomer: Callable[[Server], str | None]) -> None:
    """Fill the table with stalled connections, then check ``newcomer`` is served by shedding."""
    before = server.snapshot()
    problems: list[str] = []
    with peers() as group:
        open_peers(group, server.port, ATTACKERS, b"\x00")
        # Wait (bounded) until the server has taken all of them from its backlog:
        # then the ones over its limit have been refused (today) or shed.
        over = ATTACKERS - TABLE
        deadline = time.monotonic() + 2.0
        while sum(p.ended is not None for p in group) < over and time.monotonic() < deadline:
            watch(group, until=min(deadline, time.monotonic() + 0.05))
        fds_full = open_fds(server.pid)
        ended_before = {p.index for p in group if p.ended is not None}

        start = time.monotonic()
        why_not = newcomer(server)
        took = time.monotonic() - start
        watch(group, until=time.monotonic() + SERVED_WITHIN, tick=server.sample)
        fds_peak = max(fds_full, open_fds(server.pid))
        since_attack = time.monotonic() - group[0].sent

    ended = {p.index for p in group if p.ended is not None}
    shed_for_newcomer = ended - ended_before
    newest = set(range(ATTACKERS - over, ATTACKERS))
    state = (
        f"({len(ended_before)} of {ATTACKERS} stalled connections ended before the newcomer "
        f"({spans(sorted(ended_before))}), {len(ended)} a second after it "
        f"({spans(sorted(ended))}); server fds {before.fds} before, {fds_full} with the "
        f"table full)"
    )
    if why_not is not None or took > SERVED_WITHIN + 0.5:
        problems.append(
            f"the newcomer was not served within {SERVED_WITHIN} s while stalled connections "
            f"held the table: {why_not or 'served'} after {took:.2f} s"
        )
    if not shed_for_newcomer:
        problems.append("no stalled connection was shed to make room for the newcomer")
    if 0 not in ended:
        problems.append("the connection that waited longest for its next byte (#0) is still open")
    if len(ended & newest) > over // 2:
        problems.append(
            f"{len(ended & newest)} of the {over} newest connections were closed, not the "
            f"oldest stalled ones: the newest were refused instead of served by shedding"
        )
    if fds_peak > before.fds + FD_HEADROOM:
        problems.append(
            f"server held {fds_peak} fds during the attack, over {before.fds} + {FD_HEADROOM}"
        )
    if since_attack > STALL_TIMEOUT - 0.5:
        problems.append(
            f"the attack took {since_attack:.1f} s, too close to the {STALL_TIMEOUT} s "
            "timeout: the test proves nothing on a machine this slow"
        )
    _recover(server, before, problems)
    if problems:
        pytest.fail("\n".join([*problems, state]))


@pytest.mark.parametrize("client", ["dnspython", "dig"])
def test_dns_query_answered_while_stalled_connections_hold_the_table(
    dns_defaults: Server, client: str
) -> None:
    _shedding(dns_defaults, _dnspython if client == "dnspython" else _dig)


def test_echo_served_while_stalled_connections_hold_the_table(echo_150: Server) -> None:
    _shedding(echo_150, _echo_round_trip)
