"""Tests written to kill the mutants mutmut left alive in the framers (see docs/ROBUSTNESS.md).

Most are the generic contract (``framing.testing.check_framer``) over many
settings, and the fuzz corpus replayed through the fuzz targets' invariants;
the rest pin error details and boundaries that the contract does not see.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from construct import Bytes, CString, Int8ub, Int8ul, Int16ub, Int16ul, Int32ub, Padding, Struct
from hypothesis import strategies as st

from framing.errors import FrameTooLarge, IncompleteFrame, MalformedFrame
from framing.length import (
    Frame,
    LengthPrefixed,
    StructPrefixed,
    _plain_fields,
    decode_varint,
    encode_varint,
)
from framing.testing import check_framer, feed_chunks, message_lists

# Enough to find every mutant these tests kill (checked with mutmut), and fast.
EXAMPLES = 15


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8, "varint"])
@pytest.mark.parametrize("order", ["big", "little"])
def test_length_prefixed_contract(width: int | str, order: str) -> None:
    check_framer(
        lambda: LengthPrefixed(width, order, max_size=200),  # type: ignore[arg-type]
        message_lists(max_size=200, max_messages=6),
        max_examples=EXAMPLES,
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

    check_framer(make, messages, max_examples=EXAMPLES, overhead=2 + offset)


def test_errors_carry_their_numbers() -> None:
    with pytest.raises(FrameTooLarge) as big:
        LengthPrefixed(2, max_size=10).feed(b"\x00\x0b")
    assert (big.value.size, big.value.limit) == (11, 10)
    with pytest.raises(IncompleteFrame) as cut:
        feed_chunks(LengthPrefixed(2), [b"\x00\x05ab"])
    assert cut.value.held == 4


def test_error_on_a_later_feed_has_no_earlier_messages() -> None:
    framer = LengthPrefixed(2, max_size=4)
    assert framer.feed(b"\x00\x01a") == [b"a"]
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x09")
    assert info.value.messages == []


# --- varints -----------------------------------------------------------------------


def test_decode_varint_at_an_offset() -> None:
    assert decode_varint(b"xyz" + encode_varint(300), 3) == (300, 2)
    assert decode_varint(b"xyz\x05", 3) == (5, 1)
    assert decode_varint(b"xyz\x80", 3) == (0, 0)
    assert decode_varint(b"xy" + b"\x80" * 9 + b"\x01", 2) == (1 << 63, 10)
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        decode_varint(b"xy" + b"\x80" * 10, 2)


def test_varint_header_split_at_every_point() -> None:
    stream = encode_varint(300) + b"z" * 300 + encode_varint(1) + b"!"
    for cut in range(len(stream) + 1):
        got = feed_chunks(LengthPrefixed("varint"), [stream[:cut], stream[cut:]])
        assert got == [b"z" * 300, b"!"]


# --- StructPrefixed ----------------------------------------------------------------


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
    with pytest.raises(FrameTooLarge) as info:
        framer.encode(Frame({}, b"abcd"))
    assert (info.value.framer, info.value.size, info.value.limit) == (repr(framer), 4, 3)
    assert framer.encode(Frame({}, b"a")) == b"\x00a"
    with pytest.raises(ValueError, match="shorter than length_adjustment 1"):
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
