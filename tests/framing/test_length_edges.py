"""LengthPrefixed and StructPrefixed at their edges: defaults, limits, error details, state.

Each test pins one behaviour that the wire vectors and the properties do not
see: an exact boundary, the fields and text of an error, the type of what is
delivered, the state a framer is left in. Written against the mutants mutmut
left alive in ``framing/length.py`` (see docs/ROBUSTNESS.md).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from construct import (
    BytesInteger,
    Computed,
    Const,
    Enum,
    Int8ub,
    Int8un,
    Int16ub,
    Int16un,
    Int24ub,
    Struct,
)

from framing.errors import FrameTooLarge, IncompleteFrame, MalformedFrame
from framing.structured import _plain_fields
from framing.length import (
    DEFAULT_MAX_SIZE,
    Frame,
    LengthPrefixed,
    StructPrefixed,
    decode_varint,
)

# --- LengthPrefixed: construction -------------------------------------------------------


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
            "strip must be 0 to length_offset (2) or the whole header (4), not 3: "
            "it would cut into the length field",
        ),
        (
            (2,),
            {"strip": 3},
            "strip must be 0 to length_offset (0) or the whole header (2), not 3: "
            "it would cut into the body",
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


# --- LengthPrefixed: what feed delivers ---------------------------------------------------


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


# --- LengthPrefixed: early check ----------------------------------------------------------


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


# --- LengthPrefixed: detach and limited feeds ----------------------------------------------


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


# --- LengthPrefixed: varints ----------------------------------------------------------------


def test_decode_varint_incomplete_far_into_the_data() -> None:
    """An incomplete varint is incomplete, not too long, wherever it starts."""
    assert decode_varint(bytes(8) + b"\x80", 8) == (0, 0)
    assert decode_varint(b"x" * 20 + b"\x81\x01", 20) == (129, 2)
    framer = LengthPrefixed("varint")
    assert framer.feed(bytes(10) + b"\x80") == [b""] * 10
    assert framer.feed(b"\x01" + b"y" * 128) == [b"y" * 128]


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


# --- LengthPrefixed: error details ------------------------------------------------------------


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
    with pytest.raises(FrameTooLarge) as info:
        framer.encode(b"hello")
    exc = info.value
    assert (exc.framer, exc.size, exc.limit) == (repr(framer), 5, 4)
    assert str(exc) == f"{framer!r}: frame of 5 bytes is over the limit of 4 bytes"


# --- StructPrefixed --------------------------------------------------------------------------


def test_struct_prefixed_refuses_a_header_that_is_not_a_struct() -> None:
    """A bare field, with no named fields, has no length field to find."""
    with pytest.raises(ValueError, match="the header struct has no field named 'length'"):
        StructPrefixed(Int16ub)


def test_struct_prefixed_refuses_a_header_of_no_bytes() -> None:
    """A 0-byte header cannot start a frame: refused, not a framer that holds bytes forever."""
    with pytest.raises(ValueError, match="at least 1 byte") as info:
        StructPrefixed(Struct("length" / Computed(5)))
    assert str(info.value) == "the header struct must be at least 1 byte long, not 0"


def test_struct_prefixed_refuses_a_length_field_sized_by_its_context() -> None:
    """A length field whose size only its struct can work out is refused, with the reason."""
    same_as_kind = BytesInteger(lambda ctx: ctx._subcons.kind.sizeof())
    header = Struct("kind" / Int16ub, "length" / same_as_kind)
    assert header.sizeof() == 4
    with pytest.raises(ValueError, match="length field") as info:
        StructPrefixed(header)
    assert str(info.value).startswith("the length field must have a fixed size: ")


def seven(ctx: Any) -> int:
    return 7


def test_struct_prefixed_header_construct_cannot_compile_is_interpreted() -> None:
    """A header that construct cannot compile (a Python function in it) still frames."""
    header = Struct("length" / Int8ub, "x" / Computed(seven))
    with pytest.raises(Exception):  # noqa: B017, PT011 - construct's own, of any kind
        header.compile()
    framer = StructPrefixed(header)
    assert framer.feed(b"\x01z") == [Frame({"x": 7}, b"z")]
    assert framer.encode(Frame({}, b"z")) == b"\x01z"


def no_such_kind(ctx: Any) -> int:
    raise ValueError(f"no kind {ctx.kind}")


@pytest.mark.parametrize(
    ("header", "wire", "text"),
    [
        # Const's error has no text: the exception's type name stands in.
        (
            Struct("magic" / Const(b"FR"), "length" / Int8ub),
            b"XX\x00",
            "bad header 585800: ConstError",
        ),
        (
            Struct("kind" / Int8ub, "length" / Int8ub, "x" / Computed(no_such_kind)),
            b"\x09\x00",
            "bad header 0900: no kind 9",
        ),
    ],
)
def test_bad_header_error_carries_the_parsers_words(header: Any, wire: bytes, text: str) -> None:
    """A header construct cannot parse: the error shows its bytes and construct's reason."""
    framer = StructPrefixed(header)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(wire)
    assert str(info.value) == f"{framer!r}: {text}"


