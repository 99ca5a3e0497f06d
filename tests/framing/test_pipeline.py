"""serve_pipelined: concurrent request/response on one connection (RFC 7766 6.2.1.1)."""

from __future__ import annotations

import socket
import struct
from typing import Any

import anyio
import pytest

from framing.errors import FrameTooLarge
from framing.length import LengthPrefixed
from framing.server import serve, serve_pipelined
from framing.stream import FramedStream, IdleTimeout
from tests.framing.transports import memory_pair, stream_pair, until

pytestmark = pytest.mark.anyio


def lp(**options: Any) -> LengthPrefixed:
    return LengthPrefixed(2, **options)


async def upper(request: bytes) -> bytes:
    return request.upper()


async def test_hundred_requests_in_one_burst_are_answered_in_few_writes() -> None:
    requests = [b"q%d" % i for i in range(100)]
    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper)
            await FramedStream(a, lp()).send_many(requests)
            # Read raw chunks: one memory-stream item is one transport write.
            framer = lp()
            answers: list[bytes] = []
            writes = 0
            while len(answers) < len(requests):
                answers.extend(framer.feed(await a.receive(1 << 20)))
                writes += 1
            await a.send_eof()
        assert sorted(answers) == sorted(r.upper() for r in requests)
        assert writes < len(requests)  # responses ready together went out together
        assert server.stats.messages_out == 100


async def test_responses_are_written_as_they_complete() -> None:
    release = {b"slow": anyio.Event(), b"fast": anyio.Event()}
    release[b"fast"].set()

    async def respond(request: bytes) -> bytes:
        await release[request].wait()
        return request + b" done"

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, FramedStream(b, lp()), respond)
            await client.send_many([b"slow", b"fast"])
            assert await client.receive() == b"fast done"
            release[b"slow"].set()
            assert await client.receive() == b"slow done"
            await client.send_eof()


async def test_max_in_flight_is_respected() -> None:
    running = 0
    most = 0
    gate = anyio.Event()

    async def respond(request: bytes) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1
        return request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: serve_pipelined(server, respond, max_in_flight=3))
            tg.start_soon(client.send_many, [b"%d" % i for i in range(10)])
            await anyio.wait_all_tasks_blocked()
            assert running == 3
            gate.set()
            got = [await client.receive() for _ in range(10)]
            await client.send_eof()
        assert sorted(got) == sorted(b"%d" % i for i in range(10))
        assert most == 3


async def test_none_means_no_reply() -> None:
    async def respond(request: bytes) -> bytes | None:
        return None if request == b"quiet" else request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp())

        async def run_server() -> None:
            await serve_pipelined(server, respond)
            await server.send_eof()  # serve_pipelined returned at our EOF

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            await client.send_many([b"quiet", b"loud"])
            assert await client.receive() == b"loud"
            await client.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await client.receive()


async def test_clean_eof_returns_after_in_flight_answers_are_written() -> None:
    async def respond(request: bytes) -> bytes:
        await anyio.sleep(0.05)
        return request

    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            client = FramedStream(a, lp())
            server = FramedStream(b, lp())
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve_pipelined, server, respond)
                await client.send_many([b"1", b"2", b"3"])
                await client.send_eof()  # half-close: answers still come
                got = [await client.receive() for _ in range(3)]
            assert sorted(got) == [b"1", b"2", b"3"]
            assert server.stats.messages_out == 3


async def test_peer_gone_drops_pending_responses() -> None:
    started = 0
    cancelled = 0

    async def respond(request: bytes) -> bytes:
        nonlocal started, cancelled
        started += 1
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        return request

    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            server = FramedStream(b, lp())
            client = FramedStream(a, lp())
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve_pipelined, server, respond)
                await client.send_many([b"a", b"b", b"c", b"d", b"e"])
                await until(lambda: started == 5)
                # Reset the connection: the peer has gone.
                raw = a.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await a.aclose()
            # serve_pipelined returned normally, having cancelled the in-flight work.
        assert cancelled == 5
        assert server.stats.messages_dropped == 5
        assert server.stats.messages_out == 0


async def test_framing_error_answers_what_is_in_flight_then_raises() -> None:
    async def respond(request: bytes) -> bytes:
        await anyio.sleep(0.05)
        return request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp(max_size=10))
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(FrameTooLarge):
                    await serve_pipelined(server, respond)

            tg.start_soon(run_server)
            await client.send(b"fine")
            await client.transport_stream.send(b"\x00\xff")
            assert await client.receive() == b"fine"


async def test_idle_timeout_waits_while_requests_are_in_flight() -> None:
    async def respond(request: bytes) -> bytes:
        await anyio.sleep(0.3)  # longer than the idle timeout
        return request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp(), idle_timeout=0.1)
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(IdleTimeout):
                    await serve_pipelined(server, respond)

            tg.start_soon(run_server)
            await client.send(b"patience")
            assert await client.receive() == b"patience"
            # Now truly idle: the timeout ends the pipeline.


async def test_serve_with_pipelining_handler() -> None:
    async def handler(stream: FramedStream[bytes]) -> None:
        await serve_pipelined(stream, upper, max_in_flight=8)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(lambda task_status: serve(handler, lp(), task_status=task_status))
            client = FramedStream(await anyio.connect_tcp("127.0.0.1", info.port), lp())
            async with client:
                await client.send_many([b"x%d" % i for i in range(100)])
                got: list[bytes] = []
                while len(got) < 100:
                    got.extend(await client.receive_many())
            assert sorted(got) == sorted(b"X%d" % i for i in range(100))
            tg.cancel_scope.cancel()


async def test_max_in_flight_must_be_positive() -> None:
    _, b = memory_pair()
    with pytest.raises(ValueError, match="max_in_flight"):
        await serve_pipelined(FramedStream(b, lp()), upper, max_in_flight=0)
