from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framing import Raw
from framing.errors import EncodeError, FramingError
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


def test_encode_has_no_size_limit() -> None:
    assert Raw(max_size=2).encode(bytearray(b"abcdef")) == b"abcdef"
    assert Raw(max_size=2).encode(memoryview(b"abc")) == b"abc"


@pytest.mark.parametrize(("message", "kind"), [("text", "str"), (3, "int"), (None, "NoneType")])
def test_encode_refuses_what_is_not_bytes(message: object, kind: str) -> None:
    framer = Raw(max_size=5)
    with pytest.raises(EncodeError) as info:
        framer.encode(message)  # type: ignore[arg-type]
    assert not isinstance(info.value, FramingError)
    assert str(info.value) == f"Raw(max_size=5): expects bytes, not {kind}"
    assert info.value.framer == "Raw(max_size=5)"


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


def test_feed_chunks_split_at_max_size_in_order() -> None:
    assert feed_chunks(Raw(max_size=2), [b"abc", b"", b"d"]) == [b"ab", b"c", b"d"]


def test_init_accepts_max_size_one_and_refuses_zero() -> None:
    assert Raw(max_size=1).feed(b"ab") == [b"a", b"b"]
    with pytest.raises(ValueError, match="max_size must be at least 1, not 0"):
        Raw(max_size=0)


def test_repr_names_max_size_only_when_not_the_default() -> None:
    assert repr(Raw()) == "Raw()"
    assert repr(Raw(max_size=3)) == "Raw(max_size=3)"


def test_feed_limit_zero_counts_held_chunks_and_detach_hands_them_over() -> None:
    framer = Raw(max_size=10)
    assert framer.feed(b"ab", limit=0) == []
    assert framer.feed(b"cde", limit=0) == []
    assert framer.buffered == 5
    assert framer.detach() == b"abcde"
    assert framer.buffered == 0
