from __future__ import annotations

import os
import random
import socket
import ssl
import struct
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute

from framing import transport
from framing.base import Framer
from framing.delimited import Lines
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    MessageTooLarge,
    MessageTypeError,
)
from framing.length import LengthPrefixed
from framing.raw import Raw
from framing.server import serve
from framing.stream import (
    BufferBudget,
    BufferBudgetExceeded,
    FramedStream,
    IdleTimeout,
    MessageTimeout,
    ReceiveTimeout,
    connect,
    connect_unix,
)
from tests.framing.transports import memory_pair, stream_pair, tls_contexts, until

pytestmark = pytest.mark.anyio


def lp(**options: Any) -> LengthPrefixed:
    return LengthPrefixed(2, **options)


async def write_from_task(stream: ByteStream, data: bytes, eof: bool = False) -> None:
    await stream.send(data)
    if eof:
        await stream.send_eof()


# -- receiving one message at a time, and many -----------------------------


async def test_receive_parses_one_message_per_call() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp())
            await a.send(lp().encode(b"one") + lp().encode(b"two") + lp().encode(b"three"))
            assert await framed.receive() == b"one"
            # The rest stays unparsed in the framer until asked for.
            assert framed.framer.buffered == 5 + 7
            assert framed.stats.peak_buffered == 5 + 7
            assert await framed.receive() == b"two"
            assert await framed.receive_many() == [b"three"]


async def test_receive_many_returns_everything_one_read_completed() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp())
            messages = [bytes([i]) * i for i in range(50)]
            await a.send(b"".join(lp().encode(m) for m in messages))
            got: list[bytes] = []
            while len(got) < len(messages):
                got.extend(await framed.receive_many())
            assert got == messages
            assert framed.stats.messages_in == len(messages)


async def test_a_receive_size_of_one_reads_a_byte_at_a_time() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(), receive_size=1)
            await a.send(lp().encode(b"hello"))
            assert await framed.receive() == b"hello"
            assert framed.stats.bytes_in == 7


async def test_receive_waits_across_reads_for_a_split_message() -> None:
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp())
        encoded = lp().encode(b"hello world")

        async def write() -> None:
            # Unbuffered: each byte is its own chunk on the receiving side.
            for i in range(len(encoded)):
                await a.send(encoded[i : i + 1])

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            assert await framed.receive() == b"hello world"
        assert framed.stats.bytes_in == len(encoded)


# -- ends of stream and errors ---------------------------------------------


async def test_eof_inside_message_raises_incomplete_then_broken() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp())
            await a.send(lp().encode(b"whole") + b"\x00\x09part")
            await a.send_eof()
            assert await framed.receive() == b"whole"
            with pytest.raises(IncompleteFrame) as info:
                await framed.receive()
            assert info.value.held == 6
            assert info.value.messages == []
            with pytest.raises(
                anyio.BrokenResourceError, match=r"^the stream broke earlier$"
            ) as broken:
                await framed.receive()
            assert broken.value.__cause__ is info.value
            assert framed.stats.errors == {"IncompleteFrame": 1}


async def test_framing_error_delivers_earlier_messages_first_with_receive_many() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(max_size=4))
            await a.send(lp().encode(b"ok") + lp().encode(b"fine") + b"\x00\x09toolong!!")
            assert await framed.receive_many() == [b"ok", b"fine"]
            with pytest.raises(FrameTooLarge) as info:
                await framed.receive_many()
            # Already delivered: not handed out a second time.
            assert info.value.messages == []
            with pytest.raises(anyio.BrokenResourceError):
                await framed.receive()


async def test_framing_error_delivers_earlier_messages_first_with_receive() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(max_size=4))
            await a.send(lp().encode(b"ok") + b"\x00\x09toolong!!")
            assert await framed.receive() == b"ok"
            with pytest.raises(FrameTooLarge):
                await framed.receive()
            assert framed.stats.errors == {"FrameTooLarge": 1}


async def test_feed_eof_messages_are_delivered_one_at_a_time() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, Lines(on_eof="deliver"))
            await a.send(b"unterminated")
            await a.send_eof()
            assert [m async for m in framed] == [b"unterminated"]


class CommasAtEof:
    """A framer that holds every byte and, at the end of the stream, delivers them cut at
    commas: several messages from one ``feed_eof``, as the Framer protocol allows."""

    max_size = 1024

    def __init__(self) -> None:
        self.held = b""

    @property
    def buffered(self) -> int:
        return len(self.held)

    def feed(self, data: bytes = b"", *, limit: int | None = None) -> list[bytes]:
        self.held += bytes(data)
        return []

    def feed_eof(self) -> list[bytes]:
        held, self.held = self.held, b""
        if held.endswith(b"!"):  # a last message cut off: the ones before it come with the error
            *whole, cut = held.split(b",")
            raise IncompleteFrame(repr(self), len(cut), messages=whole)
        return held.split(b",") if held else []

    def encode(self, message: bytes) -> bytes:
        return message + b","

    def detach(self) -> bytes:
        held, self.held = self.held, b""
        return held

    def clone(self) -> CommasAtEof:
        return CommasAtEof()


