"""LengthPrefixed: exact wire vectors, options, limits, errors, limit/detach."""

from __future__ import annotations

import re
import tracemalloc

import dns.message
import pytest
from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
    MessageTypeError,
)
from framing.length import (
    DEFAULT_MAX_SIZE,
    LengthPrefixed,
    Width,
    decode_varint,
    encode_varint,
)
from framing.testing import assert_chunking_invariant, check_framer, feed_chunks, message_lists

# Every test runs on the C accelerator and on the pure-Python code (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("implementation")

# A real query, as dig sends it over TCP: "example.com. IN A", id 0x1234, RD set.
DNS_QUERY = bytes.fromhex(
    "1234 0100 0001 0000 0000 0000 076578616d706c6503636f6d00 0001 0001".replace(" ", "")
)
DNS_QUERY_ON_TCP = bytes.fromhex("001d") + DNS_QUERY


def roundtrip(framer: LengthPrefixed, message: bytes, wire: bytes) -> None:
    """encode(message) == wire, and wire decodes to [message] however it is split."""
    assert framer.encode(message) == wire
    assert_chunking_invariant(framer.clone, wire, [message])


# --- DNS over TCP -------------------------------------------------------------------


def test_dns_query_exact_bytes_with_prefix() -> None:
    assert len(DNS_QUERY) == 0x1D
    framer = LengthPrefixed(2)
    roundtrip(framer, DNS_QUERY, DNS_QUERY_ON_TCP)
    parsed = dns.message.from_wire(framer.clone().feed(DNS_QUERY_ON_TCP)[0])
    assert parsed.id == 0x1234
    assert str(parsed.question[0]) == "example.com. IN A"


def test_dns_query_matches_dnspython_tcp_framing() -> None:
    query = dns.message.make_query("example.com.", "A")
    query.id = 0x1234
    wire = query.to_wire()
    assert wire == DNS_QUERY
    assert LengthPrefixed(2).encode(wire) == len(wire).to_bytes(2, "big") + wire


def test_dns_pipelined_queries_in_one_chunk() -> None:
    assert LengthPrefixed(2).feed(DNS_QUERY_ON_TCP * 3) == [DNS_QUERY] * 3


def test_dns_largest_message_65535_bytes_accepted() -> None:
    framer = LengthPrefixed(2)
    assert framer.max_size == 65535
    message = bytes(range(256)) * 255 + bytes(255)
    assert len(message) == 65535
    wire = framer.encode(message)
    assert wire[:2] == b"\xff\xff"
    assert framer.feed(wire) == [message]


# --- fixed widths and byte orders ---------------------------------------------------


@pytest.mark.parametrize(
    ("width", "byteorder", "header"),
    [
        (1, "big", "05"),
        (1, "little", "05"),
        (2, "big", "0005"),
        (2, "little", "0500"),
        (3, "big", "000005"),
        (3, "little", "050000"),
        (4, "big", "00000005"),
        (4, "little", "05000000"),
        (8, "big", "0000000000000005"),
        (8, "little", "0500000000000000"),
    ],
)
def test_encode_and_feed_fixed_width_vectors(width: Width, byteorder: str, header: str) -> None:
    framer = LengthPrefixed(width, byteorder)  # type: ignore[arg-type]
    roundtrip(framer, b"hello", bytes.fromhex(header) + b"hello")


def test_width_3_big_uses_all_three_bytes() -> None:
    roundtrip(LengthPrefixed(3), b"a" * 0x010203, b"\x01\x02\x03" + b"a" * 0x010203)


def test_width_4_little_multi_byte_length() -> None:
    roundtrip(LengthPrefixed(4, "little"), b"z" * 0x0102, b"\x02\x01\x00\x00" + b"z" * 0x0102)


def test_empty_message_is_a_header_alone() -> None:
    roundtrip(LengthPrefixed(2), b"", b"\x00\x00")
    assert LengthPrefixed(2).feed(b"\x00\x00\x00\x00\x00\x01x") == [b"", b"", b"x"]


def test_default_max_sizes() -> None:
    assert LengthPrefixed(1).max_size == 255
    assert LengthPrefixed(2).max_size == 65535
    assert LengthPrefixed(2, length_adjustment=-2).max_size == 65533
    for width in (3, 4, 8, "varint"):
        assert LengthPrefixed(width).max_size == DEFAULT_MAX_SIZE


def test_feed_accepts_bytearray_and_memoryview() -> None:
    framer = LengthPrefixed(2)
    assert framer.feed(bytearray(b"\x00\x02h")) == []
    assert framer.feed(memoryview(b"i\x00\x01!")) == [b"hi", b"!"]
    assert framer.encode(bytearray(b"ab")) == b"\x00\x02ab"
    assert framer.encode(memoryview(b"ab")) == b"\x00\x02ab"


def test_feed_single_frame_byte_at_a_time_reports_buffered() -> None:
    framer = LengthPrefixed(2)
    wire = framer.encode(b"abc")
    for i, byte in enumerate(wire[:-1]):
        assert framer.feed(bytes([byte])) == []
        assert framer.buffered == i + 1
    assert framer.feed(wire[-1:]) == [b"abc"]
    assert framer.buffered == 0


def test_is_a_framer() -> None:
    assert isinstance(LengthPrefixed(2), Framer)


