"""Hostile peers against running servers: every attack, then the server is still whole.

Each test attacks ``framing echo`` (raw, ``length:2``, ``line``) or ``framing
dns`` running as a subprocess on loopback, on the asyncio and the trio loop,
then checks from ``/proc`` that its descriptors came back to where they were
and its memory stayed within bounds (see ``harness``), and that a well-behaved
client is still served promptly.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import pytest

from tests.attacks.harness import (
    IDLE_TIMEOUT,
    PROMPT_SECONDS,
    Server,
    connect,
    dns_query,
    example_name,
    frame,
    good_client,
    recv_exactly,
    reset,
    send_all_nonblocking,
    spin,
    wait_closed,
)

pytestmark = pytest.mark.timeout(120)


def _wire(server: Server, messages: list[bytes]) -> bytes:
    """Frames the server understands: echo frames, or length-prefixed DNS queries."""
    if server.kind == "dns":
        return b"".join(struct.pack(">H", len(m)) + m for m in messages)
    return b"".join(frame(server.spec, m) for m in messages)


def _queries(count: int) -> list[bytes]:
    name = example_name()
    return [dns_query(name, i & 0xFFFF) for i in range(count)]


def _half_frame(server: Server) -> bytes:
    """The start of a frame that announces more bytes than follow."""
    if server.kind == "echo" and server.spec == "raw":
        return b"half a thought"
    return b"\x00\x40" + b"partial"


def _read_replies(server: Server, sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` length-prefixed DNS replies."""
    out = []
    for _ in range(count):
        (size,) = struct.unpack(">H", recv_exactly(sock, 2, timeout=30))
        out.append(recv_exactly(sock, size, timeout=30))
    return out


def test_half_frame_then_eof(server: Server) -> None:
    before = server.snapshot()
    for _ in range(20):
        with connect(server.port) as sock:
            sock.sendall(_half_frame(server))
            sock.shutdown(socket.SHUT_WR)
            echoed = wait_closed(sock, timeout=PROMPT_SECONDS)
        # Raw echoes the bytes it got; a framed server has no whole message to answer.
        expected = _half_frame(server) if server.spec == "raw" else b""
        assert echoed == expected
    server.assert_recovered(before)
    good_client(server)


def test_half_frame_then_reset(server: Server) -> None:
    before = server.snapshot()
    for _ in range(50):
        sock = connect(server.port)
        sock.sendall(_half_frame(server))
        reset(sock)
    server.assert_recovered(before)
    good_client(server)


def test_one_byte_per_write_with_pauses(server: Server) -> None:
    before = server.snapshot()
    messages = _queries(3) if server.kind == "dns" else [b"slow", b"", b"and steady"]
    if server.spec == "raw":
        messages = [b"slow and steady"]
    wire = _wire(server, messages)
    with connect(server.port) as sock:
        for i in range(len(wire)):
            sock.sendall(wire[i : i + 1])
            time.sleep(0.005)
        if server.kind == "dns":
            replies = _read_replies(server, sock, len(messages))
            assert [r[:2] for r in replies] == [m[:2] for m in messages]
        else:
            # Raw echoes each chunk as it comes: the bytes, in order, are what counts.
            assert recv_exactly(sock, len(wire)) == wire
    server.assert_recovered(before)
    good_client(server)


def _reader(sock: socket.socket, size: int, out: list[bytes]) -> None:
    try:
        out.append(recv_exactly(sock, size, timeout=60))
    except (AssertionError, OSError) as exc:
        out.append(repr(exc).encode())


def test_hundreds_of_thousands_of_frames_in_one_write(server: Server) -> None:
    before = server.snapshot()
    # Echo: 200,000 frames. DNS: 20,000 queries, as each costs a lookup and a
    # reply built (a few thousand per second on trio, on a shared CI core).
    count = 20_000 if server.kind == "dns" else 200_000
    if server.kind == "dns":
        queries = _queries(count)
        wire = _wire(server, queries)
        with connect(server.port, timeout=60) as sock:
            sock.sendall(wire)
            sock.shutdown(socket.SHUT_WR)
            replies = _read_replies(server, sock, count)
        assert [r[:2] for r in replies[-3:]] == [q[:2] for q in queries[-3:]]
        assert all(r[2] & 0x80 for r in replies)
    else:
        wire = _wire(server, [b"x%d" % (i % 10) for i in range(count)])
        with connect(server.port, timeout=60) as sock:
            got: list[bytes] = []
            # Read while writing: the server echoes as it goes, and a client that
            # did not read would (rightly) be stopped by backpressure.
            reader = threading.Thread(target=_reader, args=(sock, len(wire), got))
            reader.start()
            sock.sendall(wire)
            reader.join(90)
        assert got == [wire]
    server.assert_recovered(before)
    good_client(server)


