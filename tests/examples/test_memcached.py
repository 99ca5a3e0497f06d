r"""examples/memcached.py against real clients, and side by side with memcached itself.

Three kinds of peer, every test on asyncio and on trio:

- pymemcache, a blocking client library, run in a worker thread against the
  example serving in the test's own event loop;
- libmemcached's command-line tools (``memccp``, ``memccat``, ``memcrm``);
- the real ``memcached``, started on a free loopback port: the same raw command
  scripts go to both servers and the replies must be byte-identical, except
  for two normalised fields (the ``cas`` number of ``gets`` lines and the
  release number after ``VERSION``), which are each server's own.

The in-process tests after those pin replies taken from memcached 1.6 (they
run where memcached is not installed) and the limits: memory held, timeouts,
the long-line rule, the command line. The last ones play every script to the
handler cut into random chunks and byte by byte: the replies never change.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import ByteStream, SocketStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError

from examples.memcached import (
    MAX_KEY,
    MAX_LINE,
    MAX_VALUE,
    SWALLOW_PIECE,
    Store,
    command_lines,
    handle_connection,
    serve_memcached,
)
from framing import FramedStream, FramingError, ServerInfo
from framing.testing import chunkings
from tests.conftest import require_tool

pytestmark = pytest.mark.anyio

T = TypeVar("T")

TIMEOUT = 10.0  # seconds for any one exchange, script or tool run
MAX_READS = 10_000  # reads of one reply, at most
SENTINEL = b"version\r\n"  # sent after each synchronised step: its reply marks the end
REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def example_server(store: Store | None = None) -> AsyncIterator[ServerInfo]:
    """Run the example on a free loopback port in this event loop; yield where it listens."""
    async with anyio.create_task_group() as tg:
        yield await tg.start(partial(serve_memcached, port=0, store=store))
        tg.cancel_scope.cancel()


async def in_thread(function: Callable[[], T]) -> T:
    """Run a blocking client call in a worker thread (its own socket timeouts bound it)."""
    with anyio.fail_after(TIMEOUT):
        return await anyio.to_thread.run_sync(function)


def pymemcache_client(port: int) -> Client:
    return Client(("127.0.0.1", port), connect_timeout=TIMEOUT / 2, timeout=TIMEOUT / 2)


# -- pymemcache -------------------------------------------------------------------


async def test_pymemcache_set_get_and_gets() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                assert client.set(b"greeting", b"hello", noreply=False) is True
                assert client.get(b"greeting") == b"hello"
                value, cas = client.gets(b"greeting")
                assert value == b"hello"
                assert client.set(b"greeting", b"bonjour", noreply=False) is True
                value2, cas2 = client.gets(b"greeting")
                assert value2 == b"bonjour"
                assert int(cas2) > int(cas)  # a new cas number on every store
                assert client.get(b"missing") is None
                assert client.gets(b"missing") == (None, None)
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_add_stores_only_a_missing_key() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                assert client.add(b"k", b"first", noreply=False) is True
                assert client.add(b"k", b"second", noreply=False) is False
                assert client.get(b"k") == b"first"
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_delete_reports_whether_the_key_was_there() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                client.set(b"k", b"v", noreply=False)
                assert client.delete(b"k", noreply=False) is True
                assert client.delete(b"k", noreply=False) is False
                assert client.get(b"k") is None
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_noreply_commands_take_effect_and_keep_the_stream_in_step() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                # No reply comes for these; a stray one would be read as the
                # answer to the get below and break it.
                assert client.set(b"a", b"1", noreply=True) is True
                assert client.add(b"a", b"2", noreply=True) is True
                assert client.add(b"b", b"3", noreply=True) is True
                assert client.delete(b"b", noreply=True) is True
                assert client.get_many([b"a", b"b"]) == {b"a": b"1"}
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_get_many_and_gets_many() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                client.set_many({b"k1": b"one", b"k2": b"two", b"k3": b"three"}, noreply=False)
                got = client.get_many([b"k1", b"nope", b"k3", b"k2"])
                assert got == {b"k1": b"one", b"k2": b"two", b"k3": b"three"}
                with_cas = client.gets_many([b"k1", b"k2", b"nope"])
                assert {key: value for key, (value, _) in with_cas.items()} == {
                    b"k1": b"one",
                    b"k2": b"two",
                }
                assert len({cas for _, cas in with_cas.values()}) == 2
            finally:
                client.close()

        await in_thread(talk)


BINARY_VALUES = {
    b"crlf": b"line one\r\nline two\r\n",
    b"fake-end": b"\r\nEND\r\n",
    b"fake-value": b"VALUE other 0 1\r\nx\r\nEND",
    b"all-bytes": bytes(range(256)),
    b"lone-cr": b"\r",
    b"empty": b"",
}


async def test_pymemcache_binary_values_containing_crlf_round_trip() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                for key, value in BINARY_VALUES.items():
                    assert client.set(key, value, noreply=False) is True
                assert client.get_many(list(BINARY_VALUES)) == BINARY_VALUES
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_value_of_exactly_the_size_cap_is_stored() -> None:
    value = bytes(range(256)) * (MAX_VALUE // 256)
    assert len(value) == MAX_VALUE
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                assert client.set(b"big", value, noreply=False) is True
                assert client.get(b"big") == value
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_value_one_byte_over_the_cap_is_refused_and_swallowed() -> None:
    async with example_server() as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                client.set(b"big", b"old", noreply=False)
                with pytest.raises(MemcacheServerError, match="object too large for cache"):
                    client.set(b"big", b"x" * (MAX_VALUE + 1), noreply=False)
                # The refused block was read and discarded: the connection is in step,
                # and (as in memcached) the failed set removed the old value.
                assert client.get(b"big") is None
                assert client.set(b"after", b"ok", noreply=False) is True
                assert client.get(b"after") == b"ok"
            finally:
                client.close()

        await in_thread(talk)


async def test_pymemcache_expiry_follows_the_stores_clock() -> None:
    now = [1_000_000_000.0]
    async with example_server(Store(clock=lambda: now[0])) as server:
        port = server.port

        def talk() -> None:
            client = pymemcache_client(port)
            try:
                client.set(b"short", b"v", expire=10, noreply=False)
                client.set(b"forever", b"v", expire=0, noreply=False)
                now[0] += 9.5
                assert client.get(b"short") == b"v"
                now[0] += 0.5
                assert client.get_many([b"short", b"forever"]) == {b"forever": b"v"}
                assert client.add(b"short", b"again", noreply=False) is True
            finally:
                client.close()

        await in_thread(talk)


# -- libmemcached's tools -------------------------------------------------------------


async def run_tool(*argv: str) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(TIMEOUT):
        return await anyio.run_process(list(argv), check=False)


async def test_memccp_memccat_memcrm_copy_a_file_in_and_out_byte_exact(tmp_path: Path) -> None:
    memccp, memccat, memcrm = (require_tool(t) for t in ("memccp", "memccat", "memcrm"))
    source = tmp_path / "blob.bin"
    source.write_bytes(b"first line\r\nEND\r\n" + bytes(range(256)) * 1024 + b"\r\n")
    copy = tmp_path / "copy.bin"
    async with example_server() as server:
        port = server.port
        servers = f"--servers=127.0.0.1:{port}"
        copied = await run_tool(memccp, servers, "--flags=7", str(source))
        assert copied.returncode == 0, copied.stderr
        cat = await run_tool(memccat, servers, f"--file={copy}", "blob.bin")
        assert cat.returncode == 0, cat.stderr
        assert copy.read_bytes() == source.read_bytes()
        flags = await run_tool(memccat, servers, "--flags", "blob.bin")
        assert flags.stdout.startswith(b"7\n")
        add = await run_tool(memccp, servers, "--add", str(source))
        assert add.returncode != 0  # the key exists: NOT_STORED
        removed = await run_tool(memcrm, servers, "blob.bin")
        assert removed.returncode == 0, removed.stderr
        gone = await run_tool(memccat, servers, "blob.bin")
        assert gone.returncode != 0
        assert gone.stdout == b""
        again = await run_tool(memcrm, servers, "blob.bin")
        assert again.returncode != 0  # NOT_FOUND


# -- side by side with memcached ------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """Raw bytes for a server, as a list of steps.

    Each step is one write. After a step marked ``sync`` the sentinel
    (``version``) follows in the same write, and its reply is awaited before
    the next step: replies then cannot depend on how far the server had got.
    The others are written after a short pause, so they likely arrive as
    pieces of their own (the replies must not depend on that either).
    ``closes``: the server is expected to close the connection at the end.
    """

    name: str
    steps: Sequence[tuple[bytes, bool]]
    closes: bool = False


def synced(*steps: bytes) -> list[tuple[bytes, bool]]:
    return [(step, True) for step in steps]


def pieces(*parts: bytes) -> list[tuple[bytes, bool]]:
    """Writes without a sync between them, the last one followed by a sync."""
    return [(part, False) for part in parts[:-1]] + [(parts[-1], True)]


LONG_KEY = b"k" * (MAX_KEY + 1)
OVERSIZE = 2_000_000  # over the 1 MiB limit of both servers
FITS = 1_000_000  # under both (memcached's own limit counts its item header too)

SCRIPTS = [
    Script(
        "set_get_gets_multi_key",
        synced(
            b"set a 0 0 5\r\nhello\r\nget a\r\ngets a\r\nget missing\r\n",
            b"set b 3 0 2\r\nhi\r\ngets a missing b a\r\nget b a\r\n",
        ),
    ),
    Script(
        "add",
        synced(
            b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nget a\r\n",
            b"set e 0 -1 1\r\nx\r\nget e\r\nadd e 5 0 2\r\nyy\r\nget e\r\n",
        ),
    ),
    Script(
        "delete",
        synced(
            b"set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\nget a\r\n",
            b"set a 0 0 1\r\nx\r\ndelete a 0\r\ndelete a 1\r\ndelete noreply\r\n",
            b"delete\r\ndelete a b c d\r\ndelete " + LONG_KEY + b"\r\n",
        ),
    ),
    Script(
        "noreply",
        synced(
            b"set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\n"
            b"add b 0 0 1 noreply\r\nz\r\nget a b\r\n",
            b"delete b noreply\r\ndelete b 0 noreply\r\ndelete a x noreply\r\nget a b\r\n",
            b"set a 0 0 noreply\r\nget a\r\nset a 0 0 1 noreply\r\nxy\r\nget a\r\n",
        ),
    ),
    Script(
        "malformed_commands",
        synced(
            b"\r\n\n   \r\ng\r\nget\r\ngets\r\nGET a\r\nbogus x y\r\nsets a 0 0 1\r\nset\r\n",
            b"set a 0 0\r\nset a 0 0 1 2 3\r\nset a 0 0 2 noreply extra\r\n",
            b"set a abc 0 1\r\nx\r\nset a -1 0 1\r\nx\r\nset a 0 abc 1\r\nx\r\n",
            b"set a 0 0 -1\r\nset a 0 0 abc\r\nhello\r\n",
            b"set " + LONG_KEY + b" 0 0 1\r\nx\r\n",
            b"set a 0 0 1\r\nx\r\n",
            # Alone in its step: memcached drops unsent replies before this error.
            b"get a " + LONG_KEY + b"\r\n",
        ),
    ),
    Script(
        "bad_data_chunk",
        synced(
            b"set a 0 0 5\r\nhello\r\n",
            b"set a 0 0 3\r\nabcd\r\nget a\r\n",
            b"set b 0 0 3\r\nabc\n\r\nadd c 0 0 1\r\nxyz\r\nget a b c\r\n",
            b"set a 0 0 1 noreply\r\nxy\r\nget a\r\n",
        ),
    ),
    Script(
        "oversize_blocks_are_swallowed",
        synced(
            b"set z 0 0 1\r\nq\r\nadd y 0 0 1\r\nr\r\n",
            b"set z 0 0 %d\r\n" % OVERSIZE + b"v" * OVERSIZE + b"\r\nget z\r\n",
            b"add y 0 0 %d\r\n" % OVERSIZE + b"\r\n" * (OVERSIZE // 2 + 1) + b"get y\r\n",
            b"set w 0 0 %d noreply\r\n" % OVERSIZE + b"w" * (OVERSIZE + 2) + b"get w\r\n",
            b"set f 0 0 %d\r\n" % FITS + b"f" * FITS + b"\r\nget f\r\n",
        ),
    ),
    Script(
        "command_and_block_split_across_writes",
        pieces(
            b"se",
            b"t k 0 0 11\r",
            b"\nhello",
            b"\r\nworld\r",
            b"\nge",
            b"t k\r\nge",
            b"ts k k\r\n",
        ),
    ),
    Script(
        "get_line_over_2048_bytes_split_across_writes",
        [
            (b"set k10 0 0 2\r\nok\r\n", True),
            (b"get " + b" ".join(b"k%d" % i for i in range(600))[:3000], False),
            (b" ".join(b"k%d" % i for i in range(600))[3000:] + b"\r\n", True),
        ],
    ),
    Script(
        "binary_values",
        synced(
            b"set a 0 0 9\r\nEND\r\nx\r\n\r\n\r\nset b 0 0 4\r\n\x00\xff\r\x00\r\n",
            b"set c 0 0 0\r\n\r\nget a b c\r\n",
            b"set t\tab 0 0 1\r\nx\r\nget t\tab\r\n",
        ),
    ),
    Script(
        "flags_and_exptime",
        synced(
            b"set a 00012 0 +2\r\nhi\r\nset b 4294967295 100 1\r\nb\r\nget a b\r\n",
            b"set c 0 -1 1\r\nc\r\nset d 0 2592001 1\r\nd\r\nget c d\r\n",
            b"add c 1 0 1\r\nC\r\nget c\r\n",
        ),
    ),
    Script(
        "pipelined_in_one_write",
        synced(
            b"".join(b"set k%d %d 0 %d\r\n%s\r\n" % (i, i, i, b"x" * i) for i in range(30))
            + b"get "
            + b" ".join(b"k%d" % i for i in range(0, 30, 3))
            + b"\r\n"
            + b"".join(b"delete k%d\r\n" % i for i in range(0, 30, 2))
            + b"gets k1 k2 k3\r\n",
        ),
    ),
    Script(
        "version_and_quit",
        [(b"set f 0 0 1\r\nx\r\nversion\r\nversion x y\r\nquit\r\nget f\r\n", False)],
        closes=True,
    ),
    Script(
        "long_line_that_is_not_a_get_closes_the_connection",
        [(b"set a 0 0 1\r\nx\r\n", True), (b"x" * (2 * MAX_LINE), False)],
        closes=True,
    ),
]

# The fields that are each server's own: the cas number ending a gets line, and
# the release after VERSION. Nothing else is touched.
_CAS = re.compile(rb"^(VALUE [^ \r\n]+ [0-9]+ [0-9]+) [0-9]+\r$", re.MULTILINE)
_VERSION = re.compile(rb"^VERSION [^\r\n]*\r$", re.MULTILINE)


def normalise(reply: bytes) -> bytes:
    return _VERSION.sub(b"VERSION <release>\r", _CAS.sub(rb"\1 <cas>\r", reply))


async def read_until(stream: SocketStream, out: bytearray, versions: int) -> None:
    """Read until ``out`` holds ``versions`` VERSION replies (the sentinels)."""
    for _ in range(MAX_READS):
        if len(_VERSION.findall(out)) >= versions:
            return
        try:
            out += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            raise AssertionError(f"the server closed after {bytes(out)!r}") from None
    raise AssertionError(f"no end of reply in {MAX_READS} reads")


async def receive_until(stream: SocketStream, ending: bytes) -> bytes:
    """Read until what has arrived ends with ``ending``; return it all."""
    out = b""
    for _ in range(MAX_READS):
        out += await stream.receive()
        if out.endswith(ending):
            return out
    raise AssertionError(f"no {ending!r} at the end of {out!r} in {MAX_READS} reads")


async def read_until_closed(stream: SocketStream, out: bytearray) -> None:
    for _ in range(MAX_READS):
        try:
            out += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            out += b"<closed>"
            return
    raise AssertionError(f"the server did not close the connection in {MAX_READS} reads")


async def run_script(port: int, script: Script) -> bytes:
    """Play ``script`` to the server on ``port``; return everything it replied."""
    out = bytearray()
    syncs = 0
    with anyio.fail_after(TIMEOUT):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            for data, sync in script.steps:
                if sync:
                    await stream.send(data + SENTINEL)
                    syncs += 1
                    await read_until(stream, out, syncs)
                else:
                    await stream.send(data)
                    await anyio.sleep(0.05)  # likely a read of its own (not relied on)
            if script.closes:
                await read_until_closed(stream, out)
    return bytes(out)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):  # 10 s at most
        assert proc.poll() is None, f"memcached exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"memcached did not listen on port {port}")


@pytest.fixture
def memcached_port() -> Iterator[int]:
    """A real memcached on a free loopback port, TCP only, stopped by its pid."""
    binary = require_tool("memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without it
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
async def test_replies_are_byte_identical_to_memcached(memcached_port: int, script: Script) -> None:
    expected = await run_script(memcached_port, script)
    async with example_server() as server:
        port = server.port
        got = await run_script(port, script)
    assert normalise(got) == normalise(expected)


# -- the example alone: replies pinned from memcached 1.6, limits, the command line ----


async def test_malformed_commands_get_memcacheds_replies() -> None:
    """The replies memcached 1.6.18 gave to these lines, pinned (no memcached needed)."""
    script = Script(
        "pinned",
        synced(
            b"\r\nbogus\r\nget\r\nset a 0 0\r\nset a 0 0 -1\r\nset a abc 0 1\r\nx\r\n",
            b"delete a 1\r\ndelete\r\nget " + LONG_KEY + b"\r\n",
        ),
    )
    async with example_server() as server:
        reply = await run_script(server.port, script)
    assert normalise(reply) == (
        b"ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"
        b"CLIENT_ERROR bad command line format\r\n"
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
        b"VERSION <release>\r\n"
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
        b"ERROR\r\nCLIENT_ERROR bad command line format\r\n"
        b"VERSION <release>\r\n"
    )


async def test_bad_data_chunk_is_refused_and_what_follows_read_as_commands() -> None:
    """A block whose last two bytes are not \\r\\n: memcached's error, nothing stored."""
    script = Script("chunk", synced(b"set a 0 0 3\r\nabcd\r\nget a\r\n"))
    async with example_server() as server:
        reply = await run_script(server.port, script)
    # abcd\r is the 5-byte block; the \n left over is an empty command line.
    assert reply == b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\nVERSION 1.6.18\r\n"


