from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from framing import Raw
from framing.testing import feed_chunks


def test_feed_chunk_is_one_message() -> None:
    assert Raw().feed(b"hello") == [b"hello"]


def test_feed_empty_chunk_yields_nothing() -> None:
    assert Raw().feed(b"") == []


def test_feed_accepts_bytearray_and_memoryview() -> None:
    framer = Raw()
    assert framer.feed(bytearray(b"ab")) == [b"ab"]
    assert framer.feed(memoryview(b"cd")) == [b"cd"]


def test_feed_splits_chunk_over_max_size() -> None:
    assert Raw(max_size=3).feed(b"abcdefg") == [b"abc", b"def", b"g"]


def test_feed_with_limit_holds_the_rest() -> None:
    framer = Raw(max_size=2)
    assert framer.feed(b"abcde", limit=1) == [b"ab"]
    assert framer.buffered == 3
    assert framer.feed(b"", limit=1) == [b"cd"]
    assert framer.detach() == b"e"
    assert framer.buffered == 0


def test_feed_eof_returns_held_chunks() -> None:
    framer = Raw()
    framer.feed(b"abc", limit=0)
    assert framer.feed_eof() == [b"abc"]
    assert framer.feed_eof() == []


def test_encode_is_identity() -> None:
    assert Raw().encode(b"x\x00y") == b"x\x00y"


def test_clone_keeps_settings_not_data() -> None:
    framer = Raw(max_size=5)
    framer.feed(b"abc", limit=0)
    twin = framer.clone()
    assert twin.max_size == 5
    assert twin.buffered == 0
    assert repr(twin) == "Raw(max_size=5)"


@given(st.lists(st.binary(max_size=50), max_size=20))
def test_feed_joined_messages_equal_stream(chunks: list[bytes]) -> None:
    framer = Raw(max_size=7)
    out = feed_chunks(framer, chunks)
    assert b"".join(out) == b"".join(chunks)
    assert all(0 < len(m) <= 7 for m in out)
