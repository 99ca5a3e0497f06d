from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dns.errors import DNSFormatError
from protocols.dns.names import ROOT, Name, decode_name, encode_name


def test_from_text_absolute_and_relative() -> None:
    origin = Name.from_text("framing.test.")
    assert Name.from_text("www.framing.test.").labels == (b"www", b"framing", b"test")
    assert Name.from_text("www", origin=origin) == Name.from_text("www.framing.test.")
    assert Name.from_text("@", origin=origin) == origin
    assert Name.from_text(".") == ROOT


def test_from_text_escapes_round_trip_through_to_text() -> None:
    name = Name.from_text(r"a\.b\032c\\.test.")
    assert name.labels == (b"a.b c\\", b"test")
    assert name.to_text() == r"a\.b\ c\\.test."
    assert Name.from_text(name.to_text()) == name
    assert Name.from_text(r"\255x.").to_text() == r"\255x."


@pytest.mark.parametrize(
    "text", ["a..b.", "x" * 64 + ".", ".".join(["abcdefgh"] * 32) + ".", "a\\"]
)
def test_from_text_rejects_bad_names(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        Name.from_text(text)


def test_key_ignores_ascii_case() -> None:
    upper, lower = Name.from_text("WwW.Framing.TEST."), Name.from_text("www.framing.test.")
    assert upper != lower
    assert upper.key == lower.key
    assert upper.is_subdomain_of(Name.from_text("FRAMING.test."))
    assert not Name.from_text("test.").is_subdomain_of(lower)


def test_encode_compresses_a_repeated_suffix() -> None:
    out = bytearray(b"\x00" * 12)
    table: dict[tuple[bytes, ...], int] = {}
    encode_name(Name.from_text("www.framing.test."), out, table)
    encode_name(Name.from_text("mail.framing.test."), out, table)
    assert bytes(out[12:]) == b"\x03www\x07framing\x04test\x00" + b"\x04mail\xc0\x10"
    assert decode_name(bytes(out), 12) == (Name.from_text("www.framing.test."), 30)
    assert decode_name(bytes(out), 30) == (Name.from_text("mail.framing.test."), 37)


def test_encode_compression_is_case_exact() -> None:
    out = bytearray()
    table: dict[tuple[bytes, ...], int] = {}
    encode_name(Name.from_text("A.test."), out, table)
    encode_name(Name.from_text("a.TEST."), out, table)
    # No suffix is equal byte for byte, so nothing is compressed and the case survives.
    assert decode_name(bytes(out), 8)[0] == Name.from_text("a.TEST.")


def test_encode_without_table_writes_every_label() -> None:
    assert Name.from_text("a.b.").to_wire() == b"\x01a\x01b\x00"
    assert ROOT.to_wire() == b"\x00"


@pytest.mark.parametrize(
    ("wire", "offset", "match"),
    [
        (b"\xc0\x00", 0, "backwards"),  # a pointer to itself: the shortest loop
        (b"\x01a\xc0\x00", 0, "backwards"),  # a pointer to the start of its own name
        (b"\x01a\xc0\x04\x00", 0, "backwards"),  # a forward pointer
        (b"\x00\x01a\xc0\x05", 1, "backwards"),  # out of bounds (and forward)
        (b"\x01a\x00\x01b\xc0\x03", 3, "backwards"),  # a loop through two pointers
        (b"\x40abc", 0, "reserved"),  # label type 01: "label over 63 bytes"
        (b"\x80abc", 0, "reserved"),  # label type 10
        (b"\x05ab", 0, "past the end"),
        (b"\x01a", 0, "past the end"),
        (b"\xc0", 0, "cut short"),
        (b"", 0, "past the end"),
    ],
)
def test_decode_rejects_hostile_names(wire: bytes, offset: int, match: str) -> None:
    with pytest.raises(DNSFormatError, match=match):
        decode_name(wire, offset)


def test_decode_rejects_a_name_over_255_bytes_built_with_pointers() -> None:
    # Each name points to the previous one: the last is 5 * 64 = 320 bytes long.
    wire = bytearray(b"\x3f" + b"x" * 63 + b"\x00")
    starts = [0]
    for _ in range(4):
        starts.append(len(wire))
        wire += b"\x3f" + b"y" * 63 + (0xC000 | starts[-2]).to_bytes(2, "big")
    assert len(decode_name(bytes(wire), starts[2])[0].labels) == 3
    with pytest.raises(DNSFormatError, match="longer than 255"):
        decode_name(bytes(wire), starts[4])


labels = st.binary(min_size=1, max_size=20)
names = st.lists(labels, max_size=6).map(lambda ls: Name(tuple(ls)))


@settings(max_examples=200)
@given(st.lists(names, min_size=1, max_size=8))
def test_encode_then_decode_gives_the_names_back(batch: list[Name]) -> None:
    out = bytearray()
    table: dict[tuple[bytes, ...], int] = {}
    offsets = []
    for name in batch:
        offsets.append(len(out))
        encode_name(name, out, table)
    wire = bytes(out)
    for name, offset in zip(batch, offsets, strict=True):
        assert decode_name(wire, offset)[0] == name
    assert Name.from_text(batch[0].to_text()) == batch[0]


@settings(max_examples=300)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64))
def test_decode_random_bytes_raises_only_format_errors(wire: bytes, offset: int) -> None:
    try:
        name, end = decode_name(wire, offset)
    except DNSFormatError:
        return
    assert offset < end <= len(wire)
    assert len(name.to_wire()) <= 255