async def test_oversize_block_is_swallowed_without_being_held() -> None:
    size = 4 * MAX_VALUE
    script = Script(
        "swallow",
        synced(b"set big 0 0 %d\r\n" % size + b"\r\n" * (size // 2 + 1) + b"get big\r\n"),
    )
    async with example_server() as server:
        reply = await run_script(server.port, script)
        peak = server.stats.peak_buffered
    assert reply == b"SERVER_ERROR object too large for cache\r\nEND\r\nVERSION 1.6.18\r\n"
    # Pieces of SWALLOW_PIECE bytes, plus at most one read ahead: never the 4 MiB block.
    assert peak <= SWALLOW_PIECE + 65536


async def test_long_line_closes_only_that_connection_with_a_logged_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="framing.server")
    async with example_server() as server:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp("127.0.0.1", server.port) as other:
                await other.send(b"set kept 0 0 1\r\nx\r\n")
                assert await receive_until(other, b"\r\n") == b"STORED\r\n"
                closed = await run_script(
                    server.port, Script("long", [(b"x" * (MAX_LINE + 1), False)], closes=True)
                )
                assert closed == b"<closed>"
                await other.send(b"get kept\r\n")
                reply = await receive_until(other, b"END\r\n")
                assert reply == b"VALUE kept 0 1\r\nx\r\nEND\r\n"
    assert "not a get" in caplog.text
    assert "MalformedFrame" in caplog.text


async def test_client_leaving_inside_a_block_is_logged_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="framing.server")
    async with example_server() as server:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(b"set a 0 0 10\r\nabc")
            reply = await run_script(server.port, Script("after", synced(b"get a\r\n")))
            for _ in range(100):  # the first connection's task may still be ending
                if "IncompleteFrame" in caplog.text:
                    break
                await anyio.sleep(0.05)
    assert reply == b"END\r\nVERSION 1.6.18\r\n"
    assert "IncompleteFrame" in caplog.text