# --- varint ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001")],
)
def test_varint_vectors(value: int, encoded: str) -> None:
    assert encode_varint(value) == bytes.fromhex(encoded)
    assert decode_varint(bytes.fromhex(encoded)) == (value, len(encoded) // 2)


def test_varint_largest_and_limits() -> None:
    top = (1 << 64) - 1
    assert encode_varint(top) == b"\xff" * 9 + b"\x01"
    assert decode_varint(encode_varint(top)) == (top, 10)
    with pytest.raises(ValueError, match="varint"):
        encode_varint(1 << 64)
    with pytest.raises(ValueError, match="varint"):
        encode_varint(-1)
    with pytest.raises(ValueError, match="longer than 10"):
        decode_varint(b"\x80" * 10 + b"\x00")
    assert decode_varint(b"\x80\x80") == (0, 0)  # incomplete


def test_varint_framer_vectors() -> None:
    roundtrip(LengthPrefixed("varint"), b"hello", b"\x05hello")
    roundtrip(LengthPrefixed("varint"), b"x" * 300, b"\xac\x02" + b"x" * 300)
    roundtrip(LengthPrefixed("varint"), b"", b"\x00")


def test_varint_non_minimal_accepted() -> None:
    assert LengthPrefixed("varint").feed(b"\x80\x00" + b"\x81\x00a" + b"\x85\x80\x00hello") == [
        b"",
        b"a",
        b"hello",
    ]


def test_varint_longer_than_10_bytes_is_malformed() -> None:
    wire = b"\x80" * 10 + b"\x00"
    for chunks in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        with pytest.raises(MalformedFrame, match="longer than 10 bytes"):
            feed_chunks(LengthPrefixed("varint"), chunks)


def test_varint_partial_value_already_too_large_raises_early() -> None:
    framer = LengthPrefixed("varint", max_size=1000)
    # 0xFF 0xFF: at least 16383 whatever follows, so no need to wait for the end.
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\xff\xff")
    assert info.value.size == 16383
    assert info.value.limit == 1000
    assert "at least 16383" in str(info.value)


def test_varint_oversize_same_error_whole_or_trickled() -> None:
    wire = b"\xff" * 10 + b"\x01"
    for chunks in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        with pytest.raises(FrameTooLarge):
            feed_chunks(LengthPrefixed("varint"), chunks)


def test_varint_skip_waits_for_whole_length() -> None:
    framer = LengthPrefixed("varint", max_size=2, on_oversize="skip")
    assert framer.feed(b"\x83") == []
    assert framer.feed(b"\x00abc") == []  # 3 > 2: skipped as it arrives
    assert framer.feed(b"\x01z") == [b"z"]
    assert framer.skipped_frames == 1
    assert framer.skipped_bytes == 5


# --- offset, adjustment, strip ---------------------------------------------------------


def test_length_counts_itself() -> None:
    # 00 07 | hello: 7 = 2 (the length field) + 5.
    roundtrip(LengthPrefixed(2, length_adjustment=-2), b"hello", b"\x00\x07hello")


def test_length_counts_whole_frame_with_prefix_field() -> None:
    # type 01 | length 00 08 (= 3 header + 5 body) | hello, whole frame delivered.
    framer = LengthPrefixed(2, length_offset=1, length_adjustment=-3, strip=0)
    roundtrip(framer, b"\x01\x00\x08hello", b"\x01\x00\x08hello")


def test_length_after_prefix_whole_frame_encode_fills_length() -> None:
    framer = LengthPrefixed(2, length_offset=1, strip=0)
    # The caller leaves zeros in the length field; encode writes 5 there.
    assert framer.encode(b"\x07\x00\x00hello") == b"\x07\x00\x05hello"
    assert framer.feed(b"\x07\x00\x05hello") == [b"\x07\x00\x05hello"]


def test_length_after_prefix_header_stripped_decodes() -> None:
    # Netty's "HDR1 | LEN | HDR2 | content" with only the content counted.
    framer = LengthPrefixed(2, length_offset=1, length_adjustment=1)
    assert framer.feed(b"\xca\x00\x05\xfehello") == [b"\xfehello"]


def test_length_after_prefix_header_stripped_cannot_encode() -> None:
    framer = LengthPrefixed(2, length_offset=1)
    assert framer.feed(b"\xca\x00\x02hi") == [b"hi"]
    with pytest.raises(EncodeError, match="strip=0"):
        framer.encode(b"hi")


def test_partial_strip_keeps_length_field() -> None:
    # Strip the 2-byte magic, keep the length field and the body.
    framer = LengthPrefixed(2, length_offset=2, strip=2)
    assert framer.feed(b"MG\x00\x02hi") == [b"\x00\x02hi"]
    with pytest.raises(EncodeError, match="cannot encode"):
        framer.encode(b"\x00\x02hi")


def test_strip_zero_keeps_header() -> None:
    framer = LengthPrefixed(2, strip=0)
    roundtrip(framer, b"\x00\x03abc", b"\x00\x03abc")
    assert framer.encode(b"\xff\xffabc") == b"\x00\x03abc"


def test_positive_adjustment_flags_byte_in_body() -> None:
    framer = LengthPrefixed(2, length_adjustment=1)
    roundtrip(framer, b"\x80hello", b"\x00\x05\x80hello")
    with pytest.raises(EncodeError, match="shorter than length_adjustment"):
        framer.encode(b"")


def test_adjusted_length_below_zero_is_malformed() -> None:
    framer = LengthPrefixed(2, length_adjustment=-2)
    with pytest.raises(MalformedFrame, match="leaves -1 bytes") as info:
        framer.feed(b"\x00\x03a\x00\x01")
    assert info.value.messages == [b"a"]


def test_strip_zero_message_without_header_cannot_encode() -> None:
    with pytest.raises(EncodeError, match="3-byte header"):
        LengthPrefixed(2, length_offset=1, strip=0).encode(b"\x01")


def test_varint_with_offset_decodes() -> None:
    framer = LengthPrefixed("varint", length_offset=1)
    assert framer.feed(b"\x09\x03abc\x09\x00") == [b"abc", b""]


# --- construction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5,), {}, "width"),
        ((0,), {}, "width"),
        ((True,), {}, "width"),
        ((2, "middle"), {}, "byteorder"),
        ((2,), {"length_offset": -1}, "length_offset"),
        ((2,), {"length_offset": 2, "strip": 3}, "into the length field"),
        ((2,), {"length_offset": 1, "strip": 2}, "into the length field"),
        ((2,), {"strip": -1}, "strip"),
        (("varint",), {"strip": 0}, "varint"),
        ((1,), {"max_size": 256}, "max_size"),
        ((2,), {"max_size": 65536}, "max_size"),
        ((2,), {"length_adjustment": -2, "max_size": 65534}, "max_size"),
        ((2,), {"max_size": -1}, "max_size"),
        ((1,), {"length_adjustment": -256}, "no valid frame"),
        ((2,), {"on_oversize": "drop"}, "on_oversize"),
        ((2,), {"check_size": 4}, "without a check"),
        ((2,), {"check": lambda head: None}, "check_size"),
    ],
)
def test_construction_rejects_nonsense(
    args: tuple[object, ...], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        LengthPrefixed(*args, **kwargs)  # type: ignore[arg-type]


def test_max_size_at_header_capacity_is_allowed() -> None:
    assert LengthPrefixed(1, max_size=255).max_size == 255
    assert LengthPrefixed(1, length_adjustment=3, max_size=258).max_size == 258
    assert LengthPrefixed(8, max_size=1 << 40).max_size == 1 << 40


def test_repr_shows_only_non_default_options() -> None:
    assert repr(LengthPrefixed(2)) == "LengthPrefixed(width=2)"
    assert repr(LengthPrefixed(4, "little")) == "LengthPrefixed(width=4, byteorder='little')"
    assert repr(LengthPrefixed("varint")) == "LengthPrefixed(width='varint')"
    assert (
        repr(LengthPrefixed(2, max_size=10, length_offset=1, strip=0, on_oversize="skip"))
        == "LengthPrefixed(width=2, max_size=10, length_offset=1, strip=0, on_oversize='skip')"
    )
    assert repr(LengthPrefixed(2, length_adjustment=-2)) == (
        "LengthPrefixed(width=2, length_adjustment=-2)"
    )


def test_clone_keeps_settings_not_data() -> None:
    framer = LengthPrefixed(2, "little", max_size=100, on_oversize="skip")
    framer.feed(b"\x05\x00ab")
    twin = framer.clone()
    assert repr(twin) == repr(framer)
    assert twin.buffered == 0
    assert twin.max_size == 100
    assert twin.feed(b"\x01\x00x") == [b"x"]


# --- limits ---------------------------------------------------------------------------


def test_oversize_header_raises_before_body_arrives() -> None:
    framer = LengthPrefixed(2, max_size=10)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x0b")
    exc = info.value
    assert (exc.size, exc.limit) == (11, 10)
    assert str(exc) == (
        "LengthPrefixed(width=2, max_size=10): frame of 11 bytes is over the limit of 10 bytes"
    )


def test_oversize_error_carries_messages_before_it() -> None:
    framer = LengthPrefixed(1, max_size=3)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x01a\x02bc\x09")
    assert info.value.messages == [b"a", b"bc"]


def test_max_size_counts_body_not_header() -> None:
    framer = LengthPrefixed(2, length_adjustment=-2, max_size=5)
    assert framer.feed(b"\x00\x07hello") == [b"hello"]
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x08")
    assert info.value.size == 6


def test_skip_discards_exactly_the_oversize_frame() -> None:
    framer = LengthPrefixed(2, max_size=3, on_oversize="skip")
    wire = b"\x00\x01a" + b"\x00\x05hello" + b"\x00\x02bc"
    assert framer.feed(wire) == [b"a", b"bc"]
    assert framer.skipped_frames == 1
    assert framer.skipped_bytes == 7
    assert framer.buffered == 0


def test_skip_never_holds_skipped_bytes() -> None:
    framer = LengthPrefixed(4, max_size=10, on_oversize="skip")
    assert framer.feed(b"\x00\x01\x00\x00") == []
    assert framer.skipped_frames == 1
    for _ in range(64):
        assert framer.feed(b"x" * 1024) == []
        assert framer.buffered == 0
    assert framer.feed(b"\x00\x00\x00\x01!") == [b"!"]


def test_feed_eof_inside_skipped_frame_raises_incomplete() -> None:
    framer = LengthPrefixed(2, max_size=3, on_oversize="skip")
    framer.feed(b"\x00\x05he")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected) == (4, 7)


