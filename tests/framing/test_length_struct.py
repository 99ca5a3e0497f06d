"""StructPrefixed: headers declared with construct, delivered as Frame values."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
from construct import (
    Bytes,
    BytesInteger,
    Computed,
    Const,
    CString,
    Enum,
    Float32l,
    Int8ub,
    Int8ul,
    Int8un,
    Int16sb,
    Int16ub,
    Int16ul,
    Int16un,
    Int24ub,
    Int32ub,
    Padding,
    PascalString,
    Struct,
)
from hypothesis import given, settings
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
    Frame,
    LengthPrefixed,
    StructPrefixed,
)
from framing.structured import _plain_fields
from framing.testing import (
    assert_chunking_invariant,
    chunkings,
    feed_chunks,
)

KIND_LENGTH = Struct("kind" / Int8ub, "length" / Int32ub)
# A header with a magic, a little-endian length after a flags byte, counting itself.
MAGIC_HEADER = Struct("magic" / Const(b"FR"), "flags" / Int8ub, "size" / Int16ul)


def test_kind_length_exact_vector() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    frame = Frame({"kind": 1}, b"hello")
    wire = bytes.fromhex("01 00000005") + b"hello"
    assert framer.encode(frame) == wire
    assert_chunking_invariant(framer.clone, wire, [frame])


def test_magic_header_length_counts_whole_frame() -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size", length_adjustment=-5)
    frame = Frame({"magic": b"FR", "flags": 7}, b"abc")
    wire = b"FR\x07\x08\x00abc"
    assert framer.encode(frame) == wire
    assert framer.feed(wire + wire) == [frame, frame]


def test_header_is_plain_dict_without_length_or_private_keys() -> None:
    (frame,) = StructPrefixed(KIND_LENGTH).feed(b"\x02\x00\x00\x00\x00")
    assert type(frame.header) is dict
    assert frame.header == {"kind": 2}
    assert frame.payload == b""


def test_encode_ignores_given_length() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    assert framer.encode(Frame({"kind": 1, "length": 99}, b"ab")) == b"\x01\x00\x00\x00\x02ab"


def test_frame_is_frozen_and_slotted() -> None:
    frame = Frame({"kind": 1}, b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.payload = b"y"  # type: ignore[misc]
    assert not hasattr(frame, "__dict__")


def test_bad_const_is_malformed_with_messages() -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size")
    good = framer.encode(Frame({"flags": 0}, b"ok"))
    with pytest.raises(MalformedFrame, match="bad header 5858") as info:
        framer.feed(good + b"XX\x00\x00\x00")
    assert info.value.messages == [Frame({"magic": b"FR", "flags": 0}, b"ok")]
    assert "StructPrefixed(5-byte header, length_field='size')" in str(info.value)


def test_oversize_raises_and_skip_skips() -> None:
    wire = b"\x01\x00\x00\x00\x03abc" + b"\x02\x00\x00\x00\x01z"
    with pytest.raises(FrameTooLarge) as info:
        StructPrefixed(KIND_LENGTH, max_size=2).feed(wire)
    assert (info.value.size, info.value.limit) == (3, 2)
    framer = StructPrefixed(KIND_LENGTH, max_size=2, on_oversize="skip")
    assert framer.feed(wire) == [Frame({"kind": 2}, b"z")]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 8)


def test_negative_adjusted_length_is_malformed() -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size", length_adjustment=-5)
    with pytest.raises(MalformedFrame, match="leaves -1 bytes"):
        framer.feed(b"FR\x00\x04\x00")


def test_early_check_sees_header() -> None:
    framer = StructPrefixed(
        KIND_LENGTH, check=lambda head: "unknown kind" if head[0] > 3 else None, check_size=1
    )
    assert framer.feed(b"\x03\x00\x00\x00\x00") == [Frame({"kind": 3}, b"")]
    with pytest.raises(MalformedFrame, match="unknown kind"):
        framer.feed(b"\x09\x00\x00\x00\x00")


def test_feed_eof_mid_frame_raises_incomplete() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    framer.feed(b"\x01\x00\x00\x00\x04ab")
    with pytest.raises(IncompleteFrame, match="stream ended 7 bytes into a 9-byte frame"):
        framer.feed_eof()


def test_encode_errors() -> None:
    framer = StructPrefixed(KIND_LENGTH, max_size=3)
    with pytest.raises(MessageTooLarge):
        framer.encode(Frame({"kind": 1}, b"abcd"))
    with pytest.raises(EncodeError, match="cannot build header"):
        framer.encode(Frame({}, b"a"))
    with pytest.raises(EncodeError, match="cannot build header"):
        framer.encode(Frame({"kind": 256}, b"a"))


@pytest.mark.parametrize(
    ("header", "kwargs", "match"),
    [
        (Struct("name" / PascalString(Int8ub, "utf8"), "length" / Int8ub), {}, "fixed size"),
        (KIND_LENGTH, {"length_field": "size"}, "no field named 'size'"),
        (KIND_LENGTH, {"max_size": 1 << 32}, "max_size"),
        (Struct("length" / Int8ub), {"length_adjustment": -300}, "no valid frame"),
        (KIND_LENGTH, {"on_oversize": "drop"}, "on_oversize"),
    ],
)
def test_construction_rejects_nonsense(
    header: object, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        StructPrefixed(header, **kwargs)  # type: ignore[arg-type]


def test_defaults_repr_clone() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    assert framer.max_size == DEFAULT_MAX_SIZE
    assert StructPrefixed(Struct("length" / Int8ub)).max_size == 255
    assert isinstance(framer, Framer)
    assert repr(framer) == "StructPrefixed(5-byte header, length_field='length')"
    twin = StructPrefixed(KIND_LENGTH, max_size=9, on_oversize="skip").clone()
    assert repr(twin) == (
        "StructPrefixed(5-byte header, length_field='length', max_size=9, on_oversize='skip')"
    )


def test_limit_and_detach() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    wire = framer.encode(Frame({"kind": 1}, b"a")) + b"\x02\x00"
    assert framer.feed(wire, limit=1) == [Frame({"kind": 1}, b"a")]
    assert framer.detach() == b"\x02\x00"


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_roundtrip_any_split(data: st.DataObject) -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size", length_adjustment=-5, max_size=30)
    frames = [
        Frame({"magic": b"FR", "flags": flags}, payload)
        for flags, payload in data.draw(
            st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=30)), max_size=8)
        )
    ]
    stream = b"".join(map(framer.encode, frames))
    assert_chunking_invariant(framer.clone, stream, frames, data.draw(chunkings(stream)))
    assert feed_chunks(framer, [stream]) == frames


@pytest.mark.parametrize(
    "header",
    [
        # Integer and float fields only: read with one struct call.
        Struct("kind" / Int8ub, "temp" / Int16sb, "length" / Int32ub),
        Struct("length" / Int16ul, "ratio" / Float32l),
        # Mixed byte orders, 3-byte integers, constants: read by construct.
        Struct("kind" / Int16ul, "length" / Int32ub),
        Struct("kind" / Int24ub, "length" / Int8ub),
        Struct("magic" / Const(b"M"), "length" / Int8ub),
    ],
)
def test_header_fields_equal_constructs_own_parse(header: Struct) -> None:
    framer = StructPrefixed(header, max_size=255)
    fields: dict[str, object] = {
        sub.name: 0 for sub in header.subcons if sub.name not in ("magic", "length")
    }
    if "temp" in fields:
        fields["temp"] = -2
    if "ratio" in fields:
        fields["ratio"] = 0.5
    wire = framer.encode(Frame(fields, b"abc"))
    (frame,) = framer.feed(wire)
    expected = {k: v for k, v in header.parse(wire).items() if k not in ("_io", "length")}
    assert frame == Frame(expected, b"abc")


def test_clone_of_a_busy_framer_starts_empty_and_shares_the_compiled_header() -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size", length_adjustment=-5, max_size=30)
    wire = framer.encode(Frame({"magic": b"FR", "flags": 7}, b"xyz"))
    assert framer.feed(wire[:6]) == []  # the header parsed, the body awaited
    twin = framer.clone()
    assert twin.buffered == 0
    assert twin._parse_header is framer._parse_header  # not compiled again
    assert twin.feed(wire) == [Frame({"magic": b"FR", "flags": 7}, b"xyz")]
    # The original is untouched by its clone's work.
    assert framer.buffered == 6
    assert framer.feed(wire[6:]) == [Frame({"magic": b"FR", "flags": 7}, b"xyz")]


def test_bad_header_after_a_good_frame_carries_that_frame_and_the_bytes() -> None:
    framer = StructPrefixed(MAGIC_HEADER, length_field="size", length_adjustment=-5, max_size=30)
    good = framer.encode(Frame({"magic": b"FR", "flags": 1}, b"ok"))
    with pytest.raises(MalformedFrame) as info:
        framer.feed(good + b"XX\x00\x05\x00")
    assert info.value.messages == [Frame({"magic": b"FR", "flags": 1}, b"ok")]
    assert "bad header 5858000500" in str(info.value)


def test_length_field_that_is_not_a_number_is_malformed() -> None:
    framer = StructPrefixed(Struct("length" / Bytes(2)))
    with pytest.raises(MalformedFrame, match=r"length field is b'\\x00\\x01', not a number"):
        framer.feed(b"\x00\x01")


# --- edges: construction, header readers, error fields and texts, encode refusals ---


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


def test_struct_prefixed_limits_at_the_edges() -> None:
    header = Struct("length" / Int8ub)
    assert StructPrefixed(header, max_size=0).feed(b"\x00") == [Frame({}, b"")]
    # An adjustment of -255 leaves exactly one valid size: 0.
    assert StructPrefixed(header, length_adjustment=-255).max_size == 0
    with pytest.raises(ValueError, match="leaves no valid frame"):
        StructPrefixed(header, length_adjustment=-256)
    with pytest.raises(ValueError, match="max_size must be 0 to 255"):
        StructPrefixed(header, max_size=256)
    with pytest.raises(ValueError, match="fixed size"):
        StructPrefixed(Struct("length" / Int8ub, "name" / CString("ascii")))


def test_struct_prefixed_encode_errors() -> None:
    framer = StructPrefixed(Struct("length" / Int8ub), max_size=3, length_adjustment=1)
    with pytest.raises(MessageTooLarge) as info:
        framer.encode(Frame({}, b"abcd"))
    assert (info.value.framer, info.value.size, info.value.limit) == (repr(framer), 4, 3)
    assert framer.encode(Frame({}, b"a")) == b"\x00a"
    with pytest.raises(EncodeError, match="shorter than length_adjustment 1"):
        framer.encode(Frame({}, b""))


def test_struct_prefixed_repr_names_the_check() -> None:
    def looks_fine(head: bytes) -> None:
        return None

    plain = StructPrefixed(Struct("length" / Int16ub), check=looks_fine, check_size=2)
    assert "check=test_struct_prefixed_repr_names_the_check.<locals>.looks_fine" in repr(plain)
    bound = functools.partial(looks_fine)
    assert f"check={bound!r}" in repr(
        StructPrefixed(Struct("length" / Int16ub), check=bound, check_size=2)
    )
    assert f"check={bound!r}" in repr(LengthPrefixed(2, check=bound, check_size=2))


def test_struct_prefixed_hides_private_fields() -> None:
    framer = StructPrefixed(Struct("length" / Int8ub, "_pad" / Int8ub, "tag" / Bytes(1)))
    assert framer.feed(b"\x01\x00Tx") == [Frame({"tag": b"T"}, b"x")]


def test_struct_prefixed_length_field_that_is_not_a_number() -> None:
    framer = StructPrefixed(Struct("length" / Bytes(1)))
    with pytest.raises(MalformedFrame) as info:
        framer.feed(b"\x01x\x01")
    assert info.value.framer == repr(framer)
    assert "not a number" in str(info.value)


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (Struct("kind" / Int8ub, "length" / Int16ub), ("kind", "length")),
        (Struct("length" / Int16ul, "flags" / Int8ul), ("length", "flags")),
        (Struct("length" / Int32ub), ("length",)),
        (Struct("length" / Int16ub, "flags" / Int16ul), ()),  # mixed byte orders
        (Struct("length" / Int16ub, Padding(1)), ()),  # not a named integer
        (Struct("length" / Int16ub, "tag" / Bytes(2)), ()),
    ],
)
def test_plain_headers_take_the_struct_fast_path(header: Any, names: tuple[str, ...]) -> None:
    # An optimisation, invisible in results: a header of named integers is read
    # with one struct call instead of construct. Checked directly, or a mutant
    # that turned it off (falling back to construct) could not be told apart.
    got_names, reader = _plain_fields(header, int(header.sizeof()))
    assert got_names == names
    assert (reader is None) == (not names)


def test_encode_str_payload_raises_encode_error() -> None:
    framer = StructPrefixed(KIND_LENGTH)
    with pytest.raises(EncodeError, match="expects bytes, not str"):
        framer.encode(Frame({"kind": 1}, "hello"))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="expects a Frame, not bytes"):
        framer.encode(b"hello")  # type: ignore[arg-type]


def test_encode_errors_name_the_framer() -> None:
    """Each ``encode`` refusal carries the framer's repr, in its ``framer`` field and its text.

    Found by mutants that passed ``None`` (or its repr) as the framer.
    """
    short = StructPrefixed(Struct("length" / Int16ub), length_adjustment=3)
    with pytest.raises(EncodeError) as info:
        short.encode(Frame({}, b"ab"))
    assert str(info.value) == (
        "StructPrefixed(2-byte header, length_field='length', length_adjustment=3): "
        "a payload of 2 bytes is shorter than length_adjustment 3"
    )
    assert info.value.framer == repr(short)
    kinded = StructPrefixed(Struct("kind" / Int8ub, "length" / Int16ub))
    with pytest.raises(EncodeError) as info:
        kinded.encode(Frame({}, b"ab"))  # no "kind": construct cannot build the header
    assert str(info.value) == (
        "StructPrefixed(3-byte header, length_field='length'): "
        "cannot build header from {'length': 2}: 'kind'"
    )
    assert info.value.framer == repr(kinded)
    with pytest.raises(MessageTypeError) as wrong:
        kinded.encode(b"ab")  # type: ignore[arg-type]
    assert str(wrong.value) == (
        "StructPrefixed(3-byte header, length_field='length'): expects a Frame, not bytes"
    )
    assert wrong.value.framer == repr(kinded)
