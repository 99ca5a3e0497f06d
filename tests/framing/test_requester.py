"""Requester: pipelined calls from many tasks over one stream, replies matched by key or in order.

Every test runs over an in-memory pair and over TCP on 127.0.0.1, on both
backends. The "server" side is driven by hand (or by serve_pipelined) so the
order of replies is the test's choice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.streams.stapled import StapledObjectStream

from framing import (
    FramedStream,
    FrameTooLarge,
    LengthPrefixed,
    MessageTooLarge,
    Requester,
    RequestFailed,
    RequestTimeout,
    UnexpectedReply,
    serve_pipelined,
)
from tests.framing.transports import stream_pair, until

pytestmark = pytest.mark.anyio

KINDS = ["memory", "tcp4"]


def first_byte(message: bytes) -> bytes:
    """The correlation key of these tests: a message's first byte."""
    return message[:1]


@asynccontextmanager
async def framed_pair(
    kind: str, max_size: int = 1000
) -> AsyncIterator[tuple[FramedStream[bytes], FramedStream[bytes]]]:
    """(client, server) FramedStreams with LengthPrefixed(2) over the given transport."""
    async with stream_pair(kind) as (left, right):
        yield (
            FramedStream(left, LengthPrefixed(2, max_size=max_size)),
            FramedStream(right, LengthPrefixed(2, max_size=max_size)),
        )


async def receive_count(stream: FramedStream[bytes], count: int) -> list[bytes]:
    """Read exactly ``count`` messages (bounded: count reads at most)."""
    got: list[bytes] = []
    for _ in range(count):
        if len(got) >= count:
            break
        got.extend(await stream.receive_many())
    assert len(got) == count
    return got


# -- matching ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_in_order_replies_go_to_their_callers(kind: str) -> None:
    def upper(request: bytes) -> bytes:
        return request.upper()

    replies: dict[bytes, bytes] = {}

    async def call(calls: Requester[bytes], message: bytes) -> None:
        replies[message] = await calls.request(message)

    with anyio.fail_after(10):
        async with framed_pair(kind) as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, upper)  # answers in arrival order
            async with Requester(client) as calls, anyio.create_task_group() as callers:
                for i in range(20):
                    callers.start_soon(call, calls, b"req %d" % i)
            await client.send_eof()
    assert replies == {b"req %d" % i: b"REQ %d" % i for i in range(20)}


@pytest.mark.parametrize("kind", KINDS)
async def test_keyed_replies_out_of_order_go_to_their_callers(kind: str) -> None:
    replies: dict[bytes, bytes] = {}

    async def call(calls: Requester[bytes], message: bytes) -> None:
        replies[message] = await calls.request(message)

    with anyio.fail_after(10):
        async with (
            framed_pair(kind) as (client, server),
            Requester(client, key=first_byte) as calls,
            anyio.create_task_group() as tg,
        ):
            for k in b"abc":
                tg.start_soon(call, calls, bytes([k]) + b" asks")
            requests = await receive_count(server, 3)
            for request in reversed(requests):  # c, b, a
                await server.send(request[:1] + b" answered")
    assert replies == {b"a asks": b"a answered", b"b asks": b"b answered", b"c asks": b"c answered"}


@pytest.mark.parametrize("kind", KINDS)
async def test_fifty_tasks_at_once_each_get_their_own_reply(kind: str) -> None:
    """Fifty concurrent callers, answered concurrently in a shuffled order."""
    delays = {i: random.random() * 0.02 for i in range(50)}

    async def respond(request: bytes) -> bytes:
        await anyio.sleep(delays[request[0]])
        return request + b"!"

    replies: dict[int, bytes] = {}

    async def call(calls: Requester[bytes], i: int) -> None:
        replies[i] = await calls.request(bytes([i]) + b"x" * i)

    with anyio.fail_after(20):
        async with framed_pair(kind) as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, respond)
            async with (
                Requester(client, key=first_byte, max_in_flight=50) as calls,
                anyio.create_task_group() as callers,
            ):
                for i in range(50):
                    callers.start_soon(call, calls, i)
            assert calls.in_flight == 0
            await client.send_eof()
    assert replies == {i: bytes([i]) + b"x" * i + b"!" for i in range(50)}


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_returns_replies_in_request_order(kind: str) -> None:
    """A batch larger than max_in_flight goes out in parts, as slots free up."""

    async def respond(request: bytes) -> bytes:
        await anyio.sleep(random.random() * 0.01)
        return request.upper()

    batch = [bytes([i]) + b"q" for i in range(30)]
    with anyio.fail_after(10):
        async with framed_pair(kind) as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(serve_pipelined, server, respond)
            async with Requester(client, key=first_byte, max_in_flight=8) as calls:
                replies = await calls.request_many(batch)
            await client.send_eof()
    assert replies == [r.upper() for r in batch]


