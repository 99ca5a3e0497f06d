from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framing.base import EofPolicy, Framer
from framing.delimited import DEFAULT_MAX_SIZE, Delimited, Lines
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    FramingError,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
)
from framing.fixed import FixedSize
from framing.netstring import Netstring
from framing.testing import (
    assert_chunking_invariant,
    check_framer,
    chunkings,
    feed_chunks,
    message_lists,
    split_at,
)
from tests.framing.traces import draw_steps, trace_feeds

# Every test runs on the C accelerator and on the pure-Python code (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("implementation")

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(stream: bytes, delims: Sequence[bytes]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The rule, written as plainly as possible, on the whole stream.

    Walk the end positions in order; the first position where some delimiter ends
    inside the current record closes it, with the longest delimiter ending there.
    Returns ``([(payload, delimiter), ...], unterminated tail)``.
    """
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    for end in range(1, len(stream) + 1):
        found = [d for d in delims if end - len(d) >= pos and stream[end - len(d) : end] == d]
        if found:
            delim = max(found, key=len)
            out.append((stream[pos : end - len(delim)], delim))
            pos = end
    return out, stream[pos:]


def feed_all(framer: Framer[bytes], chunks: Sequence[bytes], *, eof: bool = True) -> list[bytes]:
    return feed_chunks(framer, chunks, eof=eof)


# --- exact vectors ----------------------------------------------------------------


def test_feed_single_frame() -> None:
    assert Delimited().feed(b"hello\n") == [b"hello"]


def test_feed_several_frames_one_chunk() -> None:
    assert Delimited().feed(b"a\nbb\n\nccc\n") == [b"a", b"bb", b"", b"ccc"]


def test_feed_single_frame_byte_at_a_time() -> None:
    framer = Delimited(b"\r\n")
    out: list[bytes] = []
    for byte in b"hello\r\nworld\r\n":
        out += framer.feed(bytes([byte]))
    assert out == [b"hello", b"world"]
    assert framer.buffered == 0


def test_feed_delimiter_split_across_chunks_is_found() -> None:
    framer = Delimited(b"\r\n")
    assert framer.feed(b"OK\r") == []
    assert framer.buffered == 3
    assert framer.feed(b"\nEND\r\n") == [b"OK", b"END"]


def test_feed_long_delimiter_split_three_ways() -> None:
    framer = Delimited(b"--END--")
    assert framer.feed(b"abc--E") == []
    assert framer.feed(b"ND") == []
    assert framer.feed(b"--x--END--") == [b"abc", b"x"]


def test_feed_tie_strips_the_longer_delimiter() -> None:
    assert Delimited((b"\r\n", b"\n")).feed(b"DEF\r\n") == [b"DEF"]
    assert Delimited((b"\n", b"\r\n")).feed(b"DEF\r\n") == [b"DEF"]


def test_feed_earliest_end_wins_over_earliest_start() -> None:
    # b"abc" starts first (at 1) but b"b" ends first (at 3).
    framer = Delimited((b"abc", b"b"))
    assert framer.feed(b"xabc") == [b"xa"]
    assert framer.detach() == b"c"


def test_feed_earliest_end_same_whatever_split() -> None:
    for cut in range(5):
        framer = Delimited((b"abc", b"b"), on_eof="deliver")
        assert feed_all(framer, split_at(b"xabcq", [cut])) == [b"xa", b"cq"]


def test_feed_keep_delimiter_keeps_the_one_matched() -> None:
    framer = Delimited((b"\r\n", b"\n"), keep_delimiter=True)
    assert framer.feed(b"a\r\nb\nc\r\r\n") == [b"a\r\n", b"b\n", b"c\r\r\n"]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    framer = Delimited()
    assert framer.feed(bytearray(b"a\nb")) == [b"a"]
    assert framer.feed(memoryview(b"\n")) == [b"b"]
    assert all(type(m) is bytes for m in Delimited(b"--").feed(bytearray(b"a--b--")))


def test_feed_empty_chunk_yields_nothing() -> None:
    framer = Delimited()
    assert framer.feed(b"") == []
    assert framer.feed(b"ab") == []
    assert framer.feed(b"") == []
    assert framer.buffered == 2


def test_encode_appends_first_delimiter() -> None:
    assert Delimited().encode(b"hi") == b"hi\n"
    assert Delimited((b"\r\n", b"\n")).encode(b"hi") == b"hi\r\n"
    assert Delimited((b"\r\n", b"\n"), encode_delimiter=b"\n").encode(b"hi") == b"hi\n"
    assert Delimited().encode(b"") == b"\n"


def test_encode_refuses_message_with_delimiter() -> None:
    with pytest.raises(EncodeError) as info:
        Delimited().encode(b"a\nb")
    assert str(info.value) == (
        "Delimited(): cannot encode a message of 3 bytes: it contains the delimiter "
        "b'\\n' at offset 1, so it would not decode as sent"
    )
    assert info.value.framer == "Delimited()"
    assert not isinstance(info.value, FramingError)


def test_encode_refuses_a_message_that_ends_with_the_delimiter() -> None:
    """A delimiter ending at the message's last byte is in it, not formed with the one appended.

    Found by a mutant that told it the other way (``end < len(msg)``).
    """
    with pytest.raises(EncodeError) as info:
        Delimited().encode(b"ab\n")
    assert str(info.value) == (
        "Delimited(): cannot encode a message of 3 bytes: it contains the delimiter "
        "b'\\n' at offset 2, so it would not decode as sent"
    )


def test_encode_refuses_message_that_runs_into_the_delimiter() -> None:
    # b"xa" + b"aa" = b"xaaa": b"aa" would end at byte 3 and deliver b"x".
    with pytest.raises(EncodeError, match=r"its last 1 byte\(s\) and the b'aa' appended form"):
        Delimited(b"aa").encode(b"xa")
    # b"a\r" + b"\n" = b"a\r\n": the longer \r\n would strip the \r.
    with pytest.raises(EncodeError, match=r"the delimiter b'\\r\\n' at offset 1"):
        Delimited((b"\r\n", b"\n"), encode_delimiter=b"\n").encode(b"a\r")
    assert Delimited((b"\r\n", b"\n")).encode(b"a\r") == b"a\r\r\n"


def test_encode_refuses_message_over_max_size() -> None:
    assert Delimited(max_size=3).encode(b"abc") == b"abc\n"
    with pytest.raises(MessageTooLarge) as info:
        Delimited(max_size=3).encode(b"abcd")
    assert (info.value.framer, info.value.size, info.value.limit) == ("Delimited(max_size=3)", 4, 3)


def test_encode_refuses_str() -> None:
    with pytest.raises(EncodeError, match=r"^Delimited\(\): expects bytes, not str$"):
        Delimited().encode("hi")  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=r"^Lines\(\): expects bytes, not str$"):
        Lines().encode("hi")  # type: ignore[arg-type]


def test_encode_accepts_bytearray_and_memoryview() -> None:
    assert Delimited().encode(bytearray(b"a")) == b"a\n"
    assert Lines().encode(memoryview(b"a")) == b"a\n"


def test_max_size_default_is_64_kib() -> None:
    assert DEFAULT_MAX_SIZE == 65536
    assert Delimited().max_size == Lines().max_size == 65536


def test_feed_record_of_exactly_max_size_is_accepted() -> None:
    framer = Delimited(b"\r\n", max_size=4)
    assert framer.feed(b"abcd\r") == []
    assert framer.buffered == 5  # max_size + a partial delimiter
    assert framer.feed(b"\n") == [b"abcd"]


def test_feed_record_over_max_size_raises_before_delimiter() -> None:
    framer = Delimited(b"\r\n", max_size=4)
    framer.feed(b"abcd")
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"e")
    assert (info.value.size, info.value.limit) == (5, 4)
    assert "Delimited(b'\\r\\n', max_size=4)" in str(info.value)
    assert "first 5 bytes" in str(info.value)


def test_feed_partial_delimiter_is_not_counted_as_payload() -> None:
    # abcd + \r may still be abcd + \r\n: not over 4 yet; \r\r cannot both be.
    framer = Delimited(b"\r\n", max_size=4)
    assert framer.feed(b"abcd\r") == []
    with pytest.raises(FrameTooLarge):
        framer.feed(b"\r")


def test_feed_error_carries_earlier_messages() -> None:
    framer = Delimited(max_size=3)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"a\nbb\nxxxxx\nc\n")
    assert info.value.messages == [b"a", b"bb"]
    assert info.value.framer == "Delimited(max_size=3)"
    assert "frame of 5 bytes is over the limit of 3 bytes" in str(info.value)


def test_feed_skip_discards_oversize_record() -> None:
    framer = Delimited(max_size=3, on_oversize="skip")
    assert framer.feed(b"a\nxxxx") == [b"a"]
    assert framer.buffered == 0  # discarded as it arrives
    assert framer.feed(b"xxxxxx") == []
    assert framer.buffered == 0
    assert framer.feed(b"x\nbb\nyyyyy\ncc\n") == [b"bb", b"cc"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 16)


def test_feed_skip_keeps_partial_delimiter_only() -> None:
    framer = Delimited(b"\r\n", max_size=2, on_oversize="skip")
    assert framer.feed(b"abcdef\r") == []
    assert framer.buffered == 1
    assert framer.feed(b"\nok\r\n") == [b"ok"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 6)


def test_feed_eof_raises_with_partial() -> None:
    framer = Delimited()
    framer.feed(b"a\nunterminated")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert info.value.partial == b"unterminated"
    assert info.value.held == 12
    assert "12 bytes" in str(info.value)
    assert framer.buffered == 0


def test_feed_eof_clean_returns_nothing() -> None:
    framer = Delimited()
    framer.feed(b"a\n")
    assert framer.feed_eof() == []


def test_feed_eof_deliver_returns_last_record() -> None:
    framer = Delimited(b"\r\n", on_eof="deliver")
    assert framer.feed(b"a\r\nlast\r") == [b"a"]
    assert framer.feed_eof() == [b"last\r"]
    assert framer.feed_eof() == []


def test_feed_eof_deliver_empty_tail_is_no_message() -> None:
    framer = Delimited(on_eof="deliver")
    framer.feed(b"a\n")
    assert framer.feed_eof() == []


def test_feed_eof_deliver_oversize_tail() -> None:
    framer = Delimited(b"\r\n", max_size=3, on_eof="deliver")
    framer.feed(b"abc\r")
    with pytest.raises(FrameTooLarge):
        framer.feed_eof()
    framer = Delimited(b"\r\n", max_size=3, on_eof="deliver", on_oversize="skip")
    framer.feed(b"abc\r")
    assert framer.feed_eof() == []
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 4)


def test_feed_eof_inside_skipped_record() -> None:
    framer = Delimited(max_size=2, on_oversize="skip")
    framer.feed(b"abcdef")
    with pytest.raises(IncompleteFrame):
        framer.feed_eof()
    assert framer.skipped_frames == 1
    framer = Delimited(max_size=2, on_oversize="skip", on_eof="deliver")
    framer.feed(b"abcdef")
    assert framer.feed_eof() == []
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 6)


def test_check_called_once_per_record_with_head() -> None:
    heads: list[bytes] = []

    def check(head: bytes) -> str | None:
        heads.append(head)
        return None

    framer = Delimited(check=check, check_size=3)
    assert framer.feed(b"ab") == []
    assert heads == []
    assert framer.feed(b"cdef") == []
    assert heads == [b"abc"]  # as soon as 3 bytes arrived
    assert framer.feed(b"g\nx\n") == [b"abcdefg", b"x"]
    assert heads == [b"abc", b"x"]


def test_check_waits_for_partial_delimiter() -> None:
    heads: list[bytes] = []
    framer = Delimited(b"\r\n", check=heads.append, check_size=3)
    framer.feed(b"ab\r")  # the \r may be the delimiter: not yet 3 payload bytes
    assert heads == []
    framer.feed(b"\n")
    assert heads == [b"ab"]


def test_check_rejection_raises_malformed_with_messages() -> None:
    def check(head: bytes) -> str | None:
        return "not a command" if not head.isupper() else None

    framer = Delimited(check=check, check_size=4)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"HELO\nQUIT\nnope and more")
    assert info.value.messages == [b"HELO", b"QUIT"]
    assert "not a command" in str(info.value)
    assert "check=" in str(info.value)


def test_feed_limit_stops_and_detach_hands_over_the_rest() -> None:
    framer = Delimited()
    assert framer.feed(b"a\nb\nc", limit=1) == [b"a"]
    assert framer.buffered == 3
    assert framer.feed(b"", limit=1) == [b"b"]
    assert framer.detach() == b"c"
    assert framer.buffered == 0
    assert framer.feed(b"\n") == [b""]


def test_feed_limit_zero_parses_nothing() -> None:
    framer = Delimited(max_size=1)
    assert framer.feed(b"toolong\n", limit=0) == []
    assert framer.detach() == b"toolong\n"


def test_feed_after_limit_parses_held_records() -> None:
    framer = Delimited()
    framer.feed(b"a\nb\nc\n", limit=1)
    assert framer.feed(b"d\n") == [b"b", b"c", b"d"]
    framer.feed(b"e\nf\n", limit=1)
    assert framer.feed_eof() == [b"f"]


def test_clone_keeps_settings_not_data() -> None:
    framer = Delimited((b"\r\n", b"\n"), max_size=9, on_oversize="skip", on_eof="deliver")
    framer.feed(b"abc")
    twin = framer.clone()
    assert twin.buffered == 0
    assert repr(twin) == repr(framer)
    assert twin.feed(b"x\n") == [b"x"]


def test_repr_shows_only_non_default_options() -> None:
    def my_check(head: bytes) -> str | None:
        return None

    assert repr(Delimited()) == "Delimited()"
    assert repr(Delimited(b"\r\n")) == "Delimited(b'\\r\\n')"
    assert repr(Delimited((b"\r\n", b"\n"), keep_delimiter=True)) == (
        "Delimited((b'\\r\\n', b'\\n'), keep_delimiter=True)"
    )
    assert "check=test_repr_shows_only_non_default_options.<locals>.my_check, check_size=2" in (
        repr(Delimited(check=my_check, check_size=2))
    )
    assert repr(Lines()) == "Lines()"
    assert repr(Lines(strict=True)) == "Lines(strict=True)"
    assert (
        repr(Lines(line_ending=b"\r\n", max_size=80)) == "Lines(line_ending=b'\\r\\n', max_size=80)"
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((b"",), {}, ValueError),
        (((),), {}, ValueError),
        (((b"\n", b""),), {}, ValueError),
        (("\n",), {}, TypeError),
        (((b"\n", "x"),), {}, TypeError),
        ((), {"max_size": 0}, ValueError),
        ((), {"encode_delimiter": b""}, ValueError),
        ((), {"encode_delimiter": b"a\nb"}, ValueError),
        ((), {"encode_delimiter": "x"}, TypeError),
        ((), {"on_oversize": "drop"}, ValueError),
        ((), {"on_eof": "ignore"}, ValueError),
        ((), {"check_size": 3}, ValueError),
        ((), {"check": lambda h: None}, ValueError),
    ],
)
def test_constructor_rejects_bad_options(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Delimited(*args, **kwargs)  # type: ignore[arg-type]


def test_framer_protocol_is_met() -> None:
    assert isinstance(Delimited(), Framer)
    assert isinstance(Lines(), Framer)


# --- Lines ------------------------------------------------------------------------


def test_lines_strips_lf_and_crlf() -> None:
    framer = Lines()
    assert framer.feed(b"GET / HTTP/1.1\r\nHost: a\n\r\n\n") == [
        b"GET / HTTP/1.1",
        b"Host: a",
        b"",
        b"",
    ]


def test_lines_cr_elsewhere_is_data() -> None:
    assert Lines().feed(b"a\rb\r\r\nc\r\n") == [b"a\rb\r", b"c"]


def test_lines_crlf_split_across_chunks() -> None:
    framer = Lines()
    assert framer.feed(b"abc\r") == []
    assert framer.feed(b"\ndef\r") == [b"abc"]
    assert framer.feed(b"\r\n") == [b"def\r"]


def test_lines_encode() -> None:
    assert Lines().encode(b"hi") == b"hi\n"
    assert Lines(line_ending=b"\r\n").encode(b"hi") == b"hi\r\n"
    assert Lines(strict=True).encode(b"hi") == b"hi\r\n"
    with pytest.raises(EncodeError, match="contains the delimiter b'\\\\n' at offset 1"):
        Lines().encode(b"a\nb")
    with pytest.raises(EncodeError, match="form the delimiter b'\\\\r\\\\n' at offset 12"):
        Lines().encode(b"ends with cr\r")
    with pytest.raises(MessageTooLarge):
        Lines(max_size=2).encode(b"abc")
    assert Lines(strict=True).encode(b"a\r") == b"a\r\r\n"


def test_lines_strict_rejects_bare_lf() -> None:
    framer = Lines(strict=True)
    assert framer.feed(b"EHLO a\r\n") == [b"EHLO a"]
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"MAIL\r\nRCPT\n")
    assert info.value.messages == [b"MAIL"]
    assert "bare \\n" in str(info.value)
    assert "Lines(strict=True)" in str(info.value)


def test_lines_strict_crlf_across_chunks_is_fine() -> None:
    framer = Lines(strict=True)
    assert framer.feed(b"a\r") == []
    assert framer.feed(b"\nb\r\n") == [b"a", b"b"]


def test_lines_max_size_excludes_line_ending() -> None:
    framer = Lines(max_size=3)
    assert framer.feed(b"abc\r\nabc\n") == [b"abc", b"abc"]
    assert framer.feed(b"abc\r") == []
    assert framer.feed(b"\n") == [b"abc"]
    with pytest.raises(FrameTooLarge):
        framer.feed(b"abcd")


def test_lines_rejects_bad_line_ending() -> None:
    with pytest.raises(ValueError, match="line_ending"):
        Lines(line_ending=b"\r")
    with pytest.raises(ValueError, match="strict"):
        Lines(strict=True, line_ending=b"\n")


def test_lines_clone_and_properties() -> None:
    framer = Lines(strict=True, max_size=10, on_oversize="skip")
    twin = framer.clone()
    assert repr(twin) == repr(framer) == "Lines(strict=True, max_size=10, on_oversize='skip')"
    assert twin.strict
    assert twin.delimiters == (b"\r\n", b"\n")


# --- properties: the several-delimiter rule never depends on the split ----------------

DELIMITER_POOL = [b"ab", b"b", b"abc", b"a", b"ba", b"cc", b"bab", b"\r\n", b"\n"]
small_delims = st.lists(st.sampled_from(DELIMITER_POOL), min_size=1, max_size=3, unique=True)
abc_streams = st.lists(st.sampled_from([b"a", b"b", b"c", b"\r", b"\n"]), max_size=60).map(b"".join)


@FAST
@given(delims=small_delims, stream=abc_streams, data=st.data())
def test_property_matches_reference_whatever_split(
    delims: list[bytes], stream: bytes, data: st.DataObject
) -> None:
    records, tail = reference(stream, delims)
    expected = [payload for payload, _ in records] + ([tail] if tail else [])
    chunks = data.draw(chunkings(stream))
    assert_chunking_invariant(lambda: Delimited(delims, on_eof="deliver"), stream, expected, chunks)
    kept = [payload + delim for payload, delim in records] + ([tail] if tail else [])
    assert_chunking_invariant(
        lambda: Delimited(delims, keep_delimiter=True, on_eof="deliver"), stream, kept, chunks
    )


@FAST
@given(
    delims=small_delims,
    stream=abc_streams,
    max_size=st.integers(1, 6),
    data=st.data(),
)
def test_property_oversize_whatever_split(
    delims: list[bytes], stream: bytes, max_size: int, data: st.DataObject
) -> None:
    records, tail = reference(stream, delims)
    payloads = [payload for payload, _ in records] + ([tail] if tail else [])
    chunks = data.draw(chunkings(stream))
    # skip: exactly the other records, however the stream is split.
    for parts in ([stream], chunks, [stream[i : i + 1] for i in range(len(stream))]):
        framer = Delimited(delims, max_size=max_size, on_oversize="skip", on_eof="deliver")
        got = feed_all(framer, parts)
        assert got == [p for p in payloads if len(p) <= max_size]
        assert framer.skipped_frames == sum(len(p) > max_size for p in payloads)
        assert framer.skipped_bytes == sum(len(p) for p in payloads if len(p) > max_size)
        # raise: the same error, with the same messages before it.
        framer = Delimited(delims, max_size=max_size, on_eof="deliver")
        big = [i for i, p in enumerate(payloads) if len(p) > max_size]
        if big:
            with pytest.raises(FrameTooLarge) as info:
                feed_all(framer, parts)
            assert info.value.messages == payloads[: big[0]]
            assert info.value.size > max_size
        else:
            assert feed_all(framer, parts) == payloads


@FAST
@given(
    delims=small_delims,
    stream=abc_streams,
    check_size=st.integers(1, 5),
    max_size=st.integers(1, 8),
    data=st.data(),
)
def test_property_check_sees_same_heads_whatever_split(
    delims: list[bytes], stream: bytes, check_size: int, max_size: int, data: st.DataObject
) -> None:
    records, tail = reference(stream, delims)
    payloads = [payload for payload, _ in records] + ([tail] if tail else [])
    expected = [p[:check_size] for p in payloads if len(p) <= max_size or check_size <= max_size]
    chunks = data.draw(chunkings(stream))
    for parts in ([stream], chunks, [stream[i : i + 1] for i in range(len(stream))]):
        heads: list[bytes] = []
        framer = Delimited(
            delims,
            max_size=max_size,
            on_oversize="skip",
            on_eof="deliver",
            check=heads.append,
            check_size=check_size,
        )
        feed_all(framer, parts)
        assert heads == expected


# --- properties: round trip, truncation, limits -----------------------------------

FRAMER_CONFIGS: list[tuple[str, dict[str, object]]] = [
    ("delimited", {"delimiter": b"\n"}),
    ("delimited", {"delimiter": b"\r\n"}),
    ("delimited", {"delimiter": b"\x00"}),
    ("delimited", {"delimiter": b"--END--"}),
    ("delimited", {"delimiter": (b"\r\n", b"\n")}),
    ("delimited", {"delimiter": (b"\r\n", b"\n"), "encode_delimiter": b"\n"}),
    ("delimited", {"delimiter": (b"ab", b"b", b"abc")}),
    ("delimited", {"delimiter": b"aa"}),
    ("lines", {}),
    ("lines", {"line_ending": b"\r\n"}),
    ("lines", {"strict": True}),
]


def make(kind: str, options: dict[str, object], **more: object) -> Delimited | Lines:
    if kind == "lines":
        return Lines(**options, **more)  # type: ignore[arg-type]
    return Delimited(**options, **more)  # type: ignore[arg-type]


message_bytes = st.lists(st.sampled_from(b"ab\r\n\x00-ENDxy"), max_size=12).map(bytes)


def encodable(framer: Delimited | Lines, message: bytes) -> bool:
    try:
        framer.encode(message)
    except EncodeError:
        return False
    return True


@FAST
@given(
    config=st.sampled_from(FRAMER_CONFIGS),
    max_size=st.integers(1, 12),
    messages=st.lists(message_bytes, max_size=12),
    keep=st.booleans(),
    data=st.data(),
)
def test_property_round_trip_whatever_split(
    config: tuple[str, dict[str, object]],
    max_size: int,
    messages: list[bytes],
    keep: bool,
    data: st.DataObject,
) -> None:
    kind, options = config
    framer = make(kind, options, max_size=max_size, keep_delimiter=keep)
    # An empty message and one of exactly max_size are always in the list.
    messages = [b"", *messages, b"x" * max_size]
    messages = [m for m in messages if len(m) <= max_size and encodable(framer, m)]
    frames = [framer.encode(m) for m in messages]
    stream = b"".join(frames)
    expected = frames if keep else messages
    chunks = data.draw(chunkings(stream))
    assert_chunking_invariant(framer.clone, stream, expected, chunks)


@FAST
@given(
    config=st.sampled_from(FRAMER_CONFIGS),
    messages=st.lists(message_bytes, min_size=1, max_size=8),
    data=st.data(),
)
def test_property_truncation_raises_incomplete(
    config: tuple[str, dict[str, object]], messages: list[bytes], data: st.DataObject
) -> None:
    kind, options = config
    framer = make(kind, options)
    frames = [framer.encode(m) for m in messages if encodable(framer, m)]
    stream = b"".join(frames)
    ends = [sum(map(len, frames[: i + 1])) for i in range(len(frames))]
    cut = data.draw(st.integers(0, len(stream)))
    done = [i for i, end in enumerate(ends) if end <= cut]
    last_end = ends[done[-1]] if done else 0
    chunks = data.draw(chunkings(stream[:cut]))
    fresh = framer.clone()
    if last_end == cut:
        assert feed_all(fresh, chunks) == [m for m in messages if encodable(framer, m)][: len(done)]
    else:
        with pytest.raises(IncompleteFrame) as info:
            feed_all(fresh, chunks)
        assert info.value.partial == stream[last_end:cut]
        assert len(info.value.messages) == len(done)


@settings(max_examples=30, deadline=None)
@given(
    config=st.sampled_from(
        [
            ("delimited", {"delimiter": b"\n"}),
            ("delimited", {"delimiter": b"\r\n"}),
            ("delimited", {"delimiter": (b"ab", b"b", b"abc")}),
            ("lines", {}),
            ("lines", {"strict": True}),
        ]
    ),
    filler=st.sampled_from([b"x", b"\r", b"a", b"ab", b"\r\r\r\rx"]),
    sizes=st.lists(st.sampled_from([1, 2, 3, 7, 100, 4096, 65537]), min_size=1, max_size=6).map(
        lambda s: [*s, 65536]
    ),
    policy=st.sampled_from(["raise", "skip"]),
)
def test_property_buffered_bounded_under_adversarial_stream(
    config: tuple[str, dict[str, object]], filler: bytes, sizes: list[int], policy: str
) -> None:
    kind, options = config
    max_size = 1000
    framer = make(kind, options, max_size=max_size, on_oversize=policy)
    longest = max(len(d) for d in framer.delimiters)
    # Two megabytes that never complete a delimiter (b"\r" may start one).
    if any(d in filler * 4 for d in framer.delimiters):
        filler = b"x"
    total = 2 * 1024 * 1024
    sent = 0
    step = 0
    raised = False
    last = b""  # the last bytes sent, where the delimiter may begin
    while sent < total and step < 1500:  # megabytes when big chunks are drawn
        size = sizes[step % len(sizes)]
        step += 1
        chunk = (filler * (size // len(filler) + 1))[:size]
        try:
            assert framer.feed(chunk) == []
        except FrameTooLarge as exc:
            raised = exc.size > max_size
            break
        sent += size
        last = (last + chunk)[-8:]
        assert framer.buffered <= max_size + longest - 1
    assert raised == (policy == "raise")
    if policy == "skip":
        ending = framer.encode(b"ok")[2:]
        assert framer.feed(ending + framer.encode(b"ok")) == [b"ok"]
        assert framer.skipped_frames == 1
        # The delimiter may take some of the last bytes sent (b"\r" + b"\n").
        records, _ = reference(last + ending, framer.delimiters)
        assert framer.skipped_bytes == sent - len(last) + len(records[0][0])


def test_long_record_in_small_chunks_is_found() -> None:
    # 8 MiB record in 4 KiB chunks with a multi-byte delimiter straddling chunks.
    framer = Delimited(b"\r\n", max_size=8 * 1024 * 1024)
    record = b"y" * (8 * 1024 * 1024)
    stream = record + b"\r\n"
    out: list[bytes] = []
    for i in range(0, len(stream), 4095):
        out += framer.feed(stream[i : i + 4095])
        assert framer.buffered <= len(record) + 1
    assert out == [record]


# --- switching framers mid-stream ---------------------------------------------------


def read_head_then_body(
    chunks: Sequence[bytes], body: Framer[bytes]
) -> tuple[list[bytes], list[bytes]]:
    """Header lines up to a blank line, then ``body`` framing for the rest."""
    lines = Lines()
    head: list[bytes] = []
    messages: list[bytes] = []
    in_head = True
    for chunk in chunks:
        if not in_head:
            messages += body.feed(chunk)
            continue
        data = chunk
        while in_head:
            got = lines.feed(data, limit=1)
            data = b""
            if not got:
                break
            if got[0] == b"":
                in_head = False
                messages += body.feed(lines.detach())
            else:
                head.append(got[0])
    messages += body.feed_eof()
    return head, messages


@FAST
@given(
    head=st.lists(
        st.binary(max_size=10).filter(lambda b: b"\n" not in b and b"\r" not in b).filter(bool),
        max_size=5,
    ),
    body=st.lists(st.binary(max_size=20), max_size=5),
    data=st.data(),
)
def test_property_switch_framers_after_blank_line_loses_no_byte(
    head: list[bytes], body: list[bytes], data: st.DataObject
) -> None:
    for framer in (Netstring(), FixedSize(4)):
        messages = body if isinstance(framer, Netstring) else [b"abcd", b"\n\r\n\x00", b"wxyz"]
        stream = b"".join(m + b"\r\n" for m in head) + b"\r\n"
        stream += b"".join(framer.encode(m) for m in messages)
        chunks = data.draw(chunkings(stream))
        assert read_head_then_body(chunks, framer.clone()) == (head, messages)
        assert read_head_then_body([stream], framer.clone()) == (head, messages)


def drain_with_limit(framer: Delimited | Lines, chunks: Sequence[bytes]) -> list[bytes]:
    """Feed with limit=1 and drain, as a protocol switching framers would."""
    out: list[bytes] = []
    for chunk in chunks:
        got = framer.feed(chunk, limit=1)
        while got:
            assert len(got) == 1
            out += got
            got = framer.feed(b"", limit=1)
    return out + framer.feed_eof()


@FAST
@given(delims=small_delims, stream=abc_streams, data=st.data())
def test_property_limit_one_gives_same_records(
    delims: list[bytes], stream: bytes, data: st.DataObject
) -> None:
    records, tail = reference(stream, delims)
    expected = [payload for payload, _ in records] + ([tail] if tail else [])
    chunks = data.draw(chunkings(stream))
    assert drain_with_limit(Delimited(delims, on_eof="deliver"), chunks) == expected


@FAST
@given(
    stream=st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n"]), max_size=40).map(b"".join),
    data=st.data(),
)
def test_property_lines_strict_whatever_split(stream: bytes, data: st.DataObject) -> None:
    records, tail = reference(stream, [b"\r\n", b"\n"])
    bare = [i for i, (_, delim) in enumerate(records) if delim == b"\n"]
    chunks = data.draw(chunkings(stream))
    for parts in ([stream], chunks, [stream[i : i + 1] for i in range(len(stream))]):
        # Lines() agrees with the rule for \r\n and \n, on the fast path and off it.
        lines = [payload for payload, _ in records]
        assert feed_all(Lines(on_eof="deliver"), parts) == lines + ([tail] if tail else [])
        if bare:
            with pytest.raises(MalformedFrame) as info:
                feed_all(Lines(strict=True, on_eof="deliver"), parts)
            assert info.value.messages == lines[: bare[0]]
        else:
            assert feed_all(Lines(strict=True, on_eof="deliver"), parts) == lines + (
                [tail] if tail else []
            )


# --- the fast paths against the general engine ------------------------------------
#
# Without a limit or an early check, feed holds chunks that end no record (no byte
# that ends a delimiter) and splits the others with bytes.split. The same framer
# with an early check that accepts everything takes the general engine for every
# byte, so both must give the same records, the same held bytes after every feed,
# the same skip counts and the same error with the same numbers, however the
# stream is cut and limited.


def accept_all(head: bytes) -> str | None:
    return None


FAST_PATH_CONFIGS: dict[str, Callable[..., Delimited | Lines]] = {
    "Lines": Lines,
    "Lines strict": lambda **kw: Lines(strict=True, **kw),
    "Lines keep": lambda **kw: Lines(keep_delimiter=True, **kw),
    "Lines small": lambda **kw: Lines(max_size=12, **kw),
    "Lines small skip": lambda **kw: Lines(max_size=12, on_oversize="skip", **kw),
    "Lines deliver": lambda **kw: Lines(on_eof="deliver", max_size=12, **kw),
    "CRLF": lambda **kw: Delimited(b"\r\n", **kw),
    "CRLF keep small": lambda **kw: Delimited(b"\r\n", keep_delimiter=True, max_size=12, **kw),
    "CRLF small skip": lambda **kw: Delimited(b"\r\n", max_size=12, on_oversize="skip", **kw),
    "abc": lambda **kw: Delimited(b"abc", max_size=12, **kw),
    "LF": lambda **kw: Delimited(b"\n", max_size=12, on_eof="deliver", **kw),
    "LF or CRLF": lambda **kw: Delimited((b"\r\n", b"\n"), **kw),
    "same last byte": lambda **kw: Delimited((b"bc", b"c"), max_size=12, **kw),
}
# Line-ish streams: long runs without a line ending are what the hold path sees.
line_streams = st.lists(
    st.sampled_from([b"a", b"b", b"c", b"\r", b"\n", b"\r\n", b"abc", b"xxxxxxxx"]), max_size=60
).map(b"".join)


@pytest.mark.parametrize("name", sorted(FAST_PATH_CONFIGS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=line_streams, data=st.data())
def test_fast_paths_match_general_engine(name: str, stream: bytes, data: st.DataObject) -> None:
    make = FAST_PATH_CONFIGS[name]
    steps = draw_steps(data, data.draw(chunkings(stream), label="chunks"))
    assert trace_feeds(make(), steps) == trace_feeds(make(check=accept_all, check_size=1), steps)


def test_hold_path_counts_held_bytes_toward_max_size() -> None:
    framer = Lines(max_size=10)
    assert framer.feed(b"x" * 6) == []
    assert framer.feed(b"x" * 4) == []  # exactly max_size held: still fine
    assert framer.buffered == 10
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"x")
    assert (info.value.size, info.value.limit) == (11, 10)


def test_lines_cr_held_then_lf_strips_the_crlf() -> None:
    framer = Lines()
    assert framer.feed(b"one\r") == []
    assert framer.feed(b"\ntwo\n") == [b"one", b"two"]


def test_crlf_straddling_held_bytes_and_chunk_is_found_by_the_fast_path() -> None:
    framer = Delimited(b"\r\n")
    assert framer.feed(b"a\r\nb\r") == [b"a"]
    assert framer.feed(b"\nc\r\n") == [b"b", b"c"]
    assert framer.buffered == 0


def test_crlf_lone_lf_is_data() -> None:
    framer = Delimited(b"\r\n")
    assert framer.feed(b"a\nb") == []
    assert framer.feed(b"\r\n") == [b"a\nb"]


@pytest.mark.parametrize("on_eof", ["raise", "deliver"])
def test_feed_eof_inside_a_skipped_record_counts_it_and_keeps_earlier_records(
    on_eof: EofPolicy,
) -> None:
    framer = Delimited(b"\r\n", max_size=5, on_oversize="skip", on_eof=on_eof)
    # One oversize record skipped, one good record, then an oversize record cut
    # short after a lone \r (which may begin a delimiter, so it is held).
    stream = b"yyyyyyy\r\n" + b"a\r\n" + b"x" * 20 + b"\r"
    assert framer.feed(stream, limit=0) == []
    if on_eof == "raise":
        with pytest.raises(IncompleteFrame) as info:
            framer.feed_eof()
        exc = info.value
        assert exc.framer == "Delimited(b'\\r\\n', max_size=5, on_oversize='skip')"
        assert (exc.held, exc.partial, exc.messages) == (1, b"\r", [b"a"])
        assert "with 1 bytes of an unfinished message held" in str(exc)
    else:
        assert framer.feed_eof() == [b"a"]
    # Both oversize records are counted: 7 payload bytes, then 20 + the lone \r.
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 28)
    assert framer.buffered == 0


def test_general_engine_skips_two_oversize_records_and_counts_both() -> None:
    # Two delimiters other than \n and \r\n take the general engine.
    framer = Delimited((b";", b"|"), max_size=3, on_oversize="skip")
    assert framer.feed(b"aaaaa;bb|cccccc|d") == [b"bb"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 11)
    assert framer.buffered == 1
    assert framer.feed(b";") == [b"d"]


# --- edges on rare paths: error texts and fields, boundaries of max_size and ---------
# --- check_size, the state detach and feed_eof leave, encode refusals ---------------


def reject_x(head: bytes) -> str | None:
    """An early check that refuses records starting with ``x``."""
    return "starts with x" if head.startswith(b"x") else None


# --- settings errors: the text says which option and which value -------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"max_size": 0}, "max_size must be at least 1, not 0"),
        ({"on_oversize": "drop"}, "on_oversize must be 'raise' or 'skip', not 'drop'"),
        ({"on_eof": "ignore"}, "on_eof must be 'raise' or 'deliver', not 'ignore'"),
        ({"check": reject_x, "check_size": 0}, "check_size must be at least 1 with a check, not 0"),
        ({"check_size": 3}, "check_size was given without a check"),
    ],
)
def test_settings_errors_name_the_option_and_value(kwargs: dict[str, object], text: str) -> None:
    """Each bad option raises ValueError with a message naming it and the value given."""
    exact = f"^{re.escape(text)}$"
    with pytest.raises(ValueError, match=exact):
        Delimited(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=exact):
        Lines(**kwargs)  # type: ignore[arg-type]


# --- encode with several delimiters ------------------------------------------------


def test_encode_refuses_message_holding_another_one_byte_delimiter() -> None:
    """With ``;`` and ``|``, a message holding ``|`` cannot be sent with ``;`` appended."""
    framer = Delimited((b";", b"|"))
    assert framer.encode(b"ab") == b"ab;"
    with pytest.raises(EncodeError) as info:
        framer.encode(b"a|b")
    assert info.value.framer == "Delimited((b';', b'|'))"
    assert framer.feed(b"a|b;") == [b"a", b"b"]  # what the peer would have read


def test_encode_refuses_message_holding_a_shorter_delimiter_before_a_longer_one() -> None:
    r"""A ``\n`` in the message ends a record before the ``END`` appended can."""
    framer = Delimited((b"\n", b"END"), encode_delimiter=b"END")
    assert framer.encode(b"ab") == b"abEND"
    with pytest.raises(EncodeError, match="would not decode as sent"):
        framer.encode(b"a\nb")


# --- the partial delimiter held is the longest one ---------------------------------


def test_partial_delimiter_is_the_longest_prefix_of_any_delimiter() -> None:
    """``ab`` may begin ``abc`` (two bytes), not only ``bd`` (one): not payload yet."""
    framer = Delimited((b"abc", b"bd"), max_size=3)
    assert framer.feed(b"xxxab") == []  # 3 payload bytes, then a possible "abc"
    assert framer.buffered == 5
    assert framer.feed(b"c") == [b"xxx"]


def test_partial_delimiter_is_sought_only_in_the_current_record() -> None:
    """The delimiter that ended the last record is not the start of the next one.

    ``abca`` ends ``x``; then ``bc`` cannot begin ``abca`` (it would need the
    ``a`` already consumed), so two payload bytes are over ``max_size=1``.
    """
    framer = Delimited(b"abca", max_size=1)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"xabcabc")
    assert (info.value.size, info.value.limit, info.value.messages) == (2, 1, [b"x"])


# --- the early check: exactly when it runs -----------------------------------------


def test_check_runs_when_exactly_check_size_bytes_have_arrived() -> None:
    """The head goes to the check as soon as it is complete, not one byte later."""
    heads: list[bytes] = []
    framer = Delimited(check=heads.append, check_size=3)
    assert framer.feed(b"ab") == []
    assert heads == []
    assert framer.feed(b"c") == []
    assert heads == [b"abc"]
    with pytest.raises(MalformedFrame):
        Delimited(check=reject_x, check_size=3).feed(b"xyz")


def test_check_size_equal_to_max_size_checks_a_whole_oversize_record() -> None:
    """With ``check_size == max_size`` an oversize record is checked before its size."""
    with pytest.raises(MalformedFrame) as info:
        Delimited(max_size=3, check=reject_x, check_size=3).feed(b"ok\nxyzw\n")
    assert info.value.messages == [b"ok"]
    heads: list[bytes] = []
    framer = Delimited(max_size=3, on_oversize="skip", check=heads.append, check_size=3)
    assert framer.feed(b"abcd\nok\n") == [b"ok"]
    assert heads == [b"abc", b"ok"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 4)


# --- skipping oversize records -----------------------------------------------------


def test_skip_counts_each_record_skipped_as_it_arrives() -> None:
    """Records found oversize before their delimiter arrives are each counted, in full."""
    framer = Delimited(max_size=2, on_oversize="skip")
    assert framer.feed(b"abcd") == []  # over 2: skipped from here on
    assert framer.feed(b"ef\nghij") == []  # ends the first, starts the second
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 6)
    assert framer.feed(b"k\nok\n") == [b"ok"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 11)


# --- feed_eof: errors and counters for the unterminated last record ----------------


def test_feed_eof_oversize_tail_error_carries_framer_numbers_and_messages() -> None:
    r"""An over-long tail delivered at the end raises with its size and earlier records.

    ``abc\r`` fits while the ``\r`` may begin ``\r\n``; at the end it is a
    4-byte record, over 3. The record held back by ``limit=0`` comes first.
    """
    framer = Delimited(b"\r\n", max_size=3, on_eof="deliver")
    assert framer.feed(b"a\r\nabc\r", limit=0) == []
    with pytest.raises(FrameTooLarge) as info:
        framer.feed_eof()
    exc = info.value
    assert exc.framer == "Delimited(b'\\r\\n', max_size=3, on_eof='deliver')"
    assert (exc.size, exc.limit, exc.messages) == (4, 3, [b"a"])
    assert str(exc).startswith(exc.framer + ": frame of 4 bytes")


def test_feed_eof_checks_and_skips_an_oversize_tail_and_counts_it() -> None:
    """At the end, an unchecked tail is checked on its head, then skipped and counted.

    ``aEN`` was never checked while ``EN`` might begin ``END``; at the end it is
    a 3-byte record over ``max_size=2``: checked (``check_size == max_size``),
    then skipped, counted after the record skipped before it.
    """
    heads: list[bytes] = []
    framer = Delimited(
        b"END",
        max_size=2,
        on_oversize="skip",
        on_eof="deliver",
        check=heads.append,
        check_size=2,
    )
    assert framer.feed(b"xxxENDaEN") == []
    assert heads == [b"xx"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 3)
    assert framer.feed_eof() == []
    assert heads == [b"xx", b"aE"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 6)


def test_feed_eof_check_rejecting_the_tail_keeps_earlier_records() -> None:
    """A tail shorter than ``check_size`` is checked at the end; the error keeps earlier records."""
    framer = Delimited(on_eof="deliver", check=reject_x, check_size=5)
    assert framer.feed(b"a\nxy", limit=0) == []
    with pytest.raises(MalformedFrame) as info:
        framer.feed_eof()
    assert info.value.messages == [b"a"]
    assert "starts with x" in str(info.value)


def test_feed_eof_leaves_a_fresh_framer_whose_next_record_is_checked() -> None:
    """After feed_eof checked and delivered a tail, the framer checks the next record again.

    ``ok`` is shorter than ``check_size``: it is checked only at the end.
    """
    framer = Delimited(on_eof="deliver", check=reject_x, check_size=5)
    assert framer.feed(b"ok") == []
    assert framer.feed_eof() == [b"ok"]
    with pytest.raises(MalformedFrame):
        framer.feed(b"xyz\n")


# --- detach: the framer is left as new ---------------------------------------------


def test_detach_resets_the_early_check() -> None:
    """A record whose head was checked, then detached: the next record is checked afresh."""
    framer = Delimited(check=reject_x, check_size=1)
    assert framer.feed(b"ab") == []  # "a" checked and accepted
    assert framer.detach() == b"ab"
    with pytest.raises(MalformedFrame):
        framer.feed(b"xy\n")


def test_detach_then_a_short_record_is_found_from_its_start() -> None:
    """After detach the search starts afresh, not where it stopped in the bytes detached.

    Found by a mutant that left the framer marked as mid-search after detach:
    ``abc`` searched in full, then ``d\\n`` (shorter) was searched from offset 3.
    """
    framer = Delimited(check=reject_x, check_size=1)
    assert framer.feed(b"abc") == []
    assert framer.detach() == b"abc"
    assert framer.feed(b"d\n") == [b"d"]
    assert framer.buffered == 0


def test_detach_inside_a_skip_ends_the_skip() -> None:
    """After detach during a skip, the next record is delivered, not skipped or counted."""
    framer = Delimited(b"\r\n", max_size=2, on_oversize="skip")
    assert framer.feed(b"abcdef\r") == []
    assert framer.detach() == b"\r"
    assert framer.feed(b"ok\r\nno\r\n", limit=1) == [b"ok"]
    assert framer.feed(b"", limit=1) == [b"no"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (0, 0)


# --- Lines -------------------------------------------------------------------------


def test_lines_crlf_chunk_ending_mid_line() -> None:
    r"""A chunk of CRLF lines cut inside a line: the whole lines, the rest held."""
    framer = Lines()
    assert framer.feed(b"XX\r\nXXI") == [b"XX"]
    assert framer.buffered == 3
    assert framer.feed(b"\r\n") == [b"XXI"]


def test_lines_clone_keeps_on_eof() -> None:
    """A clone of ``Lines(on_eof="deliver")`` delivers an unterminated last line too."""
    twin = Lines(on_eof="deliver", max_size=9).clone()
    assert repr(twin) == "Lines(max_size=9, on_eof='deliver')"
    assert twin.feed(b"a\nlast") == [b"a"]
    assert twin.feed_eof() == [b"last"]


# --- the generic contract (framing.testing.check_framer) over delimiter sets ---------

# Few examples each: many settings, and the property tests above go deeper.
CONTRACT_EXAMPLES = 15


@pytest.mark.parametrize(
    "delimiters",
    [(b"\n",), (b"\r\n",), (b"\r\n", b"\n"), (b"ab", b"b"), (b"aba",), (b"xx", b"xxx")],
)
def test_contract_holds_for_overlapping_delimiters(delimiters: tuple[bytes, ...]) -> None:
    alphabet = bytes(sorted(set(b"".join(delimiters)) | {ord("q")}))
    check_framer(
        lambda: Delimited(delimiters, max_size=50),
        message_lists(max_size=50, forbid=delimiters, alphabet=alphabet, max_messages=6).filter(
            lambda ms: all(_representable(delimiters, m) for m in ms)
        ),
        max_examples=CONTRACT_EXAMPLES,
        overhead=max(map(len, delimiters)),
    )


def _representable(delimiters: tuple[bytes, ...], message: bytes) -> bool:
    try:
        Delimited(delimiters, max_size=50).encode(message)
    except EncodeError:
        return False
    return True


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_lines_contract_holds_for_each_line_ending(ending: bytes) -> None:
    check_framer(
        lambda: Lines(line_ending=ending, max_size=30),
        message_lists(max_size=30, forbid=[b"\n", b"\r"], alphabet=b"ab\r\n"),
        max_examples=CONTRACT_EXAMPLES,
        overhead=2,
    )


def test_lines_clone_keeps_ending_and_check() -> None:
    def no_q(head: bytes) -> str | None:
        return "q" if head.startswith(b"q") else None

    twin = Lines(line_ending=b"\r\n", check=no_q, check_size=1).clone()
    assert twin.encode(b"a") == b"a\r\n"
    with pytest.raises(MalformedFrame):
        twin.feed(b"quit\n")
    assert repr(twin) == repr(Lines(line_ending=b"\r\n", check=no_q, check_size=1))


def test_repr_names_a_check_without_qualname() -> None:
    bound = functools.partial(lambda head: None)
    assert repr(bound) in repr(Delimited(b"\n", check=bound, check_size=1))


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (
            lambda: Delimited("\n"),  # type: ignore[arg-type]
            "a delimiter is bytes, not str: write b'...'",
        ),
        (
            lambda: Delimited([1]),  # type: ignore[list-item]
            "a delimiter is bytes, not int",
        ),
        (lambda: Delimited([b""]), "a delimiter cannot be empty"),
        (lambda: Delimited([]), "at least one delimiter is needed"),
        (
            lambda: Delimited(b"\n", encode_delimiter=b"x\ny"),
            "encode_delimiter b'x\\ny' contains the delimiter b'\\n' at offset 1: "
            "every frame would decode as two records",
        ),
        (
            lambda: Delimited(b"\n", encode_delimiter="x"),  # type: ignore[arg-type]
            "encode_delimiter is bytes, not str",
        ),
        (lambda: Delimited(b"\n", encode_delimiter=b""), "encode_delimiter cannot be empty"),
        (
            lambda: Lines(strict=True, line_ending=b"\n"),
            "strict Lines end every line with \\r\\n: line_ending must be too",
        ),
    ],
)
def test_settings_errors_name_the_delimiter_problem(make: Any, text: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert str(info.value) == text


def test_feed_earliest_end_wins_over_a_longer_later_match() -> None:
    # "a" ends at 2, "abc" at 4: the earlier wins, leaving "bc" for the next record.
    got = feed_chunks(Delimited((b"a", b"abc"), on_eof="deliver"), [b"xabcqa"])
    assert got == [b"x", b"bcq"]


def test_clone_keeps_encode_delimiter() -> None:
    framer = Delimited((b"\n", b"\r\n"), encode_delimiter=b"\r\n").clone()
    assert framer.encode(b"a") == b"a\r\n"


def test_encode_over_max_size_error_text_names_the_numbers() -> None:
    framer = Delimited(b"\n", max_size=2)
    with pytest.raises(MessageTooLarge) as info:
        framer.encode(b"abc")
    assert str(info.value) == (
        "Delimited(max_size=2): cannot encode a message of 3 bytes: the limit is 2 bytes"
    )
    assert info.value.framer == repr(framer)


# --- encode_delimiter other than the split delimiters (tokio's AnyDelimiterCodec) ----


def test_encode_delimiter_any_bytes_decodes_the_split_delimiter() -> None:
    """Split on ``,``, write ``;--;``: a stream made with ``,`` decodes, whatever the split."""
    framer = Delimited(b",", encode_delimiter=b";--;")
    stream = b"a,bc,,d;--;e,"
    assert feed_all(framer.clone(), [stream]) == [b"a", b"bc", b"", b"d;--;e"]
    assert feed_all(framer.clone(), [bytes([b]) for b in stream]) == [b"a", b"bc", b"", b"d;--;e"]


def test_encode_delimiter_any_bytes_is_appended() -> None:
    framer = Delimited(b",", encode_delimiter=b";--;")
    assert framer.encode(b"hello") == b"hello;--;"
    assert framer.encode(b"") == b";--;"
    assert repr(framer) == "Delimited(b',', encode_delimiter=b';--;')"


def test_encode_delimiter_any_bytes_refuses_a_split_delimiter_or_itself() -> None:
    framer = Delimited(b",", encode_delimiter=b";--;")
    with pytest.raises(EncodeError, match="contains the delimiter b',' at offset 1"):
        framer.encode(b"a,b")
    with pytest.raises(EncodeError, match="contains the delimiter b';--;' at offset 1"):
        framer.encode(b"a;--;b")
    with pytest.raises(EncodeError, match=r"its last 3 byte\(s\) and the b';--;' appended form"):
        framer.encode(b"a;--")


def test_encode_delimiter_that_a_delimiter_cuts_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="contains the delimiter b';' at offset 0"):
        Delimited(b";", encode_delimiter=b";--;")
    # A delimiter that ends where the encode delimiter ends is no cut: CRLF for \n.
    assert Delimited(b"\n", encode_delimiter=b"\r\n").encode(b"a") == b"a\r\n"


def test_clone_keeps_an_encode_delimiter_of_any_bytes() -> None:
    twin = Delimited((b",", b"|"), encode_delimiter=b";--;", max_size=9).clone()
    assert twin.encode(b"x") == b"x;--;"
    assert twin.feed(b"a|b,") == [b"a", b"b"]
    assert repr(twin) == "Delimited((b',', b'|'), max_size=9, encode_delimiter=b';--;')"


@FAST
@given(
    messages=st.lists(st.lists(st.sampled_from(b",;-ab"), max_size=8).map(bytes), max_size=8),
    data=st.data(),
)
def test_property_encode_delimiter_any_bytes_round_trip_for_each_side(
    messages: list[bytes], data: st.DataObject
) -> None:
    """Decode: a stream made with ``,`` gives its messages, however split. Encode: every
    message accepted reads back whole from a reader splitting on ``;--;``, and on ``,`` too.
    """
    framer = Delimited(b",", encode_delimiter=b";--;")
    plain = [m for m in messages if b"," not in m]
    stream = b"".join(m + b"," for m in plain)
    assert feed_all(framer.clone(), data.draw(chunkings(stream))) == plain
    for message in messages:
        # Refused exactly when a reader would end it early: it holds a ",", or
        # ";--;" occurs before the one appended.
        early = b"," in message or (message + b";--;").find(b";--;") < len(message)
        try:
            frame = framer.encode(message)
        except EncodeError:
            assert early
            continue
        assert not early
        assert frame == message + b";--;"
        assert Delimited(b";--;").feed(frame) == [message]
        assert Delimited((b",", b";--;")).feed(frame) == [message]