async def test_command_line_serves_on_the_port_it_prints(anyio_backend: str) -> None:
    command = [sys.executable, "-m", "examples.memcached", "--port", "0", "--backend"]
    with anyio.fail_after(TIMEOUT):
        async with await anyio.open_process(
            [*command, anyio_backend], cwd=REPO, stderr=subprocess.DEVNULL
        ) as proc:
            try:
                assert proc.stdout is not None
                printed = b""
                for _ in range(100):
                    if b"\n" in printed:
                        break
                    printed += await proc.stdout.receive()
                match = re.fullmatch(rb"listening on 127\.0\.0\.1:([0-9]+)\n", printed)
                assert match is not None, printed
                script = Script("cli", synced(b"set k 0 0 2\r\nhi\r\nget k\r\n"))
                reply = await run_script(int(match[1]), script)
                assert reply == b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\nVERSION 1.6.18\r\n"
            finally:
                proc.terminate()
                await proc.wait()


async def test_unfinished_data_block_times_out_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="framing.server")
    async with anyio.create_task_group() as tg:
        server = await tg.start(partial(serve_memcached, port=0, message_timeout=0.2))
        script = Script("stalled", [(b"set a 0 0 10\r\nabc", False)], closes=True)
        assert await run_script(server.port, script) == b"<closed>"
        tg.cancel_scope.cancel()
    assert "MessageTimeout" in caplog.text


