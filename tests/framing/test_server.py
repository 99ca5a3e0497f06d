from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import socket
import stat
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, Listener, SocketAttribute, SocketListener, SocketStream
from anyio.streams.tls import TLSAttribute

from framing import transport
from framing.delimited import Lines
from framing.errors import EncodeError, FrameTooLarge, IdleTimeout, MalformedFrame
from framing.length import LengthPrefixed
from framing.raw import Raw
from framing.server import ServerInfo, serve, serve_unix
from framing.stream import FramedStream, connect, connect_unix
from framing.transport import AsyncioSocketStream
from tests.conftest import require_tool
from tests.framing.transports import memory_pair, tls_contexts, until

pytestmark = pytest.mark.anyio

LOGGER = "framing.server"


def lp(**options: Any) -> LengthPrefixed:
    return LengthPrefixed(2, **options)


async def echo(stream: FramedStream[bytes]) -> None:
    async for message in stream:
        await stream.send(message)


@asynccontextmanager
async def running(handler: Any, framer: Any, **options: Any) -> AsyncIterator[ServerInfo]:
    """Serve in a task group; cancel (graceful shutdown) on the way out."""
    async with anyio.create_task_group() as tg:
        info = await tg.start(
            lambda task_status: serve(handler, framer, task_status=task_status, **options)
        )
        yield info
        tg.cancel_scope.cancel()


async def roundtrip(client: FramedStream[bytes], message: bytes) -> None:
    await client.send(message)
    assert await client.receive() == message


async def is_closed_by_server(client: FramedStream[bytes]) -> bool:
    try:
        await client.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return True
    return False


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_serve_on_port_zero_reports_where_it_listens() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            assert info.addresses == [("127.0.0.1", info.port)]
            assert info.port > 0
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await roundtrip(client, b"hello")
            assert info.stats.messages_in == 1


async def test_serve_ipv4_and_ipv6_listeners_share_one_port() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp(), host=["127.0.0.1", "::1"]) as info:
            assert [host for host, _ in info.addresses] == ["127.0.0.1", "::1"]
            assert {port for _, port in info.addresses} == {info.port}
            for host in ("127.0.0.1", "::1"):
                async with await connect(host, info.port, lp()) as client:
                    await roundtrip(client, host.encode())
            assert info.stats.connections_accepted == 2


async def test_each_connection_gets_its_own_framer() -> None:
    template = lp()
    with anyio.fail_after(10):
        async with (
            running(echo, template) as info,
            await connect("127.0.0.1", info.port, lp()) as one,
            await connect("127.0.0.1", info.port, lp()) as two,
        ):
            # Half a frame on each: separate framers, or the halves would mix.
            await one.transport_stream.send(b"\x00\x05on")
            await two.transport_stream.send(b"\x00\x05tw")
            await one.transport_stream.send(b"e!!")
            await two.transport_stream.send(b"o!!")
            assert await one.receive() == b"one!!"
            assert await two.receive() == b"two!!"
    assert template.buffered == 0


async def test_oversize_closes_only_the_offending_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp(max_size=100)) as info:
            async with (
                await connect("127.0.0.1", info.port, lp()) as good,
                await connect("127.0.0.1", info.port, lp()) as bad,
            ):
                await roundtrip(good, b"before")
                await bad.transport_stream.send(b"\x00\xffway too long")
                assert await is_closed_by_server(bad)
                await roundtrip(good, b"after")
                local = bad.extra(anyio.abc.SocketAttribute.local_port)
            assert info.stats.errors == {"FrameTooLarge": 1}
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len([line for line in lines if "FrameTooLarge" in line]) == 1
    (line,) = [line for line in lines if "FrameTooLarge" in line]
    assert f"127.0.0.1:{local}" in line
    assert "255" in line  # the size the peer announced


async def test_idle_timeout_closes_a_silent_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp(), idle_timeout=0.2) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await roundtrip(client, b"then silence")
                assert await is_closed_by_server(client)
            assert info.stats.errors == {"IdleTimeout": 1}
    assert any("IdleTimeout" in r.getMessage() for r in caplog.records if r.name == LOGGER)


async def test_message_timeout_cuts_a_trickling_peer() -> None:
    encoded = lp().encode(b"y" * 100)
    with anyio.fail_after(10):
        async with running(echo, lp(), idle_timeout=5, message_timeout=0.3) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                closed = False
                for i in range(len(encoded)):  # a byte every 20 ms: 2 s for the frame
                    try:
                        await client.transport_stream.send(encoded[i : i + 1])
                    except (anyio.BrokenResourceError, OSError):
                        closed = True
                        break
                    with anyio.move_on_after(0.02):
                        if await is_closed_by_server(client):
                            closed = True
                            break
                assert closed
            assert info.stats.errors == {"MessageTimeout": 1}


async def busy_echo(stream: FramedStream[bytes]) -> None:
    """Echo; b"busy" keeps the handler busy (not receiving) for a second first."""
    async for message in stream:
        if message == b"busy":
            await anyio.sleep(1)
        await stream.send(message)


async def test_at_max_connections_a_newcomer_sheds_the_longest_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11: at the limit, idle connections held the table and newcomers were refused."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp(), max_connections=2) as info:
            one = await connect("127.0.0.1", info.port, lp())
            two = await connect("127.0.0.1", info.port, lp())
            await roundtrip(one, b"1")
            await anyio.sleep(0.05)
            await roundtrip(two, b"2")  # one has now waited longest for its next byte
            three = await connect("127.0.0.1", info.port, lp())
            await roundtrip(three, b"3")
            assert await is_closed_by_server(one)
            await roundtrip(two, b"2 again")
            peers = [f"127.0.0.1:{c.extra(SocketAttribute.local_port)}" for c in (one, three)]
            stats = info.stats
            assert (stats.connections_shed, stats.connections_refused) == (1, 0)
            assert stats.connections_open == 2
            for client in (one, two, three):
                await client.aclose()
    shed = [r.getMessage() for r in caplog.records if "shed" in r.getMessage()]
    assert len(shed) == 1
    waited = re.fullmatch(
        rf"shed {peers[0]} \(waited (\d+\.\d) s for its next byte\) to serve {peers[1]}: "
        r"2 connections open, the limit",
        shed[0],
    )
    assert waited is not None, shed[0]
    assert 0 <= float(waited[1]) < 5


