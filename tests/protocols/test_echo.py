"""protocols/echo.py: the seed chapter's echo server, driven by real clients.

Most tests run ``framing echo`` as a subprocess (on asyncio and on trio) and talk
to it with socat, netcat or plain Python sockets; the last ones run
:func:`serve_echo` in-process on both anyio backends.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
import pytest

from framing.stream import FramedStream, connect
from framing.testing import feed_chunks, split_at
from protocols.echo import serve_echo
from protocols.runner import CommandError
from protocols.spec import parse_framing
from tests.conftest import require_tool
from tests.protocols.test_cli import TIMEOUT, Launcher, launcher, run_tool

__all__ = ["launcher"]  # the fixture, imported for this module's tests

LOOPS = ["asyncio", "trio"]
FRAMED = ["length:2", "length:4:little", "varint", "line", "delimiter:00", "netstring"]


def exchange(port: int, chunks: Sequence[bytes], *, half_close: bool = True) -> bytes:
    """Send ``chunks`` (one write each), half-close, and return every byte until the server closes.

    A writer thread sends while this thread reads, so neither side's buffers
    fill up however much is echoed.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        errors: list[OSError] = []

        def write() -> None:
            try:
                for chunk in chunks:
                    sock.sendall(chunk)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                errors.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        received = bytearray()
        while data := sock.recv(65536):
            received += data
        writer.join(TIMEOUT)
        assert not errors
    return bytes(received)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes (the socket's timeout bounds each read)."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> bytes:
    """Read until the server closes (end of stream, or a reset after it)."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)


def random_messages(spec: str, rng: random.Random, count: int) -> list[bytes]:
    """Messages of 0 to 3000 bytes that ``spec`` can carry (no delimiter inside)."""
    forbidden = {"line": b"\r\n", "delimiter:00": b"\x00"}.get(spec, b"")
    alphabet = bytes(b for b in range(256) if b not in forbidden)
    messages = []
    for _ in range(count):
        size = rng.choice([0, 1, 2, rng.randrange(3, 200), rng.randrange(200, 3000)])
        messages.append(bytes(rng.choice(alphabet) for _ in range(size)))
    return messages


# -- real clients, raw mode: the chapter's experiments ---------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_raw_echo_with_socat_half_close(launcher: Launcher, loop: str) -> None:
    socat = require_tool("socat")
    server, port = launcher.echo("--loop", loop)
    data = random.Random(1).randbytes(300_000)
    # socat half-closes when its stdin ends, then (-t) waits for the server's
    # remaining echoes and its close: every byte must come back.
    out = run_tool([socat, "-t", str(TIMEOUT), "-", f"TCP:127.0.0.1:{port}"], data)
    assert out == data
    log = server.wait_for(r"EOF\.\n\S+ closed\n").string
    assert re.search(r"^new connection 127\.0\.0\.1:\d+$", log, re.M)
    assert "data: b'" in log


@pytest.mark.parametrize("loop", LOOPS)
def test_raw_echo_with_nc(launcher: Launcher, loop: str) -> None:
    nc = require_tool("nc")
    server, port = launcher.echo("--loop", loop)
    # -N: shut down the socket's sending side at the end of stdin (a half-close).
    out = run_tool([nc, "-N", "127.0.0.1", str(port)], b"hello\nworld\n")
    assert out == b"hello\nworld\n"
    server.wait_for(r"EOF\.")


def test_close_on_with_nc_server_closes_first(launcher: Launcher) -> None:
    nc = require_tool("nc")
    server, port = launcher.echo("--close-on", "q")
    # No -N: nc never half-closes; it ends only because the server closes.
    with subprocess.Popen(
        [nc, "127.0.0.1", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as client:
        try:
            assert client.stdin is not None
            client.stdin.write(b"hello\nquit\n")
            client.stdin.flush()
            out, _ = client.communicate(timeout=TIMEOUT)
        finally:
            client.kill()
    assert out == b"hello\nquit\n"
    server.wait_for(r"closing: received b'q'")


def test_log_names_the_peer_address_and_port(launcher: Launcher) -> None:
    server, port = launcher.echo()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        sock.sendall(b"hi\n")
        assert recv_exactly(sock, 3) == b"hi\n"
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_closed(sock) == b""
    log = server.wait_for(rf"{peer} closed\n").string
    lines = log.splitlines()
    start = lines.index(f"new connection {peer}")
    assert lines[start + 1 :] == [rf"{peer} data: b'hi\n'", f"{peer} EOF.", f"{peer} closed"]


# -- framed modes: whole messages, however the writes were cut ---------------------


# Each framing on one server loop, alternating, so both loops serve every kind
# of framer (raw, length, delimiter, netstring) without doubling the run time.
@pytest.mark.parametrize(
    ("spec", "loop"), [(spec, LOOPS[i % 2]) for i, spec in enumerate(["raw", *FRAMED])]
)
def test_echo_random_splits_every_message_back(launcher: Launcher, spec: str, loop: str) -> None:
    rng = random.Random(spec)
    messages = random_messages(spec, rng, 300)
    framer = parse_framing(spec)
    stream = b"".join(framer.encode(m) for m in messages)
    chunks = split_at(stream, [rng.randrange(len(stream) + 1) for _ in range(120)])
    server, port = launcher.echo("--framing", spec, "--loop", loop)
    received = exchange(port, chunks)
    if spec == "raw":
        assert received == stream
    else:
        # Decoded byte-exact: whole messages, re-encoded, in order, none missing.
        assert feed_chunks(parse_framing(spec), [received]) == messages
        assert received == stream
    server.wait_for(r"EOF\.")


def test_echo_batches_pipelined_messages(launcher: Launcher) -> None:
    server, port = launcher.echo("--framing", "length:2")
    framer = parse_framing("length:2")
    messages = [b"%d" % i for i in range(2000)]
    stream = b"".join(framer.encode(m) for m in messages)
    assert exchange(port, [stream]) == stream
    # 2000 messages written at once cannot all have been read one by one:
    # the server took them in batches (receive_many) and echoed each in one write.
    assert re.search(r"data: \d+ messages, \d+ bytes", server.out)


# -- active close, half-close, errors ----------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_close_on_raw_echoes_the_chunk_then_closes(launcher: Launcher, loop: str) -> None:
    port = launcher.echo("--close-on", "q", "--loop", loop)[1]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"abc")
        assert recv_exactly(sock, 3) == b"abc"
        sock.sendall(b"xqz")
        assert recv_until_closed(sock) == b"xqz"
    # The server goes on serving others.
    assert exchange(port, [b"more"]) == b"more"


def test_close_on_framed_stops_after_the_message(launcher: Launcher) -> None:
    server, port = launcher.echo("--framing", "line", "--close-on", "q")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"a\nbqc\nd\n")
        # "d" came after the closing message: it is never echoed.
        assert recv_until_closed(sock) == b"a\nbqc\n"
    server.wait_for(r"closing: received b'q'")


@pytest.mark.parametrize("loop", LOOPS)
def test_half_close_gets_every_reply_then_server_closes(launcher: Launcher, loop: str) -> None:
    server, port = launcher.echo("--framing", "netstring", "--loop", loop)
    framer = parse_framing("netstring")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(framer.encode(b"one") + framer.encode(b"two"))
        sock.shutdown(socket.SHUT_WR)
        # Our side is shut; the echoes still arrive, then the server's end.
        received = recv_until_closed(sock)
    assert received == b"3:one,3:two,"
    server.wait_for(r"EOF\.\n\S+ closed")


@pytest.mark.parametrize("loop", LOOPS)
def test_two_servers_on_one_port(launcher: Launcher, loop: str) -> None:
    port = launcher.echo("--loop", loop)[1]
    second = launcher.start("echo", "--port", str(port), "--loop", loop)
    assert second.wait() != 0
    assert second.err == (
        f"framing: error: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
    # The first is unharmed.
    assert exchange(port, [b"still here"]) == b"still here"


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_with_status_zero(
    launcher: Launcher, loop: str, signum: signal.Signals
) -> None:
    server, port = launcher.echo("--loop", loop)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        assert server.stop(signum) == 0
        # The open connection was closed, not left hanging.
        assert recv_until_closed(sock) == b""
    assert f"stopping on {signum.name}" in server.err


def test_max_size_closes_only_the_offending_connection(launcher: Launcher) -> None:
    server, port = launcher.echo("--framing", "length:2", "--max-size", "10")
    framer = parse_framing("length:2")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as good,
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as bad,
    ):
        bad.sendall(b"\x00\x0b" + b"x" * 11)
        assert recv_until_closed(bad) == b""
        good.sendall(framer.encode(b"0123456789"))
        assert recv_exactly(good, 12) == framer.encode(b"0123456789")
    server.wait_for(r"over the limit of 10 bytes")


def test_max_connections_sheds_the_idle_connection_for_a_newcomer(launcher: Launcher) -> None:
    server, port = launcher.echo("--max-connections", "1")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as first:
        first.sendall(b"one")
        assert recv_exactly(first, 3) == b"one"
        second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        with second:
            second.sendall(b"two")
            assert recv_exactly(second, 3) == b"two"
            # The first, waiting for its next byte, was closed to make room.
            assert recv_until_closed(first) == b""
            server.wait_for(
                r"shed 127\.0\.0\.1:\d+ \(waited [\d.]+ s for its next byte\) to serve "
                r"127\.0\.0\.1:\d+: 1 connections open, the limit"
            )
            second.shutdown(socket.SHUT_WR)
            assert recv_until_closed(second) == b""
    server.wait_for(r"EOF\.\n\S+ closed")
    assert exchange(port, [b"next"]) == b"next"


def test_max_connections_per_peer_sheds_within_one_address_only(launcher: Launcher) -> None:
    server, port = launcher.echo("--max-connections-per-peer", "1")
    # 127.0.0.2 is another peer on Linux's loopback: it has a slot of its own.
    with socket.create_connection(
        ("127.0.0.1", port), timeout=TIMEOUT, source_address=("127.0.0.2", 0)
    ) as other:
        other.sendall(b"two")
        assert recv_exactly(other, 3) == b"two"
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as first:
            first.sendall(b"one")
            assert recv_exactly(first, 3) == b"one"
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as second:
                second.sendall(b"again")
                assert recv_exactly(second, 5) == b"again"
                assert recv_until_closed(first) == b""
            server.wait_for(r"shed 127\.0\.0\.1:\d+ .*1 connections open from 127\.0\.0\.1")
        other.sendall(b"still served")
        assert recv_exactly(other, 12) == b"still served"


def test_idle_timeout_closes_a_silent_connection(launcher: Launcher) -> None:
    server, port = launcher.echo("--idle-timeout", "0.2")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        assert recv_until_closed(sock) == b""
    server.wait_for(r"closing: timed out")


def test_message_timeout_closes_a_trickling_connection(launcher: Launcher) -> None:
    server, port = launcher.echo("--framing", "length:2", "--message-timeout", "0.2")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x00\x05he")  # a message begun, never finished
        assert recv_until_closed(sock) == b""
    server.wait_for(r"closing: timed out")


# -- in-process, on both anyio backends ----------------------------------------------


class LogLines:
    """A ``log`` callable that records lines and lets a task wait for one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = anyio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, pattern: str) -> re.Match[str]:
        with anyio.fail_after(TIMEOUT):
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                await self._changed.wait()