async def test_get_naming_a_big_value_many_times_holds_one_value_at_a_time() -> None:
    """``get big big ...`` is answered hit by hit, never built whole (20 MiB here)."""
    value = b"v" * MAX_VALUE
    repeats = 20
    expected = repeats * len(b"VALUE big 0 %d\r\n%s\r\n" % (MAX_VALUE, value)) + len(b"END\r\n")
    async with example_server() as server:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(b"set big 0 0 %d\r\n%s\r\n" % (MAX_VALUE, value))
                assert await receive_until(stream, b"\r\n") == b"STORED\r\n"
                tracemalloc.start()
                try:
                    await stream.send(b"get" + b" big" * repeats + b"\r\n")
                    received, tail = 0, b""
                    for _ in range(MAX_READS):  # count the reply, holding none of it
                        chunk = await stream.receive()
                        received += len(chunk)
                        tail = (tail + chunk)[-5:]
                        if received >= expected:
                            break
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
    assert (received, tail) == (expected, b"END\r\n")
    assert peak < 8 * MAX_VALUE  # a value and its copies in flight; not the 20 MiB reply


# -- the store ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("exptime", "alive_at", "gone_at"),
    [
        (0, [0, 10**9], None),  # never expires
        (10, [0, 9.9], 10),  # seconds from now
        (-1, [], 0),  # already passed
        (2_592_000, [0, 2_591_999.9], 2_592_000),  # 30 days: still seconds from now
        (2_592_001, [], 0),  # more: a Unix time, long past
    ],
)
def test_store_exptime_as_memcached_reads_it(
    exptime: int, alive_at: list[float], gone_at: float | None
) -> None:
    clock = Clock()
    start = clock.now
    store = Store(clock=clock)
    store.set(b"k", b"v", 0, exptime)
    for offset in alive_at:
        clock.now = start + offset
        assert store.get(b"k") is not None, offset
    if gone_at is not None:
        clock.now = start + gone_at
        assert store.get(b"k") is None


