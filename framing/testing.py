r"""Test helpers for framers: split a stream every way and check nothing changes.

Chunking invariance is the property every framer must have: the messages out
depend only on the bytes in, never on how the network cut them. These helpers
let any framer, this package's or a user's own, be checked for it.

The one-line check, for a framer whose ``encode`` output decodes back to the
same messages (every framer here but ``Raw``)::

    from framing.testing import check_framer, message_lists

    def test_my_framer_keeps_the_framer_contract():
        check_framer(MyFramer, message_lists(forbid=[b"\n"]))

It runs a hypothesis search: lists of messages are encoded, then decoded whole,
one byte at a time and in random chunks (the same messages each time, nothing
left buffered); every truncated stream raises
:class:`~framing.IncompleteFrame` carrying the messages before the cut;
``feed(..., limit=k)`` then ``detach()`` hands back exactly the unconsumed
frames; ``clone()`` starts empty; ``buffered`` stays within a stated bound.
It then plays the hostile peer (:func:`hostile_streams`): oversize length
announcements and floods with no delimiter, fed one byte at a time and in
chunks, must raise :class:`~framing.FrameTooLarge` before the framer holds
more than ``max_size`` plus a header or a delimiter.

The building blocks, for tests of one's own::

    from hypothesis import given
    from framing.testing import framed_streams, assert_chunking_invariant

    @given(framed_streams(MyFramer, message_lists()))
    def test_my_framer(sample):
        assert_chunking_invariant(MyFramer, sample.stream, sample.messages, sample.chunks)

and :func:`decode_outcome` / :func:`assert_split_invariant` for hostile input
(what the fuzz targets use): any bytes, cut two ways, must give the same
messages and the same error type.

This module needs ``hypothesis`` (the ``test`` extra); the library itself does not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import FrameTooLarge, FramingError, IncompleteFrame

__all__ = [
    "EncodedStream",
    "Outcome",
    "Truncation",
    "assert_chunking_invariant",
    "assert_hostile_bounded",
    "assert_split_invariant",
    "check_framer",
    "chunkings",
    "decode_outcome",
    "encoded_stream",
    "feed_chunks",
    "framed_streams",
    "hostile_streams",
    "message_lists",
    "split_at",
    "truncations",
]

T = TypeVar("T")


# --- Splitting and joining -------------------------------------------------------


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


def _strip_all(message: bytes, forbid: Sequence[bytes]) -> bytes:
    # Removing one occurrence can create another ("\r\r\n\n" minus "\r\n" is
    # "\r\n"), so repeat until nothing changes; each pass shortens the message,
    # so this ends.
    while True:
        before = message
        for bad in forbid:
            message = message.replace(bad, b"")
        if message == before:
            return message


def message_lists(
    *,
    min_size: int = 0,
    max_size: int = 64,
    max_messages: int = 12,
    forbid: Sequence[bytes] = (),
    alphabet: bytes | None = None,
) -> st.SearchStrategy[list[bytes]]:
    r"""A strategy for lists of messages (``bytes``) to encode and decode.

    Args:
        min_size: the shortest message drawn (``1`` for framings that cannot
            carry an empty message).
        max_size: the longest message drawn, before ``forbid`` shortens it.
        max_messages: the most messages in one list.
        forbid: substrings a message must not contain (a delimited framing's
            delimiters); they are removed from each drawn message, and a message
            left shorter than ``min_size`` is dropped.
        alphabet: draw message bytes only from these (say ``b"ab\r\n"`` to make
            near-delimiters common); ``None`` draws any byte.

    Returns:
        A strategy for ``list[bytes]``.
    """
    if alphabet is None:
        one: st.SearchStrategy[bytes] = st.binary(min_size=min_size, max_size=max_size)
    else:
        pick = st.sampled_from(sorted(set(alphabet)))
        one = st.lists(pick, min_size=min_size, max_size=max_size).map(bytes)
    bad = [b for b in forbid if b]
    if bad:
        one = one.map(lambda m: _strip_all(m, bad)).filter(lambda m: len(m) >= min_size)
    return st.lists(one, max_size=max_messages)


# --- Encoded streams ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncodedStream:
    """Messages, the stream that carries them, and one way the network cut it.

    Attributes:
        messages: the messages encoded, in order.
        frames: ``encode(message)`` of each, in order.
        stream: the frames joined.
        chunks: ``stream`` cut into pieces (they join back to ``stream``).
    """

    messages: tuple[Any, ...]
    frames: tuple[bytes, ...]
    stream: bytes
    chunks: tuple[bytes, ...]


def encoded_stream(
    make_framer: Callable[[], Framer[Any]],
    messages: Iterable[Any],
    chunks: Sequence[bytes] | None = None,
) -> EncodedStream:
    """Encode ``messages`` with a fresh framer; ``chunks`` defaults to the whole stream."""
    framer = make_framer()
    msgs = tuple(messages)
    frames = tuple(framer.encode(m) for m in msgs)
    stream = b"".join(frames)
    parts = (stream,) if chunks is None else tuple(chunks)
    if b"".join(parts) != stream:
        raise ValueError("chunks do not join to the encoded stream")
    return EncodedStream(msgs, frames, stream, parts)


def framed_streams(
    make_framer: Callable[[], Framer[Any]],
    messages: st.SearchStrategy[Sequence[Any]] | None = None,
    *,
    max_cuts: int = 64,
) -> st.SearchStrategy[EncodedStream]:
    """A strategy for :class:`EncodedStream`: messages encoded by the framer, cut at random.

    Args:
        make_framer: returns a new framer (a class with its defaults, a lambda).
        messages: a strategy for message lists; ``message_lists()`` by default.
        max_cuts: the most cuts in one chunking.
    """
    msgs = message_lists() if messages is None else messages

    @st.composite
    def draw(draw_: st.DrawFn) -> EncodedStream:
        sample = encoded_stream(make_framer, draw_(msgs))
        chunks = draw_(chunkings(sample.stream, max_cuts=max_cuts))
        return EncodedStream(sample.messages, sample.frames, sample.stream, tuple(chunks))

    return draw()


@dataclass(frozen=True, slots=True)
class Truncation:
    """A stream cut off inside a frame.

    Attributes:
        prefix: the bytes that arrived before the stream ended.
        complete: the messages whose frames arrived whole.
        held: how many bytes of the cut frame arrived.
    """

    prefix: bytes
    complete: tuple[Any, ...]
    held: int


def _cuts(sample: EncodedStream) -> list[tuple[int, int]]:
    """Every (frame index, bytes of it kept) that cuts strictly inside a frame."""
    return [(i, k) for i, frame in enumerate(sample.frames) for k in range(1, len(frame))]


def truncations(sample: EncodedStream) -> st.SearchStrategy[Truncation]:
    """A strategy for the ways ``sample``'s stream can end inside one of its frames.

    A frame of one byte cannot be cut inside; when no frame can be, the strategy
    is empty (use it with ``data.draw`` after checking, or filter the samples).
    """
    cuts = _cuts(sample)
    if not cuts:
        return st.nothing()

    def build(cut: tuple[int, int]) -> Truncation:
        i, k = cut
        prefix = b"".join(sample.frames[:i]) + sample.frames[i][:k]
        return Truncation(prefix, sample.messages[:i], k)

    return st.sampled_from(cuts).map(build)


# --- Feeding and checking ----------------------------------------------------------


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
        try:
            got = feed_chunks(framer, parts)
        except FramingError as exc:
            raise AssertionError(f"{name}: raised {exc!r}") from exc
        assert got == list(expected), f"{name}: {got!r} != {list(expected)!r}"
        assert framer.buffered == 0, f"{name}: {framer.buffered} bytes left buffered"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a framer made of a byte stream: the messages, and the error that ended it.

    Two outcomes of the same bytes cut differently must be equal: the error's
    type is compared, not its text (a size "seen so far" may differ by cut).

    Attributes:
        messages: every message delivered, including ``exc.messages`` of the error.
        error: the :class:`~framing.FramingError` subclass raised, or ``None``.
        most_buffered: the largest ``buffered`` seen after any ``feed``.
    """

    messages: tuple[Any, ...]
    error: type[FramingError] | None
    most_buffered: int

    def same_result(self, other: Outcome) -> bool:
        """True when both have the same messages and the same error type."""
        return self.messages == other.messages and self.error is other.error


