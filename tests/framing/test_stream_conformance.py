"""The ObjectStream contract, checked for FramedStream over every transport.

Like trio's `testing/_check_streams.py`: one generic check, run over TCP (IPv4 and
IPv6), a Unix socket, TLS, an in-memory pair and the transports framing picks
itself, on both anyio backends and on uvloop.
"""

from __future__ import annotations

import functools

import anyio
import pytest
from anyio.abc import SocketAttribute

from framing.length import LengthPrefixed
from framing.stream import FramedStream
from tests.framing.transports import CAPABILITIES, TRANSPORTS, stream_pair

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Both backends, and uvloop too: framing's own transport runs on its event loop."""
    return request.param


MESSAGES = [b"", b"a", b"hello", bytes(range(256)) * 40, b"x" * 65535]


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_messages_both_ways(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))

            async def send_all(stream: FramedStream[bytes]) -> None:
                for message in MESSAGES:
                    await stream.send(message)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_all, left)
                tg.start_soon(send_all, right)
                got_right = [await right.receive() for _ in MESSAGES]
                got_left = [await left.receive() for _ in MESSAGES]
            assert got_right == MESSAGES
            assert got_left == MESSAGES
            assert left.stats.messages_out == right.stats.messages_in == len(MESSAGES)
            assert left.stats.bytes_out == right.stats.bytes_in


async def test_send_many_and_receive_many(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))
            batch = [str(i).encode() for i in range(500)]
            async with anyio.create_task_group() as tg:
                tg.start_soon(left.send_many, batch)
                got: list[bytes] = []
                while len(got) < len(batch):
                    many = await right.receive_many()
                    assert many
                    got.extend(many)
            assert got == batch
            await left.send_many([])
            assert left.stats.messages_out == len(batch)


async def test_full_duplex_send_while_receiving(kind: str) -> None:
    """One task sends while another receives on the same stream."""
    count = 300
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))

            async def echo() -> None:
                for _ in range(count):
                    await right.send(await right.receive())

            async def produce() -> None:
                for i in range(count):
                    await left.send(i.to_bytes(2, "big"))

            async with anyio.create_task_group() as tg:
                tg.start_soon(echo)
                tg.start_soon(produce)
                got = [int.from_bytes(await left.receive(), "big") for _ in range(count)]
            assert got == list(range(count))


async def test_end_of_stream_ends_iteration_and_half_close(kind: str) -> None:
    caps = CAPABILITIES[kind]
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))

            async def send_then_end() -> None:
                await left.send_many([b"one", b"two"])
                if caps.half_close:
                    await left.send_eof()
                else:
                    with pytest.raises(NotImplementedError):
                        await left.send_eof()
                    await left.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_then_end)
                assert [m async for m in right] == [b"one", b"two"]
                # EndOfStream is sticky.
                with pytest.raises(anyio.EndOfStream):
                    await right.receive()
                if not caps.half_close:
                    await right.aclose()  # TLS: answers the peer's close_notify
            if caps.half_close:
                # Half-open: the side that saw EOF still sends; the other still receives.
                async with anyio.create_task_group() as tg:
                    tg.start_soon(right.send, b"after eof")
                    assert await left.receive() == b"after eof"
                await right.send_eof()
                with pytest.raises(anyio.EndOfStream):
                    await left.receive()


async def test_closed_stream_raises_closed_resource_error(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left = FramedStream(a, LengthPrefixed(2))
            async with anyio.create_task_group() as tg:
                tg.start_soon(b.aclose)  # TLS: both ends exchange close_notify
                await left.aclose()
            await left.aclose()  # idempotent
            with pytest.raises(anyio.ClosedResourceError):
                await left.receive()
            with pytest.raises(anyio.ClosedResourceError):
                await left.receive_many()
            with pytest.raises(anyio.ClosedResourceError):
                await left.send(b"x")
            with pytest.raises(anyio.ClosedResourceError):
                await left.send_many([b"x"])


async def test_two_receivers_get_busy_resource_error(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))
            async with anyio.create_task_group() as tg:
                tg.start_soon(right.receive)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(
                    anyio.BusyResourceError, match=r"^Another task is already reading from"
                ):
                    await right.receive()
                with pytest.raises(anyio.BusyResourceError):
                    await right.receive_many()
                await left.send(b"unblock")


async def test_concurrent_senders_wait_their_turn_and_never_interleave(kind: str) -> None:
    """A send blocked by a full window holds the turn; a second sender waits, then goes.

    (Issue 11: anyio's sockets raise BusyResourceError to the second sender.)
    """
    # 32 MiB cannot fit in any loopback buffer: the first send blocks until read.
    big = b"x" * (32 * 1024 * 1024)
    with anyio.fail_after(30):
        async with stream_pair(kind) as (a, b):
            framer = LengthPrefixed(4, max_size=len(big))
            left, right = FramedStream(a, framer), FramedStream(b, framer.clone())
            async with anyio.create_task_group() as tg:
                tg.start_soon(left.send, big)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(left.send_many, [b"small", b"smaller"])
                tg.start_soon(functools.partial(left.send_bytes, framer.encode(b"raw"), messages=1))
                await anyio.wait_all_tasks_blocked()
                assert await right.receive() == big
                # Each waiting sender's bytes go out whole (trio may start either first).
                after = [await right.receive() for _ in range(3)]
                assert after in ([b"small", b"smaller", b"raw"], [b"raw", b"small", b"smaller"])
            assert left.stats.messages_out == 4


async def test_twenty_tasks_sending_at_once_never_interleave(kind: str) -> None:
    """Issue 11: 20 tasks sending 100 messages of 280 bytes each on one stream got
    BusyResourceError in 19 of them, on both backends."""
    senders, count = 20, 100
    with anyio.fail_after(30):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))

            def message(sender: int, index: int) -> bytes:
                return bytes([sender, index]) + bytes([sender]) * 278

            async def send(sender: int) -> None:
                for index in range(0, count, 2):
                    if index % 4:
                        await left.send_many([message(sender, index), message(sender, index + 1)])
                    else:
                        await left.send(message(sender, index))
                        await left.send(message(sender, index + 1))

            received: list[bytes] = []
            async with anyio.create_task_group() as tg:
                for sender in range(senders):
                    tg.start_soon(send, sender)
                while len(received) < senders * count:
                    received.extend(await right.receive_many())
            seen: dict[int, list[int]] = {}
            for got in received:
                assert got == message(got[0], got[1])  # whole, never interleaved
                seen.setdefault(got[0], []).append(got[1])
            assert seen == {sender: list(range(count)) for sender in range(senders)}
            assert left.stats.messages_out == senders * count


async def test_extra_attributes_pass_through(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left = FramedStream(a, LengthPrefixed(2))
            assert left.extra_attributes.keys() == a.extra_attributes.keys()
            if CAPABILITIES[kind].socket:
                assert left.extra(SocketAttribute.remote_address) == a.extra(
                    SocketAttribute.remote_address
                )
                assert (
                    left.extra(SocketAttribute.local_address)
                    == b.extra(SocketAttribute.remote_address)
                    or kind == "unix"
                )
            else:
                with pytest.raises(anyio.TypedAttributeLookupError):
                    left.extra(SocketAttribute.remote_address)


async def test_peer_closed_receive_ends(kind: str) -> None:
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            left, right = FramedStream(a, LengthPrefixed(2)), FramedStream(b, LengthPrefixed(2))

            async def send_then_close() -> None:
                await left.send(b"last")
                await left.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_then_close)
                assert await right.receive() == b"last"
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await right.receive()
                await right.aclose()  # TLS: answers the peer's close_notify
