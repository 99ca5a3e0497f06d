"""Feed traces: what a framer does, step by step, to compare two framers or two paths.

`draw_steps` draws, for each chunk, a ``limit`` and the buffer type it arrives
in; `trace_feeds` feeds the steps then ends the stream and records everything
observable. Two framers that must behave alike (a fast path and the general
engine) must give equal traces.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from framing.delimited import Delimited, Lines
from framing.errors import FramingError
from framing.length import LengthPrefixed

Step = tuple[bytes, int | None, str]

_KINDS = {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview}


def draw_steps(data: st.DataObject, chunks: Sequence[bytes]) -> list[Step]:
    """For each chunk, a ``feed`` limit (mostly none) and a buffer type (mostly bytes)."""
    return [
        (
            chunk,
            data.draw(st.sampled_from([None, None, None, 0, 1, 2])),
            data.draw(st.sampled_from(["bytes", "bytes", "bytearray", "memoryview"])),
        )
        for chunk in chunks
    ]


def trace_feeds(framer: Delimited | Lines | LengthPrefixed, steps: Sequence[Step]) -> list[object]:
    """Feed each (chunk, limit, type) step then feed_eof; the trace of what came out.

    After each step: the messages, ``buffered`` and the skip counters; at the end,
    the last messages and the same; on an error, its type, earlier messages and
    numbers.
    """
    trace: list[object] = []
    try:
        for chunk, limit, kind in steps:
            got = framer.feed(_KINDS[kind](chunk), limit=limit)
            trace.append((got, framer.buffered, framer.skipped_frames, framer.skipped_bytes))
        end = framer.feed_eof()
        trace.append(("eof", end, framer.buffered, framer.skipped_frames, framer.skipped_bytes))
    except FramingError as exc:
        numbers = {k: getattr(exc, k, None) for k in ("size", "limit", "held", "expected")}
        trace.append((type(exc), exc.messages, numbers, getattr(exc, "partial", None)))
    return trace
