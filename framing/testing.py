"""Test helpers for framers: split a stream every way and check nothing changes.

Chunking invariance is the property every framer must have: the messages out
depend only on the bytes in, never on how the network cut them. These helpers
let any framer, this package's or a user's own, be checked for it::

    from hypothesis import given
    from framing.testing import chunkings, assert_chunking_invariant

    @given(data=st.data())
    def test_my_framer(data):
        stream = b"".join(MyFramer().encode(m) for m in messages)
        chunks = data.draw(chunkings(stream))
        assert_chunking_invariant(MyFramer, stream, messages, chunks)

This module needs ``hypothesis`` (the ``test`` extra); the library itself does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import FramingError

__all__ = [
    "assert_chunking_invariant",
    "chunkings",
    "feed_chunks",
    "split_at",
]

T = TypeVar("T")


def split_at(stream: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Cut ``stream`` at the given offsets (sorted or not, repeats give empty chunks)."""
    points = [0, *sorted(min(max(c, 0), len(stream)) for c in cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(points)]


def chunkings(stream: bytes, *, max_cuts: int = 64) -> st.SearchStrategy[list[bytes]]:
    """A strategy for lists of chunks that join to ``stream``.

    Cuts fall anywhere, repeats included, so chunks of zero and one byte are drawn
    as often as large ones.
    """
    cuts = st.lists(st.integers(0, len(stream)), max_size=max_cuts)
    return cuts.map(lambda c: split_at(stream, c))


def feed_chunks(framer: Framer[T], chunks: Sequence[bytes], *, eof: bool = True) -> list[T]:
    """Feed every chunk, then (by default) the end of stream; return all messages.

    A :class:`~framing.FramingError` propagates with ``exc.messages`` extended to
    every message delivered before it, from this call and earlier ones.
    """
    out: list[T] = []
    try:
        for chunk in chunks:
            out.extend(framer.feed(chunk))
        if eof:
            out.extend(framer.feed_eof())
    except FramingError as exc:
        exc.messages = out + exc.messages
        raise
    return out


def assert_chunking_invariant(
    make_framer: Callable[[], Framer[T]],
    stream: bytes,
    expected: Sequence[Any],
    chunks: Sequence[bytes] | None = None,
) -> None:
    """Assert ``stream`` decodes to ``expected`` whole, byte by byte, and as ``chunks``.

    Each way of feeding gets a fresh framer from ``make_framer``, and after each
    the framer must hold nothing.
    """
    splits: list[tuple[str, Sequence[bytes]]] = [
        ("whole", [stream]),
        ("byte at a time", [stream[i : i + 1] for i in range(len(stream))]),
    ]
    if chunks is not None:
        assert b"".join(chunks) == stream, "chunks do not join to the stream"
        splits.append(("as chunked", chunks))
    for name, parts in splits:
        framer = make_framer()
        got = feed_chunks(framer, parts)
        assert got == list(expected), f"{name}: {got!r} != {list(expected)!r}"
        assert framer.buffered == 0, f"{name}: {framer.buffered} bytes left buffered"
