from __future__ import annotations

from typing import Any

import pytest
from construct import Int8ub, Int16ub, Struct
from hypothesis import given, settings
from hypothesis import strategies as st

from framing.base import BytesLike
from framing.delimited import Delimited, Lines
from framing.errors import (
    FrameTooLarge,
    FramingError,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
)
from framing.fixed import FixedSize
from framing.length import Frame, LengthPrefixed, StructPrefixed
from framing.netstring import Netstring
from framing.raw import Raw
from framing.testing import (
    EncodedStream,
    Outcome,
    assert_chunking_invariant,
    assert_hostile_bounded,
    assert_split_invariant,
    check_framer,
    chunkings,
    decode_outcome,
    encoded_stream,
    feed_chunks,
    framed_streams,
    hostile_streams,
    message_lists,
    split_at,
    truncations,
)


class Tiny:
    """A correct toy framer: a 1-byte length, then the payload (max 200 bytes)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def __repr__(self) -> str:
        return "Tiny()"

    @property
    def max_size(self) -> int:
        return 200

    @property
    def buffered(self) -> int:
        return len(self.buf)

    def _one(self) -> bytes | None:
        if not self.buf:
            return None
        size = self.buf[0]
        if size > self.max_size:
            raise FrameTooLarge(repr(self), size, self.max_size)
        if len(self.buf) < 1 + size:
            return None
        msg = bytes(self.buf[1 : 1 + size])
        del self.buf[: 1 + size]
        return msg

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        try:
            while limit is None or len(out) < limit:
                msg = self._one()
                if msg is None:
                    break
                out.append(msg)
        except FramingError as exc:
            exc.messages = out
            raise
        return out

    def feed_eof(self) -> list[bytes]:
        out = self.feed()
        if self.buf:
            raise IncompleteFrame(repr(self), len(self.buf))
        return out

    def encode(self, message: bytes) -> bytes:
        if len(message) > self.max_size:
            raise MessageTooLarge(repr(self), len(message), self.max_size)
        return bytes([len(message)]) + message

    def detach(self) -> bytes:
        held = bytes(self.buf)
        self.buf.clear()
        return held

    def clone(self) -> Tiny:
        return type(self)()


class ForgetsBetweenFeeds(Tiny):
    """Broken: drops a partial frame when the next chunk arrives."""

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        if data:
            self.buf.clear()
        return super().feed(data, limit=limit)


class SilentTruncation(Tiny):
    """Broken: the end of stream inside a frame is ignored."""

    def feed_eof(self) -> list[bytes]:
        out = self.feed()
        self.buf.clear()
        return out


class DetachLosesBytes(Tiny):
    """Broken: detach hands over nothing."""

    def detach(self) -> bytes:
        self.buf.clear()
        return b""


class IgnoresLimit(Tiny):
    """Broken: feed parses everything whatever the limit."""

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        return super().feed(data)


class StaleBuffered(Tiny):
    """Broken: counts every byte ever fed as buffered."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @property
    def buffered(self) -> int:
        return self.total

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        self.total += len(data)
        return super().feed(data, limit=limit)


class Hoarder(Tiny):
    """Broken: holds every frame until the stream ends (within max_size per frame)."""

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        self.buf += data
        return []

    def feed_eof(self) -> list[bytes]:
        out = Tiny.feed(self)
        if self.buf:
            raise IncompleteFrame(repr(self), len(self.buf))
        return out


class HoldsOversizeFrame(Tiny):
    """Broken: reads the length, waits for the whole frame, and only then sees it is too large."""

    def _one(self) -> bytes | None:
        if not self.buf or len(self.buf) < 1 + self.buf[0]:
            return None
        return super()._one()


class DropsOversizeFrame(Tiny):
    """Broken: discards the bytes of an oversize frame in silence instead of raising."""

    def __init__(self) -> None:
        super().__init__()
        self.dropping = 0

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        data = bytes(data)
        if self.dropping:
            taken = min(self.dropping, len(data))
            self.dropping -= taken
            data = data[taken:]
        if not self.buf and data and data[0] > self.max_size:
            self.dropping = data[0]
            return self.feed(data[1:], limit=limit)
        return super().feed(data, limit=limit)