async def test_several_messages_from_feed_eof_are_received_one_at_a_time() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, CommasAtEof())
            await a.send(b"one,two,three")
            await a.send_eof()
            assert await framed.receive() == b"one"
            assert framed.stats.messages_in == 1
            # The old framer's messages are still to come: no switching now.
            with pytest.raises(
                RuntimeError, match=r"^messages parsed by the old framer are still undelivered$"
            ):
                framed.switch_framer(lp())
            assert await framed.receive() == b"two"
            assert await framed.receive_many() == [b"three"]
            assert framed.stats.messages_in == 3
            with pytest.raises(anyio.EndOfStream):
                await framed.receive()


async def test_send_bytes_counts_its_bytes_and_only_the_messages_it_is_told() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(a, lp())
            await framed.send_bytes(b"VALUE k 0 2\r\n")  # bytes outside the framing
            await framed.send_bytes(lp().encode(b"x") + lp().encode(b"y"), messages=2)
            assert (framed.stats.messages_out, framed.stats.bytes_out) == (2, 13 + 6)
            await framed.aclose()
            received = b""
            while len(received) < 19:
                received += await b.receive()
            assert received == b"VALUE k 0 2\r\n\x00\x01x\x00\x01y"


async def test_messages_before_an_incomplete_end_are_received_one_at_a_time() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, CommasAtEof())
            await a.send(b"one,two,thr!")
            await a.send_eof()
            assert await framed.receive() == b"one"
            assert await framed.receive() == b"two"
            with pytest.raises(IncompleteFrame) as info:
                await framed.receive()
            assert (info.value.held, info.value.messages) == (4, [])
            assert framed.stats.messages_in == 2


async def test_send_of_oversize_message_sends_nothing() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(a, lp(max_size=3))
            with pytest.raises(MessageTooLarge):
                await framed.send(b"four")
            with pytest.raises(MessageTooLarge):
                await framed.send_many([b"ok", b"four"])
            await framed.send(b"ok")
            assert await b.receive() == b"\x00\x02ok"
            assert framed.stats.messages_out == 1
            assert framed.stats.bytes_out == 4


async def test_send_of_a_str_is_a_type_error_naming_the_framer_and_sends_nothing() -> None:
    """Issue 12: not the bare ``TypeError: string argument without an encoding``."""
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(a, Lines())
            untyped: Any = framed  # what a caller without a type checker may do
            sends: list[Any] = [
                lambda: untyped.send("hello"),
                lambda: untyped.send_many([b"ok", "hello"]),
                lambda: untyped.send_bytes("hello"),
                lambda: untyped.send_bytes(5),  # not five zero bytes
            ]
            for send in sends:
                with pytest.raises(TypeError) as info:
                    await send()
                assert isinstance(info.value, MessageTypeError)
                assert isinstance(info.value, EncodeError)
                assert info.value.kind in ("str", "int")
                assert str(info.value) == f"Lines(): expects bytes, not {info.value.kind}"
            await framed.send(b"ok")
            assert await b.receive() == b"ok\n"
            assert (framed.stats.messages_out, framed.stats.bytes_out) == (1, 3)


# -- switching framers -----------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
async def test_switch_framer_mid_stream_keeps_every_byte(chunk_size: int) -> None:
    body = [b"first", b"", b"x" * 300]
    wire = b"HELLO\r\nCOUNT 3\r\n\r\n" + b"".join(lp().encode(m) for m in body) + b"bye\n"
    with anyio.fail_after(5):
        a, b = memory_pair()
        lines = FramedStream(b, Lines())
        async with anyio.create_task_group() as tg:

            async def write() -> None:
                for i in range(0, len(wire), chunk_size):
                    await a.send(wire[i : i + chunk_size])
                await a.send_eof()

            tg.start_soon(write)
            header = []
            while (line := await lines.receive()) != b"":
                header.append(line)
            assert header == [b"HELLO", b"COUNT 3"]
            framed = lines.switch_framer(lp())
            assert framed is lines  # in place
            assert [await framed.receive() for _ in body] == body
            back = framed.switch_framer(Lines())
            assert [m async for m in back] == [b"bye"]
        assert back.stats.messages_in == 2 + 1 + 3 + 1


async def test_switch_framer_while_receiving_is_busy() -> None:
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(framed.receive)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError):
                framed.switch_framer(Raw())
            await a.send(lp().encode(b"go"))


# -- timeouts --------------------------------------------------------------


async def test_idle_timeout_raises_and_stream_stays_usable() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(), idle_timeout=0.1)
            with pytest.raises(IdleTimeout) as info:
                await framed.receive()
            assert isinstance(info.value, ReceiveTimeout)
            assert isinstance(info.value, TimeoutError)
            assert info.value.held == 0
            await a.send(lp().encode(b"late"))
            assert await framed.receive() == b"late"
            assert framed.stats.errors == {"IdleTimeout": 1}
            with pytest.raises(IdleTimeout):
                await framed.receive()
            assert framed.stats.errors == {"IdleTimeout": 2}


@pytest.mark.parametrize("framer", [lp(), Lines()], ids=["length", "lines"])
@pytest.mark.parametrize("kind", ["tcp4", "framing-tcp4", "memory"])
async def test_idle_timeout_fires_with_part_of_a_message_held(
    kind: str, framer: Framer[bytes]
) -> None:
    """Idle means no byte arrived, whatever the framer holds (issue 11: a one-byte
    slowloris held echo connections forever when only idle_timeout was set)."""
    with anyio.fail_after(5):
        async with stream_pair(kind) as (a, b):
            framed = FramedStream(b, framer.clone(), idle_timeout=0.2)
            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.send, b"\x00" if isinstance(framer, LengthPrefixed) else b"a")
                with pytest.raises(IdleTimeout) as info:
                    await framed.receive()
            assert 0.2 <= anyio.current_time() - started < 2
            assert (info.value.held, info.value.timeout) == (1, 0.2)
            assert str(info.value) == (
                "no byte arrived within 0.2 s (1 bytes of an unfinished message held)"
            )