def decode_outcome(
    framer: Framer[Any],
    chunks: Iterable[bytes],
    *,
    eof: bool = True,
    limit: int | None = None,
    max_buffered: int | None = None,
) -> Outcome:
    """Feed ``chunks`` (then the end of stream) and record what happened.

    Only a :class:`~framing.FramingError` is caught: any other exception is a bug
    in the framer and propagates.

    Args:
        framer: a fresh framer.
        chunks: the stream, cut in pieces.
        eof: call ``feed_eof`` after the last chunk.
        limit: pass ``limit`` to every ``feed``, and drain what it holds back with
            ``feed(b"", limit=limit)`` before the next chunk (``limit >= 1``).
        max_buffered: assert ``framer.buffered`` never exceeds this after a feed.

    Returns:
        The :class:`Outcome`.
    """
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1 to make progress")
    out: list[Any] = []
    most = 0

    def note() -> None:
        nonlocal most
        most = max(most, framer.buffered)
        if max_buffered is not None:
            assert framer.buffered <= max_buffered, (
                f"{framer!r} holds {framer.buffered} bytes, over the bound of {max_buffered}"
            )

    try:
        for chunk in chunks:
            got = framer.feed(chunk, limit=limit)
            out.extend(got)
            note()
            # With a limit, messages may wait in the buffer: drain them, bounded
            # because each round either returns a message or ends the loop.
            while limit is not None and got:
                got = framer.feed(b"", limit=limit)
                out.extend(got)
                note()
        if eof:
            out.extend(framer.feed_eof())
    except FramingError as exc:
        return Outcome((*out, *exc.messages), type(exc), most)
    return Outcome(tuple(out), None, most)