def test_encode_over_max_size_raises() -> None:
    with pytest.raises(MessageTooLarge) as info:
        LengthPrefixed(2, max_size=4).encode(b"hello")
    assert (info.value.size, info.value.limit) == (5, 4)
    with pytest.raises(MessageTooLarge):
        LengthPrefixed(1).encode(b"x" * 256)
    with pytest.raises(MessageTooLarge):
        LengthPrefixed("varint", max_size=100).encode(b"x" * 101)
    with pytest.raises(MessageTooLarge):
        LengthPrefixed(2, length_offset=1, strip=0, max_size=2).encode(b"\x01\x00\x00abc")


def test_header_announcing_max_size_does_not_preallocate() -> None:
    framer = LengthPrefixed(4, max_size=64 * 1024 * 1024)
    tracemalloc.start()
    try:
        framer.feed(b"\x04\x00\x00\x00" + b"x" * 100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert framer.buffered == 104
    assert peak < 1024 * 1024


# --- early check ----------------------------------------------------------------------


def no_http(head: bytes) -> str | None:
    # "GE" would be read as a 18245-byte length: only the check catches it.
    return "HTTP request on a DNS port" if head.startswith((b"GET ", b"POST")) else None


def test_early_check_rejects_http_on_dns_port() -> None:
    framer = LengthPrefixed(2, check=no_http, check_size=4)
    with pytest.raises(MalformedFrame, match="HTTP request on a DNS port") as info:
        framer.feed(b"GET / HTTP/1.1\r\n")
    assert "LengthPrefixed(width=2, check=no_http, check_size=4)" in str(info.value)


def opcode_check(head: bytes) -> str | None:
    return "bad opcode" if head[2] == 0xFF else None


def test_early_check_runs_before_body_arrives() -> None:
    framer = LengthPrefixed(2, check=opcode_check, check_size=3)
    assert framer.feed(b"\x10\x00\x01") == []  # a 4096-byte frame whose first byte is fine
    with pytest.raises(MalformedFrame, match="bad opcode"):
        framer.clone().feed(b"\x10\x00\xff")


def test_early_check_called_once_per_frame_with_head_or_whole_frame() -> None:
    seen: list[bytes] = []

    def record(head: bytes) -> str | None:
        seen.append(head)
        return None

    framer = LengthPrefixed(2, check=record, check_size=4)
    wire = framer.encode(b"hello") + framer.encode(b"a") + framer.encode(b"")
    for i in range(len(wire)):
        framer.feed(wire[i : i + 1])
    assert seen == [b"\x00\x05he", b"\x00\x01a", b"\x00\x00"]


def test_early_check_dns_header_sanity() -> None:
    def dns_query_header(head: bytes) -> str | None:
        if len(head) < 14:
            return "shorter than a DNS header"
        if head[4] & 0x80:
            return "QR set: a response, not a query"
        return None

    framer = LengthPrefixed(2, check=dns_query_header, check_size=14)
    assert framer.feed(DNS_QUERY_ON_TCP) == [DNS_QUERY]
    response = bytearray(DNS_QUERY_ON_TCP)
    response[4] |= 0x80
    with pytest.raises(MalformedFrame, match="QR set"):
        framer.feed(bytes(response[:14]))
    with pytest.raises(MalformedFrame, match="shorter than"):
        framer.clone().feed(b"\x00\x01x")


def test_early_check_error_carries_messages() -> None:
    framer = LengthPrefixed(1, check=lambda h: "no" if h == b"\x01!" else None, check_size=2)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"\x01a\x01b\x01!")
    assert info.value.messages == [b"a", b"b"]


