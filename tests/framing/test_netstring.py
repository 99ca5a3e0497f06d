from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    FramingError,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
)
from framing.netstring import Netstring
from framing.testing import (
    assert_chunking_invariant,
    check_framer,
    chunkings,
    feed_chunks,
    message_lists,
    split_at,
)


def assert_round_trip(framer: Netstring, message: bytes, wire: bytes) -> None:
    assert framer.encode(message) == wire
    assert framer.clone().feed(wire) == [message]


def test_round_trip_vectors() -> None:
    assert_round_trip(Netstring(), b"hello", b"5:hello,")
    assert_round_trip(Netstring(), b"", b"0:,")
    assert_round_trip(Netstring(), b"hello world!", b"12:hello world!,")
    assert_round_trip(Netstring(), b"1:a,", b"4:1:a,,")


def test_feed_several_frames_one_chunk() -> None:
    assert Netstring().feed(b"1:a,0:,3:b:c,") == [b"a", b"", b"b:c"]


def test_feed_single_frame_byte_at_a_time() -> None:
    framer = Netstring()
    out: list[bytes] = []
    for byte in b"12:hello world!,":
        out += framer.feed(bytes([byte]))
    assert out == [b"hello world!"]
    assert framer.buffered == 0


def test_buffered_counts_header_and_payload() -> None:
    framer = Netstring()
    framer.feed(b"5:he")
    assert framer.buffered == 4
    assert framer.detach() == b"5:he"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"x:", "not a digit"),
        (b"5x", "not a digit"),
        (b"-1:", "not a digit"),
        (b" 5:", "not a digit"),
        (b":", "empty length"),
        (b"05:hello,", "leading zero"),
        (b"00:", "leading zero"),
        (b"5:hello;", "expected ','"),
        (b"5:hello5:", "expected ','"),
    ],
)
def test_feed_malformed(wire: bytes, reason: str) -> None:
    for chunks in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        framer = Netstring()
        with pytest.raises(MalformedFrame, match=reason) as info:
            feed_chunks(framer, chunks)
        assert info.value.framer == "Netstring()"


def test_feed_malformed_as_soon_as_the_byte_arrives() -> None:
    framer = Netstring()
    assert framer.feed(b"0") == []
    with pytest.raises(MalformedFrame, match="leading zero"):
        framer.feed(b"1")
    framer = Netstring()
    framer.feed(b"2:ab")
    with pytest.raises(MalformedFrame, match="expected ',' after the 2-byte payload, got b'c'"):
        framer.feed(b"c")


def test_feed_error_carries_earlier_messages() -> None:
    assert Netstring().feed(b"1:a,2:bb,3:x") == [b"a", b"bb"]  # still waiting: no error
    with pytest.raises(MalformedFrame) as info:
        Netstring().feed(b"1:a,2:bb,3:xyz!")
    assert info.value.messages == [b"a", b"bb"]


def test_feed_length_over_max_size_raises_as_soon_as_digits_prove_it() -> None:
    framer = Netstring(max_size=100)
    assert framer.feed(b"10") == []
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"1")
    assert (info.value.size, info.value.limit) == (101, 100)
    assert "Netstring(max_size=100)" in str(info.value)
    framer = Netstring(max_size=100)
    assert framer.feed(b"99") == []
    with pytest.raises(FrameTooLarge):
        framer.feed(b"9")


def test_feed_endless_digits_are_not_read() -> None:
    framer = Netstring(max_size=65536)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"1" * 1_000_000)
    assert info.value.size == 111111
    assert "length field 111111... is already over the limit of 65536" in str(info.value)


def test_feed_oversize_error_names_the_digits_up_to_the_overflow() -> None:
    """The log line quotes the length field as far as it proved too large, no further."""
    with pytest.raises(FrameTooLarge) as info:
        Netstring(max_size=50).feed(b"607")
    assert info.value.size == 60
    assert "length field 60... is already over the limit of 50 bytes" in str(info.value)


def test_feed_length_exactly_max_size_is_accepted() -> None:
    framer = Netstring(max_size=5)
    assert framer.feed(b"5:hello,") == [b"hello"]
    with pytest.raises(FrameTooLarge):
        framer.feed(b"6:")


def test_feed_max_size_zero_accepts_only_empty() -> None:
    assert Netstring(max_size=0).feed(b"0:,0:,") == [b"", b""]
    with pytest.raises(FrameTooLarge):
        Netstring(max_size=0).feed(b"1")


def test_encode_refuses_message_over_max_size() -> None:
    with pytest.raises(MessageTooLarge, match="cannot encode a message of 4 bytes") as info:
        Netstring(max_size=3).encode(b"abcd")
    assert not isinstance(info.value, FramingError)
    assert Netstring(max_size=3).encode(b"abc") == b"3:abc,"


def test_encode_refuses_str() -> None:
    with pytest.raises(EncodeError) as info:
        Netstring().encode("hello")  # type: ignore[arg-type]
    assert str(info.value) == "Netstring(): expects bytes, not str"
    assert not isinstance(info.value, MessageTooLarge)


def test_encode_accepts_bytearray_and_memoryview() -> None:
    assert Netstring().encode(bytearray(b"ab")) == b"2:ab,"
    assert Netstring().encode(memoryview(b"abc")[1:]) == b"2:bc,"


def test_feed_eof_mid_frame_raises_incomplete() -> None:
    framer = Netstring()
    framer.feed(b"1:a,5:he")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected, info.value.partial) == (4, 8, b"5:he")
    assert "4 bytes into a 8-byte frame" in str(info.value)
    framer.feed(b"12")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected) == (2, None)