def assert_split_invariant(
    make_framer: Callable[[], Framer[Any]],
    stream: bytes,
    chunkings_: Iterable[Sequence[bytes]],
    *,
    max_buffered: int | None = None,
) -> Outcome:
    """Assert ``stream`` gives the same outcome whole and cut every given way.

    This is the fuzzing invariant, for any bytes at all (valid or not): the same
    messages, and the same error type or none, however the stream was cut.

    Returns:
        The outcome of feeding the stream whole.
    """
    whole = decode_outcome(make_framer(), [stream], max_buffered=max_buffered)
    for chunks in chunkings_:
        assert b"".join(chunks) == stream, "chunks do not join to the stream"
        cut = decode_outcome(make_framer(), chunks, max_buffered=max_buffered)
        assert cut.same_result(whole), (
            f"cut {[len(c) for c in chunks]}: {cut.messages!r} {cut.error} != "
            f"whole: {whole.messages!r} {whole.error}"
        )
    return whole


# --- Hostile input ------------------------------------------------------------------

# Filler bytes for the payload of a max_size message, tried in order until encode
# accepts one: a delimited framer refuses a filler that is (part of) a delimiter.
# "x" first: it has the high bit clear, so it also ends a varint.
_FILLERS = (b"x", b"q", b"\x00", b"\xa5")


def _largest_frame(
    framer: Framer[Any], message_of: Callable[[bytes], Any]
) -> tuple[bytes, bytes, int, int]:
    """Encode a ``max_size`` message; return (frame, filler, payload start, payload end).

    The bytes outside ``[start, end)`` are the framing's own: the header before
    the payload, the delimiter or trailer after it. With ``max_size == 0`` the
    whole frame is framing.
    """
    size = framer.max_size
    refusals: list[str] = []
    for filler in _FILLERS:
        payload = filler * size
        try:
            frame = framer.encode(message_of(payload))
        except (ValueError, FramingError) as exc:
            refusals.append(f"{filler!r}: {exc!r}")
            continue
        if not size:
            return frame, filler, len(frame), len(frame)
        # The payload is the last run of filler that long: the header may end in
        # a filler byte, the trailer cannot start with one (encode accepted it).
        start = frame.rfind(payload)
        if start >= 0:
            return frame, filler, start, start + size
        # A message that is the whole frame (LengthPrefixed(strip=0)) has the
        # header written over its first bytes: take the longest run of filler.
        runs = [m.span() for m in re.finditer(re.escape(filler) + b"+", frame)]
        assert runs, f"encode({size} x {filler!r}) = {frame[:40]!r}... lost the payload"
        start, end = max(runs, key=lambda span: span[1] - span[0])
        return frame, filler, start, end
    raise AssertionError(
        f"{framer!r}: encode refused every message of max_size={size} bytes "
        f"({'; '.join(refusals)}); a framer must carry a message of its own max_size"
    )