async def test_at_max_connections_busy_connections_are_not_shed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(busy_echo, lp(), max_connections=2) as info:
            one = await connect("127.0.0.1", info.port, lp())
            two = await connect("127.0.0.1", info.port, lp())
            await one.send(b"busy")
            await two.send(b"busy")
            await until(lambda: info.stats.messages_in == 2)
            refused = []
            for _ in range(2):
                three = await connect("127.0.0.1", info.port, lp())
                refused.append(f"127.0.0.1:{three.extra(SocketAttribute.local_port)}")
                assert await is_closed_by_server(three)
                await three.aclose()
            assert (info.stats.connections_refused, info.stats.connections_shed) == (2, 0)
            # Once they wait for the peer again, they may be shed for a newcomer.
            assert [await one.receive(), await two.receive()] == [b"busy", b"busy"]
            async with await connect("127.0.0.1", info.port, lp()) as four:
                await roundtrip(four, b"4")
            assert info.stats.connections_shed == 1
            await one.aclose()
            await two.aclose()
    lines = [
        r.getMessage() for r in caplog.records if r.name == LOGGER and "refused" in r.getMessage()
    ]
    assert lines == [
        f"refused {peer}: 2 connections open, the limit, every one busy" for peer in refused
    ]


async def test_a_connection_stalled_inside_a_message_is_shed_too() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp(), max_connections=1) as info:
            stalled = await connect("127.0.0.1", info.port, lp())
            await stalled.send_bytes(b"\x00")  # one byte of a header, then nothing
            await until(lambda: info.stats.bytes_in == 1)
            async with await connect("127.0.0.1", info.port, lp()) as newcomer:
                await roundtrip(newcomer, b"served")
            assert await is_closed_by_server(stalled)
            await stalled.aclose()
            assert info.stats.connections_shed == 1


