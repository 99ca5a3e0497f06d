"""serve_inline: a plain function per request, no task per connection on asyncio.

Every test runs on both backends: on asyncio the loop calls each connection back
(framing.inline's protocol objects); on trio serve_inline is serve with
serve_pipelined as the handler. The results, counters and log lines must be
the same, which is what these tests hold both to.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute

from framing import LengthPrefixed, Lines, Raw, serve_inline
from framing.errors import MalformedFrame
from framing.server import ServerInfo
from framing.stream import FramedStream, connect, connect_unix
from tests.framing.transports import until

pytestmark = pytest.mark.anyio

LOGGER = "framing.server"


def lp(**options: Any) -> LengthPrefixed:
    return LengthPrefixed(2, **options)


def same(message: bytes) -> bytes:
    return message


@asynccontextmanager
async def running(
    respond: Callable[[bytes], bytes | None], framer: Any, **options: Any
) -> AsyncIterator[ServerInfo]:
    async with anyio.create_task_group() as tg:
        info = await tg.start(
            lambda task_status: serve_inline(respond, framer, task_status=task_status, **options)
        )
        yield info
        tg.cancel_scope.cancel()


async def closed_by_server(client: FramedStream[bytes]) -> bool:
    try:
        await client.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return True
    return False


def on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_any_split_of_the_stream_gives_the_same_answers() -> None:
    messages = [b"", b"a", b"hello" * 50, bytes(range(256))]
    wire = b"".join(lp().encode(m) for m in messages)
    with anyio.fail_after(10):
        async with running(lambda m: m[::-1], lp()) as info:
            for step in (1, 3, 7, len(wire)):
                async with await connect("127.0.0.1", info.port, lp()) as client:
                    for start in range(0, len(wire), step):
                        await client.transport_stream.send(wire[start : start + step])
                    got = [await client.receive() for _ in messages]
                    assert got == [m[::-1] for m in messages]
            assert info.stats.messages_in == info.stats.messages_out == 4 * len(messages)


async def test_half_close_every_answer_then_the_end() -> None:
    with anyio.fail_after(10):
        async with (
            running(same, Lines()) as info,
            await connect("127.0.0.1", info.port, Lines()) as client,
        ):
            await client.transport_stream.send(b"one\ntwo\r\nthree\n")
            await client.send_eof()
            assert [m async for m in client] == [b"one", b"two", b"three"]


async def test_none_means_no_reply() -> None:
    with anyio.fail_after(10):
        async with running(lambda m: None if m == b"quiet" else m, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await client.send_many([b"quiet", b"loud"])
                assert await client.receive() == b"loud"
            assert (info.stats.messages_in, info.stats.messages_out) == (2, 1)


async def test_oversize_answers_what_came_before_then_closes_that_connection_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(same, lp(max_size=100)) as info:
            async with (
                await connect("127.0.0.1", info.port, lp()) as good,
                await connect("127.0.0.1", info.port, lp()) as bad,
            ):
                await bad.transport_stream.send(lp().encode(b"fine") + b"\x00\xffway too long")
                assert await bad.receive() == b"fine"
                assert await closed_by_server(bad)
                await good.send(b"after")
                assert await good.receive() == b"after"
                local = bad.extra(SocketAttribute.local_port)
            assert info.stats.errors == {"FrameTooLarge": 1}
    (line,) = [r.getMessage() for r in caplog.records if "FrameTooLarge" in r.getMessage()]
    assert line.startswith(f"closed 127.0.0.1:{local}: FrameTooLarge: ")
    assert "255" in line


async def test_end_of_stream_inside_a_message_is_the_peers_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(same, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await client.transport_stream.send(lp().encode(b"whole") + b"\x00\x09part")
                await client.send_eof()
                assert await client.receive() == b"whole"
                assert await closed_by_server(client)
            await until(lambda: not info.stats.connections_open)
            assert info.stats.errors == {"IncompleteFrame": 1}
    assert any(
        "closed" in r.getMessage() and "IncompleteFrame" in r.getMessage() for r in caplog.records
    )


async def test_respond_raising_a_framing_error_is_the_peers_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def strict(message: bytes) -> bytes:
        if not message:
            raise MalformedFrame("test", "an empty request")
        return message

    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(strict, lp()) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await client.send_many([b"first", b"", b"never"])
                assert await client.receive() == b"first"
                assert await closed_by_server(client)
            assert info.stats.errors == {"MalformedFrame": 1}
            assert info.stats.handler_errors == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_bug_in_respond_is_logged_with_its_traceback_and_ends_that_connection_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def buggy(message: bytes) -> bytes:
        if message == b"boom":
            raise KeyError("boom")
        return message

    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(buggy, lp()) as info:
            async with (
                await connect("127.0.0.1", info.port, lp()) as good,
                await connect("127.0.0.1", info.port, lp()) as bad,
            ):
                await bad.send(b"boom")
                assert await closed_by_server(bad)
                await good.send(b"still here")
                assert await good.receive() == b"still here"
            assert info.stats.handler_errors == 1
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith("handler failed for 127.0.0.1:")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


async def test_a_coroutine_function_is_refused() -> None:
    async def answer(message: bytes) -> bytes:
        return message

    with pytest.raises(TypeError, match="coroutine function"):
        await serve_inline(answer, lp())  # type: ignore[arg-type]


async def test_unknown_keywords_are_refused_before_binding() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        await serve_inline(same, lp(), no_such_option=1)


async def test_idle_timeout_closes_a_silent_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(same, lp(), idle_timeout=0.2) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                await client.send(b"then silence")
                assert await client.receive() == b"then silence"
                started = anyio.current_time()
                assert await closed_by_server(client)
                assert anyio.current_time() - started >= 0.15
            assert info.stats.errors == {"IdleTimeout": 1}
    assert any(
        re.search(r"IdleTimeout: no byte arrived within 0\.2 s", r.getMessage())
        for r in caplog.records
    )


async def test_message_timeout_cuts_a_trickling_peer() -> None:
    encoded = lp().encode(b"y" * 100)
    with anyio.fail_after(10):
        async with running(same, lp(), idle_timeout=5, message_timeout=0.3) as info:
            async with await connect("127.0.0.1", info.port, lp()) as client:
                closed = False
                for i in range(len(encoded)):  # a byte every 20 ms: 2 s for the frame
                    try:
                        await client.transport_stream.send(encoded[i : i + 1])
                    except (anyio.BrokenResourceError, OSError):
                        closed = True
                        break
                    with anyio.move_on_after(0.02):
                        if await closed_by_server(client):
                            closed = True
                            break
                assert closed
            assert info.stats.errors == {"MessageTimeout": 1}


async def test_at_max_connections_a_newcomer_sheds_the_longest_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(same, lp(), max_connections=2) as info:
            one = await connect("127.0.0.1", info.port, lp())
            two = await connect("127.0.0.1", info.port, lp())
            await one.send(b"1")
            assert await one.receive() == b"1"
            await anyio.sleep(0.05)
            await two.send(b"2")
            assert await two.receive() == b"2"
            three = await connect("127.0.0.1", info.port, lp())
            await three.send(b"3")
            assert await three.receive() == b"3"
            assert await closed_by_server(one)
            await two.send(b"2 again")
            assert await two.receive() == b"2 again"
            stats = info.stats
            assert (stats.connections_shed, stats.connections_refused) == (1, 0)
            for client in (one, two, three):
                await client.aclose()
    (shed,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shed")]
    assert re.fullmatch(
        r"shed 127\.0\.0\.1:\d+ \(waited \d+\.\d s for its next byte\) to serve "
        r"127\.0\.0\.1:\d+: 2 connections open, the limit",
        shed,
    )


async def test_a_peer_that_does_not_read_is_not_read_from() -> None:
    """Backpressure: answers pile up in the peer's direction, so its requests stay unread."""
    big = b"x" * 60_000
    with anyio.fail_after(20):
        async with (
            running(lambda m: big, lp()) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            request = lp().encode(b"?")
            sent = 0
            # Never reading: the server's writes back up, then it stops reading,
            # then the kernel buffers fill and our sends stop going through.
            with anyio.move_on_after(2):
                for _ in range(200_000):
                    await client.transport_stream.send(request * 1000)
                    sent += 1000
            taken = info.stats.messages_in
            assert taken < sent
            await anyio.sleep(0.3)
            assert info.stats.messages_in == taken  # still not reading
            # Its answers (60 KB each) are what is held: a bounded number.
            assert info.stats.messages_out * len(big) < 64 * 1024 * 1024


async def test_the_budget_shared_by_all_framers_closes_the_one_that_exceeds_it() -> None:
    with anyio.fail_after(10):
        async with running(same, lp(), max_buffered_total=1000) as info:
            async with (
                await connect("127.0.0.1", info.port, lp()) as first,
                await connect("127.0.0.1", info.port, lp()) as second,
            ):
                await first.transport_stream.send(b"\x03\x00" + b"a" * 700)
                await anyio.sleep(0.1)
                await second.transport_stream.send(b"\x03\x00" + b"b" * 700)
                assert await closed_by_server(second)
                await first.transport_stream.send(b"a" * 68)
                assert await first.receive() == b"a" * 768
            assert info.stats.errors == {"BufferBudgetExceeded": 1}


async def test_shutdown_closes_the_idle_at_once_and_lets_a_begun_message_finish() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve_inline(
                    same, lp(), grace_period=5, task_status=task_status
                )
            )
            idle = await connect("127.0.0.1", info.port, lp())
            busy = await connect("127.0.0.1", info.port, lp())
            await busy.transport_stream.send(b"\x00\x05he")
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                assert await closed_by_server(idle)
                await busy.transport_stream.send(b"llo")
                assert await busy.receive() == b"hello"
                assert await closed_by_server(busy)
                await idle.aclose()
                await busy.aclose()


