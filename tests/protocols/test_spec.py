"""protocols/spec.py: every --framing spec gives the framer whose bytes it names."""

from __future__ import annotations

import argparse

import pytest

from framing.testing import feed_chunks
from protocols.spec import add_framing_arguments, framing_spec, parse_framing, positive_int

# Each spec, and the bytes that carry b"abc" in it.
WIRE = [
    ("raw", b"abc"),
    ("length:1", b"\x03abc"),
    ("length:2", b"\x00\x03abc"),
    ("length:3", b"\x00\x00\x03abc"),
    ("length:4", b"\x00\x00\x00\x03abc"),
    ("length:8", b"\x00" * 7 + b"\x03abc"),
    ("length:2:big", b"\x00\x03abc"),
    ("length:2:little", b"\x03\x00abc"),
    ("length:4:little", b"\x03\x00\x00\x00abc"),
    ("varint", b"\x03abc"),
    ("line", b"abc\n"),
    ("delimiter:00", b"abc\x00"),
    ("delimiter:0d0a", b"abc\r\n"),
    ("delimiter:7C", b"abc|"),
    ("netstring", b"3:abc,"),
]


@pytest.mark.parametrize(("spec", "wire"), WIRE)
def test_parse_framing_encodes_as_named(spec: str, wire: bytes) -> None:
    assert parse_framing(spec).encode(b"abc") == wire


@pytest.mark.parametrize(("spec", "wire"), WIRE)
def test_parse_framing_decodes_as_named_byte_at_a_time(spec: str, wire: bytes) -> None:
    framer = parse_framing(spec)
    chunks = [wire[i : i + 1] for i in range(len(wire))]
    got = feed_chunks(framer, chunks)
    if spec == "raw":
        # Raw has no boundaries: its messages are the chunks themselves.
        assert got == [b"a", b"b", b"c"]
    else:
        assert got == [b"abc"]


def test_parse_framing_varint_header_grows_past_127() -> None:
    assert parse_framing("varint").encode(b"x" * 300)[:2] == b"\xac\x02"


def test_parse_framing_line_accepts_crlf() -> None:
    assert parse_framing("line").feed(b"abc\r\ndef\n") == [b"abc", b"def"]


@pytest.mark.parametrize(
    ("spec", "wire"),
    [
        (" Length:2 ", b"\x00\x03abc"),
        ("LENGTH:4:LITTLE", b"\x03\x00\x00\x00abc"),
        ("Delimiter:0D0A", b"abc\r\n"),
        ("NetString", b"3:abc,"),
    ],
)
def test_parse_framing_ignores_case_and_blanks(spec: str, wire: bytes) -> None:
    assert parse_framing(spec).encode(b"abc") == wire


@pytest.mark.parametrize(("spec", "_wire"), WIRE)
def test_parse_framing_applies_max_size(spec: str, _wire: bytes) -> None:
    assert parse_framing(spec, max_size=100).max_size == 100


def test_parse_framing_returns_a_fresh_framer_each_time() -> None:
    first = parse_framing("length:2")
    first.feed(b"\x00\x05ab")
    assert parse_framing("length:2").buffered == 0


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("", "unknown framing"),
        ("json", "unknown framing"),
        ("length", "unknown framing"),
        ("raw:1", "unknown framing"),
        ("line:0a", "unknown framing"),
        ("varint:2", "unknown framing"),
        ("length:2:big:x", "unknown framing"),
        ("length:5", "width must be one of 1, 2, 3, 4, 8"),
        ("length:x", "width must be one of"),
        ("length:-2", "width must be one of"),
        ("length:2:middle", "byte order must be big or little"),
        ("delimiter", "unknown framing"),
        ("delimiter:", "unknown framing"),
        ("delimiter:0", "in hex"),
        ("delimiter:zz", "in hex"),
    ],
)
def test_parse_framing_rejects_bad_spec(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_framing(spec)


def test_parse_framing_unknown_lists_the_forms() -> None:
    with pytest.raises(ValueError, match=r"raw, length:N.*netstring"):
        parse_framing("xml")


@pytest.mark.parametrize("max_size", [0, -1])
def test_parse_framing_rejects_max_size_below_one(max_size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        parse_framing("raw", max_size=max_size)


def test_parse_framing_max_size_over_header_capacity_is_value_error() -> None:
    # A 1-byte length cannot announce 1000 bytes: the framer says so.
    with pytest.raises(ValueError, match="max_size"):
        parse_framing("length:1", max_size=1000)


def test_framing_spec_returns_the_text_or_an_argparse_error() -> None:
    assert framing_spec("length:2") == "length:2"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown framing 'nope'"):
        framing_spec("nope")


def test_positive_int() -> None:
    assert positive_int("7") == 7
    for bad in ("0", "-3", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_add_framing_arguments_defaults_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="test")
    add_framing_arguments(parser)
    args = parser.parse_args([])
    assert (args.framing, args.max_size) == ("raw", None)
    args = parser.parse_args(["--framing", "delimiter:00", "--max-size", "512"])
    assert (args.framing, args.max_size) == ("delimiter:00", 512)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--framing", "length:9"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--framing: bad framing 'length:9'" in err
