"""Out of file descriptors: what cannot be served is refused at once, and said once a second.

DESIGN.md ("Timeouts and load"): at fd exhaustion, connections that cannot be
served are closed at once, never left waiting in the backlog; the condition is
logged at most once a second, with its reason, on every backend (issue 11,
point 7). ``framing echo --framing length:2`` runs with a soft RLIMIT_NOFILE of
``NOFILE`` and ``--quiet`` (so what it logs is at WARNING or above); more
clients than that connect at once and stay.
"""

from __future__ import annotations

import math
import re
import time

import pytest

from tests.attacks.harness import Peer, echo_server, frame, open_peers, peers, spans, watch

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["asyncio", "uvloop", "trio"])
def loop(request: pytest.FixtureRequest) -> str:
    """Both backends, and uvloop too: there libuv accepts, not the server's own code."""
    return str(request.param)


#: The server's soft limit on open descriptors.
NOFILE = 128
#: Clients that connect at once and stay: far more than the limit lets it serve.
CLIENTS = 200
#: A client the server cannot serve must see EOF or a reset within this many seconds.
REFUSED_WITHIN = 1.0
#: Slack on that for scheduling on a shared CI core, and our polling.
SLACK = 0.5
#: After the first wave, one more client every PACE seconds for WINDOW seconds,
#: so the condition lasts while the log is counted.
WINDOW = 3.0
PACE = 0.1

#: A log line about the condition: whatever its wording, one of these is in it.
CONDITION = re.compile(r"accept|emfile|errno 24|too many open files|descriptor", re.IGNORECASE)
#: The reason named.
REASON = re.compile(r"emfile|errno 24|too many open files", re.IGNORECASE)

MESSAGE = frame("length:2", b"hello")


def _echoed(peer: Peer) -> bool:
    return bytes(peer.data) == MESSAGE


def _classify(group: list[Peer], now: float) -> tuple[list[Peer], list[Peer], list[Peer]]:
    """(served, refused in time, left waiting or refused late) as of ``now``."""
    served = [p for p in group if _echoed(p)]
    refused = [
        p
        for p in group
        if not _echoed(p) and p.ended is not None and p.ended - p.sent <= REFUSED_WITHIN + SLACK
    ]
    done = {p.index for p in served} | {p.index for p in refused}
    waiting = [p for p in group if p.index not in done]
    return served, refused, waiting


def _describe_waiting(waiting: list[Peer], now: float) -> str:
    late = [p for p in waiting if p.ended is not None]
    silent = [p for p in waiting if p.ended is None]
    parts = []
    if silent:
        oldest = max(now - p.sent for p in silent)
        parts.append(
            f"{len(silent)} got neither their echo nor EOF/RST (the oldest waited "
            f"{oldest:.1f} s): clients {spans([p.index for p in silent])}"
        )
    if late:
        parts.append(
            f"{len(late)} were closed late: "
            + ", ".join(f"#{p.index} after {p.ended - p.sent:.1f} s" for p in late[:10] if p.ended)
        )
    return "; ".join(parts)


def test_connections_beyond_the_fd_limit_are_refused_at_once_and_logged_once_a_second(
    loop: str,
) -> None:
    server = echo_server("length:2", loop, limits=())
    server.nofile = NOFILE
    server.start()
    try:
        before = server.snapshot()
        mark = server.log_mark()
        started = time.monotonic()
        problems: list[str] = []
        with peers() as group:
            # The first wave: all at once, each sends a message and waits.
            open_peers(group, server.port, CLIENTS, MESSAGE)
            watch(group, until=group[-1].sent + REFUSED_WITHIN + SLACK, done=_echoed)
            now = time.monotonic()
            served, refused, waiting = _classify(group, now)
            first_wave = (
                f"first wave of {CLIENTS} clients against RLIMIT_NOFILE {NOFILE}: "
                f"{len(served)} echoed, {len(refused)} refused (EOF/RST) within "
                f"{REFUSED_WITHIN} s"
            )
            if waiting:
                problems.append(f"{first_wave}; {_describe_waiting(waiting, now)}")
            if len(served) < NOFILE // 2:
                problems.append(f"{first_wave}: too few served")

            # The condition goes on: one more client every PACE seconds.
            wave = []
            end = time.monotonic() + WINDOW
            while time.monotonic() < end:
                wave += open_peers(group, server.port, 1, MESSAGE)
                watch(group, until=time.monotonic() + PACE, done=_echoed, tick=server.sample)
            watch(wave, until=wave[-1].sent + REFUSED_WITHIN + SLACK, done=_echoed)
            now = time.monotonic()
            _, late_refused, late_waiting = _classify(wave, now)
            if late_waiting:
                problems.append(
                    f"of {len(wave)} clients arriving one every {PACE} s while out of fds, "
                    f"{len(late_refused)} were refused at once; "
                    f"{_describe_waiting(late_waiting, now)}"
                )
            lines = server.log_since(mark)
            elapsed = time.monotonic() - started
        server.assert_alive()

        about = [line for line in lines if CONDITION.search(line)]
        allowed = math.ceil(elapsed) + 1
        shown = "\n    ".join(repr(line) for line in about[:5])
        if not any(REASON.search(line) for line in about):
            problems.append(
                f"no log line names the reason (EMFILE, Too many open files) in {elapsed:.1f} s; "
                f"{len(about)} lines about it, such as:\n    {shown or '(none)'}"
            )
        blank = [line for line in about if re.search(r":\s*$", line)]
        if blank:
            problems.append(f"{len(blank)} log lines with a blank reason, such as {blank[0]!r}")
        if len(about) > allowed:
            problems.append(
                f"{len(about)} log lines about it in {elapsed:.1f} s (at most {allowed}: "
                f"once a second), such as:\n    {shown}"
            )
        try:
            server.assert_recovered(before)
        except AssertionError as exc:
            problems.append(f"after the attack: {exc}")
        if problems:
            pytest.fail("\n".join(problems))
    finally:
        server.stop()