async def test_unix_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "inline.sock")
    with anyio.fail_after(10):
        listener = await anyio.create_unix_listener(path)
        async with running(same, Raw(), listeners=[listener]) as info:
            assert info.paths == [path]
            async with await connect_unix(path, Raw()) as client:
                await client.send(b"raw bytes")
                assert await client.receive() == b"raw bytes"


async def test_no_task_per_connection_on_asyncio() -> None:
    """What the module is for: an idle connection holds no task (on trio: one each)."""
    with anyio.fail_after(20):
        async with running(same, lp()) as info:
            if on_asyncio():
                before = len(asyncio.all_tasks())
            clients = []
            try:
                for _ in range(20):
                    client = await connect("127.0.0.1", info.port, lp())
                    clients.append(client)
                    await client.send(b"hi")
                    assert await client.receive() == b"hi"
                assert info.stats.connections_open == 20
                if on_asyncio():
                    assert len(asyncio.all_tasks()) == before
            finally:
                for client in clients:
                    await client.aclose()


def test_idle_connections_cost_few_objects_on_asyncio() -> None:
    """The collector tracks a handful of objects per idle connection, not a task's 57.

    Not an anyio test: this is about the asyncio path only (trio serves with a
    task per connection, as serve does). The clients are plain sockets, one
    object each, so that what grows is the server's.
    """
    count = 200

    async def main() -> float:
        async with running(same, lp(), max_connections=count + 10) as info:
            clients: list[socket.socket] = []
            try:
                gc.collect()
                before = len(gc.get_objects())
                for _ in range(count):
                    client = socket.create_connection(("127.0.0.1", info.port), timeout=5)
                    client.sendall(b"\x00\x02hi")
                    clients.append(client)
                await until(lambda: info.stats.messages_out >= count, polls=1000)
                for client in clients:
                    assert client.recv(16) == b"\x00\x02hi"
                gc.collect()
                assert info.stats.connections_open == count
                return (len(gc.get_objects()) - before) / count
            finally:
                for client in clients:
                    client.close()

    per_connection = anyio.run(main, backend="asyncio")
    assert per_connection < 20, per_connection