async def test_request_many_refuses_a_duplicate_key_before_sending() -> None:
    with anyio.fail_after(10):
        async with (
            framed_pair("memory") as (client, _server),
            Requester(client, key=first_byte) as calls,
        ):
            with pytest.raises(ValueError, match="same key"):
                await calls.request_many([b"a1", b"a2"])
            assert calls.in_flight == 0


# -- one caller gives up ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "in-order"])
async def test_cancelling_one_call_drops_its_reply_and_leaves_the_others(
    kind: str, keyed: bool
) -> None:
    """a, b, c in flight; a's caller gives up; a's reply, when it comes, goes to no one."""
    replies: dict[bytes, bytes] = {}
    scopes: dict[bytes, anyio.CancelScope] = {}

    async def call(calls: Requester[bytes], message: bytes) -> None:
        with anyio.CancelScope() as scope:
            scopes[message] = scope
            replies[message] = await calls.request(message)

    with anyio.fail_after(10):
        async with (
            framed_pair(kind) as (client, server),
            Requester(client, key=first_byte if keyed else None) as calls,
        ):
            async with anyio.create_task_group() as tg:
                for message in (b"a", b"b", b"c"):
                    tg.start_soon(call, calls, message)
                    assert await server.receive() == message  # this order on the wire
                scopes[b"a"].cancel()
                await anyio.wait_all_tasks_blocked()
                assert calls.in_flight == 3  # a's slot waits for a's reply
                for message in (b"a", b"b", b"c"):
                    await server.send(message + b" reply")
            assert calls.in_flight == 0
            # The line is intact: a later call gets its own reply.
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, calls, b"d")
                assert await server.receive() == b"d"
                await server.send(b"d reply")
    assert replies == {b"b": b"b reply", b"c": b"c reply", b"d": b"d reply"}


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_raises_request_timeout_and_the_late_reply_is_dropped(kind: str) -> None:
    async def answer_next(server: FramedStream[bytes]) -> None:
        assert await server.receive() == b"next"
        await server.send(b"next reply")

    with anyio.fail_after(10):
        async with framed_pair(kind) as (client, server), Requester(client) as calls:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.receive)  # the request goes out whole; no reply
                with pytest.raises(RequestTimeout, match=r"no reply within 0\.05 s") as caught:
                    await calls.request(b"slow", timeout=0.05)
            assert caught.value.timeout == 0.05
            assert isinstance(caught.value, TimeoutError)
            assert calls.in_flight == 1  # its slot waits for the reply
            await server.send(b"late")  # to the abandoned call: dropped
            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_next, server)
                assert await calls.request(b"next", timeout=5) == b"next reply"
            assert calls.in_flight == 0


async def test_a_request_cut_off_while_being_written_fails_every_call() -> None:
    """The memory pair's sends wait for the peer to read: a timeout cuts the write off."""
    with anyio.fail_after(10):
        async with framed_pair("memory") as (client, _server), Requester(client) as calls:
            with pytest.raises(RequestTimeout):
                await calls.request(b"never read", timeout=0.05)
            with pytest.raises(RequestFailed, match="cut off while being written"):
                await calls.request(b"next")


async def test_a_call_refused_by_the_framer_sends_nothing_and_frees_its_slot() -> None:
    with anyio.fail_after(10):
        async with (
            framed_pair("memory", max_size=10) as (client, server),
            Requester(client, max_in_flight=1) as calls,
        ):
            with pytest.raises(MessageTooLarge):
                await calls.request(b"x" * 11)
            assert calls.in_flight == 0
            async with anyio.create_task_group() as tg:

                async def answer() -> None:
                    assert await server.receive() == b"fits"
                    await server.send(b"ok")

                tg.start_soon(answer)
                assert await calls.request(b"fits") == b"ok"  # the line did not shift


