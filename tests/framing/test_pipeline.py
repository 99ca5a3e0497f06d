"""serve_pipelined: request/response on one connection (RFC 7766 6.2.1.1), both ways.

A coroutine function is answered concurrently (a task per request); a plain
function inline (answers in order, one write per read).
"""

from __future__ import annotations

import inspect
import socket
import struct
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import pytest

from framing.errors import FrameTooLarge, MalformedFrame
from framing.length import LengthPrefixed
from framing.pipeline import INLINE_FLUSH_SIZE, serve_pipelined
from framing.server import serve
from framing.stream import FramedStream, IdleTimeout
from tests.framing.transports import memory_pair, stream_pair, until

pytestmark = pytest.mark.anyio


def lp(**options: Any) -> LengthPrefixed:
    return LengthPrefixed(2, **options)


async def upper(request: bytes) -> bytes:
    return request.upper()


def upper_now(request: bytes) -> bytes:
    return request.upper()


async def read_writes(
    stream: anyio.abc.ByteStream, framer: LengthPrefixed, count: int
) -> tuple[list[bytes], int]:
    """Read raw chunks until ``count`` messages came: (messages, chunks read).

    On a memory pair one chunk is one transport write of the other side.
    """
    messages: list[bytes] = []
    writes = 0
    while len(messages) < count:
        messages.extend(framer.feed(await stream.receive(1 << 20)))
        writes += 1
    return messages, writes


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


async def test_max_in_flight_must_be_positive() -> None:
    _, b = memory_pair()
    with pytest.raises(ValueError, match="max_in_flight"):
        await serve_pipelined(FramedStream(b, lp()), upper, max_in_flight=0)


# -- the inline way: a plain respond ------------------------------------------


async def test_inline_hundred_requests_in_one_burst_answered_in_order_in_one_write() -> None:
    requests = [b"q%d" % i for i in range(100)]
    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper_now)
            await FramedStream(a, lp()).send_many(requests)  # one write: one read
            answers, writes = await read_writes(a, lp(), len(requests))
            await a.send_eof()
        assert answers == [r.upper() for r in requests]
        assert writes == 1
        assert (server.stats.messages_in, server.stats.messages_out) == (100, 100)


async def test_inline_answers_each_read_with_one_write() -> None:
    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper_now)
            for burst in range(3):
                requests = [b"b%d-%d" % (burst, i) for i in range(10)]
                await client.send_many(requests)
                answers, writes = await read_writes(a, lp(), len(requests))
                assert (answers, writes) == ([r.upper() for r in requests], 1)
            await a.send_eof()


async def test_inline_large_answers_are_written_in_bounded_parts() -> None:
    """Tiny requests with large answers: written as they pass INLINE_FLUSH_SIZE, not all held."""
    requests = [b"q%02d" % i for i in range(40)]  # 160 bytes asking for 600 KB

    def big(request: bytes) -> bytes:
        return request * 5000

    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, big)
            await FramedStream(a, lp()).send_many(requests)  # one write: one read
            framer = lp()
            answers: list[bytes] = []
            writes: list[int] = []
            while len(answers) < len(requests):
                chunk = await a.receive(1 << 20)  # one chunk: one write of the server's
                writes.append(len(chunk))
                answers.extend(framer.feed(chunk))
            await a.send_eof()
        assert answers == [big(r) for r in requests]
        assert len(writes) > 1
        assert max(writes) <= INLINE_FLUSH_SIZE + 2 + 15_000
        assert (server.stats.messages_out, server.stats.bytes_out) == (40, sum(writes))


async def test_inline_none_means_no_reply() -> None:
    def respond(request: bytes) -> bytes | None:
        return None if request.startswith(b"quiet") else request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp())

        async def run_server() -> None:
            await serve_pipelined(server, respond)
            await server.send_eof()  # serve_pipelined returned at our EOF

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            await client.send_many([b"quiet1", b"loud1", b"quiet2", b"loud2"])
            assert await client.receive_many() == [b"loud1", b"loud2"]
            await client.send(b"quiet3")  # answered by nothing at all
            await client.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
        assert (server.stats.messages_in, server.stats.messages_out) == (5, 2)