def hostile_streams(
    framer: Framer[Any],
    *,
    slack: int,
    message_of: Callable[[bytes], Any] | None = None,
) -> list[bytes]:
    r"""Streams a hostile peer sends: oversize announcements and delimiter-less floods.

    Built from the framer's own frame for a ``max_size`` message: each byte of
    its framing (header, trailer or delimiter; never the payload) is replaced in
    turn by ``0xFF`` and by itself plus one, and the frame is followed by
    ``max_size + slack + 2`` more filler bytes. A grown length field announces a
    frame over ``max_size`` (``LengthPrefixed(2, max_size=100)``: ``00 64`` becomes
    ``FF 64``, ``01 64``, ``00 FF``, ``00 65``); a spoilt delimiter leaves the payload
    running on with no end (``xxx\n`` becomes ``xxx\xff`` then more ``x``). Some
    replacements merely make a bad header; :func:`assert_hostile_bounded`
    accepts any :class:`~framing.FramingError` for them.

    Args:
        framer: the framer to attack (only its ``encode`` and ``max_size`` are used).
        slack: bytes the framer may hold beyond ``max_size``.
        message_of: builds a message from payload bytes (``lambda p: Frame({}, p)``
            for ``StructPrefixed``); the identity by default.

    Returns:
        The streams; none for a framing with no bytes of its own (``FixedSize``).
    """
    build = message_of if message_of is not None else _identity
    frame, filler, start, end = _largest_frame(framer, build)
    flood = filler * (framer.max_size + slack + 2)
    streams: list[bytes] = []
    for i in [*range(start), *range(end, len(frame))]:
        for value in sorted({0xFF, (frame[i] + 1) % 256} - {frame[i]}):
            streams.append(frame[:i] + bytes([value]) + frame[i + 1 :] + flood)
    return streams


def _identity(payload: bytes) -> bytes:
    return payload


#: The chunk sizes a hostile stream is fed in, besides whole.
HOSTILE_CHUNK_SIZES = (1, 2, 7, 64)


def assert_hostile_bounded(
    make_framer: Callable[[], Framer[Any]],
    stream: bytes,
    *,
    slack: int,
    on_oversize: Literal["raise", "skip"] = "raise",
) -> None:
    """Assert a framer fed ``stream`` never holds more than ``max_size + slack`` bytes.

    Fed whole and in chunks of :data:`HOSTILE_CHUNK_SIZES` bytes, one byte at a
    time included, each by a fresh framer, with no end of stream:

    - ``buffered`` never exceeds ``max_size + slack`` after any ``feed``;
    - one byte at a time, with ``on_oversize="raise"``: no more than
      ``max_size + slack`` bytes pass after the last message delivered without
      a message or a :class:`~framing.FramingError` (such as
      :class:`~framing.FrameTooLarge`). A valid frame is never longer, so the
      framer knew by then that this one is too large; with ``"skip"`` the
      framer discards such a frame in silence, and only ``buffered`` is bounded;
    - every way of feeding gives the same messages and the same error type.

    Raises:
        AssertionError: the framer broke the bound.
    """
    bound = make_framer().max_size + slack
    framer = make_framer()
    out: list[Any] = []
    error: type[FramingError] | None = None
    since = 0  # bytes fed since the last message was delivered
    for i in range(len(stream)):
        try:
            got = framer.feed(stream[i : i + 1])
        except FramingError as exc:
            out.extend(exc.messages)
            error = type(exc)
            break
        out.extend(got)
        since = 0 if got else since + 1
        assert framer.buffered <= bound, (
            f"{framer!r} holds {framer.buffered} bytes after {i + 1} bytes fed one at a "
            f"time, over the bound of {bound} (max_size {bound - slack} + {slack}): "
            f"stream {stream[:24]!r}..."
        )
        if on_oversize == "raise":
            assert since <= bound, (
                f"{framer!r} took {since} bytes after its last message without a message "
                f"or FrameTooLarge, more than any valid frame (max_size {bound - slack} + "
                f"{slack}): stream {stream[:24]!r}..."
            )
    if on_oversize == "skip":
        assert error is not FrameTooLarge, f"{framer!r} raised FrameTooLarge under 'skip'"
    byte_at_a_time = Outcome(tuple(out), error, 0)
    for size in (len(stream) or 1, *HOSTILE_CHUNK_SIZES[1:]):
        # A generator: the framer usually raises long before the flood ends.
        chunks = (stream[i : i + size] for i in range(0, len(stream), size))
        got_outcome = decode_outcome(make_framer(), chunks, eof=False, max_buffered=bound)
        assert got_outcome.same_result(byte_at_a_time), (
            f"chunks of {size}: {got_outcome.messages!r} {got_outcome.error} != one byte at "
            f"a time: {byte_at_a_time.messages!r} {byte_at_a_time.error} "
            f"(stream {stream[:24]!r}...)"
        )