async def test_max_connections_per_peer_address(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(
            busy_echo, lp(), host=["127.0.0.1", "::1"], max_connections_per_peer=1
        ) as info:
            async with await connect("127.0.0.1", info.port, lp()) as first:
                await roundtrip(first, b"v4")
                await first.send(b"busy")
                await until(lambda: info.stats.messages_in == 2)
                async with await connect("127.0.0.1", info.port, lp()) as second:
                    peer = f"127.0.0.1:{second.extra(SocketAttribute.local_port)}"
                    assert await is_closed_by_server(second)
                # Another address is another peer.
                async with await connect("::1", info.port, lp()) as other:
                    await roundtrip(other, b"v6")
            assert info.stats.connections_refused == 1
    lines = [
        r.getMessage() for r in caplog.records if r.name == LOGGER and "refused" in r.getMessage()
    ]
    assert lines == [
        f"refused {peer}: 1 connections open from 127.0.0.1, the limit, every one busy"
    ]


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_peer"])
async def test_the_limit_holds_after_connections_were_shed(
    limit: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each shed connection leaves the table, and the newcomer takes its place, address and
    all: the next newcomer finds the table full again, and logs name each by its peer."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp(max_size=3), **{limit: 1}) as info:
            clients = []
            for i in range(3):
                clients.append(await connect("127.0.0.1", info.port, lp()))
                await roundtrip(clients[-1], b"%d" % i)
                await until(lambda: info.stats.connections_open == 1)
            assert info.stats.connections_shed == 2
            for client in clients[:2]:
                assert await is_closed_by_server(client)
            last = clients[-1]
            peer = f"127.0.0.1:{last.extra(SocketAttribute.local_port)}"
            await last.send(b"long")
            assert await is_closed_by_server(last)
            await until(lambda: info.stats.connections_open == 0)
            for client in clients:
                await client.aclose()
    closed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closed")]
    assert closed == [f"closed {peer}: FrameTooLarge: {FrameTooLarge(repr(lp(max_size=3)), 4, 3)}"]


async def test_after_shedding_a_departure_frees_a_slot() -> None:
    """Once the shed connection has gone, the table counts what is open: a connection that
    leaves then frees a slot, and the next newcomer is served without shedding."""
    with anyio.fail_after(10):
        async with running(echo, lp(), max_connections=2) as info:
            one = await connect("127.0.0.1", info.port, lp())
            two = await connect("127.0.0.1", info.port, lp())
            for client in (one, two):
                await roundtrip(client, b"idle next")
            three = await connect("127.0.0.1", info.port, lp())  # sheds one
            await roundtrip(three, b"three")
            assert await is_closed_by_server(one)
            await until(lambda: info.stats.connections_open == 2)
            await two.aclose()
            await until(lambda: info.stats.connections_open == 1)
            async with await connect("127.0.0.1", info.port, lp()) as four:
                await roundtrip(four, b"four")
                await roundtrip(three, b"three again")
            assert info.stats.connections_shed == 1
            await one.aclose()
            await three.aclose()


async def test_shedding_is_true_while_the_table_is_full() -> None:
    """ServerInfo.shedding: what DNS states as an edns-tcp-keepalive of 0 (RFC 7828)."""
    with anyio.fail_after(10):
        async with running(echo, lp(), max_connections=2) as info:
            assert not info.shedding
            one = await connect("127.0.0.1", info.port, lp())
            await roundtrip(one, b"one")
            assert not info.shedding
            two = await connect("127.0.0.1", info.port, lp())
            await roundtrip(two, b"two")
            assert info.shedding  # full: the next newcomer sheds a connection
            await two.aclose()
            await until(lambda: info.stats.connections_open == 1)
            assert not info.shedding
            await one.aclose()


async def test_serve_gives_each_connection_its_receive_size() -> None:
    sizes: list[int] = []

    async def record(stream: FramedStream[bytes]) -> None:
        sizes.append(stream.receive_size)
        await echo(stream)

    with anyio.fail_after(10):
        async with (
            running(record, lp(), receive_size=1000) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            await roundtrip(client, b"sized")
    assert sizes == [1000]


async def test_connections_still_being_shed_do_not_count_against_the_limit() -> None:
    """A shed TLS connection may take up to a second to say goodbye (its peer does not
    answer close_notify): meanwhile it holds no slot. A newcomer after another connection
    left is served without shedding anyone more."""
    server_ctx, client_ctx = tls_contexts()

    async def tls_client(port: int) -> FramedStream[bytes]:
        return await connect(
            "127.0.0.1", port, lp(), ssl_context=client_ctx, tls_hostname="localhost"
        )

    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx, max_connections=3) as info:
            old = [await tls_client(info.port) for _ in range(3)]
            for client in old:
                await roundtrip(client, b"old")
            new = []
            for _ in range(2):  # each sheds one of the old, which then says goodbye slowly
                new.append(await tls_client(info.port))
                await roundtrip(new[-1], b"new")
            assert info.stats.connections_shed == 2
            await old[2].aclose()  # leaves at once (it sends close_notify itself)
            await until(lambda: info.stats.connections_open < 5)
            new.append(await tls_client(info.port))
            await roundtrip(new[-1], b"under the limit")
            assert (info.stats.connections_shed, info.stats.connections_refused) == (2, 0)
            for client in new:
                await roundtrip(client, b"all served")
            for client in old + new:
                await client.aclose()


async def test_per_peer_limit_sheds_only_that_peers_connections() -> None:
    with anyio.fail_after(10):
        async with running(
            echo, lp(), host=["127.0.0.1", "::1"], max_connections_per_peer=1
        ) as info:
            v6 = await connect("::1", info.port, lp())
            await roundtrip(v6, b"v6 first, waits longest")
            first = await connect("127.0.0.1", info.port, lp())
            await roundtrip(first, b"v4")
            async with await connect("127.0.0.1", info.port, lp()) as second:
                await roundtrip(second, b"v4 again")
            assert await is_closed_by_server(first)
            await roundtrip(v6, b"v6 untouched")
            await first.aclose()
            await v6.aclose()
            assert info.stats.connections_shed == 1


async def test_per_peer_slots_are_freed_when_connections_close() -> None:
    """Reconnecting from the same address after its connections closed is served.

    (Issue 11: deleting the code that frees a per-peer slot failed no test.)
    """
    with anyio.fail_after(10):
        async with running(busy_echo, lp(), max_connections_per_peer=2) as info:
            for round_ in range(3):
                clients = [await connect("127.0.0.1", info.port, lp()) for _ in range(2)]
                for client in clients:
                    await roundtrip(client, b"round %d" % round_)
                for client in clients:
                    await client.aclose()
                await until(lambda: info.stats.connections_open == 0)
            assert info.stats.connections_refused == 0
            assert info.stats.connections_shed == 0
            assert info.stats.connections_accepted == 6


async def test_handler_exception_is_logged_and_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def fragile(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            if message == b"boom":
                raise RuntimeError("handler bug")
            await stream.send(message)

    with anyio.fail_after(10):
        async with running(fragile, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as other:
                await roundtrip(other, b"a")
                async with await connect("127.0.0.1", info.port, lp()) as client:
                    await client.send(b"boom")
                    assert await is_closed_by_server(client)
                await roundtrip(other, b"still here")
            async with await connect("127.0.0.1", info.port, lp()) as later:
                await roundtrip(later, b"new")
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


async def test_handler_encode_error_is_the_handlers_bug_not_the_peers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11: a handler sending a line with a newline in it was logged at INFO as the
    peer's MalformedFrame, with no traceback, and counted as a peer error."""
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def buggy(stream: FramedStream[bytes]) -> None:
        async for m in stream:
            await stream.send(m + b"\n" + m)

    with anyio.fail_after(10):
        async with running(buggy, Lines()) as info:
            async with await connect("127.0.0.1", info.port, Lines()) as client:
                await client.send(b"hello")
                assert await is_closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.handler_errors == 1
            assert info.stats.errors == {}
    records = [r for r in caplog.records if r.name == LOGGER]
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], EncodeError)
    assert not [r for r in records if r.levelno == logging.INFO and "closed" in r.getMessage()]


async def test_peer_fault_is_one_info_line_and_not_a_handler_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp(max_size=10)) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await client.send(b"x" * 11)
                assert await is_closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.errors == {"FrameTooLarge": 1}
            assert info.stats.handler_errors == 0
    lines = [r for r in caplog.records if r.name == LOGGER and "closed" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert lines[0].exc_info is None
    assert "FrameTooLarge" in lines[0].getMessage()


async def test_connect_and_serve_pick_the_transport_for_the_backend(
    anyio_backend_name: str,
) -> None:
    """asyncio (and uvloop): framing's own transport; trio: anyio's socket streams."""
    kinds: list[type] = []

    async def record(stream: FramedStream[bytes]) -> None:
        kinds.append(type(stream.transport_stream))
        await echo(stream)

    with anyio.fail_after(10):
        async with (
            running(record, lp()) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            await roundtrip(client, b"hi")
            kinds.append(type(client.transport_stream))
    if anyio_backend_name == "asyncio":
        assert kinds == [AsyncioSocketStream, AsyncioSocketStream]
    else:
        assert all(issubclass(kind, SocketStream) for kind in kinds)
        assert len(kinds) == 2


async def test_cancellation_shuts_down_cleanly_with_nothing_left_open() -> None:
    finished: list[str] = []

    async def handler(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            if message == b"slow":
                await anyio.sleep(0.2)  # finishes within the grace period
                await stream.send(b"slow done")
                finished.append("slow")
            elif message == b"stuck":
                try:
                    await anyio.sleep(3600)  # cancelled after the grace period
                finally:
                    finished.append("stuck cancelled")
            else:
                await stream.send(message)
        finished.append("drained")

    with anyio.fail_after(10):
        tasks_before = len(anyio.get_running_tasks())
        fds_before = open_fds()
        async with anyio.create_task_group() as tg:
            info: ServerInfo = await tg.start(
                lambda task_status: serve(handler, lp(), grace_period=1.0, task_status=task_status)
            )
            idle = await connect("127.0.0.1", info.port, lp())
            slow = await connect("127.0.0.1", info.port, lp())
            stuck = await connect("127.0.0.1", info.port, lp())
            await roundtrip(idle, b"hi")
            await slow.send(b"slow")
            await stuck.send(b"stuck")
            await until(lambda: info.stats.messages_in >= 3)
            tg.cancel_scope.cancel()
        # serve has returned: every connection is closed, the listener too.
        assert await slow.receive() == b"slow done"
        for client in (idle, slow, stuck):
            assert await is_closed_by_server(client)
            await client.aclose()
        assert sorted(finished) == ["drained", "drained", "slow", "stuck cancelled"]
        assert info.stats.connections_open == 0
        with pytest.raises(OSError, match=r"(?i)connect"):
            await connect("127.0.0.1", info.port, lp())
        assert len(anyio.get_running_tasks()) == tasks_before
        for _ in range(100):  # asyncio closes aborted sockets on its next loop turn
            if open_fds() <= fds_before:
                break
            await anyio.sleep(0.01)
        assert open_fds() <= fds_before


async def test_server_send_waits_for_a_client_that_does_not_read() -> None:
    chunk = b"z" * 60000
    cap = 64 * 1024 * 1024

    async def firehose(stream: FramedStream[bytes]) -> None:
        while stream.stats.bytes_out < cap:
            await stream.send(chunk)

    with anyio.fail_after(30):
        async with (
            running(firehose, lp()) as info,
            await connect("127.0.0.1", info.port, lp()),
        ):
            last, stalled = -1, 0
            for _ in range(400):  # bounded polling until the server stops progressing
                await anyio.sleep(0.02)
                out = info.stats.bytes_out
                stalled = stalled + 1 if out == last else 0
                if stalled >= 10 or out >= cap:
                    break
                last = out
            assert info.stats.bytes_out < 32 * 1024 * 1024


async def test_flooding_a_handler_that_does_not_read_is_bounded() -> None:
    """The accepted connection must not read ahead on its own (anyio 4.16's accepted ones did)."""
    held: dict[str, FramedStream[bytes]] = {}

    async def sleeper(stream: FramedStream[bytes]) -> None:
        held["stream"] = stream
        await anyio.sleep(3600)

    chunk = b"x" * 65536
    cap = 64 * 1024 * 1024
    with anyio.fail_after(30):
        async with (
            running(sleeper, Raw(), grace_period=0.1) as info,
            await connect("127.0.0.1", info.port, Raw()) as client,
        ):
            sent = 0
            async with anyio.create_task_group() as tg:

                async def flood() -> None:
                    nonlocal sent
                    while sent < cap:
                        await client.send(chunk)
                        sent += len(chunk)

                tg.start_soon(flood)
                last, stalled = -1, 0
                for _ in range(400):
                    await anyio.sleep(0.02)
                    stalled = stalled + 1 if sent == last else 0
                    if stalled >= 10 or sent >= cap:
                        break
                    last = sent
                tg.cancel_scope.cancel()
            accepted = held["stream"].transport_stream
            queued = accepted.queued if isinstance(accepted, AsyncioSocketStream) else 0
            assert queued <= 1024 * 1024
            assert sent < 32 * 1024 * 1024


async def test_buffered_total_closes_the_connection_that_would_exceed_it() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp(), max_buffered_total=1000) as info:
            async with (
                await connect("127.0.0.1", info.port, lp()) as first,
                await connect("127.0.0.1", info.port, lp()) as second,
            ):
                await roundtrip(first, b"ready")
                await roundtrip(second, b"ready")
                await first.transport_stream.send(b"\x03\x00" + b"a" * 600)
                await until(lambda: info.stats.peak_buffered >= 602)
                await second.transport_stream.send(b"\x03\x00" + b"b" * 600)
                assert await is_closed_by_server(second)
                await first.transport_stream.send(b"a" * 168)
                assert await first.receive() == b"a" * 768
            assert info.stats.errors == {"BufferBudgetExceeded": 1}


async def test_tls_serve_and_connect() -> None:
    server_ctx, client_ctx = tls_contexts()
    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx) as info:
            client = await connect(
                "127.0.0.1", info.port, lp(), ssl_context=client_ctx, tls_hostname="localhost"
            )
            async with client:
                await roundtrip(client, b"secret")
                cipher = client.extra(TLSAttribute.cipher)
                assert cipher is not None


async def test_tls_handshake_failure_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx) as info:
            peers = []
            for _ in range(2):
                async with await connect("127.0.0.1", info.port, lp()) as plain:
                    peers.append(f"127.0.0.1:{plain.extra(SocketAttribute.local_port)}")
                    await plain.transport_stream.send(b"GET / HTTP/1.0\r\n\r\n")
                    assert await is_closed_by_server(plain)
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.errors == {"TLSHandshakeFailed": 2}
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 2
    for line, peer in zip(lines, peers, strict=True):
        # The reason is the handshake's own error, by its repr.
        assert re.fullmatch(rf"closed {peer}: TLS handshake failed: \w+\(.+\)", line), line


@pytest.mark.parametrize("compatible", [True, False])
async def test_tls_standard_compatible_is_passed_to_each_connection(compatible: bool) -> None:
    server_ctx, client_ctx = tls_contexts()
    seen: list[bool] = []

    async def record(stream: FramedStream[bytes]) -> None:
        seen.append(stream.extra(TLSAttribute.standard_compatible))
        await echo(stream)

    with anyio.fail_after(10):
        async with running(
            record, lp(), ssl_context=server_ctx, tls_standard_compatible=compatible
        ) as info:
            client = await connect(
                "127.0.0.1",
                info.port,
                lp(),
                ssl_context=client_ctx,
                tls_hostname="localhost",
                tls_standard_compatible=compatible,
            )
            async with client:
                await roundtrip(client, b"secret")
    assert seen == [compatible]


async def test_a_connection_that_fails_before_its_stream_exists_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On asyncio the accepted socket is registered with the loop first; if that fails (the
    peer already gone), the socket is closed and the server carries on."""
    real = transport.wrap_accepted_socket
    failures = [OSError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))]

    async def wrap_accepted_socket(sock: socket.socket) -> Any:
        if failures:
            raise failures.pop()
        return await real(sock)

    monkeypatch.setattr(transport, "wrap_accepted_socket", wrap_accepted_socket)
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as first:
                if transport.asyncio_loop() is not None:
                    assert await is_closed_by_server(first)
                    assert not failures
                else:
                    await roundtrip(first, b"anyio's own streams")
            await until(lambda: info.stats.connections_open == 0)
            async with await connect("127.0.0.1", info.port, lp()) as second:
                await roundtrip(second, b"served")
            assert info.stats.handler_errors == 0


async def test_serve_unix(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve_unix(
                    echo, lp(), path=path, mode=0o600, task_status=task_status
                )
            )
            assert info.paths == [str(path)]
            assert info.addresses == []
            assert repr(info) == f"ServerInfo({path})"
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            async with await connect_unix(path, lp()) as client:
                await roundtrip(client, b"unix")
            tg.cancel_scope.cancel()


async def test_serve_given_listeners() -> None:
    listener = await anyio.create_tcp_listener(local_host="::1")
    with anyio.fail_after(10):
        async with running(echo, lp(), listeners=[listener]) as info:
            assert info.addresses[0][0] == "::1"
            async with await connect("::1", info.port, lp()) as client:
                await roundtrip(client, b"given")


async def test_stats_aggregate_every_connection() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            for i in range(3):
                async with await connect("127.0.0.1", info.port, lp()) as client:
                    await client.send_many([b"ab"] * (i + 1))
                    for _ in range(i + 1):
                        assert await client.receive() == b"ab"
            await until(lambda: info.stats.connections_open == 0)
            stats = info.stats
            assert stats.connections_accepted == 3
            assert stats.messages_in == stats.messages_out == 6
            assert stats.bytes_in == stats.bytes_out == 6 * 4
            assert stats.peak_buffered >= 0
            assert stats.errors == {}


async def test_accept_errors_do_not_stop_the_server() -> None:
    # A connection reset before it is served: the server carries on.
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            s = socket.create_connection(("127.0.0.1", info.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await roundtrip(client, b"fine")


async def test_client_half_close_still_gets_every_reply() -> None:
    with anyio.fail_after(10):
        async with (
            running(echo, lp()) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            await client.send_many([b"one", b"two", b"three"])
            await client.send_eof()
            assert [m async for m in client] == [b"one", b"two", b"three"]


async def test_server_half_close_client_still_sends() -> None:
    async def greet_then_listen(stream: FramedStream[bytes]) -> None:
        await stream.send(b"hello, and that is all from me")
        await stream.send_eof()
        async for message in stream:
            assert message == b"still talking"
        # The client's EOF ends the loop; the reply channel was closed long ago.

    with anyio.fail_after(10):
        async with (
            running(greet_then_listen, lp()) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            assert [m async for m in client] == [b"hello, and that is all from me"]
            await client.send(b"still talking")
            await client.send_eof()
            await until(lambda: info.stats.messages_in == 1)


async def test_shutdown_drains_idle_tls_connections_at_once() -> None:
    server_ctx, client_ctx = tls_contexts()
    finished: list[str] = []

    async def handler(stream: FramedStream[bytes]) -> None:
        await echo(stream)
        finished.append("drained")

    with anyio.fail_after(10):  # a grace period of 60 s would blow this
        async with anyio.create_task_group() as tg:
            info: ServerInfo = await tg.start(
                lambda task_status: serve(
                    handler,
                    lp(),
                    ssl_context=server_ctx,
                    grace_period=60,
                    task_status=task_status,
                )
            )
            client = await connect(
                "127.0.0.1", info.port, lp(), ssl_context=client_ctx, tls_hostname="localhost"
            )
            await roundtrip(client, b"idle now")
            tg.cancel_scope.cancel()
        await anyio.aclose_forcefully(client)
    assert finished == ["drained"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_server_info_repr_names_every_listener() -> None:
    with anyio.fail_after(10):
        async with running(echo, lp(), host=["127.0.0.1", "::1"]) as info:
            assert repr(info) == f"ServerInfo(127.0.0.1:{info.port}, [::1]:{info.port})"


async def test_serve_on_a_given_port_one_host_or_several() -> None:
    with anyio.fail_after(10):
        port = free_port()
        async with running(echo, lp(), port=port) as info:
            assert info.addresses == [("127.0.0.1", port)]
        port = free_port()
        async with running(echo, lp(), host=["127.0.0.1", "::1"], port=port) as info:
            assert info.addresses == [("127.0.0.1", port), ("::1", port)]


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    with anyio.fail_after(10):
        for host in ("127.0.0.1", ["127.0.0.1", "::1"]):
            async with running(echo, lp(), host=host, reuse_port=True) as first:
                port = first.port
                async with running(echo, lp(), host=host, port=port, reuse_port=True) as second:
                    assert second.port == port


async def test_backlog_is_the_listen_queues_length() -> None:
    ss = require_tool("ss")
    with anyio.fail_after(10):
        for host in ("127.0.0.1", ["127.0.0.1", "::1"]):
            async with running(echo, lp(), host=host, backlog=7) as info:
                result = await anyio.run_process([ss, "-ltnH", f"sport = :{info.port}"])
                lines = result.stdout.decode().splitlines()
                # For a listening socket, ss's Send-Q column is the queue's length.
                assert [line.split()[2] for line in lines] == ["7"] * len(info.addresses)


async def test_several_hosts_on_port_zero_try_again_when_the_port_is_taken_on_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Port 0 gives a free port on the first host; if another host has it taken, all the
    listeners are closed and binding starts again, at most ten times."""
    real = anyio.create_tcp_listener
    calls: list[tuple[str, int]] = []
    taken_rounds = 1

    async def create_tcp_listener(*, local_host: str, local_port: int, **options: Any) -> Any:
        calls.append((local_host, local_port))
        if local_port and calls.count(("::1", local_port)) and len(calls) <= 2 * taken_rounds:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        return await real(local_host=local_host, local_port=local_port, **options)

    monkeypatch.setattr(anyio, "create_tcp_listener", create_tcp_listener)
    with anyio.fail_after(10):
        async with running(echo, lp(), host=["127.0.0.1", "::1"]) as info:
            assert [host for host, _ in calls] == ["127.0.0.1", "::1", "127.0.0.1", "::1"]
            assert [host for host, _ in info.addresses] == ["127.0.0.1", "::1"]
            async with await connect("::1", info.port, lp()) as client:
                await roundtrip(client, b"bound")
        calls.clear()
        taken_rounds = 100
        with pytest.raises(
            OSError, match=r"^could not bind one free port on all of \['127.0.0.1', '::1'\]$"
        ):
            await serve(echo, lp(), host=["127.0.0.1", "::1"])
        assert [host for host, _ in calls] == ["127.0.0.1", "::1"] * 10


class FailingAccepts:
    """Make a server's next accepts fail with the given errors, on the way it accepts:
    its own (``loop.sock_accept`` on asyncio) or the listener's (``accept`` on trio)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]) -> None:
        self.errors = errors
        real = transport.asyncio_loop
        monkeypatch.setattr(transport, "asyncio_loop", lambda: self.loop(real()))

    def loop(self, loop: Any) -> Any:
        if loop is None:
            return None
        errors = self.errors

        class Loop:
            def __getattr__(self, name: str) -> Any:
                return getattr(loop, name)

            async def sock_accept(self, sock: socket.socket) -> Any:
                if errors:
                    raise errors.pop(0)
                return await loop.sock_accept(sock)

        return Loop()

    def listener(self, inner: SocketListener) -> SocketListener:
        errors = self.errors

        class Listener(SocketListener):
            async def accept(self) -> SocketStream:
                if errors:
                    await anyio.lowlevel.checkpoint()
                    raise errors.pop(0)
                return await inner.accept()

            async def aclose(self) -> None:
                await inner.aclose()

            @property
            def extra_attributes(self) -> Any:
                return inner.extra_attributes

        return Listener()


async def test_out_of_descriptors_closes_the_waiting_connections_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Accepting fails for want of descriptors (on trio, wrapped in BrokenResourceError):
    every connection in the backlog is accepted and closed with the reserved descriptor, at
    once, counted refused, and the reason logged; the next newcomer is served."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    emfile = OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    wrapped = anyio.BrokenResourceError()
    wrapped.__cause__ = emfile
    # The second failure finds the backlog empty: it refuses nobody more.
    accepts = FailingAccepts(monkeypatch, [wrapped, OSError(errno.EMFILE, "again")])
    listener = (await anyio.create_tcp_listener(local_host="127.0.0.1")).listeners[0]
    port = listener.extra(SocketAttribute.local_port)
    waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        with anyio.fail_after(10):
            async with running(echo, lp(), listeners=[accepts.listener(listener)]) as info:
                await until(lambda: info.stats.connections_refused == 3)
                for sock in waiting:
                    sock.settimeout(5)
                    with suppress(ConnectionResetError):
                        assert sock.recv(1) == b""
                async with await connect("127.0.0.1", port, lp()) as client:
                    await roundtrip(client, b"served")
                assert not accepts.errors
                assert info.stats.connections_accepted == 1
                assert info.stats.connections_refused == 3
    finally:
        for sock in waiting:
            sock.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "cannot accept connections (EMFILE: Too many open files): "
        "closed 3 waiting connections unserved"
    ]


ACCEPT_ERRNOS = [
    errno.ECONNABORTED,
    errno.EPROTO,
    errno.EPERM,
    errno.ENETDOWN,
    errno.ENOPROTOOPT,
    errno.EHOSTDOWN,
    errno.ENONET,
    errno.EHOSTUNREACH,
    errno.EOPNOTSUPP,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
]


async def test_accept_errors_are_logged_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Twelve failures 0.1 s apart: the first is logged, the next a second later, saying how
    many came between (each failure here has its own errno, so the line tells which)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    errors = [OSError(number, os.strerror(number)) for number in ACCEPT_ERRNOS]
    accepts = FailingAccepts(monkeypatch, list(errors))
    listener = (await anyio.create_tcp_listener(local_host="127.0.0.1")).listeners[0]
    with anyio.fail_after(10):
        async with running(echo, lp(), listeners=[accepts.listener(listener)]) as info:
            await until(lambda: not accepts.errors)
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await roundtrip(client, b"still serving")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == "accept failed: ECONNABORTED: Software caused connection abort"
    assert 2 <= len(warnings) <= 3
    names = [errno.errorcode[number] for number in ACCEPT_ERRNOS]
    second = next(
        i for i, name in enumerate(names) if warnings[1].startswith(f"accept failed: {name}:")
    )
    reason = f"{names[second]}: {os.strerror(ACCEPT_ERRNOS[second])}"
    assert second >= 5  # not before 0.5 s
    assert warnings[1] == (
        f"accept failed: {reason} (and {second - 1} times more since the last report)"
    )


async def test_accept_error_reasons_are_never_blank(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """trio's BrokenResourceError has no text: its repr is the reason. An errno with no name
    is given by number. A listener with no socket has no backlog to close."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    failures: list[BaseException] = [
        anyio.BrokenResourceError(),
        OSError(999, os.strerror(999)),
        OSError(errno.EMFILE, os.strerror(errno.EMFILE)),
    ]
    for failure in failures:
        pending = [failure]
        accepts = FailingAccepts(monkeypatch, pending)
        listener = MemoryListener()
        with anyio.fail_after(10):
            async with running(echo, lp(), listeners=[accepts.listener(listener)]) as info:
                await until(lambda left=pending: not left)
                a, b = memory_pair()
                await listener.incoming.send(b)
                async with FramedStream(a, lp()) as client:
                    await roundtrip(client, b"still serving")
                assert info.stats.connections_refused == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "accept failed: BrokenResourceError()",
        f"accept failed: 999: {os.strerror(999)}",
        "cannot accept connections (EMFILE: Too many open files): "
        "closed 0 waiting connections unserved",
    ]


