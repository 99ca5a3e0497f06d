"""The decode contestants: ours, the peers, and the careful pure-Python baselines.

Each contestant is a function ``run(chunks) -> (frames, elapsed_ns)``: it decodes
the chunks of one stream into the list of payloads (delimiters and headers
removed), timing its own work only (an event loop's start-up is outside the
clock, the decoding and the delivery of every frame inside). Every contestant
delivers frames the cheapest way its API allows: ours return lists, Twisted calls
a bound ``list.append`` as its callback, the stream readers append in a loop.

Framings: ``len2`` and ``len4`` (big-endian length header of 2 or 4 bytes),
``lines`` (``\\n`` or ``\\r\\n`` ends a line, stripped; the test streams use
``\\n``), ``crlf`` (``\\r\\n`` only).
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

Frames = list[bytes]
Contestant = Callable[[Sequence[bytes]], tuple[Frames, int]]

WIDTH = {"len2": 2, "len4": 4}
DELIMITER = {"lines": b"\n", "crlf": b"\r\n"}
#: Big enough for every frame in every run (Twisted's and the stream readers'
#: own limits default lower, 16 KiB or 64 KiB, and must not be what is measured).
BIG = 1 << 27


# -- ours ----------------------------------------------------------------------


def make_ours(framing: str) -> Callable[[], Any]:
    """The factory for our framer of that framing; ``ImportError`` if not there yet."""
    if framing in WIDTH:
        from framing.length import LengthPrefixed

        if framing == "len2":
            return lambda: LengthPrefixed(2, max_size=65535)
        return lambda: LengthPrefixed(4, max_size=BIG)
    from framing.delimited import Delimited, Lines

    if framing == "lines":
        return lambda: Lines(max_size=BIG)
    return lambda: Delimited(b"\r\n", max_size=BIG)


def ours(framing: str, *, pure: bool = False) -> Contestant:
    """Our framer; ``pure``: built on the pure-Python path (no C accelerator), as a
    user without a compiler, or with ``FRAMING_NO_EXTENSIONS=1``, runs it."""
    make = make_ours(framing)
    factory = make
    if pure:
        from framing import _accel

        def factory() -> Any:
            with _accel.extensions(False):
                return make()

    factory()  # fail now, not inside the timing, if the framer is not there

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        framer = factory()
        feed = framer.feed
        frames: Frames = []
        extend = frames.extend
        start = time.perf_counter_ns()
        for chunk in chunks:
            extend(feed(chunk))
        frames.extend(framer.feed_eof())
        return frames, time.perf_counter_ns() - start

    return run


# -- the careful pure-Python baselines that the issue describes ------------------------


def careful_length(framing: str) -> Contestant:
    """One bytearray; parse headers by offset; ``del`` the consumed bytes once per chunk."""
    width = WIDTH[framing]
    unpack_from = struct.Struct(">H" if width == 2 else ">I").unpack_from

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        frames: Frames = []
        append = frames.append
        buf = bytearray()
        start = time.perf_counter_ns()
        for chunk in chunks:
            buf += chunk
            end = len(buf)
            pos = 0
            while end - pos >= width:
                (size,) = unpack_from(buf, pos)
                stop = pos + width + size
                if stop > end:
                    break
                append(bytes(buf[pos + width : stop]))
                pos = stop
            if pos:
                del buf[:pos]
        elapsed = time.perf_counter_ns() - start
        if buf:
            raise ValueError("stream ended inside a frame")
        return frames, elapsed

    return run


def careful_split(framing: str) -> Contestant:
    r"""``bytes.split`` on every chunk that holds a delimiter; the pieces of a long line wait.

    For ``lines`` it keeps ``Lines()``'s meaning (``\r\n`` or ``\n``): lines are
    stripped of a final ``\r`` only when the chunk holds a ``\r`` at all (one C
    scan), so a stream without ``\r`` pays nothing for it.
    """
    delimiter = DELIMITER[framing]
    strip_cr = framing == "lines"

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        frames: Frames = []
        pending: list[bytes] = []
        start = time.perf_counter_ns()
        for chunk in chunks:
            # Integer needles: CPython tries a bytes needle as an int first and
            # clears a TypeError each time, about 250 ns a test.
            if 10 not in chunk:  # no b"\n"
                pending.append(chunk)
                continue
            data = chunk
            if pending:
                pending.append(chunk)
                data = b"".join(pending)
                pending = []
            lines = data.split(delimiter)
            tail = lines.pop()
            if tail:
                pending.append(tail)
            if strip_cr and 13 in data:  # a b"\r" somewhere
                lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            frames += lines
        elapsed = time.perf_counter_ns() - start
        if pending:
            raise ValueError("stream ended inside a line")
        return frames, elapsed

    return run


def find_loop(framing: str) -> Contestant:
    r"""A plain ``bytes.find`` loop: the partial line waits in a bytearray, each line sliced once.

    The issue's line peer: for every chunk, ``find`` each delimiter in it and slice
    the line out (one copy); the line begun in an earlier chunk is completed
    from the bytearray that holds its start. For ``lines`` a ``\r`` before the
    ``\n`` is left out of the same slice; for ``crlf`` a ``\r\n`` split between
    two chunks is found.
    """
    lines = framing == "lines"
    needle = 10 if lines else b"\r\n"  # an int needle: one memchr (see careful_split)
    step = 1 if lines else 2

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        frames: Frames = []
        append = frames.append
        held = bytearray()
        start = time.perf_counter_ns()
        for chunk in chunks:
            pos = 0
            if held:
                if not lines and held[-1] == 13 and chunk[:1] == b"\n":
                    append(bytes(held[:-1]))  # a \r\n cut between two chunks
                    held.clear()
                    pos = 1
                else:
                    i = chunk.find(needle)
                    if i < 0:
                        held += chunk
                        continue
                    held += chunk[:i]
                    if lines and held[-1:] == b"\r":
                        del held[-1]
                    append(bytes(held))
                    held.clear()
                    pos = i + step
            find = chunk.find
            i = find(needle, pos)
            while i >= 0:
                if lines and i > pos and chunk[i - 1] == 13:
                    append(chunk[pos : i - 1])
                else:
                    append(chunk[pos:i])
                pos = i + step
                i = find(needle, pos)
            if pos < len(chunk):
                held += chunk[pos:]
        elapsed = time.perf_counter_ns() - start
        if held:
            raise ValueError("stream ended inside a line")
        return frames, elapsed

    return run


# -- Twisted ---------------------------------------------------------------------


def twisted_receiver(framing: str) -> Contestant:
    """Int16StringReceiver / Int32StringReceiver / LineOnlyReceiver fed by dataReceived."""
    from twisted.internet.testing import StringTransport
    from twisted.protocols.basic import Int16StringReceiver, Int32StringReceiver, LineOnlyReceiver

    def make() -> tuple[Any, Frames]:
        frames: Frames = []
        proto: Any
        if framing == "len2":
            proto = Int16StringReceiver()
            proto.stringReceived = frames.append
        elif framing == "len4":
            proto = Int32StringReceiver()
            proto.stringReceived = frames.append
        else:
            proto = LineOnlyReceiver()
            proto.delimiter = DELIMITER[framing]
            proto.lineReceived = frames.append
        proto.MAX_LENGTH = BIG
        proto.makeConnection(StringTransport())
        return proto, frames

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        proto, frames = make()
        data_received = proto.dataReceived
        start = time.perf_counter_ns()
        for chunk in chunks:
            data_received(chunk)
        return frames, time.perf_counter_ns() - start

    return run


# -- asyncio StreamReader ----------------------------------------------------------


def asyncio_reader(framing: str) -> Contestant:
    """``feed_data`` each chunk from a producer task; ``readexactly`` / ``readuntil`` in a loop.

    The producer yields after each chunk, so the reader consumes each chunk as it
    would from a socket (it wakes, reads every whole frame, waits for more).
    """

    async def main(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        reader = asyncio.StreamReader(limit=BIG)
        frames: Frames = []
        append = frames.append

        async def produce() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        start = time.perf_counter_ns()
        producer = asyncio.create_task(produce())
        try:
            if framing in WIDTH:
                width = WIDTH[framing]
                readexactly = reader.readexactly
                while True:
                    header = await readexactly(width)
                    append(await readexactly(int.from_bytes(header)))
            else:
                delimiter = DELIMITER[framing]
                cut = -len(delimiter)
                readuntil = reader.readuntil
                while True:
                    append((await readuntil(delimiter))[:cut])
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
        await producer
        return frames, time.perf_counter_ns() - start

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        return asyncio.run(main(chunks))

    return run


# -- anyio BufferedByteReceiveStream -------------------------------------------------


def anyio_buffered(framing: str) -> Contestant:
    """``receive_exactly`` / ``receive_until`` over a memory object stream (asyncio backend)."""
    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    async def main(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        send, receive = anyio.create_memory_object_stream[bytes](math.inf)
        for chunk in chunks:
            send.send_nowait(chunk)
        send.close()
        stream = BufferedByteReceiveStream(receive)
        frames: Frames = []
        append = frames.append
        start = time.perf_counter_ns()
        try:
            if framing in WIDTH:
                width = WIDTH[framing]
                receive_exactly = stream.receive_exactly
                while True:
                    header = await receive_exactly(width)
                    append(await receive_exactly(int.from_bytes(header)))
            else:
                delimiter = DELIMITER[framing]
                receive_until = stream.receive_until
                while True:
                    append(await receive_until(delimiter, BIG))
        except anyio.IncompleteRead:
            if stream.buffer:
                raise
        return frames, time.perf_counter_ns() - start

    def run(chunks: Sequence[bytes]) -> tuple[Frames, int]:
        return anyio.run(main, chunks, backend="asyncio")

    return run