async def test_idle_timeout_waits_on_while_a_send_is_in_progress() -> None:
    """A stream busy writing to a peer that does not read is busy, not idle."""
    big = b"x" * (8 * 1024 * 1024)
    with anyio.fail_after(10):
        async with stream_pair("memory") as (a, b):
            framer = LengthPrefixed(4, max_size=len(big))
            framed = FramedStream(b, framer, idle_timeout=0.2)
            peer = FramedStream(a, framer.clone())
            async with anyio.create_task_group() as tg:
                tg.start_soon(framed.send, big)  # the memory pair is unbuffered: it waits
                await anyio.sleep(0.5)  # two idle timeouts pass while the send waits
                assert framed.waiting_since is None
                tg.start_soon(framed.receive)
                await anyio.sleep(0.5)
                assert await peer.receive() == big
                await peer.send(b"still there")
            assert framed.stats.errors == {}


async def test_idle_timeout_waits_on_while_work_is_in_flight() -> None:
    timed_out: list[float] = []

    async def receive(framed: FramedStream[bytes]) -> None:
        with pytest.raises(IdleTimeout):
            await framed.receive()
        timed_out.append(anyio.current_time())

    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (_a, b):
            framed = FramedStream(b, lp(), idle_timeout=0.1)
            framed.work_in_flight = 1
            started = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive, framed)
                await anyio.sleep(0.4)  # four idle timeouts pass while busy
                assert timed_out == []
                framed.work_in_flight = 0
    assert timed_out[0] - started >= 0.4


async def test_waiting_since_is_when_the_receive_began_waiting() -> None:
    with anyio.fail_after(5):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(), idle_timeout=10)
            assert framed.waiting_since is None
            async with anyio.create_task_group() as tg:
                before = time.monotonic()
                tg.start_soon(framed.receive)
                await anyio.wait_all_tasks_blocked()
                since = framed.waiting_since
                assert since is not None
                assert before <= since <= time.monotonic()
                await a.send(lp().encode(b"done"))
            assert framed.waiting_since is None


async def test_message_timeout_cuts_a_trickling_peer() -> None:
    encoded = lp().encode(b"x" * 200)
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            # No idle timeout can catch this peer: a byte every 20 ms.
            framed = FramedStream(b, lp(), idle_timeout=1.0, message_timeout=0.3)

            async def trickle() -> None:
                for i in range(len(encoded)):
                    await a.send(encoded[i : i + 1])
                    await anyio.sleep(0.02)

            async with anyio.create_task_group() as tg:
                tg.start_soon(trickle)
                with pytest.raises(MessageTimeout) as info:
                    await framed.receive()
                assert 0 < info.value.held < len(encoded)
                assert info.value.timeout == 0.3
                assert str(info.value) == (
                    f"a message was not finished within 0.3 s ({info.value.held} bytes of it held)"
                )
                tg.cancel_scope.cancel()


async def test_message_timeout_alone_on_a_drainable_socket() -> None:
    """A server's stream (drainable, on a socket) with only message_timeout set still times a
    begun message."""
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(), message_timeout=0.2, drainable=True)
            await a.send(b"\x00")
            with pytest.raises(MessageTimeout):
                await framed.receive()


async def test_drain_after_part_of_a_message_was_read_lets_it_finish() -> None:
    """Drained between receives with part of the next message held: the next receive
    finishes that message, and only the one after ends the stream."""
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp(), drainable=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_chunks, a, [lp().encode(b"one") + b"\x00\x03t", b"wo"])
            assert await framed.receive() == b"one"
            assert framed.framer.buffered == 3
            framed.drain()
            assert await framed.receive() == b"two"
        with pytest.raises(anyio.EndOfStream):
            await framed.receive()


async def test_message_timeout_restarts_with_each_message() -> None:
    # Each write finishes a message and begins the next, so the framer is never
    # empty; the whole run is longer than message_timeout but no message is.
    messages = [bytes([i]) * 10 for i in range(8)]
    wire = b"".join(lp().encode(m) for m in messages)
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, lp(), message_timeout=0.5)

            async def write() -> None:
                for i in range(0, len(wire), 12):
                    await a.send(wire[i : i + 12])
                    await anyio.sleep(0.1)

            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                got = [await framed.receive() for _ in messages]
            assert got == messages


async def test_message_timeout_times_each_message_split_across_reads() -> None:
    """Each message begins with the framer empty and ends in a later read: its clock starts
    afresh each time."""
    with anyio.fail_after(10):
        a, b = memory_pair()  # unbuffered: each write is one read
        framed = FramedStream(b, lp(), message_timeout=5)
        for body in (b"abc", b"def", b"ghi"):
            wire = lp().encode(body)
            async with anyio.create_task_group() as tg:
                tg.start_soon(write_chunks, a, [wire[:3], wire[3:]])
                assert await framed.receive() == body
            assert framed.framer.buffered == 0