# --- end of stream --------------------------------------------------------------------


def test_feed_eof_mid_header_raises_incomplete() -> None:
    framer = LengthPrefixed(4)
    framer.feed(b"\x00\x00")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected) == (2, None)
    assert info.value.partial == b"\x00\x00"
    assert str(info.value) == (
        "LengthPrefixed(width=4): stream ended with 2 bytes of an unfinished message held"
    )


def test_feed_eof_mid_frame_raises_incomplete_with_numbers() -> None:
    framer = LengthPrefixed(2)
    framer.feed(b"\x00\x07hel")
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    assert (info.value.held, info.value.expected) == (5, 9)
    assert str(info.value) == "LengthPrefixed(width=2): stream ended 5 bytes into a 9-byte frame"


def test_feed_eof_clean_returns_nothing() -> None:
    framer = LengthPrefixed(2)
    assert framer.feed(b"\x00\x01a") == [b"a"]
    assert framer.feed_eof() == []


# --- limit and detach -----------------------------------------------------------------


def test_feed_limit_zero_only_buffers() -> None:
    framer = LengthPrefixed(1)
    assert framer.feed(b"\x01a\x01b", limit=0) == []
    assert framer.buffered == 4
    assert framer.feed_eof() == [b"a", b"b"]


def test_feed_limit_one_then_detach_returns_every_byte_after() -> None:
    framer = LengthPrefixed(2)
    wire = b"\x00\x01a\x00\x01b\x00"
    assert framer.feed(wire, limit=1) == [b"a"]
    assert framer.detach() == b"\x00\x01b\x00"
    assert framer.buffered == 0
    assert framer.feed(b"\x00\x01c") == [b"c"]


def test_detach_returns_partly_parsed_header_and_body() -> None:
    framer = LengthPrefixed("varint")
    assert framer.feed(b"\x01x\x85") == [b"x"]
    assert framer.detach() == b"\x85"
    framer = LengthPrefixed(2)
    assert framer.feed(b"\x00\x05he") == []
    assert framer.detach() == b"\x00\x05he"
    assert framer.feed(b"\x00\x01z") == [b"z"]


def test_feed_limit_resumes_later() -> None:
    framer = LengthPrefixed(1)
    assert framer.feed(b"\x01a\x01b\x01c", limit=2) == [b"a", b"b"]
    assert framer.feed(b"\x01d", limit=1) == [b"c"]
    assert framer.feed(b"") == [b"d"]


def switch_after_three(chunks: list[bytes]) -> list[bytes]:
    """Read 3 messages with LengthPrefixed(2), then the rest with LengthPrefixed(4, "little")."""
    first, second = LengthPrefixed(2), LengthPrefixed(4, "little")
    got: list[bytes] = []
    rest = iter(chunks)
    for chunk in rest:
        got += first.feed(chunk, limit=3 - len(got))
        if len(got) == 3:
            break
    got += second.feed(first.detach())
    for chunk in rest:
        got += second.feed(chunk)
    got += second.feed_eof()
    return got


SWITCH_WIRE = b"".join(LengthPrefixed(2).encode(m) for m in (b"one", b"two", b"three")) + b"".join(
    LengthPrefixed(4, "little").encode(m) for m in (b"four", b"", b"six")
)
SWITCH_MESSAGES = [b"one", b"two", b"three", b"four", b"", b"six"]


def test_switch_framers_mid_stream_loses_no_byte() -> None:
    wire = SWITCH_WIRE
    assert switch_after_three([wire]) == SWITCH_MESSAGES
    assert switch_after_three([wire[i : i + 1] for i in range(len(wire))]) == SWITCH_MESSAGES
    assert switch_after_three([wire[:16], wire[16:17], wire[17:]]) == SWITCH_MESSAGES


def test_early_check_once_per_frame_when_frames_arrive_whole() -> None:
    seen: list[bytes] = []

    def record(head: bytes) -> str | None:
        seen.append(head)
        return None

    framer = LengthPrefixed(2, check=record, check_size=4)
    wire = framer.encode(b"hello") + framer.encode(b"a") + framer.encode(b"xyz")
    assert framer.feed(wire + wire[:4]) == [b"hello", b"a", b"xyz"]
    assert seen == [b"\x00\x05he", b"\x00\x01a", b"\x00\x03xy", b"\x00\x05he"]
    assert framer.feed(wire[4:]) == [b"hello", b"a", b"xyz"]
    assert len(seen) == 6  # the straddling frame was not checked twice