async def test_inline_peer_gone_while_writing_drops_the_pending_answers() -> None:
    with anyio.fail_after(10):
        a, b = memory_pair()  # unbuffered: the server's write waits for a reader
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper_now)
            await FramedStream(a, lp()).send_many([b"a", b"b", b"c"])
            await anyio.wait_all_tasks_blocked()  # the server waits to write 3 answers
            await a.aclose()  # and the peer leaves without reading them
            # serve_pipelined returns normally: the task group can end.
        assert server.stats.messages_dropped == 3
        assert server.stats.messages_out == 0


async def test_inline_peer_reset_drops_pending_answers() -> None:
    answer = b"x" * (256 * 1024)  # 100 of them: far more than the socket buffers hold

    def respond(request: bytes) -> bytes:
        return answer

    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            server = FramedStream(b, LengthPrefixed(4))
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve_pipelined, server, respond)
                await FramedStream(a, LengthPrefixed(4)).send_many([b"%d" % i for i in range(100)])
                await until(lambda: server.stats.messages_in == 100)
                raw = a.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await a.aclose()
            # serve_pipelined returned normally, having dropped what it could not write.
        stats = server.stats
        assert stats.messages_dropped > 0
        assert stats.messages_out + stats.messages_dropped == 100
        assert stats.bytes_out < 100 * len(answer)


async def test_inline_framing_error_writes_answers_before_it_then_raises() -> None:
    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp(max_size=10))
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(FrameTooLarge):
                    await serve_pipelined(server, upper_now)

            tg.start_soon(run_server)
            # Two good frames and an oversize header, in one write.
            await a.send(lp().encode(b"one") + lp().encode(b"two") + b"\x00\xff")
            answers, writes = await read_writes(a, lp(), 2)
            assert (answers, writes) == ([b"ONE", b"TWO"], 1)
        assert server.stats.errors == {"FrameTooLarge": 1}


async def test_inline_framing_error_from_respond_writes_answers_before_it_then_raises() -> None:
    def respond(request: bytes) -> bytes:
        if request == b"bad":
            raise MalformedFrame("test", "a request no answer can be made to")
        return request.upper()

    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(MalformedFrame):
                    await serve_pipelined(server, respond)
                await server.aclose()

            tg.start_soon(run_server)
            await FramedStream(a, lp()).send_many([b"x", b"y", b"bad", b"z"])
            framer = lp()
            answers = framer.feed(await a.receive())
            assert answers == [b"X", b"Y"]  # z, after the fault, is not answered
            with pytest.raises(anyio.EndOfStream):
                await a.receive()
        assert server.stats.errors == {"MalformedFrame": 1}
        assert server.stats.messages_out == 2


async def test_inline_other_exception_from_respond_propagates_at_once() -> None:
    def respond(request: bytes) -> bytes:
        if request == b"boom":
            raise KeyError(request)
        return request

    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(KeyError):
                    await serve_pipelined(server, respond)
                await server.aclose()

            tg.start_soon(run_server)
            await FramedStream(a, lp()).send_many([b"fine", b"boom"])
            with pytest.raises(anyio.EndOfStream):
                await a.receive()  # a bug in respond: nothing of the batch is written
        assert server.stats.messages_out == 0


async def test_inline_idle_timeout_raises_when_quiet() -> None:
    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        server = FramedStream(b, lp(), idle_timeout=0.1)
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                with pytest.raises(IdleTimeout):
                    await serve_pipelined(server, upper_now)

            tg.start_soon(run_server)
            await client.send(b"hello")
            assert await client.receive() == b"HELLO"
            # Then nothing: the timeout ends the pipeline.
        assert server.stats.errors == {"IdleTimeout": 1}


def responders(calls: list[int]) -> dict[str, tuple[Callable[[bytes], Any], bool]]:
    """Every shape of respond, each noting the task it runs in: (respond, answered inline?)."""

    def note() -> None:
        calls.append(anyio.get_current_task().id)

    def plain(request: bytes, *, tag: bytes = b"") -> bytes:
        note()
        return request.upper() + tag

    async def coroutine(request: bytes, *, tag: bytes = b"") -> bytes:
        note()
        return request.upper() + tag

    class Plain:
        def __call__(self, request: bytes) -> bytes:
            return plain(request)

        def method(self, request: bytes) -> bytes:
            return plain(request)

    class Async:
        async def __call__(self, request: bytes) -> bytes:
            return await coroutine(request)

        async def method(self, request: bytes) -> bytes:
            return await coroutine(request)

    return {
        "plain function": (plain, True),
        "plain partial": (partial(plain, tag=b""), True),
        "plain callable object": (Plain(), True),
        "plain method": (Plain().method, True),
        "async function": (coroutine, False),
        "async partial": (partial(coroutine, tag=b""), False),
        "async callable object": (Async(), False),
        "async method": (Async().method, False),
    }