async def test_a_connection_stalled_in_its_tls_handshake_is_shed() -> None:
    """At the limit, one that has not finished its handshake has waited since it was
    accepted: shed for a newcomer before a connection that has been answered since."""
    server_ctx, client_ctx = tls_contexts()
    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx, max_connections=2) as info:
            stalled = socket.create_connection(("127.0.0.1", info.port))
            try:
                await until(lambda: info.stats.connections_open == 1)
                first = await connect(
                    "127.0.0.1", info.port, lp(), ssl_context=client_ctx, tls_hostname="localhost"
                )
                async with first:
                    await roundtrip(first, b"one")
                    # Counted while a connection without a stream is in the table too.
                    assert info.stats.messages_in == 1
                    second = await connect(
                        "127.0.0.1",
                        info.port,
                        lp(),
                        ssl_context=client_ctx,
                        tls_hostname="localhost",
                    )
                    async with second:
                        await roundtrip(second, b"two")
                        await roundtrip(first, b"one again")
                    stalled.settimeout(5)
                    with suppress(ConnectionResetError):
                        assert stalled.recv(1) == b""
                    assert info.stats.connections_shed == 1
                    assert info.stats.connections_refused == 0
            finally:
                stalled.close()


async def test_stats_count_the_errors_of_connections_still_open() -> None:
    """A handler may survive a timeout and carry on: the error counts at once, added to those
    of the connections already closed."""
    gates: list[anyio.Event] = []

    async def patient(stream: FramedStream[bytes]) -> None:
        gate = anyio.Event()
        gates.append(gate)
        with pytest.raises(IdleTimeout):
            await stream.receive()
        await gate.wait()

    with anyio.fail_after(10):
        async with running(patient, lp(), idle_timeout=0.05) as info:
            async with await connect("127.0.0.1", info.port, lp()):
                await until(lambda: info.stats.errors != {})
                assert info.stats.errors == {"IdleTimeout": 1}
                assert info.stats.connections_open == 1
                gates[0].set()
                await until(lambda: info.stats.connections_open == 0)
            async with await connect("127.0.0.1", info.port, lp()):
                await until(lambda: info.stats.errors != {"IdleTimeout": 1})
                assert info.stats.errors == {"IdleTimeout": 2}
                assert info.stats.connections_open == 1
                gates[1].set()


