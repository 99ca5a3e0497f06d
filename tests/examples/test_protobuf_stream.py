"""examples/protobuf_stream.py against the real protobuf package, byte for byte.

protobuf's own delimited helpers (``google.protobuf.proto.serialize_length_prefixed``
and ``parse_length_prefixed``) write and read the same stream as
``LengthPrefixed("varint")``; the hand-written Timestamp codec matches
``timestamp_pb2.Timestamp``; and a server on the framer talks to clients that use
nothing but protobuf and a socket.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import pytest
from google.protobuf import proto, struct_pb2, timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from examples.protobuf_stream import (
    MAX_MESSAGE,
    decode_delimited,
    decode_timestamp,
    delimited,
    encode_delimited,
    encode_timestamp,
    handle_connection,
)
from framing import FrameTooLarge, IncompleteFrame, MalformedFrame, connect, serve
from framing.testing import assert_chunking_invariant, split_at
from framing.varint import encode_varint


def structs() -> list[struct_pb2.Struct]:
    """Struct messages whose sizes cross every varint width up to 3 bytes (and 0)."""
    out = [struct_pb2.Struct()]  # serializes to no bytes at all: a size of 0
    for size in (1, 100, 127, 128, 300, 16_383, 16_384, 70_000):
        message = struct_pb2.Struct()
        message.update({"text": "x" * size, "n": size, "list": [1, "two", None, True]})
        out.append(message)
    return out


def timestamps() -> list[timestamp_pb2.Timestamp]:
    return [
        timestamp_pb2.Timestamp(seconds=s, nanos=n)
        for s, n in [(0, 0), (1_700_000_000, 5), (-3, 999_999_999), (1, 0), (2**40, 1)]
    ]


def protobuf_stream(messages: list[struct_pb2.Struct] | list[timestamp_pb2.Timestamp]) -> bytes:
    """The delimited stream as protobuf writes it."""
    out = io.BytesIO()
    for message in messages:
        proto.serialize_length_prefixed(message, out)
    return out.getvalue()


def protobuf_read(data: bytes, message_class: type[proto.Message]) -> list[proto.Message]:
    """Every message of a delimited stream, as protobuf reads it (bounded by the data)."""
    source = io.BytesIO(data)
    out: list[proto.Message] = []
    for _ in range(len(data) + 1):
        message = proto.parse_length_prefixed(message_class, source)
        if message is None:
            return out
        out.append(message)
    raise AssertionError("protobuf read more messages than there are bytes")


# -- the stream, sans IO ------------------------------------------------------------


@pytest.mark.parametrize("make", [structs, timestamps])
def test_we_write_the_stream_protobuf_writes(make: type) -> None:
    messages = make()
    ours = encode_delimited(m.SerializeToString() for m in messages)
    assert ours == protobuf_stream(messages)


@pytest.mark.parametrize(
    ("make", "cls"), [(structs, struct_pb2.Struct), (timestamps, timestamp_pb2.Timestamp)]
)
def test_protobuf_reads_the_stream_we_write(make: type, cls: type[proto.Message]) -> None:
    messages = make()
    assert protobuf_read(encode_delimited(m.SerializeToString() for m in messages), cls) == messages


def test_we_read_protobufs_stream_however_it_is_split() -> None:
    messages = structs()
    stream = protobuf_stream(messages)
    payloads = [m.SerializeToString() for m in messages]
    rng = random.Random(12)
    chunks = split_at(stream, [rng.randrange(len(stream)) for _ in range(200)])
    assert_chunking_invariant(delimited, stream, payloads, chunks)
    assert [struct_pb2.Struct.FromString(p) for p in decode_delimited(stream)] == messages


def test_a_size_over_the_limit_is_refused_before_the_bytes_come() -> None:
    framer = delimited()
    with pytest.raises(FrameTooLarge) as caught:
        framer.feed(encode_varint(MAX_MESSAGE + 1))
    assert (caught.value.size, caught.value.limit) == (MAX_MESSAGE + 1, MAX_MESSAGE)


def test_a_stream_cut_inside_a_message_is_incomplete() -> None:
    stream = protobuf_stream(timestamps())
    with pytest.raises(IncompleteFrame) as caught:
        decode_delimited(stream[:-1])
    assert [decode_timestamp(m) for m in caught.value.messages] == [
        (t.seconds, t.nanos) for t in timestamps()[:-1]
    ]


# -- Timestamp by hand ---------------------------------------------------------------

int64s = st.integers(-(2**63), 2**63 - 1)
int32s = st.integers(-(2**31), 2**31 - 1)


@given(int64s, int32s)
def test_timestamp_by_hand_is_protobufs_byte_for_byte(seconds: int, nanos: int) -> None:
    theirs = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
    assert encode_timestamp(seconds, nanos) == theirs
    assert decode_timestamp(theirs) == (seconds, nanos)


def test_timestamp_with_another_field_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="unexpected field tag 26 at byte 0"):
        decode_timestamp(b"\x1a\x00")  # field 3, length-delimited
    with pytest.raises(MalformedFrame, match="a field cut short at byte 0"):
        decode_timestamp(b"\x08")


# -- over TCP, against clients that use only protobuf and a socket -----------------


@asynccontextmanager
async def running() -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        server = await tg.start(
            partial(serve, handle_connection, delimited(), host="127.0.0.1", port=0)
        )
        yield server.addresses[0][1]
        tg.cancel_scope.cancel()


async def read_until(
    stream: anyio.abc.ByteStream, count: int, cls: type[proto.Message]
) -> list[proto.Message]:
    """Read raw bytes until protobuf finds ``count`` whole messages (bounded reads)."""
    data = b""
    for _ in range(1000):
        data += await stream.receive()
        try:
            messages = protobuf_read(data, cls)
        except ValueError:  # protobuf: a message cut short, more bytes to come
            continue
        if len(messages) == count:
            return messages
    raise AssertionError(f"no {count} messages in {len(data)} bytes")


@pytest.mark.anyio
async def test_server_answers_a_protobuf_client_over_tcp() -> None:
    asked = timestamps()
    with anyio.fail_after(20):
        async with running() as port, await anyio.connect_tcp("127.0.0.1", port) as sock:
            await sock.send(protobuf_stream(asked))  # every request in one write
            answers = await read_until(sock, len(asked), timestamp_pb2.Timestamp)
    assert [(a.seconds, a.nanos) for a in answers] == [(t.seconds + 1, t.nanos) for t in asked]


@pytest.mark.anyio
async def test_framed_client_to_a_protobuf_server_over_tcp() -> None:
    """The other way round: our FramedStream writes; a plain socket and protobuf read."""
    asked = timestamps()
    got: list[proto.Message] = []

    async def protobuf_server(sock: anyio.abc.SocketStream) -> None:
        async with sock:
            messages = await read_until(sock, len(asked), timestamp_pb2.Timestamp)
            got.extend(messages)
            await sock.send(protobuf_stream(messages))  # echoed, as protobuf writes it

    with anyio.fail_after(20):
        async with (
            await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(listener.serve, protobuf_server)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with await connect("127.0.0.1", port, delimited()) as stream:
                await stream.send_many([encode_timestamp(t.seconds, t.nanos) for t in asked])
                echoed = [decode_timestamp(await stream.receive()) for _ in asked]
            tg.cancel_scope.cancel()
    assert got == asked
    assert echoed == [(t.seconds, t.nanos) for t in asked]


@pytest.mark.anyio
async def test_an_oversize_announcement_closes_that_connection_only() -> None:
    with anyio.fail_after(20):
        async with running() as port:
            async with await anyio.connect_tcp("127.0.0.1", port) as hostile:
                await hostile.send(encode_varint(MAX_MESSAGE + 1))
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await hostile.receive()
            async with await connect("127.0.0.1", port, delimited()) as stream:
                await stream.send(encode_timestamp(5))
                assert decode_timestamp(await stream.receive()) == (6, 0)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_serve_and_tick(backend: str) -> None:
    command = [sys.executable, "-m", "examples.protobuf_stream", "--backend", backend]
    server = subprocess.Popen([*command, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        port = line.rsplit(":", 1)[1].strip()
        done = subprocess.run(
            [*command, "tick", "--port", port, "1700000000.5", "-1.25", "0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.splitlines() == [
            "1700000001.500000000",
            "-1.750000000",  # -1.25 s is -2 s + 0.75 s: a second later, -1 s + 0.75 s
            "1.000000000",
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)
