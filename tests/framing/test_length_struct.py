"""StructPrefixed: headers declared with construct, delivered as Frame values."""

from __future__ import annotations

import dataclasses

import pytest
from construct import (
    Bytes,
    Const,
    Float32l,
    Int8ub,
    Int16sb,
    Int16ul,
    Int24ub,
    Int32ub,
    PascalString,
    Struct,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from framing.base import Framer
from framing.errors import FrameTooLarge, IncompleteFrame, MalformedFrame
from framing.length import DEFAULT_MAX_SIZE, Frame, StructPrefixed
from framing.testing import assert_chunking_invariant, chunkings, feed_chunks

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
    with pytest.raises(FrameTooLarge):
        framer.encode(Frame({"kind": 1}, b"abcd"))
    with pytest.raises(ValueError, match="cannot build header"):
        framer.encode(Frame({}, b"a"))
    with pytest.raises(ValueError, match="cannot build header"):
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