def test_large_message_in_small_chunks() -> None:
    framer = LengthPrefixed(4)
    message = bytes(range(256)) * 4096  # 1 MiB
    wire = framer.encode(message) + framer.encode(b"next")
    got: list[bytes] = []
    for i in range(0, len(wire), 4096):
        got += framer.feed(wire[i : i + 4096])
        assert framer.buffered <= len(message) + 4
    assert got == [message, b"next"]


def test_million_small_frames_in_one_chunk() -> None:
    framer = LengthPrefixed(2)
    wire = framer.encode(b"0123456789abcdef") * 100_000
    got = framer.feed(wire)
    assert len(got) == 100_000
    assert got[-1] == b"0123456789abcdef"
    assert framer.buffered == 0


# --- edges: defaults, limits, early-check timing, detach, error fields and texts ---


def test_default_width_is_two_bytes_big_endian() -> None:
    """``LengthPrefixed()`` is DNS over TCP: a 2-byte big-endian length."""
    framer = LengthPrefixed()
    assert repr(framer) == "LengthPrefixed(width=2)"
    assert framer.encode(b"hi") == b"\x00\x02hi"
    assert framer.feed(b"\x01\x00" + b"x" * 256) == [b"x" * 256]


def test_varint_max_size_reaches_exactly_two_to_the_64_minus_one() -> None:
    """A varint field holds 0 to 2**64 - 1: max_size and adjustment are bounded by that."""
    top = (1 << 64) - 1
    assert LengthPrefixed("varint", max_size=top).max_size == top
    with pytest.raises(ValueError, match=f"max_size must be 0 to {top} "):
        LengthPrefixed("varint", max_size=top + 1)
    assert LengthPrefixed("varint", length_adjustment=-top).max_size == 0
    with pytest.raises(ValueError, match=f"the field holds at most {top}"):
        LengthPrefixed("varint", length_adjustment=-top - 1)


def test_adjustment_that_leaves_only_empty_bodies_is_allowed() -> None:
    """An adjustment of minus the field's largest value leaves one valid body size: 0."""
    framer = LengthPrefixed(1, length_adjustment=-255)
    assert framer.max_size == 0
    assert framer.encode(b"") == b"\xff"
    assert framer.feed(b"\xff\xff") == [b"", b""]


@pytest.mark.parametrize("width", [1, 2])
def test_narrow_default_max_size_is_all_the_field_can_say_even_over_8_mib(width: int) -> None:
    """Widths 1 and 2 default to what the field can say, with no 8 MiB cap."""
    adjustment = DEFAULT_MAX_SIZE
    framer = LengthPrefixed(width, length_adjustment=adjustment)  # type: ignore[arg-type]
    assert framer.max_size == (1 << (8 * width)) - 1 + adjustment
    assert repr(framer) == f"LengthPrefixed(width={width}, length_adjustment={adjustment})"


def test_varint_repr_omits_the_byteorder_it_ignores() -> None:
    """A varint has no byte order, so repr does not show one that was given."""
    assert repr(LengthPrefixed("varint", "little")) == "LengthPrefixed(width='varint')"