async def test_message_timeout_counts_from_the_first_byte_not_the_next_receive() -> None:
    """One read brings a whole message and the start of the next: the next one's clock starts
    then, and time the caller spends before receiving again counts against it."""
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp(), message_timeout=0.3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.send, lp().encode(b"one") + b"\x00\x03t")
            assert await framed.receive() == b"one"
        await anyio.sleep(0.4)  # busy with "one"; "two" began 0.4 s ago
        started = anyio.current_time()
        with pytest.raises(MessageTimeout):
            await framed.receive()
        assert anyio.current_time() - started < 0.2


async def test_message_timeout_does_not_count_the_wait_between_messages() -> None:
    """After a message ends with nothing held, the clock waits for the next message's first
    byte."""
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp(), message_timeout=0.3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.send, lp().encode(b"one"))
            assert await framed.receive() == b"one"

        async def later() -> None:
            await anyio.sleep(0.4)  # longer than message_timeout, between messages
            await write_chunks(a, [b"\x00\x03t", b"wo"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            assert await framed.receive() == b"two"


async def test_waiting_since_is_none_once_a_receive_has_given_up() -> None:
    """A receive that timed out or was cancelled no longer waits: the stream is not one a
    server would shed as waiting longest."""
    with anyio.fail_after(5):
        _, b = memory_pair()
        framed = FramedStream(b, lp(), idle_timeout=0.05)
        with pytest.raises(IdleTimeout):
            await framed.receive()
        assert framed.waiting_since is None
        with anyio.move_on_after(0.01):
            await framed.receive()
        assert framed.waiting_since is None


async def test_the_budget_is_given_back_when_the_end_of_stream_delivers_the_rest() -> None:
    budget = BufferBudget(100)
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, Lines(on_eof="deliver"), buffer_budget=budget)
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_then_end, a, b"unterminated")
            assert await framed.receive() == b"unterminated"
        assert budget.held == 0  # before aclose


async def write_then_end(stream: ByteStream, data: bytes) -> None:
    await stream.send(data)
    await stream.send_eof()


# -- the shared buffer budget ----------------------------------------------


async def test_buffer_budget_fails_only_the_stream_that_exceeds_it() -> None:
    budget = BufferBudget(100)
    with anyio.fail_after(5):
        a1, b1 = memory_pair()
        a2, b2 = memory_pair()
        first = FramedStream(b1, lp(), buffer_budget=budget)
        second = FramedStream(b2, lp(), buffer_budget=budget)
        async with anyio.create_task_group() as tg:
            tg.start_soon(first.receive)
            await a1.send(b"\x00\x50" + b"a" * 60)  # 62 bytes held of an 82-byte frame
            await anyio.wait_all_tasks_blocked()
            assert budget.held == 62
            tg.start_soon(a2.send, lp().encode(b"done") + b"\x00\x50" + b"b" * 60)
            # The message completed in the same read is still delivered...
            assert await second.receive() == b"done"
            # ...then the error: this stream would take the total over 100.
            with pytest.raises(BufferBudgetExceeded) as info:
                await second.receive()
            assert (info.value.held, info.value.total, info.value.limit) == (62, 124, 100)
            assert str(info.value) == (
                f"{lp()!r}: holding 62 bytes takes all connections together to 124 bytes, "
                "over the budget of 100 bytes"
            )
            await second.aclose()
            assert budget.held == 62
            await a1.send(b"a" * 20)
        assert budget.held == 0
        assert budget.peak == 124
        assert second.stats.errors == {"BufferBudgetExceeded": 1}


# -- backpressure ----------------------------------------------------------


async def _send_until_stalled(stream: FramedStream[bytes], cap: int) -> int:
    """Send 64 KiB messages until `cap` bytes went out or sending stalls; return bytes sent."""
    sent = 0
    chunk = b"x" * 65536
    stalled_polls = 0
    async with anyio.create_task_group() as tg:

        async def sender() -> None:
            nonlocal sent
            while sent < cap:
                await stream.send(chunk)
                sent += len(chunk)

        tg.start_soon(sender)
        last = -1
        for _ in range(400):  # bounded: at most 400 polls
            await anyio.sleep(0.02)
            if sent >= cap:
                break
            stalled_polls = stalled_polls + 1 if sent == last else 0
            if stalled_polls >= 10:
                break
            last = sent
        tg.cancel_scope.cancel()
    return sent


def held_by_transport(stream: ByteStream) -> int:
    """Bytes read from the kernel but not yet taken by a receive (0 on trio: it reads on demand)."""
    return stream.queued if isinstance(stream, transport.AsyncioSocketStream) else 0


async def write_chunks(stream: ByteStream, chunks: list[bytes]) -> None:
    for chunk in chunks:
        await stream.send(chunk)


async def test_buffer_budget_allows_exactly_its_limit() -> None:
    with pytest.raises(ValueError, match=r"^limit must be at least 1, not 0$"):
        BufferBudget(0)
    assert BufferBudget(1).limit == 1
    budget = BufferBudget(5)
    assert (budget.held, budget.peak) == (0, 0)
    assert budget.charge(5) is False  # at the limit: not over it
    assert budget.charge(1) is True
    assert budget.charge(-6) is False
    budget = BufferBudget(5)
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp(), buffer_budget=budget)
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_chunks, a, [b"\x00\x09abc", b"defghi"])  # 5 bytes held: all of it
            assert await framed.receive() == b"abcdefghi"
        assert budget.peak == 5