async def start_echo(tg: anyio.abc.TaskGroup, log: LogLines, **options: Any) -> int:
    """Start :func:`serve_echo` on a free port in ``tg``; return the port."""
    tg.start_soon(partial(serve_echo, port=0, log=log, **options))
    found = await log.wait_for(r"^listening on \S+:(\d+) ")
    return int(found.group(1))


async def receive_all(stream: FramedStream[bytes]) -> list[bytes]:
    out: list[bytes] = []
    with anyio.fail_after(TIMEOUT):
        while True:
            try:
                out.extend(await stream.receive_many())
            except anyio.EndOfStream:
                return out


@pytest.mark.anyio
async def test_serve_echo_pipelined_framed_messages() -> None:
    messages = [b"m%d" % i for i in range(3000)]
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, LogLines(), framing="varint")
        async with await connect("127.0.0.1", port, parse_framing("varint")) as stream:
            await stream.send_many(messages)
            await stream.send_eof()
            assert await receive_all(stream) == messages
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_serve_echo_close_on_in_framed_mode() -> None:
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, LogLines(), framing="line", close_on=b"q")
        async with await connect("127.0.0.1", port, parse_framing("line")) as stream:
            await stream.send_many([b"a", b"bqc", b"d"])
            assert await receive_all(stream) == [b"a", b"bqc"]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_serve_echo_port_in_use_raises_command_error() -> None:
    log = LogLines()
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, log)
        with pytest.raises(CommandError, match="address already in use"):
            await serve_echo(port=port, log=log)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_serve_echo_bad_max_size_raises_command_error() -> None:
    with pytest.raises(CommandError, match="max_size"):
        await serve_echo(framing="length:1", max_size=1000, port=0, log=LogLines())