@pytest.mark.parametrize(
    ("args", "kwargs", "text"),
    [
        (
            (2,),
            {"length_offset": 2, "strip": 3},
            "strip must be 0 to length_offset (2), or the header's size (4) or more, "
            "not 3: it would cut into the length field",
        ),
        (
            (2,),
            {"strip": -1},
            "strip must be 0 to length_offset (0), or the header's size (2) or more, "
            "not -1: it would cut before the frame",
        ),
        (
            ("varint",),
            {"strip": 0},
            "a varint header is always stripped (strip=None): its size varies, "
            "so no fixed strip can keep or cut it",
        ),
        ((2,), {"check_size": 4}, "check_size was given without a check"),
    ],
)
def test_construction_error_texts(
    args: tuple[object, ...], kwargs: dict[str, object], text: str
) -> None:
    """Settings errors say what is wrong in full, not just which option."""
    with pytest.raises(ValueError, match=re.escape(text)) as info:
        LengthPrefixed(*args, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == text


@pytest.mark.parametrize(
    ("framer", "wire"),
    [
        (LengthPrefixed(2), b"\x00\x02ab\x00\x03cde"),
        (LengthPrefixed(2, length_offset=1), b"P\x00\x02abP\x00\x03cde"),
        (LengthPrefixed(3), b"\x00\x00\x02ab\x00\x00\x03cde"),
        (LengthPrefixed("varint"), b"\x02ab\x03cde"),
    ],
    ids=["plain", "offset", "width 3", "varint"],
)
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_messages_are_bytes_that_do_not_alias_the_callers_buffer(
    framer: LengthPrefixed, wire: bytes, kind: type[bytearray] | type[memoryview]
) -> None:
    """Fed a bytearray or memoryview, feed delivers bytes; the caller may reuse its buffer."""
    receive = bytearray(wire)
    got = framer.clone().feed(kind(receive))
    receive[:] = bytes(len(receive))  # the caller's next recv_into
    assert got == [b"ab", b"cde"]
    assert all(type(m) is bytes for m in got)


def no_get(head: bytes) -> str | None:
    return "HTTP request" if head.startswith(b"GET ") else None


def test_early_check_runs_when_its_bytes_arrive_not_when_the_frame_ends() -> None:
    """A header, then the check's bytes in a later chunk: the check rejects at once."""
    framer = LengthPrefixed(2, check=no_get, check_size=4)
    assert framer.feed(b"GE") == []  # a header announcing 0x4745 bytes
    with pytest.raises(MalformedFrame, match="HTTP request"):
        framer.feed(b"T ")


def test_early_check_of_a_frame_starting_mid_chunk_waits_for_all_its_bytes() -> None:
    """The check gets exactly check_size bytes even when a chunk ends just short of them."""
    seen: list[bytes] = []

    def record(head: bytes) -> str | None:
        seen.append(head)
        return None

    framer = LengthPrefixed(2, check=record, check_size=4)
    assert framer.feed(b"\x00\x01a" + b"\x00\x05h") == [b"a"]
    assert seen == [b"\x00\x01a"]  # the whole (short) frame; the next one not yet
    assert framer.feed(b"ello") == [b"hello"]
    assert seen == [b"\x00\x01a", b"\x00\x05he"]


def no_empty(head: bytes) -> str | None:
    # check_size=2: a 1-byte frame is a varint header with an empty body.
    return "empty message" if len(head) == 1 else None


def test_varint_framer_runs_its_early_check() -> None:
    """A plain varint framer with a check checks frames that arrive whole."""
    framer = LengthPrefixed("varint", check=no_empty, check_size=2)
    with pytest.raises(MalformedFrame, match="empty message") as info:
        framer.feed(b"\x01x\x00")
    assert info.value.messages == [b"x"]


def test_detach_leaves_a_framer_that_reads_a_fresh_stream() -> None:
    """After detach the next bytes are a new frame's header, for every engine."""
    framer = LengthPrefixed(3)
    assert framer.feed(b"\x00\x00\x05he") == []
    assert framer.detach() == b"\x00\x00\x05he"
    assert framer.feed(b"\x00\x00\x02hi\x00\x00") == [b"hi"]
    assert framer.buffered == 2


def test_detach_forgets_that_the_early_check_passed() -> None:
    """The first frame after detach is checked, though the abandoned one had been."""
    framer = LengthPrefixed(2, check=no_get, check_size=4)
    assert framer.feed(b"\x00\x05hel") == []  # checked: fine
    assert framer.detach() == b"\x00\x05hel"
    with pytest.raises(MalformedFrame, match="HTTP request"):
        framer.feed(b"GET / HTTP/1.1\r\n")


def test_varint_limited_feed_finishes_a_frame_whose_header_came_earlier() -> None:
    """A varint header read by an unlimited feed is remembered by a limited one."""
    framer = LengthPrefixed("varint")
    assert framer.feed(b"\x05he") == []
    assert framer.feed(b"llo\x01!", limit=1) == [b"hello"]
    assert framer.detach() == b"\x01!"


def test_varint_partial_oversize_names_framer_and_keeps_messages() -> None:
    """A varint over the limit before it ends: the error has the framer and earlier messages."""
    framer = LengthPrefixed("varint", max_size=1000)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x01a\xff\xff")
    exc = info.value
    assert (exc.framer, exc.size, exc.limit, exc.messages) == (repr(framer), 16383, 1000, [b"a"])


def test_varint_partial_oversize_counts_the_adjustment() -> None:
    """The early verdict on an unfinished varint adds the adjustment, as the final one does."""
    framer = LengthPrefixed("varint", length_adjustment=5, max_size=100)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\xe0")  # at least 0x60 = 96, so a body of at least 101
    assert (info.value.size, info.value.limit) == (101, 100)
    assert "frame of at least 101 bytes (header still arriving)" in str(info.value)


def test_varint_partial_value_at_max_size_waits_for_the_end() -> None:
    """An unfinished varint exactly at max_size may still end there (non-minimal ``ff 00``)."""
    framer = LengthPrefixed("varint", max_size=127)
    assert framer.feed(b"\xff") == []
    assert framer.feed(b"\x00" + b"x" * 127) == [b"x" * 127]


def test_varint_header_across_chunks_is_judged_at_each_byte_it_gains() -> None:
    """With an early check a split varint header is topped up a byte at a time.

    So the error comes from the first byte that proves the frame too large, with
    the bound those bytes prove (``80 ff``: at least 0x7f << 7), not a later one.
    """
    framer = LengthPrefixed("varint", max_size=60, check=no_empty, check_size=2)
    assert framer.feed(b"\x80") == []
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\xff\xff\x01")
    assert (info.value.size, info.value.limit) == (0x7F << 7, 60)


def test_negative_adjusted_length_error_names_the_framer() -> None:
    """The malformed-length error names the framer and spells out the arithmetic."""
    framer = LengthPrefixed(2, length_adjustment=-2)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"\x00\x01")
    assert info.value.framer == repr(framer)
    assert str(info.value) == (
        "LengthPrefixed(width=2, length_adjustment=-2): length field says 1, "
        "which with adjustment -2 leaves -1 bytes after it"
    )


def test_eof_inside_skipped_frame_names_framer_and_keeps_messages() -> None:
    """End of stream inside a skipped frame: the framer, the numbers and the messages before."""
    framer = LengthPrefixed(2, max_size=3, on_oversize="skip")
    assert framer.feed(b"\x00\x01a\x00\x05he", limit=0) == []
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    exc = info.value
    assert (exc.framer, exc.held, exc.expected, exc.messages) == (repr(framer), 4, 7, [b"a"])
    assert str(exc) == (
        "LengthPrefixed(width=2, max_size=3, on_oversize='skip'): "
        "stream ended 4 bytes into a 7-byte frame"
    )


@pytest.mark.parametrize(
    "framer",
    [
        LengthPrefixed(2, max_size=4),
        LengthPrefixed("varint", max_size=4),
        LengthPrefixed(2, length_adjustment=1, max_size=4),
    ],
    ids=["plain", "varint", "adjusted"],
)
def test_encode_over_max_size_names_framer_and_numbers(framer: LengthPrefixed) -> None:
    """encode refuses a body over max_size with the framer, the size and the limit."""
    with pytest.raises(MessageTooLarge) as info:
        framer.encode(b"hello")
    exc = info.value
    assert (exc.framer, exc.size, exc.limit) == (repr(framer), 5, 4)
    assert str(exc) == f"{framer!r}: cannot encode a message of 5 bytes: the limit is 4 bytes"


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8, "varint"])
@pytest.mark.parametrize("order", ["big", "little"])
def test_length_prefixed_contract(width: int | str, order: str) -> None:
    check_framer(
        lambda: LengthPrefixed(width, order, max_size=200),  # type: ignore[arg-type]
        message_lists(max_size=200, max_messages=6),
        max_examples=15,
        overhead=10,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"length_adjustment": -2},
        {"length_adjustment": 3},
        {"length_offset": 1, "strip": 0},
        {"length_offset": 2, "strip": 0, "length_adjustment": -3},
    ],
)
def test_length_prefixed_contract_with_header_options(options: dict[str, int]) -> None:
    offset = options.get("length_offset", 0)

    adjust = options.get("length_adjustment", 0)

    def whole_frames() -> st.SearchStrategy[list[bytes]]:
        # With strip=0 the message is the whole frame: its prefix bytes, the
        # length field (as feed delivers it: correct) and the body.
        body = st.binary(min_size=max(0, adjust), max_size=40)
        frames = st.tuples(st.binary(min_size=offset, max_size=offset), body)
        return st.lists(
            frames.map(lambda p: p[0] + (len(p[1]) - adjust).to_bytes(2, "big") + p[1]),
            max_size=5,
        )

    messages = whole_frames() if "strip" in options else message_lists(max_size=60, min_size=3)
    encoder = LengthPrefixed(2, **options)  # type: ignore[arg-type]

    def make() -> LengthPrefixed:
        return encoder.clone()

    check_framer(make, messages, max_examples=15, overhead=2 + offset)