def test_on_uvloop_too() -> None:
    """uvloop's transports (C) call the same protocol objects: answers, half-close, timeout."""
    pytest.importorskip("uvloop")

    async def main() -> None:
        with anyio.fail_after(10):
            async with running(same, lp(), idle_timeout=0.3) as info:
                async with await connect("127.0.0.1", info.port, lp()) as client:
                    wire = b"".join(lp().encode(m) for m in (b"a", b"bb", b"c" * 1000))
                    for i in range(0, len(wire), 5):
                        await client.transport_stream.send(wire[i : i + 5])
                    assert [await client.receive() for _ in range(3)] == [b"a", b"bb", b"c" * 1000]
                    await client.send_eof()
                    assert await closed_by_server(client)
                async with await connect("127.0.0.1", info.port, lp()) as silent:
                    assert await closed_by_server(silent)
                assert info.stats.errors == {"IdleTimeout": 1}
                assert info.stats.messages_out == 3

    anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})


def v1(client: str, port: int = 5555) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 {port} 80\r\n".encode()


async def test_behind_a_proxy_the_header_names_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The header is read before the framer sees a byte; log lines name the client."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with (
            running(same, lp(max_size=10), proxy_protocol=["127.0.0.1"]) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            # The header split across reads, the first frame in the same write as its end.
            header = v1("10.9.8.7", 4321)
            await client.transport_stream.send(header[:7])
            await anyio.sleep(0.05)
            await client.transport_stream.send(header[7:] + lp().encode(b"hello"))
            assert await client.receive() == b"hello"
            await client.transport_stream.send(b"\x00\xff")  # over max_size
            assert await closed_by_server(client)
    (line,) = [r.getMessage() for r in caplog.records if "FrameTooLarge" in r.getMessage()]
    assert line.startswith("closed 10.9.8.7:4321 (via 127.0.0.1:")