def _check_hostile(
    make_framer: Callable[[], Framer[Any]],
    *,
    slack: int | None,
    on_oversize: Literal["raise", "skip"],
    message_of: Callable[[bytes], Any] | None,
    extra: Sequence[bytes],
) -> None:
    """The hostile part of :func:`check_framer`."""
    framer = make_framer()
    if slack is None:
        # Without a stated overhead, the framing's own bytes around a max_size
        # message (header and trailer) are the slack.
        frame, _, start, end = _largest_frame(framer, message_of or _identity)
        slack = len(frame) - (end - start)
    streams = [*hostile_streams(framer, slack=slack, message_of=message_of), *extra]
    for stream in streams:
        assert_hostile_bounded(make_framer, stream, slack=slack, on_oversize=on_oversize)


def _check_sample(
    make_framer: Callable[[], Framer[Any]],
    sample: EncodedStream,
    data: st.DataObject,
    *,
    truncation: bool,
    detach: bool,
    max_buffered: int | None,
) -> None:
    """Every check of :func:`check_framer` on one drawn sample."""
    expected = list(sample.messages)
    # Encoding must not depend on the framer's state: each message encoded by a
    # framer of its own gives the same bytes as all encoded by one.
    alone = tuple(make_framer().encode(m) for m in expected)
    assert alone == sample.frames, "encode gave different bytes on a fresh framer"

    byte_by_byte = [sample.stream[i : i + 1] for i in range(len(sample.stream))]
    ways = (("byte at a time", byte_by_byte), ("as chunked", sample.chunks))
    for name, parts in ways:
        got = decode_outcome(make_framer(), parts, max_buffered=max_buffered)
        assert got.error is None, f"{name}: a valid stream raised {got.error}"
    assert_chunking_invariant(make_framer, sample.stream, expected, sample.chunks)
    for name, parts in ways:
        # No bound here: with a limit, the bytes after the last message returned
        # are held unparsed on purpose (the caller asked for them to wait).
        limited = decode_outcome(make_framer(), parts, limit=1)
        assert list(limited.messages) == expected, f"{name}: feed(limit=1) changed the messages"
        assert limited.error is None, f"{name}: feed(limit=1) raised {limited.error}"

    if truncation and _cuts(sample):
        cut = data.draw(truncations(sample), label="truncation")
        for parts in ([cut.prefix], [cut.prefix[i : i + 1] for i in range(len(cut.prefix))]):
            ended = decode_outcome(make_framer(), parts, max_buffered=max_buffered)
            assert ended.error is IncompleteFrame, (
                f"a stream cut {cut.held} bytes into frame {len(cut.complete)} "
                f"did not raise IncompleteFrame at its end (got {ended.error})"
            )
            assert list(ended.messages) == list(cut.complete), (
                f"truncated stream delivered {ended.messages!r}, not {list(cut.complete)!r}"
            )

    if detach:
        k = data.draw(st.integers(0, len(expected)), label="limit")
        framer = make_framer()
        got_k = framer.feed(sample.stream, limit=k)
        assert got_k == expected[:k], f"feed(limit={k}) gave {got_k!r}"
        rest = framer.detach()
        assert rest == b"".join(sample.frames[k:]), f"detach() after {k} messages gave {rest!r}"
        assert framer.buffered == 0, "buffered is not 0 after detach()"
        # The bytes handed over carry on in a clone exactly where they left off.
        twin = framer.clone()
        assert twin.buffered == 0, "clone() is not empty"
        assert feed_chunks(twin, [rest]) == expected[k:], "the detached bytes decode differently"