def test_feed_limit_and_detach() -> None:
    framer = Netstring()
    assert framer.feed(b"1:a,1:b,1:", limit=1) == [b"a"]
    assert framer.detach() == b"1:b,1:"
    framer.feed(b"1:a,1:b,", limit=1)
    assert framer.feed_eof() == [b"b"]


def test_repr_clone_and_protocol() -> None:
    assert repr(Netstring()) == "Netstring()"
    framer = Netstring(max_size=7)
    framer.feed(b"3:a")
    twin = framer.clone()
    assert (repr(twin), twin.max_size, twin.buffered) == ("Netstring(max_size=7)", 7, 0)
    assert isinstance(framer, Framer)
    with pytest.raises(ValueError, match="max_size"):
        Netstring(max_size=-1)


@settings(max_examples=150, deadline=None)
@given(
    max_size=st.integers(0, 120),
    messages=st.lists(st.binary(max_size=120), max_size=10),
    data=st.data(),
)
def test_property_round_trip_whatever_split(
    max_size: int, messages: list[bytes], data: st.DataObject
) -> None:
    messages = [b"", *[m for m in messages if len(m) <= max_size], b"z" * max_size]
    framer = Netstring(max_size=max_size)
    stream = b"".join(framer.encode(m) for m in messages)
    assert_chunking_invariant(framer.clone, stream, messages, data.draw(chunkings(stream)))


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(st.binary(max_size=30), min_size=1, max_size=6), data=st.data())
def test_property_truncation_raises_incomplete(messages: list[bytes], data: st.DataObject) -> None:
    framer = Netstring()
    frames = [framer.encode(m) for m in messages]
    stream = b"".join(frames)
    cut = data.draw(st.integers(0, len(stream)))
    ends = [sum(map(len, frames[: i + 1])) for i in range(len(frames))]
    done = sum(end <= cut for end in ends)
    last_end = ends[done - 1] if done else 0
    chunks = data.draw(chunkings(stream[:cut]))
    if last_end == cut:
        assert feed_chunks(framer, chunks) == messages[:done]
    else:
        with pytest.raises(IncompleteFrame) as info:
            feed_chunks(framer, chunks)
        assert info.value.partial == stream[last_end:cut]
        assert info.value.messages == messages[:done]


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.lists(st.binary(max_size=8), max_size=3),
    garbage=st.binary(min_size=1, max_size=12),
    max_size=st.integers(0, 50),
    data=st.data(),
)
def test_property_errors_do_not_depend_on_split(
    prefix: list[bytes], garbage: bytes, max_size: int, data: st.DataObject
) -> None:
    """Any input gives the same messages, or the same error, whatever the split."""
    framer = Netstring(max_size=max_size)
    stream = b"".join(framer.encode(m) for m in prefix if len(m) <= max_size) + garbage
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))

    def outcome(chunks: list[bytes]) -> tuple[str, object]:
        fresh = framer.clone()
        try:
            return ("ok", feed_chunks(fresh, chunks))
        except (FrameTooLarge, MalformedFrame, IncompleteFrame) as exc:
            return (type(exc).__name__, (str(exc), exc.messages))

    whole = outcome([stream])
    assert outcome(split_at(stream, cuts)) == whole
    assert outcome([stream[i : i + 1] for i in range(len(stream))]) == whole
    # A peer never makes the framer hold more than a frame.
    fresh = framer.clone()
    try:
        for chunk in split_at(stream, cuts):
            fresh.feed(chunk)
            assert fresh.buffered <= max_size + len(str(max_size)) + 2
    except (FrameTooLarge, MalformedFrame):
        pass


# Enough to find every mutant these contract tests kill (checked with mutmut), and fast.
EXAMPLES = 15


@pytest.mark.parametrize("max_size", [0, 9, 10, 99, 65536])
def test_keeps_the_framer_contract(max_size: int) -> None:
    check_framer(
        lambda: Netstring(max_size=max_size),
        message_lists(max_size=min(max_size, 120), max_messages=6),
        max_examples=EXAMPLES,
        overhead=len(str(max_size)) + 2,
    )


def test_detach_then_feed_reads_a_fresh_stream() -> None:
    framer = Netstring()
    assert framer.feed(b"12:hello") == []
    assert framer.detach() == b"12:hello"
    assert framer.feed(b"2:hi,") == [b"hi"]
    assert framer.feed(b"0:,") == [b""]


@pytest.mark.parametrize(
    ("stream", "error", "text"),
    [
        (b"123", FrameTooLarge, "length field 12... is already over the limit of 5 bytes"),
        (b"6:hello!,", FrameTooLarge, "length field 6... is already over the limit of 5 bytes"),
        (b"01:", MalformedFrame, "length field has a leading zero"),
        (b":", MalformedFrame, "empty length before ':'"),
        (b"1:ab", MalformedFrame, "expected ',' after the 1-byte payload, got b'b'"),
    ],
)
def test_feed_error_text_tells_what_the_peer_did(
    stream: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        Netstring(max_size=5).feed(stream)
    assert str(info.value) == f"Netstring(max_size=5): {text}"


def test_feed_length_exactly_max_size_of_one_or_two_digits_is_accepted() -> None:
    assert Netstring(max_size=5).feed(b"5:hello,") == [b"hello"]
    assert Netstring(max_size=10).feed(b"10:helloworld,") == [b"helloworld"]


def test_encode_over_max_size_carries_size_and_limit() -> None:
    with pytest.raises(MessageTooLarge) as info:
        Netstring(max_size=5).encode(b"toolong")
    assert (info.value.size, info.value.limit) == (7, 5)


def test_feed_empty_length_keeps_earlier_messages() -> None:
    with pytest.raises(MalformedFrame) as info:
        Netstring().feed(b"1:a,:")
    assert info.value.messages == [b"a"]
