"""The varint (LEB128) codec of framing.varint, alone: offsets, incomplete and overlong input."""

from __future__ import annotations

import pytest

from framing.length import (
    LengthPrefixed,
    decode_varint,
    encode_varint,
)
from framing.varint import read_varint


def test_decode_varint_incomplete_far_into_the_data() -> None:
    """An incomplete varint is incomplete, not too long, wherever it starts."""
    assert decode_varint(bytes(8) + b"\x80", 8) == (0, 0)
    assert decode_varint(b"x" * 20 + b"\x81\x01", 20) == (129, 2)
    framer = LengthPrefixed("varint")
    assert framer.feed(bytes(10) + b"\x80") == [b""] * 10
    assert framer.feed(b"\x01" + b"y" * 128) == [b"y" * 128]


def test_decode_varint_at_an_offset() -> None:
    assert decode_varint(b"xyz" + encode_varint(300), 3) == (300, 2)
    assert decode_varint(b"xyz\x05", 3) == (5, 1)
    assert decode_varint(b"xyz\x80", 3) == (0, 0)
    assert decode_varint(b"xy" + b"\x80" * 9 + b"\x01", 2) == (1 << 63, 10)
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        decode_varint(b"xy" + b"\x80" * 10, 2)


def test_read_varint_reports_whole_partial_and_overlong() -> None:
    """``read_varint``'s three documented results, at an offset and with an end before the data's.

    Found by mutants of the third field and of the overlong size, which the
    framers (that read only the first two) could not see.
    """
    data = b"xyz" + encode_varint(300) + b"\x80\x80"
    assert read_varint(data, 3, len(data)) == (300, 2, 0)
    assert read_varint(data, 5, len(data)) == (0, 0, 2)  # two bytes of a varint, no end
    assert read_varint(data, 3, 4) == (300 & 0x7F, 0, 1)  # the end cuts it after one byte
    overlong = b"xy" + b"\x80" * 11
    assert read_varint(overlong, 2, len(overlong)) == (0, -1, 0)