@pytest.mark.parametrize("kind", sorted(responders([])))
async def test_the_way_is_chosen_from_respond(kind: str) -> None:
    calls: list[int] = []
    respond, expect_inline = responders(calls)[kind]
    server_task: list[int] = []
    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:

            async def run_server() -> None:
                server_task.append(anyio.get_current_task().id)
                await serve_pipelined(FramedStream(b, lp()), respond)

            tg.start_soon(run_server)
            await client.send_many([b"a", b"b"])
            got: list[bytes] = []
            while len(got) < 2:
                got.extend(await client.receive_many())
            await client.send_eof()
    assert sorted(got) == [b"A", b"B"]
    assert len(calls) == 2
    # Inline: respond runs in serve_pipelined's own task; else in a task per request.
    assert (set(calls) == set(server_task)) is expect_inline
    assert (server_task[0] not in calls) is not expect_inline


async def test_a_plain_callable_returning_awaitables_is_refused_unless_inline_false() -> None:
    made: list[Awaitable[bytes]] = []

    def respond(request: bytes) -> Awaitable[bytes]:
        made.append(upper(request))  # a coroutine, from a plain function
        return made[-1]

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.send, b"x")
            with pytest.raises(TypeError) as info:
                await serve_pipelined(FramedStream(b, lp()), respond)
        assert str(info.value) == (
            f"{respond!r} returned an awaitable, but is not a coroutine function: "
            "pass inline=False to serve_pipelined to have it awaited"
        )
        # Closed at once, never to be awaited (no "never awaited" warning later).
        assert [inspect.getcoroutinestate(c) for c in made] == [inspect.CORO_CLOSED]  # type: ignore[arg-type]
        a, b = memory_pair()
        client = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve_pipelined, FramedStream(b, lp()), respond, inline=False))
            await client.send(b"x")
            assert await client.receive() == b"X"
            await client.send_eof()


@pytest.mark.parametrize("respond", [upper, upper_now], ids=["concurrent", "inline"])
async def test_serve_with_a_pipelining_handler_either_way(
    respond: Callable[[bytes], Any],
) -> None:
    async def handler(stream: FramedStream[bytes]) -> None:
        await serve_pipelined(stream, respond, max_in_flight=8)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(lambda task_status: serve(handler, lp(), task_status=task_status))
            client = FramedStream(await anyio.connect_tcp("127.0.0.1", info.port), lp())
            async with client:
                for burst in range(5):
                    requests = [b"x%d-%d" % (burst, i) for i in range(100)]
                    await client.send_many(requests)
                    got: list[bytes] = []
                    while len(got) < 100:
                        got.extend(await client.receive_many())
                    assert sorted(got) == sorted(r.upper() for r in requests)
                    if respond is upper_now:
                        assert got == [r.upper() for r in requests]  # inline: in order
            tg.cancel_scope.cancel()


async def test_max_in_flight_of_one_answers_one_request_at_a_time() -> None:
    running = 0
    most = 0

    async def respond(request: bytes) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.01)
        running -= 1
        return request

    with anyio.fail_after(10):
        a, b = memory_pair()
        client = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: serve_pipelined(FramedStream(b, lp()), respond, max_in_flight=1))
            await client.send_many([b"%d" % i for i in range(5)])
            got = [await client.receive() for _ in range(5)]
            await client.send_eof()
        assert sorted(got) == [b"%d" % i for i in range(5)]
        assert most == 1


async def test_peer_gone_while_answers_are_written_drops_them_and_returns() -> None:
    """The writer's send fails (the peer left without reading): answers are dropped, the
    requests in flight cancelled, and serve_pipelined returns normally, the stream idle."""
    with anyio.fail_after(10):
        a, b = memory_pair()  # unbuffered: the server's write waits for a reader
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper)
            await FramedStream(a, lp()).send_many([b"a", b"b", b"c"])
            await anyio.wait_all_tasks_blocked()  # the writer waits to write 3 answers
            await a.aclose()
        assert server.stats.messages_dropped == 3
        assert server.stats.messages_out == 0
        assert server.work_in_flight == 0
        assert server.waiting_since is None