@pytest.mark.anyio
async def test_echo_handler_logs_the_chapter_events() -> None:
    log = LogLines()
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, log)
        async with await connect("127.0.0.1", port, parse_framing("raw")) as stream:
            await stream.send(b"hello")
            with anyio.fail_after(TIMEOUT):
                assert await stream.receive() == b"hello"
            await stream.send_eof()
            assert await receive_all(stream) == []
            peer = f"127.0.0.1:{stream.extra(anyio.abc.SocketAttribute.local_port)}"
        await log.wait_for(f"^{peer} closed$")
        tg.cancel_scope.cancel()
    assert log.lines[1:] == [
        f"new connection {peer}",
        f"{peer} data: b'hello'",
        f"{peer} EOF.",
        f"{peer} closed",
    ]


@pytest.mark.anyio
async def test_serve_echo_message_timeout_closes_a_trickling_connection() -> None:
    log = LogLines()
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, log, framing="length:2", message_timeout=0.2)
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"\x00\x05he")
            with anyio.fail_after(TIMEOUT), pytest.raises(anyio.EndOfStream):
                await stream.receive()
        await log.wait_for(r"closing: timed out")
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_quiet_echo_builds_no_data_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(batch: list[bytes]) -> str:
        raise AssertionError("a data line was built in quiet mode")

    monkeypatch.setattr("protocols.echo._show", fail)
    messages = [b"m%d" % i for i in range(100)]
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, LogLines(), framing="length:2", quiet=True)
        async with await connect("127.0.0.1", port, parse_framing("length:2")) as stream:
            await stream.send_many(messages)
            await stream.send_eof()
            assert await receive_all(stream) == messages
        tg.cancel_scope.cancel()