async def test_behind_a_proxy_the_per_peer_limit_counts_clients_not_the_proxy() -> None:
    with anyio.fail_after(10):
        async with running(
            same, lp(), proxy_protocol=["127.0.0.1"], max_connections_per_peer=1
        ) as info:
            clients = [await connect("127.0.0.1", info.port, lp()) for _ in range(3)]
            try:
                # Two clients behind one proxy: both served.
                for client, name in zip(clients[:2], ("10.0.0.1", "10.0.0.2"), strict=True):
                    await client.transport_stream.send(v1(name) + lp().encode(name.encode()))
                    assert await client.receive() == name.encode()
                # A second connection of 10.0.0.1 sheds the first (waiting longest).
                await clients[2].transport_stream.send(v1("10.0.0.1") + lp().encode(b"again"))
                assert await clients[2].receive() == b"again"
                assert await closed_by_server(clients[0])
                await clients[1].send(b"still")
                assert await clients[1].receive() == b"still"
                assert info.stats.connections_shed == 1
            finally:
                for client in clients:
                    await client.aclose()


async def test_behind_a_proxy_a_missing_or_late_header_closes_that_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(same, lp(), proxy_protocol=["127.0.0.1"], handshake_timeout=0.3) as info:
            async with await connect("127.0.0.1", info.port, lp()) as plain:
                await plain.send(b"no header")
                assert await closed_by_server(plain)
            async with await connect("127.0.0.1", info.port, lp()) as slow:
                await slow.transport_stream.send(b"PROXY TCP4 10.")
                assert await closed_by_server(slow)
            assert info.stats.errors == {"ProxyHeaderError": 2}
    lines = [r.getMessage() for r in caplog.records if "ProxyHeaderError" in r.getMessage()]
    assert len(lines) == 2
    assert "within 0.3 s" in lines[1]


async def test_a_header_from_a_peer_that_is_not_a_trusted_proxy_is_refused() -> None:
    with anyio.fail_after(10):
        async with running(same, lp(), proxy_protocol=["10.0.0.0/8"]) as info:
            async with await connect("127.0.0.1", info.port, lp()) as forged:
                await forged.transport_stream.send(v1("10.1.1.1") + lp().encode(b"x"))
                assert await closed_by_server(forged)
            async with await connect("127.0.0.1", info.port, lp()) as direct:
                await direct.send(b"plain")
                assert await direct.receive() == b"plain"
            assert info.stats.errors == {"ProxyHeaderError": 1}


async def test_behind_a_proxy_the_optional_header_may_be_absent() -> None:
    with anyio.fail_after(10):
        async with (
            running(same, lp(), proxy_protocol=["127.0.0.1"], proxy_protocol_optional=True) as info,
            await connect("127.0.0.1", info.port, lp()) as client,
        ):
            await client.send(b"as it is")
            assert await client.receive() == b"as it is"