async def test_accepted_connection_does_not_read_ahead_without_bound() -> None:
    """A client writes and the accepting side never reads (so no receive ever waited)."""
    cap = 64 * 1024 * 1024
    with anyio.fail_after(30):
        async with stream_pair("framing-tcp4") as (a, accepted):
            client = FramedStream(a, Raw())
            server = FramedStream(accepted, Raw())
            sent = await _send_until_stalled(client, cap)
            held = held_by_transport(accepted) + server.framer.buffered
    # Without flow control the client would reach the cap; with it, the
    # kernel's buffers fill and the client blocks long before.
    assert sent < 32 * 1024 * 1024
    assert held <= 1024 * 1024


async def test_client_does_not_read_ahead_when_server_writes() -> None:
    cap = 64 * 1024 * 1024
    with anyio.fail_after(30):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(SocketAttribute.local_port)
            client = await connect("127.0.0.1", port, Raw())
            server = FramedStream(
                await listener.listeners[0].accept(),  # type: ignore[attr-defined]
                Raw(),
            )
            sent = await _send_until_stalled(server, cap)
            held = held_by_transport(client.transport_stream) + client.framer.buffered
            await client.aclose()
            await server.aclose()
    assert sent < 32 * 1024 * 1024
    assert held <= 1024 * 1024


# -- sending on the transports framing picks (its own, on asyncio) --------------


async def test_send_in_a_cancelled_scope_writes_nothing() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            sender = FramedStream(a, lp())
            with anyio.CancelScope() as scope:
                scope.cancel()
                await sender.send(b"lost")
            assert scope.cancelled_caught
            with anyio.CancelScope() as scope:
                scope.cancel()
                await sender.send_many([b"lost", b"too"])
            assert scope.cancelled_caught
            await sender.send(b"kept")
            await sender.send_eof()
            assert [m async for m in FramedStream(b, lp())] == [b"kept"]
            assert sender.stats.messages_out == 1


async def test_a_task_that_only_sends_lets_others_run() -> None:
    """Sends that never wait still yield to the other tasks now and then."""
    sends = 200
    ticks = 0
    done = False

    async def other() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, _b), anyio.create_task_group() as tg:
            sender = FramedStream(a, lp())
            tg.start_soon(other)
            for _ in range(sends):  # 200 x 3 bytes: the kernel takes them all at once
                await sender.send(b"x")
            done = True
    # At least one turn for the other task per 25 sends (the fast path yields
    # every transport.YIELD_EVERY + 1 = 17; trio at every send).
    assert transport.YIELD_EVERY < 25
    assert ticks >= sends // 25


async def test_send_after_the_transport_closed_raises_closed() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, _b):
            sender = FramedStream(a, lp())
            await sender.send(b"one")
            await a.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await sender.send(b"two")


async def test_send_to_a_reset_peer_raises_broken() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            sender = FramedStream(a, lp())
            raw = b.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await b.aclose()  # SO_LINGER 0: the peer answers with a reset
            with pytest.raises(anyio.BrokenResourceError):
                await _send_until_broken(sender)


async def _send_until_broken(sender: FramedStream[bytes]) -> None:
    for _ in range(100):  # bounded: the reset is seen within a few sends
        await sender.send(b"x" * 1000)
        await anyio.sleep(0.01)


# -- receiving on the transports framing picks ----------------------------------

# What asyncio's selector transport reads from the kernel at most in one go.
ONE_READ = 256 * 1024


async def test_receiving_connection_reads_ahead_a_bounded_amount() -> None:
    """Once a receive has waited the transport keeps reading, but only so far."""
    cap = 64 * 1024 * 1024
    with anyio.fail_after(30):
        async with stream_pair("framing-tcp4") as (a, b):
            client = FramedStream(a, Raw())
            server = FramedStream(b, Raw())
            await client.send(b"first")
            assert await server.receive() == b"first"  # waited: reading was resumed
            sent = await _send_until_stalled(client, cap)
            held = held_by_transport(b)
            await client.send_eof()
            received = 0
            async for chunk in server:  # nothing read ahead is lost or reordered
                assert chunk == b"x" * len(chunk)
                received += len(chunk)
    assert sent < 32 * 1024 * 1024
    assert held <= transport.READ_AHEAD + ONE_READ
    # The last send may have been written and then cancelled while it waited.
    assert sent <= received <= sent + 65536


async def test_receive_cancelled_while_waiting_loses_no_bytes() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, lp())
            await a.send(lp().encode(b"one"))
            assert await server.receive() == b"one"
            scope = anyio.CancelScope()

            async def receive_until_cancelled() -> None:
                with scope:
                    await server.receive()

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive_until_cancelled)
                await anyio.wait_all_tasks_blocked()  # the receive waits for bytes
                scope.cancel()
            assert scope.cancelled_caught
            await a.send(lp().encode(b"two"))
            assert await server.receive() == b"two"
            assert server.stats.errors == {}


async def test_receive_in_a_cancelled_scope_takes_nothing_queued(anyio_backend_name: str) -> None:
    wire = lp().encode(b"two") + lp().encode(b"three")
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, lp(), receive_size=5)
            await a.send(lp().encode(b"one"))
            assert await server.receive() == b"one"
            await a.send(wire)
            if anyio_backend_name == "asyncio":  # read ahead into anyio's queue
                await until(lambda: held_by_transport(b) == len(wire))
            with anyio.CancelScope() as scope:
                scope.cancel()
                await server.receive()
            assert scope.cancelled_caught
            assert server.framer.buffered == 0
            assert [await server.receive(), await server.receive()] == [b"two", b"three"]


