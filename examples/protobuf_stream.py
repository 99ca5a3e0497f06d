r"""A protobuf length-delimited stream: each message after its size as a varint.

This is the stream protobuf's own helpers write and read (Java's
``writeDelimitedTo`` / ``parseDelimitedFrom``, C++'s
``SerializeDelimitedToOstream``, Python's ``proto.serialize_length_prefixed``),
and what ``LengthPrefixed("varint")`` frames::

    +------+------------------+----------+---------------------------+
    | 0x08 | 8 message bytes  | 0xAC 02  | 300 message bytes ...     |
    +------+------------------+----------+---------------------------+
      size   one message        size       the next (300 = AC 02)

Protobuf itself needs no part of this: the messages are bytes, made by
``message.SerializeToString()`` and read by ``Message.FromString(data)``. To
run without the protobuf package, this file writes one well-known message by
hand, ``google.protobuf.Timestamp``::

    message Timestamp { int64 seconds = 1; int32 nanos = 2; }

    seconds=1700000000, nanos=5  ->  08 80 E2 CF AA 06   10 05
                                     field 1, varint     field 2, varint

and a server that answers each Timestamp with the one a second later::

    python -m examples.protobuf_stream serve --port 7002
    python -m examples.protobuf_stream tick --port 7002 1700000000.5 -3
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial

import anyio

from framing import (
    FramedStream,
    FramingError,
    LengthPrefixed,
    MalformedFrame,
    connect,
    serve,
    serve_pipelined,
)
from framing.varint import decode_varint, encode_varint

__all__ = [
    "MAX_MESSAGE",
    "decode_delimited",
    "decode_timestamp",
    "delimited",
    "encode_delimited",
    "encode_timestamp",
    "main",
    "tick",
]

# The largest message accepted: protobuf's own default limit for one parse is
# 64 MiB, far more than a stream of small records needs; 1 MiB bounds what one
# connection can make the server hold.
MAX_MESSAGE = 1 << 20
NANOS_PER_SECOND = 1_000_000_000


def delimited(max_size: int = MAX_MESSAGE) -> LengthPrefixed:
    """The framer of a length-delimited protobuf stream: a varint size, then the message."""
    return LengthPrefixed("varint", max_size=max_size)


def encode_delimited(messages: Iterable[bytes]) -> bytes:
    """Serialized messages -> one delimited stream (as protobuf's helpers write it)."""
    framer = delimited()
    return b"".join(framer.encode(message) for message in messages)


def decode_delimited(data: bytes) -> list[bytes]:
    """A whole delimited stream -> its serialized messages.

    Raises:
        FramingError: a size over ``MAX_MESSAGE``, a varint over 10 bytes, or the
            stream ending inside a message (:class:`~framing.IncompleteFrame`);
            its ``messages`` are the whole ones before the fault.
    """
    framer = delimited()
    messages = framer.feed(data)  # an error here carries the messages before it
    try:
        return messages + framer.feed_eof()
    except FramingError as exc:
        exc.messages = messages + exc.messages  # nothing read correctly is lost
        raise


# -- google.protobuf.Timestamp by hand --------------------------------------------


def encode_timestamp(seconds: int, nanos: int = 0) -> bytes:
    """Serialize a Timestamp as protobuf does: each field non-zero only, in field order.

    An int64 or int32 field is a varint of the value's two's complement in 64
    bits, so a negative value takes 10 bytes (protobuf's rule for int32 too).
    """
    out = b""
    if seconds:
        out += b"\x08" + encode_varint(seconds & 0xFFFF_FFFF_FFFF_FFFF)  # field 1, varint
    if nanos:
        out += b"\x10" + encode_varint(nanos & 0xFFFF_FFFF_FFFF_FFFF)  # field 2, varint
    return out


def decode_timestamp(data: bytes) -> tuple[int, int]:
    """Parse a serialized Timestamp: ``(seconds, nanos)``; absent fields are 0.

    Raises:
        MalformedFrame: a field other than a varint 1 or 2, or a varint cut short.
            A framing error, though the frame itself was whole: in a server,
            a peer that sends one is treated as one that broke the framing
            (one log line, that connection closed).
    """
    fields = {1: 0, 2: 0}
    at = 0
    while at < len(data):
        try:
            tag, size = decode_varint(data, at)
            if size and tag not in (1 << 3, 2 << 3):  # field number << 3 | wire type 0
                raise MalformedFrame("Timestamp", f"unexpected field tag {tag} at byte {at}")
            value, more = decode_varint(data, at + size) if size else (0, 0)
        except ValueError as exc:  # a varint over 10 bytes
            raise MalformedFrame("Timestamp", f"{exc} at byte {at}") from None
        if not more:
            raise MalformedFrame("Timestamp", f"a field cut short at byte {at}")
        at += size + more
        fields[tag >> 3] = value - (1 << 64) if value >= 1 << 63 else value
    return fields[1], fields[2]


def tick(request: bytes) -> bytes:
    """The server's answer: the Timestamp one second after the one asked."""
    seconds, nanos = decode_timestamp(request)
    return encode_timestamp(seconds + 1, nanos)


async def handle_connection(stream: FramedStream[bytes]) -> None:
    """One connection: every Timestamp read is answered, in order (inline: no waiting)."""
    await serve_pipelined(stream, tick)


# -- the command line ----------------------------------------------------------------


def _parse_time(text: str) -> tuple[int, int]:
    """``"1700000000.5"`` -> ``(1700000000, 500000000)``; ``"-1.5"`` -> ``(-2, 500000000)``."""
    total = int(Decimal(text) * NANOS_PER_SECOND)
    seconds, nanos = divmod(total, NANOS_PER_SECOND)  # nanos stays 0..999999999, as protobuf's
    return seconds, nanos


async def _serve(host: str, port: int) -> None:
    async with anyio.create_task_group() as tg:
        server = await tg.start(
            partial(serve, handle_connection, delimited(), host=host, port=port)
        )
        bound_host, bound_port = server.addresses[0]
        print(f"listening on {bound_host}:{bound_port}", flush=True)


async def _tick(host: str, port: int, times: list[tuple[int, int]]) -> None:
    async with await connect(host, port, delimited()) as stream:
        await stream.send_many([encode_timestamp(*time) for time in times])  # one write
        for _ in times:
            seconds, nanos = decode_timestamp(await stream.receive())
            print(f"{seconds}.{nanos:09d}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` or ``tick`` from the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m examples.protobuf_stream")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="answer each Timestamp with one a second later")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=7002, help="0 for any free port")
    ticking = commands.add_parser("tick", help="send Timestamps; print the answers")
    ticking.add_argument("--host", default="127.0.0.1")
    ticking.add_argument("--port", type=int, default=7002)
    ticking.add_argument("times", nargs="+", type=_parse_time, help="seconds, such as 1.5")
    args = parser.parse_args(argv)
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(_serve, args.host, args.port, backend=args.backend)
        return 0
    try:
        anyio.run(_tick, args.host, args.port, args.times, backend=args.backend)
    except (OSError, anyio.EndOfStream) as exc:
        print(f"error: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