@pytest.mark.parametrize("first", [b"", b"\x00"], ids=["silent", "one-byte"])
def test_slowloris_connections_are_closed_by_the_timeouts(server: Server, first: bytes) -> None:
    # Silent connections meet the idle timeout; one byte of a frame begins a
    # message, which the message timeout bounds (raw has no partial messages).
    before = server.snapshot()
    stalled = []
    try:
        for _ in range(150):
            sock = connect(server.port)
            sock.sendall(first)
            stalled.append(sock)
        # While they stall, a good client is served.
        good_client(server)
        spin(0.2, [server])
        # Each stalled connection is closed by the server: its timeout, plus slack.
        for sock in stalled:
            wait_closed(sock, timeout=IDLE_TIMEOUT + PROMPT_SECONDS)
    finally:
        for sock in stalled:
            sock.close()
    server.assert_recovered(before)
    good_client(server)


def test_connection_flood_leaks_no_descriptor(server: Server) -> None:
    before = server.snapshot()
    for i in range(1500):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(PROMPT_SECONDS)
            sock.connect(("127.0.0.1", server.port))
            if i % 2:
                reset(sock)
        finally:
            sock.close()
        if i % 300 == 0:
            server.sample()
    server.assert_recovered(before)
    good_client(server)


def test_client_that_never_reads(server: Server) -> None:
    before = server.snapshot()
    if server.kind == "dns":
        wire = _wire(server, _queries(20_000))
    else:
        wire = _wire(server, [b"z" * 1000] * 32_000)  # about 32 MB of echo requests
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the kernel soaks up little of what the server writes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(PROMPT_SECONDS)
    sock.connect(("127.0.0.1", server.port))
    sent: list[int] = []
    sender = threading.Thread(
        target=lambda: sent.append(send_all_nonblocking(sock, wire, seconds=4))
    )
    sender.start()
    try:
        spin(1.0, [server])
        # The server is blocked writing to this client: others are still served.
        good_client(server)
        sender.join(10)
        spin(0.5, [server])
        assert sent, "the sender did not finish"
        if server.kind == "echo":
            # Backpressure: the server stopped reading long before 32 MB. (DNS
            # replies to 640 KB of queries can all fit in the kernel's buffers.)
            assert sent[0] < len(wire), f"all {len(wire)} bytes taken: no backpressure"
    finally:
        reset(sock)
    server.assert_recovered(before)
    good_client(server)


def test_random_bytes_on_many_connections(server: Server) -> None:
    before = server.snapshot()
    rng = random.Random(7)
    socks = []
    try:
        for _ in range(60):
            sock = connect(server.port)
            send_all_nonblocking(sock, rng.randbytes(64 * 1024), seconds=0.5)
            socks.append(sock)
        server.sample()
        good_client(server)
    finally:
        for i, sock in enumerate(socks):
            if i % 2:
                reset(sock)
            else:
                sock.close()
    server.assert_recovered(before)
    good_client(server)


# --- framing-specific attacks ------------------------------------------------------


def test_length_header_over_the_limit(echo_length: Server) -> None:
    server = echo_length
    before = server.snapshot()
    for header in (b"\xff\xff", b"\x04\x01", b"\x04\x00" + b"y" * 1024 + b"\x04\x01"):
        with connect(server.port) as sock:
            sock.sendall(header + b"x" * 100)
            echoed = wait_closed(sock, timeout=PROMPT_SECONDS)
        # Only a frame within the limit (the third case's first) is echoed.
        assert echoed in (b"", b"\x04\x00" + b"y" * 1024)
    server.assert_recovered(before)
    good_client(server)


