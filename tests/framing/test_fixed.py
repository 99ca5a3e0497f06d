from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import EncodeError, FramingError, IncompleteFrame, MessageTooLarge
from framing.fixed import FixedSize
from framing.testing import assert_chunking_invariant, check_framer, chunkings, feed_chunks


def test_feed_splits_into_records() -> None:
    framer = FixedSize(4)
    assert framer.feed(b"abcdef") == [b"abcd"]
    assert framer.buffered == 2
    assert framer.feed(b"gh") == [b"efgh"]
    assert framer.feed(b"ijklmnopq") == [b"ijkl", b"mnop"]
    assert framer.buffered == 1


def test_feed_single_frame_byte_at_a_time() -> None:
    framer = FixedSize(3)
    out: list[bytes] = []
    for byte in b"abcdef":
        out += framer.feed(bytes([byte]))
    assert out == [b"abc", b"def"]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    framer = FixedSize(2)
    assert framer.feed(bytearray(b"abc")) == [b"ab"]
    assert framer.feed(memoryview(b"d")) == [b"cd"]
    assert all(type(m) is bytes for m in FixedSize(1).feed(bytearray(b"xy")))


def test_feed_eof_mid_record_raises_incomplete() -> None:
    framer = FixedSize(8)
    framer.feed(b"abcdefgh123")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected, info.value.partial) == (3, 8, b"123")
    assert str(info.value) == "FixedSize(8): stream ended 3 bytes into a 8-byte frame"
    assert framer.feed_eof() == []


def test_encode_exact_size_only() -> None:
    framer = FixedSize(4)
    assert framer.encode(b"abcd") == b"abcd"
    with pytest.raises(MessageTooLarge) as too_long:
        framer.encode(b"abcde")
    assert (too_long.value.size, too_long.value.limit) == (5, 4)
    with pytest.raises(EncodeError, match="cannot encode a message of 3 bytes: records are 4"):
        framer.encode(b"abc")


@pytest.mark.parametrize("message", [b"abc", b"abcde", b""])
def test_encode_wrong_size_is_the_callers_error_not_the_peers(message: bytes) -> None:
    framer = FixedSize(4)
    with pytest.raises(EncodeError) as info:
        framer.encode(message)
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, FramingError)
    assert str(info.value) == (
        f"FixedSize(4): cannot encode a message of {len(message)} bytes: records are 4"
    )
    assert info.value.framer == "FixedSize(4)"


def test_encode_shorter_message_is_not_too_large() -> None:
    with pytest.raises(EncodeError) as info:
        FixedSize(4).encode(b"abc")
    assert type(info.value) is EncodeError


def test_encode_refuses_str() -> None:
    with pytest.raises(EncodeError, match=r"^FixedSize\(4\): expects bytes, not str$"):
        FixedSize(4).encode("abcd")  # type: ignore[arg-type]


def test_feed_limit_and_detach() -> None:
    framer = FixedSize(2)
    assert framer.feed(b"aabbc", limit=1) == [b"aa"]
    assert framer.buffered == 3
    assert framer.detach() == b"bbc"
    framer.feed(b"aabb", limit=0)
    assert framer.feed_eof() == [b"aa", b"bb"]


def test_repr_clone_and_protocol() -> None:
    framer = FixedSize(48)
    framer.feed(b"x")
    twin = framer.clone()
    assert (repr(twin), twin.size, twin.max_size, twin.buffered) == ("FixedSize(48)", 48, 48, 0)
    assert isinstance(framer, Framer)
    with pytest.raises(ValueError, match="size"):
        FixedSize(0)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 9), count=st.integers(0, 12), data=st.data())
def test_property_round_trip_whatever_split(size: int, count: int, data: st.DataObject) -> None:
    messages = [data.draw(st.binary(min_size=size, max_size=size)) for _ in range(count)]
    framer = FixedSize(size)
    stream = b"".join(framer.encode(m) for m in messages)
    assert_chunking_invariant(framer.clone, stream, messages, data.draw(chunkings(stream)))


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 9), stream=st.binary(max_size=60), data=st.data())
def test_property_truncation_raises_incomplete(
    size: int, stream: bytes, data: st.DataObject
) -> None:
    chunks = data.draw(chunkings(stream))
    whole = len(stream) - len(stream) % size
    expected = [stream[i : i + size] for i in range(0, whole, size)]
    framer = FixedSize(size)
    if whole == len(stream):
        assert feed_chunks(framer, chunks) == expected
    else:
        with pytest.raises(IncompleteFrame) as info:
            feed_chunks(framer, chunks)
        assert info.value.partial == stream[whole:]
        assert info.value.messages == expected
    # Between calls, less than one record is ever held.
    framer = FixedSize(size)
    for chunk in chunks:
        framer.feed(chunk)
        assert framer.buffered < size


# Enough to find every mutant these contract tests kill (checked with mutmut), and fast.
EXAMPLES = 15


@pytest.mark.parametrize("size", [1, 3, 16])
def test_keeps_the_framer_contract(size: int) -> None:
    check_framer(
        lambda: FixedSize(size),
        st.lists(st.binary(min_size=size, max_size=size), max_size=8),
        max_examples=EXAMPLES,
        overhead=0,
    )


def test_feed_large_chunk_keeps_its_tail() -> None:
    framer = FixedSize(3)
    assert framer.feed(b"abcdefgh") == [b"abc", b"def"]
    assert framer.buffered == 2
    assert framer.feed(bytearray(b"i")) == [b"ghi"]