def test_varint_header_split_at_every_point() -> None:
    stream = encode_varint(300) + b"z" * 300 + encode_varint(1) + b"!"
    for cut in range(len(stream) + 1):
        got = feed_chunks(LengthPrefixed("varint"), [stream[:cut], stream[cut:]])
        assert got == [b"z" * 300, b"!"]


# --- strip past the length field (tokio-util's num_skip over a flags byte) ---------------
#
# tokio-util's docs, example 7: length_field_length(3), num_skip(4) over
# | len: 3 bytes | flag: 1 byte | payload |. tokio counts the length from the end
# of the skipped bytes; here it counts from the end of the length field, so the
# flags byte is length_adjustment=1.

TOKIO_NUM_SKIP_4 = b"\x00\x00\x0b\xffHello world"


def test_feed_strip_past_length_field_drops_the_flag_byte() -> None:
    framer = LengthPrefixed(3, length_adjustment=1, strip=4)
    assert framer.feed(TOKIO_NUM_SKIP_4 * 2) == [b"Hello world"] * 2
    assert framer.buffered == 0


def test_feed_strip_past_length_field_byte_at_a_time() -> None:
    stream = TOKIO_NUM_SKIP_4 + b"\x00\x00\x00\x01"  # an empty payload after its flag
    assert_chunking_invariant(
        lambda: LengthPrefixed(3, length_adjustment=1, strip=4),
        stream,
        [b"Hello world", b""],
        [stream[i : i + 1] for i in range(len(stream))],
    )


def test_feed_strip_past_length_field_counting_the_flag_raises_on_a_short_frame() -> None:
    # The length counts the flag too (adjustment 0): a length of 0 leaves no
    # flag byte to strip, so the frame cannot be valid.
    framer = LengthPrefixed(3, strip=4)
    assert framer.feed(b"\x00\x00\x03\xffab") == [b"ab"]
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"\x00\x00\x01\xff" + b"\x00\x00\x00")
    assert info.value.messages == [b""]
    assert "a frame of 3 bytes is shorter than the 4 bytes that strip removes" in str(info.value)


def test_encode_strip_past_length_field_raises_encode_error() -> None:
    framer = LengthPrefixed(3, length_adjustment=1, strip=4)
    with pytest.raises(EncodeError, match="bytes after the length field") as info:
        framer.encode(b"Hello world")
    assert info.value.framer == repr(framer)
    assert "strip=4" in repr(framer)


def test_encode_str_raises_encode_error() -> None:
    for framer in (LengthPrefixed(2), LengthPrefixed("varint"), LengthPrefixed(3)):
        with pytest.raises(EncodeError, match="expects bytes, not str"):
            framer.encode("hello")  # type: ignore[arg-type]


def test_feed_errors_carry_size_limit_and_bytes_held() -> None:
    with pytest.raises(FrameTooLarge) as big:
        LengthPrefixed(2, max_size=10).feed(b"\x00\x0b")
    assert (big.value.size, big.value.limit) == (11, 10)
    with pytest.raises(IncompleteFrame) as cut:
        feed_chunks(LengthPrefixed(2), [b"\x00\x05ab"])
    assert cut.value.held == 4


def test_feed_error_on_a_later_call_carries_no_earlier_messages() -> None:
    framer = LengthPrefixed(2, max_size=4)
    assert framer.feed(b"\x00\x01a") == [b"a"]
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x09")
    assert info.value.messages == []


@pytest.mark.parametrize("split", [1, 2])
def test_feed_varint_oversize_split_reports_the_first_provable_size(split: int) -> None:
    """Split, a varint header is read a byte at a time on every path, the fast one too.

    (Hypothesis found the fast path joining a held varint byte to the next chunk
    and reporting the whole value, 16512, where the general engine says 128.)
    """
    stream = b"\x80\x81\x01"
    for fast in (True, False):
        framer = LengthPrefixed("varint", max_size=50)
        framer._fast = fast  # False: the general engine, for comparison
        with pytest.raises(FrameTooLarge) as info:
            feed_chunks(framer, [stream[:split], stream[split:]])
        assert (info.value.size, info.value.limit) == (128, 50)


def test_feed_varint_split_oversize_skip_then_next_frame_in_the_same_chunk() -> None:
    """A varint header split across chunks that starts a skip: the skip eats only its frame.

    (Hypothesis found the shortcut reading the skipped body as headers after the
    held header was finished by the next chunk.)
    """
    framer = LengthPrefixed("varint", max_size=300, on_oversize="skip")
    body = b"\x00" * 502
    stream = b"\xf6\x03" + body + b"\x02ok"  # 0x3f6 = 502, then a good frame
    assert framer.feed(stream[:1]) == []
    assert framer.feed(stream[1:]) == [b"ok"]
    assert (framer.skipped_frames, framer.buffered) == (1, 0)