def test_store_absolute_exptime_in_the_future_expires_then() -> None:
    clock = Clock()
    store = Store(clock=clock)
    store.set(b"k", b"v", 0, int(clock.now) + 100)
    clock.now += 99
    assert store.get(b"k") is not None
    clock.now += 1
    assert store.get(b"k") is None


def test_store_evicts_the_least_recently_used_past_its_limit() -> None:
    store = Store(max_bytes=30)
    store.set(b"a", b"x" * 9, 0, 0)  # 10 bytes each, key included
    store.set(b"b", b"x" * 9, 0, 0)
    store.set(b"c", b"x" * 9, 0, 0)
    assert store.get(b"a") is not None  # a is now the most recently used
    store.set(b"d", b"x" * 9, 0, 0)
    assert store.get(b"b") is None
    assert [k for k in (b"a", b"c", b"d") if store.get(k) is not None] == [b"a", b"c", b"d"]
    assert store.held == 30


def test_store_cas_changes_on_every_store_and_delete_frees_the_bytes() -> None:
    store = Store()
    store.set(b"k", b"one", 0, 0)
    first = store.get(b"k")
    store.set(b"k", b"two", 5, 0)
    second = store.get(b"k")
    assert first is not None
    assert second is not None
    assert second.cas > first.cas
    assert (second.value, second.flags) == (b"two", 5)
    assert store.held == len(b"k") + len(b"two")
    assert store.delete(b"k") is True
    assert store.delete(b"k") is False
    assert store.held == 0