async def test_peer_faults_inside_exception_groups_are_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that runs tasks raises the peer's faults in (nested) groups: still the
    peer's, one line naming each."""
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def grouped(stream: FramedStream[bytes]) -> None:
        await stream.receive()
        raise ExceptionGroup(
            "tasks",
            [
                MalformedFrame("Lines()", "bad"),
                ExceptionGroup("inner", [FrameTooLarge("Lines()", 20, 10)]),
            ],
        )

    with anyio.fail_after(10):
        async with running(grouped, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                peer = f"127.0.0.1:{client.extra(SocketAttribute.local_port)}"
                await client.send(b"go")
                assert await is_closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.handler_errors == 0
    lines = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]
    too_large = str(FrameTooLarge("Lines()", 20, 10))
    assert [r.getMessage() for r in lines] == [
        f"closed {peer}: MalformedFrame: Lines(): bad; FrameTooLarge: {too_large}"
    ]


async def test_every_handler_failure_is_counted_and_names_the_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def buggy(stream: FramedStream[bytes]) -> None:
        await stream.receive()
        raise RuntimeError("handler bug")

    peers: list[str] = []
    with anyio.fail_after(10):
        async with running(buggy, lp()) as info:
            for _ in range(2):
                async with await connect("127.0.0.1", info.port, lp()) as client:
                    peers.append(f"127.0.0.1:{client.extra(SocketAttribute.local_port)}")
                    await client.send(b"go")
                    assert await is_closed_by_server(client)
            await until(lambda: info.stats.handler_errors == 2)
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"handler failed for {p}" for p in peers]