class TinyLines(Tiny):
    """A correct toy delimited framer: lines end with ``\n``, at most 200 bytes each."""

    def _one(self) -> bytes | None:
        end = self.buf.find(b"\n")
        if end < 0:
            # A line over max_size is known as soon as max_size + 1 bytes have
            # arrived without a newline: refuse it before holding more.
            if len(self.buf) > self.max_size:
                raise FrameTooLarge(repr(self), len(self.buf), self.max_size)
            return None
        if end > self.max_size:
            raise FrameTooLarge(repr(self), end, self.max_size)
        msg = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return msg

    def encode(self, message: bytes) -> bytes:
        if len(message) > self.max_size:
            raise MessageTooLarge(repr(self), len(message), self.max_size)
        return message + b"\n"


class FloodHoarder(TinyLines):
    """Broken: holds a line however long until its newline, and only then measures it."""

    def _one(self) -> bytes | None:
        if b"\n" not in self.buf:
            return None
        return super()._one()


class StatefulEncode(Tiny):
    """Broken: encode depends on how many messages were encoded before."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def encode(self, message: bytes) -> bytes:
        self.sent += 1
        return super().encode(message if self.sent < 3 else message[:-1])


def tiny_messages() -> st.SearchStrategy[list[bytes]]:
    return message_lists(max_size=40, max_messages=6)


def test_split_at_cuts_and_clamps() -> None:
    assert split_at(b"abcdef", [4, 2, 2, 99, -3]) == [b"", b"ab", b"", b"cd", b"ef", b""]
    assert split_at(b"", []) == [b""]


@given(st.binary(max_size=40).flatmap(lambda s: st.tuples(st.just(s), chunkings(s))))
def test_chunkings_join_back(pair: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = pair
    assert b"".join(chunks) == stream


@given(message_lists(forbid=[b"\r\n", b"x"], alphabet=b"x\r\na", min_size=1))
def test_message_lists_respect_forbid_and_min_size(msgs: list[bytes]) -> None:
    for m in msgs:
        assert b"\r\n" not in m
        assert b"x" not in m
        assert len(m) >= 1
        assert set(m) <= set(b"\r\na")


@given(framed_streams(lambda: LengthPrefixed(2), tiny_messages()))
def test_framed_streams_carry_their_messages(sample: EncodedStream) -> None:
    assert b"".join(sample.chunks) == sample.stream
    assert b"".join(sample.frames) == sample.stream
    assert feed_chunks(LengthPrefixed(2), sample.chunks) == list(sample.messages)


def test_encoded_stream_rejects_chunks_that_do_not_join() -> None:
    with pytest.raises(ValueError, match="do not join"):
        encoded_stream(Tiny, [b"ab"], [b"\x02a"])


@settings(max_examples=50)
@given(
    framed_streams(Tiny, tiny_messages()).filter(lambda s: any(len(f) > 1 for f in s.frames)),
    st.data(),
)
def test_truncations_end_inside_a_frame(sample: EncodedStream, data: st.DataObject) -> None:
    cut = data.draw(truncations(sample))
    assert sample.stream.startswith(cut.prefix)
    assert len(cut.prefix) < len(sample.stream)
    assert cut.held >= 1
    with pytest.raises(IncompleteFrame) as info:
        feed_chunks(Tiny(), [cut.prefix])
    assert info.value.messages == list(cut.complete)


def test_truncations_of_one_byte_frames_is_empty() -> None:
    sample = encoded_stream(Tiny, [b"", b""])
    assert truncations(sample).is_empty


def test_feed_chunks_error_carries_earlier_messages() -> None:
    with pytest.raises(IncompleteFrame) as info:
        feed_chunks(Tiny(), [b"\x01a", b"\x01b\x05"])
    assert info.value.messages == [b"a", b"b"]


def test_assert_chunking_invariant_accepts_a_correct_framer() -> None:
    assert_chunking_invariant(
        Tiny, b"\x01a\x00\x02bc", [b"a", b"", b"bc"], [b"\x01", b"a\x00\x02bc"]
    )


def test_assert_chunking_invariant_catches_a_split_bug() -> None:
    with pytest.raises(AssertionError, match="byte at a time"):
        assert_chunking_invariant(ForgetsBetweenFeeds, b"\x02ab", [b"ab"])


def test_assert_chunking_invariant_rejects_chunks_of_another_stream() -> None:
    with pytest.raises(AssertionError, match="do not join"):
        assert_chunking_invariant(Tiny, b"\x01a", [b"a"], [b"\x01b"])


def test_decode_outcome_records_error_type_and_messages() -> None:
    got = decode_outcome(Tiny(), [b"\x01a\xff"])
    assert got == Outcome((b"a",), FrameTooLarge, 0)
    ok = decode_outcome(Tiny(), [b"\x02a", b"b\x01"], eof=False)
    assert ok.messages == (b"ab",)
    assert ok.error is None
    assert ok.most_buffered == 2


def test_decode_outcome_with_limit_drains_every_message() -> None:
    got = decode_outcome(Tiny(), [b"\x01a\x01b\x01c"], limit=1)
    assert got.messages == (b"a", b"b", b"c")


def test_decode_outcome_rejects_limit_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        decode_outcome(Tiny(), [b""], limit=0)


def test_decode_outcome_enforces_max_buffered() -> None:
    with pytest.raises(AssertionError, match="over the bound of 3"):
        decode_outcome(Tiny(), [b"\x09abcdef"], max_buffered=3)


def test_decode_outcome_lets_foreign_exceptions_through() -> None:
    class Crashes(Tiny):
        def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
            raise IndexError("bug")

    with pytest.raises(IndexError):
        decode_outcome(Crashes(), [b"x"])


def test_outcome_same_result_ignores_most_buffered() -> None:
    a = Outcome((b"x",), MalformedFrame, 1)
    assert a.same_result(Outcome((b"x",), MalformedFrame, 9))
    assert not a.same_result(Outcome((b"x",), FrameTooLarge, 1))
    assert not a.same_result(Outcome((), MalformedFrame, 1))


def test_assert_split_invariant_on_hostile_bytes() -> None:
    stream = b"\x01a\x03bc"
    whole = assert_split_invariant(Tiny, stream, [split_at(stream, [1, 3]), split_at(stream, [4])])
    assert whole.messages == (b"a",)
    assert whole.error is IncompleteFrame


def test_assert_split_invariant_catches_a_split_bug() -> None:
    stream = b"\x02ab"
    with pytest.raises(AssertionError, match="cut"):
        assert_split_invariant(ForgetsBetweenFeeds, stream, [split_at(stream, [1])])


def test_check_framer_passes_a_correct_framer() -> None:
    check_framer(Tiny, tiny_messages(), max_examples=60, overhead=1)


def test_check_framer_passes_length_prefixed() -> None:
    check_framer(lambda: LengthPrefixed(2, max_size=100), message_lists(max_size=100), overhead=2)


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (ForgetsBetweenFeeds, "byte at a time"),
        (SilentTruncation, "did not raise IncompleteFrame"),
        (DetachLosesBytes, "detach"),
        (IgnoresLimit, "limit"),
        (StaleBuffered, "buffered"),
        (StatefulEncode, "fresh framer"),
    ],
)
def test_check_framer_catches_a_broken_framer(broken: type[Tiny], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_framer(broken, tiny_messages(), max_examples=200)


def test_check_framer_catches_a_framer_over_its_memory_bound() -> None:
    with pytest.raises(AssertionError, match="over the bound"):
        check_framer(
            Hoarder,
            message_lists(min_size=150, max_size=200, max_messages=4),
            max_examples=200,
            overhead=1,
            truncation=False,
            detach=False,
        )


def test_check_framer_cannot_pass_raw() -> None:
    # Raw delivers chunks, not the messages encoded: the round trip does not hold,
    # and the checker says so rather than passing it.
    with pytest.raises(AssertionError):
        check_framer(Raw, message_lists(min_size=1), max_examples=50, truncation=False)


# --- The hostile streams: the buffered bound under oversize headers and floods ------


def test_hostile_streams_grow_the_length_field() -> None:
    streams = hostile_streams(LengthPrefixed(2, max_size=100), slack=2)
    heads = {s[:2] for s in streams}
    assert heads == {b"\xff\x64", b"\x01\x64", b"\x00\xff", b"\x00\x65"}
    # The payload of the max_size frame, then max_size + slack + 2 more.
    assert all(s[2:] == b"x" * (100 + 100 + 2 + 2) for s in streams)


def test_hostile_streams_spoil_the_delimiter_and_flood() -> None:
    streams = hostile_streams(Delimited(b"\n", max_size=5), slack=1)
    assert streams == [b"xxxxx\x0b" + b"x" * 8, b"xxxxx\xff" + b"x" * 8]


def test_hostile_streams_avoid_a_filler_that_is_a_delimiter() -> None:
    (stream, *_) = hostile_streams(Delimited(b"x", max_size=3), slack=1)
    assert stream.startswith(b"qqq")


def test_hostile_streams_of_fixed_size_are_none() -> None:
    assert hostile_streams(FixedSize(4), slack=0) == []


def test_hostile_streams_need_encode_to_carry_max_size() -> None:
    class RefusesLarge(Tiny):
        def encode(self, message: bytes) -> bytes:
            if len(message) >= self.max_size:
                raise MessageTooLarge(repr(self), len(message), self.max_size - 1)
            return super().encode(message)

    with pytest.raises(AssertionError, match="must carry a message of its own max_size"):
        hostile_streams(RefusesLarge(), slack=1)


def test_assert_hostile_bounded_accepts_an_early_refusal() -> None:
    assert_hostile_bounded(Tiny, b"\xff" + b"x" * 300, slack=1)
    assert_hostile_bounded(TinyLines, b"x" * 300, slack=1)


@pytest.mark.parametrize(
    ("broken", "stream", "why"),
    [
        (HoldsOversizeFrame, b"\xff" + b"x" * 300, "holds 202 bytes after 202 bytes fed"),
        (FloodHoarder, b"x" * 300, "holds 202 bytes after 202 bytes fed"),
        (DropsOversizeFrame, b"\xff" + b"x" * 300, "without a message or FrameTooLarge"),
    ],
)
def test_assert_hostile_bounded_catches(broken: type[Tiny], stream: bytes, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        assert_hostile_bounded(broken, stream, slack=1)


def test_assert_hostile_bounded_under_skip_bounds_only_buffered() -> None:
    assert_hostile_bounded(DropsOversizeFrame, b"\xff" + b"x" * 300, slack=1, on_oversize="skip")
    with pytest.raises(AssertionError, match="FrameTooLarge under 'skip'"):
        assert_hostile_bounded(Tiny, b"\xff", slack=1, on_oversize="skip")


@pytest.mark.parametrize(
    ("broken", "messages", "why"),
    [
        (HoldsOversizeFrame, tiny_messages(), "over the bound of 201"),
        (DropsOversizeFrame, tiny_messages(), "without a message or FrameTooLarge"),
        (FloodHoarder, message_lists(max_size=40, forbid=[b"\n"]), "over the bound of 201"),
    ],
)
def test_check_framer_catches_a_framer_that_holds_or_drops_an_oversize_frame(
    broken: type[Tiny], messages: st.SearchStrategy[list[bytes]], why: str
) -> None:
    # Each passes every check on valid streams: only the hostile ones catch it.
    with pytest.raises(AssertionError, match=why):
        check_framer(broken, messages, max_examples=20, overhead=1)


def test_check_framer_passes_a_correct_delimited_framer() -> None:
    check_framer(TinyLines, message_lists(max_size=40, forbid=[b"\n"]), max_examples=20)


@pytest.mark.parametrize(
    ("make", "messages", "overhead"),
    [
        (lambda: Netstring(max_size=30), message_lists(max_size=30), None),
        (Netstring, message_lists(max_size=30, max_messages=3), None),
        (lambda: FixedSize(5), st.lists(st.binary(min_size=5, max_size=5)), None),
        (lambda: LengthPrefixed(2, max_size=100), message_lists(), 2),
        (lambda: LengthPrefixed(1, max_size=255), message_lists(), 1),
        (lambda: LengthPrefixed("varint", max_size=300), message_lists(), 10),
        (lambda: LengthPrefixed(4), message_lists(), 4),
        (lambda: Delimited(b"\r\n", max_size=40), message_lists(forbid=[b"\r\n"]), 2),
        (lambda: Lines(max_size=40), message_lists(max_size=40, forbid=[b"\n", b"\r"]), 2),
    ],
    ids=[
        "netstring",
        "netstring 64 KiB",
        "fixed",
        "length 2",
        "length 1 full range",
        "varint",
        "length 4 default",
        "delimited",
        "lines",
    ],
)
def test_check_framer_passes_the_real_framers_under_hostile_input(
    make: Any, messages: st.SearchStrategy[list[bytes]], overhead: int | None
) -> None:
    check_framer(make, messages, max_examples=10, overhead=overhead)


def test_check_framer_passes_struct_prefixed_under_hostile_input() -> None:
    header = Struct("kind" / Int8ub, "length" / Int16ub)
    check_framer(
        lambda: StructPrefixed(header, max_size=100),
        st.lists(st.binary(max_size=100).map(lambda p: Frame({"kind": 7}, p)), max_size=5),
        max_examples=10,
        overhead=3,
        message_of=lambda p: Frame({"kind": 7}, p),
    )


def test_check_framer_bounds_a_skipping_framer() -> None:
    check_framer(
        lambda: LengthPrefixed(2, max_size=100, on_oversize="skip"),
        message_lists(),
        max_examples=10,
        overhead=2,
        on_oversize="skip",
    )