def test_feed_strip_past_length_field_short_frame_error_text_and_framer() -> None:
    """The short-frame error gives the frame's size on the wire (header + body) and its framer.

    Found by mutants of its text (``head - body``) and its ``framer`` field.
    """
    framer = LengthPrefixed(3, strip=5)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"\x00\x00\x01x")
    assert str(info.value) == (
        "LengthPrefixed(width=3, strip=5): a frame of 4 bytes is shorter than the 5 bytes "
        "that strip removes"
    )
    assert info.value.framer == repr(framer)


def test_feed_strip_past_length_field_over_max_size_is_too_large_not_short() -> None:
    """A body over ``max_size`` is too large even when it is exactly what strip needs.

    ``strip=5`` after a 3-byte header needs a body of 2; ``max_size=1`` refuses
    it for its size. Found by a mutant that called it short (``body <= min``).
    """
    framer = LengthPrefixed(3, strip=5, max_size=1)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x00\x02ab")
    assert (info.value.size, info.value.limit) == (2, 1)


def test_feed_width_3_after_a_prefix_reads_the_field_at_its_offset() -> None:
    """Width 3 (read without ``struct``) with ``length_offset``: the field's 3 bytes, no more.

    Found by mutants that read it before the offset or past the field's end.
    """
    framer = LengthPrefixed(3, length_offset=2)
    assert framer.feed(b"AB\x00\x00\x02hiCD\x00\x00\x01z") == [b"hi", b"z"]
    little = LengthPrefixed(3, "little", length_offset=1)
    assert little.feed(b"K\x02\x00\x00hi") == [b"hi"]
    assert framer.buffered == little.buffered == 0


def test_encode_body_shorter_than_the_adjustment_error_text_and_framer() -> None:
    framer = LengthPrefixed(2, length_adjustment=3)
    with pytest.raises(EncodeError) as info:
        framer.encode(b"ab")
    assert str(info.value) == (
        "LengthPrefixed(width=2, length_adjustment=3): a body of 2 bytes is shorter than "
        "length_adjustment 3, so no length field can describe it"
    )
    assert info.value.framer == repr(framer)


def test_encode_str_error_names_the_framer() -> None:
    for framer in (LengthPrefixed(2), LengthPrefixed("varint"), LengthPrefixed(3)):
        with pytest.raises(MessageTypeError) as info:
            framer.encode("hello")  # type: ignore[arg-type]
        assert info.value.framer == repr(framer)
        assert str(info.value).startswith(repr(framer) + ": ")


def test_feed_early_check_runs_on_the_frame_after_one_finished_across_chunks() -> None:
    """A frame whose check passed once its bytes arrived, finished in the next chunk: the
    following frame in that chunk is checked too (the pass is per frame).

    Found by a mutant that left the pass set after delivering the held frame.
    """
    checked: list[bytes] = []

    def no_x(head: bytes) -> str | None:
        checked.append(head)
        return "x" if b"x" in head else None

    framer = LengthPrefixed(1, check=no_x, check_size=2)
    assert framer.feed(b"\x04") == []  # the header; the check waits for its 2 bytes
    with pytest.raises(MalformedFrame, match="early check failed: x") as info:
        framer.feed(b"okay\x02xx")
    assert info.value.messages == [b"okay"]
    assert checked == [b"\x04o", b"\x02x"]


def test_feed_after_a_limited_feed_reads_the_next_varint_header_whole() -> None:
    """Frames a ``limit`` left held are parsed, then the next chunk is parsed as it came.

    The chunk's varint header is whole, so the error gives its exact size, not
    the "at least" of a header still arriving. Found by a mutant (in
    ``_resume``) that, after the held frames, fed the chunk's first bytes into
    the buffer and judged the varint before its last byte; a differential run
    against the original found it after the run had counted it as surviving.
    """
    framer = LengthPrefixed("varint", max_size=200)
    assert framer.feed(b"\x00", limit=0) == []
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\xff\xff\x00")
    assert str(info.value) == (
        "LengthPrefixed(width='varint', max_size=200): frame of 16383 bytes is over the "
        "limit of 200 bytes"
    )
    assert (info.value.size, info.value.limit, info.value.messages) == (16383, 200, [b""])


def test_feed_varint_after_a_prefix_is_read_at_its_offset() -> None:
    """A varint after other header bytes is not the plain varint of the shortcut."""
    framer = LengthPrefixed("varint", length_offset=2)
    assert framer.feed(b"AB\x03abcXY\x01z") == [b"abc", b"z"]
    assert framer.feed(b"AB\x80\x01" + b"x" * 128 + b"CD\x00") == [b"x" * 128, b""]
    assert feed_chunks(LengthPrefixed("varint", length_offset=2), [b"A", b"B\x03a", b"bc"]) == [
        b"abc"
    ]


def test_explicit_strip_of_the_whole_header_is_the_default() -> None:
    framer = LengthPrefixed(2, strip=2)
    assert framer.feed(b"\x00\x02hi") == [b"hi"]
    assert framer.encode(b"hi") == b"\x00\x02hi"
    assert repr(framer) == "LengthPrefixed(width=2)"


@pytest.mark.parametrize(
    ("framer", "message", "text"),
    [
        (
            LengthPrefixed(2, strip=0),
            b"x",
            "LengthPrefixed(width=2, strip=0): a whole-frame message must hold the 2-byte "
            "header, this one has 1 bytes",
        ),
        (
            LengthPrefixed(2, length_offset=1, strip=3),
            b"abc",
            "LengthPrefixed(width=2, length_offset=1): cannot encode: messages lack the header "
            "bytes before the length field (they are stripped on receive), so encode cannot "
            "know them; use strip=0 to encode whole frames",
        ),
        (
            LengthPrefixed(2, strip=3),
            b"abc",
            "LengthPrefixed(width=2, strip=3): cannot encode: messages lack the header bytes "
            "after the length field (they are stripped on receive), so encode cannot know "
            "them; use strip=0 to encode whole frames",
        ),
    ],
)
def test_encode_refusals_name_the_framer_and_the_missing_bytes(
    framer: LengthPrefixed, message: bytes, text: str
) -> None:
    with pytest.raises(EncodeError) as info:
        framer.encode(message)
    assert str(info.value) == text