# -- however the stream is split ------------------------------------------------------


class ChunkedStream(ByteStream):
    """A byte stream that delivers the given chunks, then its end, and keeps what is sent."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = deque(chunk for chunk in chunks if chunk)
        self.sent = bytearray()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        if not self.chunks:
            raise anyio.EndOfStream
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
        return chunk[:max_bytes]

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent += item

    async def send_eof(self) -> None:
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()


def script_bytes(script: Script) -> bytes:
    return b"".join(data + (SENTINEL if sync else b"") for data, sync in script.steps)


def serve_chunks(chunks: Sequence[bytes], backend: str) -> tuple[bytes, str | None]:
    """Run one connection's handler over ``chunks``: what it sent, and the error it raised."""

    async def run() -> tuple[bytes, str | None]:
        transport = ChunkedStream(chunks)
        stream = FramedStream(transport, command_lines())
        error = None
        with anyio.fail_after(TIMEOUT):
            try:
                await handle_connection(stream, Store(clock=lambda: 1_700_000_000.0))
            except FramingError as exc:
                error = type(exc).__name__
        return bytes(transport.sent), error

    return anyio.run(run, backend=backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_replies_do_not_depend_on_how_the_stream_is_split(
    backend: str, data: st.DataObject
) -> None:
    script = data.draw(st.sampled_from(SCRIPTS), label="script")
    whole = script_bytes(script)
    chunks = data.draw(chunkings(whole), label="chunks")
    assert serve_chunks(chunks, backend) == serve_chunks([whole], backend)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    "script",
    [s for s in SCRIPTS if len(script_bytes(s)) < 10_000],
    ids=[s.name for s in SCRIPTS if len(script_bytes(s)) < 10_000],
)
def test_replies_are_the_same_byte_at_a_time(backend: str, script: Script) -> None:
    whole = script_bytes(script)
    one_by_one = [whole[i : i + 1] for i in range(len(whole))]
    assert serve_chunks(one_by_one, backend) == serve_chunks([whole], backend)