def check_framer(
    make_framer: Callable[[], Framer[Any]],
    messages: st.SearchStrategy[Sequence[Any]] | None = None,
    *,
    max_examples: int = 100,
    truncation: bool = True,
    detach: bool = True,
    overhead: int | None = None,
    hostile: bool = True,
    hostile_extra: Sequence[bytes] = (),
    on_oversize: Literal["raise", "skip"] = "raise",
    message_of: Callable[[bytes], Any] | None = None,
) -> None:
    """Check a framer against the framer contract with a hypothesis search.

    For each drawn list of messages, encoded by the framer:

    - whole, one byte at a time, in random chunks, and with ``feed(limit=1)``,
      the stream decodes to exactly those messages and leaves nothing buffered;
    - cut off inside any frame, the stream raises
      :class:`~framing.IncompleteFrame` at its end, with ``exc.messages`` the
      messages before the cut (``truncation=False`` for a framing where a cut
      can be a valid end, such as ``eof="deliver"``);
    - ``feed(stream, limit=k)`` returns the first ``k`` messages, ``detach()``
      returns exactly the frames after them, and a ``clone()`` fed those bytes
      decodes the rest (``detach=False`` to skip);
    - with ``overhead`` given, ``buffered`` never exceeds ``max_size + overhead``;
    - ``encode`` accepts a message of exactly ``max_size`` bytes, and under the
      hostile streams built from its frame (:func:`hostile_streams`: a grown
      length field, a spoilt delimiter, each followed by a flood of filler) the
      framer keeps the bound of :func:`assert_hostile_bounded`, one byte at a
      time and in chunks: it raises :class:`~framing.FrameTooLarge` before it
      holds more than ``max_size + overhead`` bytes. Without ``overhead`` the
      slack is the framing bytes around that message (its header and trailer).

    Call it from a plain test function (not one already under ``@given``).

    Args:
        make_framer: returns a new framer (a class with its defaults, a lambda).
        messages: a strategy for message lists the framing can carry;
            ``message_lists()`` (any bytes) by default.
        max_examples: how many message lists to try.
        truncation: check that a cut stream raises ``IncompleteFrame``.
        detach: check ``feed(limit=k)`` and ``detach()``.
        overhead: bytes a framer may hold beyond ``max_size`` (a header, a
            delimiter; the longest header a varint can have, the longest of
            several delimiters); ``None`` skips the bound on valid streams and
            takes the framing bytes of a ``max_size`` frame for hostile ones.
        hostile: feed the hostile streams (``False`` to skip).
        hostile_extra: more hostile streams of the caller's own, held to the
            same bound.
        on_oversize: ``"skip"`` for a framer that discards oversize frames in
            silence: then only ``buffered`` is bounded.
        message_of: builds a message from payload bytes, for framers whose
            messages are not ``bytes`` (``lambda p: Frame({}, p)``).

    Raises:
        AssertionError: the framer broke the contract (hypothesis reports the
            smallest example it found).
    """
    msgs = message_lists() if messages is None else messages
    bound = None if overhead is None else make_framer().max_size + overhead

    @settings(
        max_examples=max_examples,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(sample=framed_streams(make_framer, msgs), data=st.data())
    def run(sample: EncodedStream, data: st.DataObject) -> None:
        _check_sample(
            make_framer,
            sample,
            data,
            truncation=truncation,
            detach=detach,
            max_buffered=bound,
        )

    run()
    if hostile:
        _check_hostile(
            make_framer,
            slack=overhead,
            on_oversize=on_oversize,
            message_of=message_of,
            extra=hostile_extra,
        )