async def test_a_peer_that_resets_is_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    """The peer going away is neither its framing fault nor the handler's bug."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            raw = await anyio.connect_tcp("127.0.0.1", info.port)
            peer = f"127.0.0.1:{raw.extra(SocketAttribute.local_port)}"
            async with FramedStream(raw, lp()) as client:
                await roundtrip(client, b"hi")
                sock = raw.extra(SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.handler_errors == 0
            assert info.stats.errors == {"BrokenResourceError": 1}
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1
    assert lines[0].startswith(f"connection {peer} lost: BrokenResourceError(")


class MemoryListener(Listener[ByteStream]):
    """A listener of in-memory streams: no socket, no addresses."""

    def __init__(self) -> None:
        self.incoming, self.queue = anyio.create_memory_object_stream[ByteStream](1)

    async def accept(self) -> ByteStream:
        return await self.queue.receive()

    async def serve(self, handler: Any, task_group: Any = None) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.queue.close()


async def test_a_peer_without_an_address_is_logged_as_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    listener = MemoryListener()
    with anyio.fail_after(10):
        async with running(echo, lp(max_size=3), listeners=[listener]) as info:
            assert (info.addresses, info.paths) == ([], [])
            a, b = memory_pair()
            await listener.incoming.send(b)
            async with FramedStream(a, lp()) as client:
                await roundtrip(client, b"hi")
                await client.send(b"long")
                assert await is_closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    too_large = str(FrameTooLarge(repr(lp(max_size=3)), 4, 3))
    assert lines == [f"closed unknown peer: FrameTooLarge: {too_large}"]


async def test_newcomers_in_a_burst_each_shed_the_next_longest_waiting() -> None:
    """A shed TLS connection stays in the table while it says goodbye (close_notify, up to a
    second): newcomers arriving meanwhile shed the next longest-waiting ones, never a
    newcomer, and none is refused."""
    server_ctx, client_ctx = tls_contexts()

    async def tls_client(port: int) -> FramedStream[bytes]:
        return await connect(
            "127.0.0.1", port, lp(), ssl_context=client_ctx, tls_hostname="localhost"
        )

    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx, max_connections=4) as info:
            old = [await tls_client(info.port) for _ in range(4)]
            for client in old:
                await roundtrip(client, b"old")
            new = []
            for _ in range(4):
                new.append(await tls_client(info.port))
                await roundtrip(new[-1], b"new")
            assert (info.stats.connections_shed, info.stats.connections_refused) == (4, 0)
            for client in new:
                await roundtrip(client, b"still served")
            for client in old:
                assert await is_closed_by_server(client)
            for client in old + new:
                await client.aclose()


def reserved_descriptors() -> list[int]:
    """This process's descriptors open on /dev/null without being inherited by children."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        with suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target == os.devnull and fcntl.fcntl(int(name), fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                found.append(int(name))
    return found