def test_delimiter_never_delivered(echo_line: Server) -> None:
    server = echo_line
    before = server.snapshot()
    blob = b"a" * (8 * 1024 * 1024)
    for _ in range(3):
        sock = connect(server.port)
        try:
            sent = send_all_nonblocking(sock, blob, seconds=3)
            server.sample()
            # The line went over the 64 KiB limit: the server closed, long before 8 MiB.
            wait_closed(sock, timeout=PROMPT_SECONDS)
            assert sent < len(blob)
        finally:
            sock.close()
    server.assert_recovered(before)
    good_client(server)


_NAME = b"\x07example\x00"


def _malformed_dns() -> list[tuple[str, bytes]]:
    """DNS messages broken in every way we know, each a well-formed TCP frame's payload."""
    head = struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    return [
        ("empty", b""),
        ("one byte", b"\xbe"),
        ("short header", head[:11]),
        ("header only, one question announced", head),
        ("question without type", head + _NAME),
        ("label runs past the end", head + b"\x3fabc"),
        ("label over 63 bytes", head + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"),
        ("name over 255 bytes", head + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"),
        ("pointer to itself", head + b"\xc0\x0c\x00\x01\x00\x01"),
        ("pointer loop", head + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01"),
        ("pointer forward", head + b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 30),
        ("pointer past the end", head + b"\xc0\xff\x00\x01\x00\x01"),
        ("reserved label type", head + b"\x80abc\x00\x00\x01\x00\x01"),
        ("65535 questions announced", struct.pack(">HHHHHH", 1, 0, 0xFFFF, 0, 0, 0)),
        (
            "65535 answers announced",
            struct.pack(">HHHHHH", 2, 0, 1, 0xFFFF, 0, 0) + _NAME + b"\x00\x01\x00\x01",
        ),
        (
            "rdata longer than the message",
            struct.pack(">HHHHHH", 3, 0x8000, 0, 1, 0, 0)
            + _NAME
            + b"\x00\x01\x00\x01\x00\x00\x00\x3c\xff\xff\x01",
        ),
        (
            "A record of 3 bytes",
            struct.pack(">HHHHHH", 4, 0, 1, 0, 0, 1)
            + _NAME
            + b"\x00\x01\x00\x01"
            + _NAME
            + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x03abc",
        ),
        (
            "two OPT records",
            struct.pack(">HHHHHH", 5, 0, 1, 0, 0, 2)
            + _NAME
            + b"\x00\x01\x00\x01"
            + (b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00") * 2,
        ),
        (
            "OPT with a truncated option",
            struct.pack(">HHHHHH", 6, 0, 1, 0, 0, 1)
            + _NAME
            + b"\x00\x01\x00\x01"
            + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x05\x00\x0a\x00\x08\x01",
        ),
        (
            "a response, not a query",
            struct.pack(">HHHHHH", 7, 0x8180, 1, 0, 0, 0) + _NAME + b"\x00\x01\x00\x01",
        ),
        (
            "unknown opcode",
            struct.pack(">HHHHHH", 8, 0x7800, 1, 0, 0, 0) + _NAME + b"\x00\x01\x00\x01",
        ),
        ("no question", struct.pack(">HHHHHH", 9, 0x0100, 0, 0, 0, 0)),
        (
            "trailing garbage",
            struct.pack(">HHHHHH", 10, 0, 1, 0, 0, 0) + _NAME + b"\x00\x01\x00\x01" + b"junk",
        ),
        ("random", random.Random(3).randbytes(300)),
    ]


@pytest.mark.parametrize(
    ("what", "payload"), _malformed_dns(), ids=[w for w, _ in _malformed_dns()]
)
def test_malformed_dns_in_well_formed_frames(dns: Server, what: str, payload: bytes) -> None:
    server = dns
    before = server.snapshot()
    with connect(server.port) as sock:
        sock.sendall(struct.pack(">H", len(payload)) + payload)
        sock.shutdown(socket.SHUT_WR)
        reply = wait_closed(sock, timeout=PROMPT_SECONDS)
    if reply:
        # Whatever it answered is one well-formed frame: a response, FORMERR or other.
        (size,) = struct.unpack(">H", reply[:2])
        assert len(reply) == 2 + size, f"{what}: reply is not one whole frame"
        assert reply[4] & 0x80, f"{what}: reply is not a response"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(payload, ("127.0.0.1", server.port))
    server.assert_recovered(before)
    good_client(server)