async def test_a_duplicate_key_in_flight_is_refused_to_its_caller_only() -> None:
    with anyio.fail_after(10):
        async with (
            framed_pair("memory") as (client, server),
            Requester(client, key=first_byte) as calls,
        ):
            async with anyio.create_task_group() as tg:
                first: list[bytes] = []

                async def call() -> None:
                    first.append(await calls.request(b"k1"))

                tg.start_soon(call)
                assert await server.receive() == b"k1"
                with pytest.raises(ValueError, match="key b'k' is already in flight"):
                    await calls.request(b"k2")
                await server.send(b"k reply")
            assert first == [b"k reply"]


# -- the stream fails: every call fails ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_keyed_a_reply_to_no_call_fails_every_call(kind: str) -> None:
    errors: list[UnexpectedReply] = []

    async def call(calls: Requester[bytes], message: bytes) -> None:
        with pytest.raises(UnexpectedReply) as caught:
            await calls.request(message)
        errors.append(caught.value)

    with anyio.fail_after(10):
        async with (
            framed_pair(kind) as (client, server),
            Requester(client, key=first_byte) as calls,
        ):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, calls, b"a")
                tg.start_soon(call, calls, b"b")
                await receive_count(server, 2)
                await server.send(b"z stray")  # key z: no such call
            assert len(errors) == 2
            assert "a reply with key b'z' matches no call" in str(errors[0])
            assert [e.reply for e in errors] == [b"z stray", b"z stray"]
            with pytest.raises(UnexpectedReply, match="matches no call"):
                await calls.request(b"later")


@pytest.mark.parametrize("kind", KINDS)
async def test_in_order_a_reply_with_nothing_in_flight_fails_every_later_call(kind: str) -> None:
    with anyio.fail_after(10):
        async with framed_pair(kind) as (client, server), Requester(client) as calls:
            await server.send(b"stray")
            await until(lambda: calls.in_flight == 0 and calls._failure is not None)
            with pytest.raises(UnexpectedReply, match="a reply came with no call in flight"):
                await calls.request(b"later")


async def test_a_reply_whose_key_cannot_be_read_fails_every_call() -> None:
    def strict_key(message: bytes) -> bytes:
        if not message:
            raise ValueError("an empty message has no key")
        return message[:1]

    with anyio.fail_after(10):
        async with (
            framed_pair("memory") as (client, server),
            Requester(client, key=strict_key) as calls,
            anyio.create_task_group() as tg,
        ):

            async def answer_empty() -> None:
                await server.receive()
                await server.send(b"")

            tg.start_soon(answer_empty)
            with pytest.raises(UnexpectedReply, match=r"key cannot be read.*no key"):
                await calls.request(b"q")


@pytest.mark.parametrize("kind", KINDS)
async def test_end_of_stream_fails_every_call_naming_it(kind: str) -> None:
    errors: list[RequestFailed] = []

    async def call(calls: Requester[bytes], message: bytes) -> None:
        with pytest.raises(RequestFailed) as caught:
            await calls.request(message)
        errors.append(caught.value)

    with anyio.fail_after(10):
        async with (
            framed_pair(kind) as (client, server),
            Requester(client, key=first_byte) as calls,
        ):
            async with anyio.create_task_group() as tg:
                for message in (b"a", b"b", b"c"):
                    tg.start_soon(call, calls, message)
                await receive_count(server, 3)
                await server.send_eof()
            assert len(errors) == 3
            for error in errors:
                assert "the peer ended the stream" in str(error)
                assert isinstance(error.__cause__, anyio.EndOfStream)
            with pytest.raises(RequestFailed, match="the peer ended the stream"):
                await calls.request(b"d")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_framing_error_fails_every_call_with_it_as_cause(kind: str) -> None:
    with anyio.fail_after(10):
        async with framed_pair(kind, max_size=10) as (client, server), Requester(client) as calls:
            async with anyio.create_task_group() as tg:

                async def oversize() -> None:
                    await server.receive()
                    await server.transport_stream.send(b"\x00\xff")  # 255 > 10

                tg.start_soon(oversize)
                with pytest.raises(RequestFailed, match="FrameTooLarge") as caught:
                    await calls.request(b"q")
            assert isinstance(caught.value.__cause__, FrameTooLarge)