async def test_serve_holds_one_descriptor_in_reserve_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = reserved_descriptors()
    with anyio.fail_after(10):
        async with running(echo, lp()) as info:
            assert len(reserved_descriptors()) == len(before) + 1
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await roundtrip(client, b"served")
        assert reserved_descriptors() == before

        # With no descriptor to spare at the start, it serves all the same.
        def no_descriptor(*args: Any, **kwargs: Any) -> int:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

        monkeypatch.setattr(os, "open", no_descriptor)
        async with (
            running(echo, lp()) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            await roundtrip(client, b"served")


async def test_a_tls_handshake_not_finished_in_time_is_closed() -> None:
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with running(echo, lp(), ssl_context=server_ctx, handshake_timeout=0.2) as info:
            async with await anyio.connect_tcp("127.0.0.1", info.port) as silent:
                started = anyio.current_time()
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await silent.receive()
                assert anyio.current_time() - started < 5
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.errors == {"TLSHandshakeFailed": 1}


@pytest.mark.parametrize("where", ["ipv6", "unix"])
async def test_log_lines_name_the_peer_by_its_address(
    where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``[host]:port`` for IPv6, ``unix:(unnamed)`` for a Unix client bound to no path."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            if where == "ipv6":
                info = await tg.start(
                    lambda task_status: serve(
                        echo, lp(max_size=3), host="::1", task_status=task_status
                    )
                )
                client = await connect("::1", info.port, lp())
                peer = f"[::1]:{client.extra(SocketAttribute.local_port)}"
            else:
                path = tmp_path / "sock"
                info = await tg.start(
                    lambda task_status: serve_unix(
                        echo, lp(max_size=3), path=path, task_status=task_status
                    )
                )
                client = await connect_unix(path, lp())
                peer = "unix:(unnamed)"
            async with client:
                await client.send(b"long")
                assert await is_closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
            tg.cancel_scope.cancel()
    too_large = str(FrameTooLarge(repr(lp(max_size=3)), 4, 3))
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == [f"closed {peer}: FrameTooLarge: {too_large}"]


@pytest.mark.parametrize(
    "options",
    [{"receive_size": 0}, {"idle_timeout": 0}, {"message_timeout": -1.0}],
)
async def test_serve_refuses_stream_options_before_binding(options: dict[str, Any]) -> None:
    """(They used to fail every connection, each logged as the handler's error.)"""
    with anyio.fail_after(5), pytest.raises(ValueError, match="must be"):
        await serve(echo, lp(), **options)


async def test_serve_does_not_share_its_port_unless_asked() -> None:
    """``reuse_port`` is off by default: a second server on the same port is refused,
    as a port already in use (with SO_REUSEPORT the kernel would split the traffic)."""

    async def nothing(stream: FramedStream[bytes]) -> None:
        return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            first = await tg.start(partial(serve, nothing, Raw(), host="127.0.0.1", port=0))
            with pytest.raises(OSError, match="in use"):
                await serve(nothing, Raw(), host="127.0.0.1", port=first.port)
            tg.cancel_scope.cancel()