async def test_a_task_that_receives_queued_data_lets_others_run(anyio_backend_name: str) -> None:
    """Receives that find data queued (and so never wait) still yield now and then."""
    receives = 200
    ticks = 0
    done = False

    async def other() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            # One 3-byte message per read of the transport: every receive reads.
            server = FramedStream(b, lp(), receive_size=3)
            await a.send(lp().encode(b"x") * (receives + 1))
            assert await server.receive() == b"x"
            if anyio_backend_name == "asyncio":  # everything queued: no receive waits
                await until(lambda: held_by_transport(b) == 3 * receives)
            async with anyio.create_task_group() as tg:
                tg.start_soon(other)
                for _ in range(receives):
                    assert await server.receive() == b"x"
                done = True
    assert ticks >= receives // 25


async def test_receive_holds_the_transports_guard() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, lp())
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.receive)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(anyio.BusyResourceError):
                    await b.receive()
                await a.send(lp().encode(b"go"))


async def test_receive_from_a_reset_peer_raises_broken() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, lp())
            await a.send(lp().encode(b"one"))
            assert await server.receive() == b"one"  # the transport is reading now
            raw = a.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await a.aclose()  # SO_LINGER 0: a reset
            with pytest.raises(anyio.BrokenResourceError):
                await server.receive()
            assert server.stats.errors == {"BrokenResourceError": 1}


async def test_aclose_while_a_receive_waits_raises_closed() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, lp())
            await a.send(lp().encode(b"one"))
            assert await server.receive() == b"one"
            raised: list[BaseException] = []

            async def receive() -> None:
                try:
                    await server.receive()
                except anyio.ClosedResourceError as exc:
                    raised.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                await server.aclose()
            assert len(raised) == 1


async def test_fast_receive_and_the_transports_own_receive_interleave() -> None:
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            server = FramedStream(b, Raw(), receive_size=4)
            await a.send(b"abcdefgh")
            assert await server.receive() == b"abcd"
            assert await b.receive() == b"efgh"  # anyio's own receive, on the same queue
            await a.send(b"ijkl")
            assert await server.receive() == b"ijkl"
            await a.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await server.receive()


# -- segmentation at the socket level ---------------------------------------

FRAMERS: dict[str, Framer[bytes]] = {"length": LengthPrefixed(2), "lines": Lines()}


def _messages(rng: random.Random, framer_name: str) -> list[bytes]:
    alphabet = b"abcdefghij \t" if framer_name == "lines" else bytes(range(256))
    return [
        bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 50, 700, 3000])))
        for _ in range(60)
    ]


@pytest.mark.parametrize("framer_name", sorted(FRAMERS))
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_small_writes_with_nodelay_give_exact_messages(
    framer_name: str, seed: int
) -> None:
    rng = random.Random(seed)
    framer = FRAMERS[framer_name].clone()
    messages = _messages(rng, framer_name)
    wire = b"".join(framer.encode(m) for m in messages)
    with anyio.fail_after(20):
        async with stream_pair("tcp4") as (a, b):
            a.extra(SocketAttribute.raw_socket).setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
            framed = FramedStream(b, framer.clone(), receive_size=rng.choice([7, 512, 65536]))

            async def write() -> None:
                pos = 0
                while pos < len(wire):
                    size = rng.choice([1, 1, 2, 3, 5, 8, 13, 100, 1500])
                    await a.send(wire[pos : pos + size])
                    pos += size
                    if rng.random() < 0.3:
                        await anyio.lowlevel.checkpoint()
                await a.send_eof()

            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                got: list[bytes] = []
                async for message in framed:
                    got.append(message)
            assert got == messages
            assert framed.stats.bytes_in == len(wire)


@pytest.mark.parametrize("framer_name", sorted(FRAMERS))
async def test_one_big_write_gives_exact_messages(framer_name: str) -> None:
    framer = FRAMERS[framer_name].clone()
    messages = _messages(random.Random(9), framer_name) * 20
    wire = b"".join(framer.encode(m) for m in messages)
    with anyio.fail_after(20):
        async with stream_pair("tcp4") as (a, b):
            framed = FramedStream(b, framer.clone())
            async with anyio.create_task_group() as tg:
                tg.start_soon(write_from_task, a, wire, True)
                got: list[bytes] = []
                while True:
                    try:
                        got.extend(await framed.receive_many())
                    except anyio.EndOfStream:
                        break
            assert got == messages


# -- connect ----------------------------------------------------------------


async def test_connect_unix(tmp_path: Any) -> None:
    path = tmp_path / "sock"
    with anyio.fail_after(5):
        async with await anyio.create_unix_listener(path) as listener:
            client = await connect_unix(
                path, lp(), receive_size=100, idle_timeout=3.0, message_timeout=4.0
            )
            assert (client.receive_size, client.idle_timeout, client.message_timeout) == (
                100,
                3.0,
                4.0,
            )
            async with client, FramedStream(await listener.accept(), lp()) as server:
                await client.send(b"over unix")
                assert await server.receive() == b"over unix"


async def test_connect_refused_raises_oserror() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with anyio.fail_after(5), pytest.raises(OSError, match=r"(?i)connect"):
        await connect("127.0.0.1", port, lp())