async def test_leaving_the_block_fails_the_calls_still_in_flight() -> None:
    errors: list[RequestFailed] = []

    async def call(calls: Requester[bytes]) -> None:
        with pytest.raises(RequestFailed) as caught:
            await calls.request(b"never answered")
        errors.append(caught.value)

    with anyio.fail_after(10):
        async with framed_pair("memory") as (client, server), anyio.create_task_group() as tg:
            async with Requester(client) as calls:
                tg.start_soon(call, calls)
                await server.receive()
            await until(lambda: bool(errors))
            assert "closed with calls in flight" in str(errors[0])
            with pytest.raises(RequestFailed, match="closed"):
                await calls.request(b"after")


async def test_an_error_in_the_block_propagates_unwrapped() -> None:
    with anyio.fail_after(10):
        async with framed_pair("memory") as (client, _server):
            with pytest.raises(KeyError):
                async with Requester(client):
                    raise KeyError("mine")


async def test_request_outside_the_block_is_refused() -> None:
    async with framed_pair("memory") as (client, _server):
        calls = Requester(client)
        with pytest.raises(RuntimeError, match="outside its 'async with' block"):
            await calls.request(b"q")


def test_max_in_flight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_in_flight must be at least 1, not 0"):
        Requester(FramedStream(None, LengthPrefixed(2)), max_in_flight=0)  # type: ignore[arg-type]


# -- backpressure --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_max_in_flight_makes_the_next_request_wait_for_a_reply(kind: str) -> None:
    replies: list[bytes] = []

    async def call(calls: Requester[bytes], message: bytes) -> None:
        replies.append(await calls.request(message))

    with anyio.fail_after(10):
        async with (
            framed_pair(kind) as (client, server),
            Requester(client, key=first_byte, max_in_flight=2) as calls,
            anyio.create_task_group() as tg,
        ):
            for message in (b"a", b"b", b"c"):
                tg.start_soon(call, calls, message)
            first_two = await receive_count(server, 2)
            await anyio.wait_all_tasks_blocked()
            assert calls.in_flight == 2  # the third waits for a slot, unsent
            with anyio.move_on_after(0.1):
                extra = await server.receive()
                pytest.fail(f"a third request went out: {extra!r}")
            # One reply frees one slot: the third goes out.
            await server.send(first_two[0] + b" reply")
            third = await server.receive()
            assert sorted([*first_two, third]) == [b"a", b"b", b"c"]
            await server.send(first_two[1] + b" reply")
            await server.send(third + b" reply")
    assert sorted(replies) == [b"a reply", b"b reply", b"c reply"]


# -- any object stream, not only FramedStream ----------------------------------------


async def test_any_object_stream_will_do_in_order_with_request_many() -> None:
    """A stapled pair of memory object streams: messages are objects, not bytes."""
    to_server, server_inbox = anyio.create_memory_object_stream[tuple[str, int]](10)
    server_outbox, from_server = anyio.create_memory_object_stream[tuple[str, int]](10)

    async def doubler() -> None:
        async with server_inbox, server_outbox:
            async for name, value in server_inbox:
                await server_outbox.send((name, value * 2))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(doubler)
            stream = StapledObjectStream(to_server, from_server)
            async with Requester(stream, max_in_flight=3) as calls:
                asked = [("n", i) for i in range(10)]
                assert await calls.request_many(asked) == [("n", 2 * i) for i in range(10)]
                assert await calls.request(("one", 21)) == ("one", 42)
            await stream.aclose()


async def test_failing_every_call_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="framing.requester")
    with anyio.fail_after(10):
        async with (
            framed_pair("memory") as (client, server),
            Requester(client) as calls,
            anyio.create_task_group() as tg,
        ):

            async def end_after_request() -> None:
                await server.receive()
                await server.send_eof()

            tg.start_soon(end_after_request)
            with pytest.raises(RequestFailed):
                await calls.request(b"q")
    assert [r.getMessage().split("): ", 1)[1] for r in caplog.records] == [
        "the peer ended the stream; calls failed: 1"
    ]