@pytest.mark.parametrize(
    ("header", "good", "bad", "fields"),
    [
        (Struct("length" / Int8ub), b"\x03a", b"\x01", {}),
        (Struct("length" / Int8ub, "magic" / Const(b"M")), b"\x03Ma", b"\x01M", {"magic": b"M"}),
    ],
    ids=["struct fast path", "construct"],
)
def test_struct_negative_length_names_framer_and_keeps_earlier_frames(
    header: Any, good: bytes, bad: bytes, fields: dict[str, bytes]
) -> None:
    """A length the adjustment makes negative: the framer, the numbers, the frames before."""
    framer = StructPrefixed(header, length_adjustment=-2)
    with pytest.raises(MalformedFrame) as info:
        framer.feed(good + bad)
    exc = info.value
    assert exc.framer == repr(framer)
    assert exc.messages == [Frame(fields, b"a")]
    assert str(exc) == (
        f"{framer!r}: length field says 1, which with adjustment -2 leaves -1 bytes of payload"
    )


def test_struct_length_that_is_not_a_number_keeps_earlier_frames() -> None:
    """An Enum length field parses a named value as a string: malformed, frames before kept."""
    framer = StructPrefixed(Struct("length" / Enum(Int8ub, empty=0)))
    with pytest.raises(MalformedFrame, match="not a number") as info:
        framer.feed(b"\x01a\x00")
    assert info.value.messages == [Frame({}, b"a")]


def test_struct_encode_accepts_a_payload_of_exactly_max_size() -> None:
    """max_size is inclusive for encode as for feed."""
    framer = StructPrefixed(Struct("length" / Int8ub), max_size=3)
    assert framer.encode(Frame({}, b"abc")) == b"\x03abc"
    assert framer.feed(b"\x03abc") == [Frame({}, b"abc")]


def test_struct_header_with_an_unnamed_field_frames() -> None:
    """An unnamed field's bytes are read and dropped, as construct does."""
    framer = StructPrefixed(Struct("length" / Int8ub, Int8ub))
    assert framer.feed(b"\x01\x02x") == [Frame({}, b"x")]


@pytest.mark.parametrize(
    "header",
    [
        Struct("length" / Int8ub, "_pad" / Int8ub),  # integers only: once the struct fast path
        Struct("length" / Int24ub, "_pad" / Int8ub),  # a 3-byte integer: construct
    ],
    ids=["integers", "construct"],
)
def test_struct_private_fields_are_hidden_whichever_way_the_header_is_read(header: Any) -> None:
    """A ``_``-named field is read but not delivered, like construct's own private keys."""
    framer = StructPrefixed(header)
    wire = framer.encode(Frame({"_pad": 0}, b"x"))
    assert framer.feed(wire) == [Frame({}, b"x")]


@pytest.mark.parametrize("width", [Int8ub, Int24ub])
def test_struct_private_length_field_is_the_length(width: Any) -> None:
    """A length field may have a private name; it is still the length, and still not shown."""
    framer = StructPrefixed(Struct("kind" / Int8ub, "_len" / width), length_field="_len")
    wire = framer.encode(Frame({"kind": 7}, b"xy"))
    assert framer.feed(wire + wire) == [Frame({"kind": 7}, b"xy")] * 2


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (Struct("length" / Int16un, "kind" / Int8un), ("length", "kind")),  # native order
        (Struct("length" / Int16ub, "_pad" / Int8ub), ()),  # private: Frame hides it
        (Int16ub, ()),  # a bare field, not a struct
    ],
)
def test_which_headers_take_the_struct_fast_path(header: Any, names: tuple[str, ...]) -> None:
    """Native-order integers are read with struct; private fields and non-structs are not."""
    got_names, reader = _plain_fields(header, int(header.sizeof()))
    assert got_names == names
    assert (reader is None) == (not names)