async def test_inline_answers_are_written_once_they_reach_inline_flush_size() -> None:
    """A write goes out as soon as the answers held reach INLINE_FLUSH_SIZE bytes, not before,
    and counting starts again from nothing after each write."""
    framer = LengthPrefixed(4)

    def sized(request: bytes) -> bytes:
        return b"a" * int(request)  # the request names its answer's body size

    with anyio.fail_after(10):
        a, b = memory_pair()  # one chunk read is one write of the server's
        client = FramedStream(a, LengthPrefixed(4))
        writes: list[int] = []
        answers: list[bytes] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, FramedStream(b, LengthPrefixed(4)), sized)
            # One byte short of the bound, then more: one write of both.
            await client.send_many([b"%d" % (INLINE_FLUSH_SIZE - 5), b"1"])
            while len(answers) < 2:
                chunk = await a.receive(1 << 20)
                writes.append(len(chunk))
                answers.extend(framer.feed(chunk))
            # Exactly the bound: written at once; then one short of it again, then more.
            await client.send_many(
                [b"%d" % (INLINE_FLUSH_SIZE - 4), b"%d" % (INLINE_FLUSH_SIZE - 5), b"1"]
            )
            while len(answers) < 5:
                chunk = await a.receive(1 << 20)
                writes.append(len(chunk))
                answers.extend(framer.feed(chunk))
            await a.send_eof()
        assert writes == [INLINE_FLUSH_SIZE + 4, INLINE_FLUSH_SIZE, INLINE_FLUSH_SIZE + 4]
        assert [len(m) for m in answers] == [
            INLINE_FLUSH_SIZE - 5,
            1,
            INLINE_FLUSH_SIZE - 4,
            INLINE_FLUSH_SIZE - 5,
            1,
        ]


async def test_inline_answers_nothing_more_once_a_write_has_failed() -> None:
    """A flush that finds the peer gone ends the connection: the requests of that read not
    yet answered are not answered, and each is counted dropped, answerless or not."""
    calls: list[bytes] = []

    def respond(request: bytes) -> bytes | None:
        calls.append(request)
        if request == b"big":
            return b"x" * INLINE_FLUSH_SIZE
        return None if request == b"quiet" else request

    with anyio.fail_after(10):
        a, b = memory_pair()  # unbuffered: the server's write waits for a reader
        server = FramedStream(b, LengthPrefixed(4))
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, respond)
            await FramedStream(a, LengthPrefixed(4)).send_many([b"big", b"quiet", b"small"])
            await anyio.wait_all_tasks_blocked()  # the flush of the big answer waits
            await a.aclose()
        assert calls == [b"big"]
        assert server.stats.messages_dropped == 3
        assert server.stats.messages_out == 0


# -- a failure of respond: raised the same way, inline or concurrently --------


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "concurrent"])
async def test_a_failure_of_respond_is_raised_bare_in_both_ways(inline: bool) -> None:
    """Issue 12: concurrently it came wrapped in an ExceptionGroup, so except KeyError missed it."""

    def respond_now(request: bytes) -> bytes:
        if request == b"boom":
            raise KeyError(request)
        return request

    async def respond(request: bytes) -> bytes:
        return respond_now(request)

    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(FramedStream(a, lp()).send_many, [b"boom"])
            with pytest.raises(KeyError) as caught:
                await serve_pipelined(server, respond_now if inline else respond)
            await server.aclose()
    assert caught.value.args == (b"boom",)
    # The traceback still leads to where respond raised.
    assert caught.traceback[-1].name == "respond_now"


async def test_several_failures_of_respond_at_once_stay_an_exception_group() -> None:
    gate = anyio.Event()

    async def respond(request: bytes) -> bytes:
        await gate.wait()
        raise KeyError(request)

    with anyio.fail_after(10):
        a, b = memory_pair()
        server = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(FramedStream(a, lp()).send_many, [b"one", b"two"])

            async def open_gate() -> None:
                await until(lambda: server.work_in_flight == 2)
                gate.set()

            tg.start_soon(open_gate)
            with pytest.raises(ExceptionGroup) as caught:
                await serve_pipelined(server, respond)
            await server.aclose()
    assert sorted(e.args for e in caught.value.exceptions) == [(b"one",), (b"two",)]