@pytest.mark.parametrize(
    "options",
    [{"receive_size": 0}, {"idle_timeout": 0}, {"message_timeout": -1.0}],
)
async def test_bad_options_raise_value_error(options: dict[str, Any]) -> None:
    a, _ = memory_pair()
    with pytest.raises(ValueError, match="must be"):
        FramedStream(a, lp(), **options)


# -- draining (a server's graceful shutdown) ------------------------------------


@pytest.mark.parametrize("kind", ["tcp4", "unix", "tls", "memory", "framing-tcp4", "framing-unix"])
async def test_drain_wakes_a_receive_waiting_between_messages(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (_, b):
            server = FramedStream(b, lp(), drainable=True)
            ended: list[str] = []

            async def receive() -> None:
                with pytest.raises(anyio.EndOfStream):
                    await server.receive()
                ended.append("ended")

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                server.drain()
            assert ended == ["ended"]


@pytest.mark.parametrize("kind", ["tcp4", "framing-tcp4"])
async def test_drain_without_drainable_ends_receiving_when_the_receive_returns(kind: str) -> None:
    """A stream not made drainable leaves a waiting receive alone: it returns its message,
    and the next receive ends the stream."""
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            framed = FramedStream(b, lp())
            got: list[bytes] = []

            async def receive() -> None:
                got.append(await framed.receive())

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                framed.drain()
                await anyio.sleep(0.05)
                await a.send(lp().encode(b"late"))
            assert got == [b"late"]
            with pytest.raises(anyio.EndOfStream):
                await framed.receive()


@pytest.mark.parametrize("kind", ["tcp4", "unix", "tls", "memory", "framing-tcp4", "framing-unix"])
async def test_drain_lets_a_receive_inside_a_message_finish_it(kind: str) -> None:
    data = lp().encode(b"hello")
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            server = FramedStream(b, lp(), drainable=True)
            got: list[bytes] = []

            async def receive() -> None:
                got.append(await server.receive())
                with pytest.raises(anyio.EndOfStream):
                    await server.receive()

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await a.send(data[:3])
                await until(lambda: server.framer.buffered == 3)
                server.drain()
                await a.send(data[3:])
            assert got == [b"hello"]


async def test_drain_shuts_a_socket_down_only_while_a_receive_waits() -> None:
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            server = FramedStream(b, lp(), drainable=True)
            await a.send(lp().encode(b"one"))
            assert await server.receive() == b"one"  # a receive came and went
            server.drain()
            # No receive was waiting: the socket was left readable (SHUT_RD would
            # make recv return b"" at once), and the next receive just ends.
            fd = b.extra(SocketAttribute.raw_socket).fileno()
            with (
                socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as dup,
                pytest.raises(BlockingIOError),
            ):
                dup.recv(1, socket.MSG_DONTWAIT)
            with pytest.raises(anyio.EndOfStream):
                await server.receive()


@pytest.mark.parametrize("ours", [False, True], ids=["anyio", "framing"])
async def test_drain_of_a_connection_the_peer_just_reset_does_not_raise(ours: bool) -> None:
    """The peer's reset leaves the socket unable to shut down (ENOTCONN): a drain that comes
    before the waiting receive has seen the reset still does not raise."""
    with anyio.fail_after(10), socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        if ours and transport.asyncio_loop() is not None:
            b: ByteStream = await transport.connect_tcp("127.0.0.1", port)
        else:
            b = await anyio.connect_tcp("127.0.0.1", port)
        peer, _ = listening.accept()
        server = FramedStream(b, lp(), drainable=True)
        outcome: list[type[BaseException]] = []

        async def receive() -> None:
            try:
                await server.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                outcome.append(type(exc))

        async with server, anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await anyio.wait_all_tasks_blocked()
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()  # a reset, which loopback delivers at once
            server.drain()  # no await since: the receive has not woken yet
        assert len(outcome) == 1


async def test_send_eof_to_a_peer_that_just_reset_raises_broken() -> None:
    """shutdown() after a reset the loop has not seen yet says ENOTCONN: that is a broken
    connection (anyio's contract), not a bare OSError (``framing connect`` printed a
    traceback for it)."""
    with anyio.fail_after(10), socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        if transport.asyncio_loop() is not None:
            b: ByteStream = await transport.connect_tcp("127.0.0.1", port)
        else:
            b = await anyio.connect_tcp("127.0.0.1", port)
        peer, _ = listening.accept()
        async with FramedStream(b, lp()) as client:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()  # a reset, which loopback delivers at once
            time.sleep(0.05)  # noqa: ASYNC251 (the loop must not run: it would see the reset)
            with pytest.raises(anyio.BrokenResourceError):
                await client.send_eof()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_connect_passes_its_options_on(tls: bool) -> None:
    server_ctx, client_ctx = tls_contexts()

    async def echo(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            await stream.send(message)

    options: dict[str, Any] = (
        {"ssl_context": client_ctx, "tls_hostname": "localhost"} if tls else {}
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve(
                    echo, lp(), ssl_context=server_ctx if tls else None, task_status=task_status
                )
            )
            client = await connect(
                "127.0.0.1",
                info.port,
                lp(),
                local_host="127.0.0.2",
                receive_size=100,
                idle_timeout=3.0,
                message_timeout=4.0,
                **options,
            )
            async with client:
                assert client.extra(SocketAttribute.local_address)[0] == "127.0.0.2"
                assert (client.receive_size, client.idle_timeout, client.message_timeout) == (
                    100,
                    3.0,
                    4.0,
                )
                await client.send(b"from 127.0.0.2")
                assert await client.receive() == b"from 127.0.0.2"
            tg.cancel_scope.cancel()


async def test_connect_tls_true_checks_the_default_context_against_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tls=True`` alone: the default context (here trusting the test CA), the host name
    checked, standard-compatible closing unless told otherwise."""
    server_ctx, client_ctx = tls_contexts()
    monkeypatch.setattr(ssl, "create_default_context", lambda *args, **kwargs: client_ctx)

    async def echo(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            await stream.send(message)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve(
                    echo,
                    lp(),
                    host=["127.0.0.1", "::1"],
                    ssl_context=server_ctx,
                    task_status=task_status,
                )
            )
            for compatible in (None, True, False):
                told = {} if compatible is None else {"tls_standard_compatible": compatible}
                client = await connect("localhost", info.port, lp(), tls=True, **told)
                async with client:
                    expected = compatible is not False  # standard-compatible by default
                    assert client.extra(TLSAttribute.standard_compatible) is expected
                    await client.send(b"secret")
                    assert await client.receive() == b"secret"
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect("127.0.0.1", info.port, lp(), tls=True, tls_hostname="example.org")
            tg.cancel_scope.cancel()


async def test_connect_tls_to_a_peer_that_is_not_tls_raises_and_closes() -> None:
    _, client_ctx = tls_contexts()
    before = len(os.listdir("/proc/self/fd"))
    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listeners:
            listener = listeners.listeners[0]
            port = listener.extra(SocketAttribute.local_port)

            async def hang_up() -> None:
                stream = await listener.accept()
                await stream.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(hang_up)
                with pytest.raises(
                    (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream)
                ):
                    await connect("127.0.0.1", port, lp(), ssl_context=client_ctx)
    assert len(os.listdir("/proc/self/fd")) <= before


async def test_a_closed_stream_gives_its_budget_back_once_and_cannot_switch_framer() -> None:
    """After aclose every call raises ClosedResourceError, switch_framer too (it used to move
    the closed framer's bytes to the new one and charge them to the budget again)."""
    budget = BufferBudget(100)
    with anyio.fail_after(5):
        a, b = memory_pair()
        framed = FramedStream(b, lp(), buffer_budget=budget)
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.send, b"\x00\x09abc")
            with anyio.move_on_after(0.2):
                await framed.receive()  # holds the 5 bytes, waits for the rest
        assert budget.held == 5
        await framed.aclose()
        assert budget.held == 0
        with pytest.raises(anyio.ClosedResourceError):
            framed.switch_framer(lp())
        await framed.aclose()
        assert budget.held == 0


async def test_a_send_cancelled_while_waiting_its_turn_gives_it_up() -> None:
    with anyio.fail_after(5):
        a, b = memory_pair()  # unbuffered: a send waits for the reader
        framed = FramedStream(a, lp())
        async with anyio.create_task_group() as tg:
            tg.start_soon(framed.send, b"first")
            await anyio.wait_all_tasks_blocked()
            with anyio.move_on_after(0.05):
                await framed.send(b"never")  # waits for its turn, then gives up
            assert await b.receive() == lp().encode(b"first")
        async with anyio.create_task_group() as tg:
            tg.start_soon(framed.send, b"third")
            assert await b.receive() == lp().encode(b"third")


async def test_waiting_since_is_recorded_on_a_stream_without_timeouts() -> None:
    """(It was 0.0 on a stream with no timeout and not drainable.)"""
    with anyio.fail_after(5):
        async with stream_pair("memory") as (a, b):
            framed = FramedStream(b, lp())
            async with anyio.create_task_group() as tg:
                before = time.monotonic()
                tg.start_soon(framed.receive)
                await anyio.wait_all_tasks_blocked()
                since = framed.waiting_since
                assert since is not None
                assert before <= since <= time.monotonic()
                await a.send(lp().encode(b"done"))


# -- the transport's own contract (anyio's ByteStream) ------------------------------


async def test_transport_receive_of_exactly_max_bytes_leaves_no_empty_chunk() -> None:
    """A chunk as long as ``max_bytes`` is returned whole, and the next receive waits for
    bytes: a receive never returns ``b""`` (anyio's contract; EOF raises)."""
    with anyio.fail_after(5):
        async with stream_pair("framing-tcp4") as (a, b):
            await a.send(b"hello")
            assert await b.receive(5) == b"hello"  # loopback delivers 5 bytes whole
            await a.send(b"x")
            assert await b.receive() == b"x"


async def test_transport_refuses_a_second_receiver_and_a_second_sender() -> None:
    with anyio.fail_after(10):
        async with stream_pair("framing-tcp4") as (a, b), anyio.create_task_group() as tg:
            tg.start_soon(b.receive)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError, match="already reading from this"):
                await b.receive()
            # Nobody reads a: a large send waits for the peer's window.
            tg.start_soon(a.send, b"x" * (16 << 20))
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError, match="already writing to this"):
                await a.send(b"y")
            tg.cancel_scope.cancel()


async def test_closed_says_whether_the_stream_was_closed() -> None:
    async with stream_pair("framing-tcp4") as (a, _):
        stream = FramedStream(a, lp())
        assert not stream.closed
        await stream.aclose()
        assert stream.closed
