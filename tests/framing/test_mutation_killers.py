"""Tests written to kill the mutants mutmut left alive in the framers (see docs/ROBUSTNESS.md).

Most are the generic contract (``framing.testing.check_framer``) over many
settings, and the fuzz corpus replayed through the fuzz targets' invariants;
the rest pin error details and boundaries that the contract does not see.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from construct import Int8ub, Int16ub, Struct
from hypothesis import strategies as st

from framing.delimited import Delimited, Lines
from framing.errors import FrameTooLarge, FramingError, IncompleteFrame, MalformedFrame
from framing.fixed import FixedSize
from framing.length import (
    LengthPrefixed,
    StructPrefixed,
)
from framing.netstring import Netstring
from framing.raw import Raw
from framing.testing import check_framer, feed_chunks, message_lists
from fuzz.targets import FRAMER_TARGETS, TARGETS

# Enough to find every mutant these tests kill (checked with mutmut), and fast.
EXAMPLES = 15

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


@pytest.mark.parametrize("target", FRAMER_TARGETS)
def test_fuzz_corpus_keeps_the_framer_invariants(target: str) -> None:
    seeds = sorted((CORPUS / target).iterdir())
    assert seeds
    for seed in seeds:
        TARGETS[target](seed.read_bytes())


@pytest.mark.parametrize(
    "delimiters",
    [(b"\n",), (b"\r\n",), (b"\r\n", b"\n"), (b"ab", b"b"), (b"aba",), (b"xx", b"xxx")],
)
def test_delimited_contract(delimiters: tuple[bytes, ...]) -> None:
    alphabet = bytes(sorted(set(b"".join(delimiters)) | {ord("q")}))
    check_framer(
        lambda: Delimited(delimiters, max_size=50),
        message_lists(max_size=50, forbid=delimiters, alphabet=alphabet, max_messages=6).filter(
            lambda ms: all(_representable(delimiters, m) for m in ms)
        ),
        max_examples=EXAMPLES,
        overhead=max(map(len, delimiters)),
    )


def _representable(delimiters: tuple[bytes, ...], message: bytes) -> bool:
    try:
        Delimited(delimiters, max_size=50).encode(message)
    except MalformedFrame:
        return False
    return True


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_lines_contract(ending: bytes) -> None:
    check_framer(
        lambda: Lines(line_ending=ending, max_size=30),
        message_lists(max_size=30, forbid=[b"\n", b"\r"], alphabet=b"ab\r\n"),
        max_examples=EXAMPLES,
        overhead=2,
    )


@pytest.mark.parametrize("max_size", [0, 9, 10, 99, 65536])
def test_netstring_contract(max_size: int) -> None:
    check_framer(
        lambda: Netstring(max_size=max_size),
        message_lists(max_size=min(max_size, 120), max_messages=6),
        max_examples=EXAMPLES,
        overhead=len(str(max_size)) + 2,
    )


@pytest.mark.parametrize("size", [1, 3, 16])
def test_fixed_size_contract(size: int) -> None:
    check_framer(
        lambda: FixedSize(size),
        st.lists(st.binary(min_size=size, max_size=size), max_size=8),
        max_examples=EXAMPLES,
        overhead=0,
    )


def test_raw_bytes_survive_any_split() -> None:
    assert feed_chunks(Raw(max_size=2), [b"abc", b"", b"d"]) == [b"ab", b"c", b"d"]


def test_errors_carry_their_numbers() -> None:
    with pytest.raises(FrameTooLarge) as big:
        LengthPrefixed(2, max_size=10).feed(b"\x00\x0b")
    assert (big.value.size, big.value.limit) == (11, 10)
    with pytest.raises(IncompleteFrame) as cut:
        feed_chunks(LengthPrefixed(2), [b"\x00\x05ab"])
    assert cut.value.held == 4


# --- error details: every error names its framer and carries earlier messages ------


def _bad_after_good() -> list[tuple[Callable[[], Any], bytes, type[Exception]]]:
    """Framer factories (a framer is spent after an error), streams, errors.

    Each stream is one good frame, then a fault; the error expected.
    """

    def reject_x(head: bytes) -> str | None:
        return "starts with x" if head[-1:] == b"x" else None

    return [
        (lambda: LengthPrefixed(2, max_size=4), b"\x00\x01a\x00\x09", FrameTooLarge),
        (lambda: LengthPrefixed("varint", max_size=4), b"\x01a\x85\x01", FrameTooLarge),
        (lambda: LengthPrefixed("varint"), b"\x01a" + b"\x80" * 11, MalformedFrame),
        (
            lambda: LengthPrefixed(2, check=reject_x, check_size=3),
            b"\x00\x01a\x00\x01x",
            MalformedFrame,
        ),
        (
            lambda: StructPrefixed(Struct("kind" / Int8ub, "length" / Int16ub), max_size=4),
            b"\x07\x00\x01a\x07\x00\x09",
            FrameTooLarge,
        ),
        (
            lambda: StructPrefixed(Struct("length" / Int16ub), check=reject_x, check_size=3),
            b"\x00\x01a\x00\x01x",
            MalformedFrame,
        ),
        (lambda: Delimited(b"\n", max_size=3), b"a\nabcdef", FrameTooLarge),
        (lambda: Delimited(b"\n", check=reject_x, check_size=1), b"a\nx\n", MalformedFrame),
        (lambda: Lines(strict=True), b"a\r\nb\n", MalformedFrame),
        (lambda: Netstring(max_size=5), b"1:a,9:", FrameTooLarge),
        (Netstring, b"1:a,01:", MalformedFrame),
        (Netstring, b"1:a,1:bX", MalformedFrame),
    ]


@pytest.mark.parametrize(("make", "stream", "error"), _bad_after_good())
def test_error_names_framer_and_keeps_earlier_messages(
    make: Callable[[], Any], stream: bytes, error: type[Exception]
) -> None:
    framer = make()
    name = repr(framer)
    with pytest.raises(error) as info:
        framer.feed(stream)
    exc = info.value
    assert isinstance(exc, FramingError)
    assert exc.framer == name
    assert str(exc).startswith(name + ": ")
    assert len(exc.messages) == 1
    if isinstance(exc, FrameTooLarge):
        assert exc.size > exc.limit == framer.max_size


def test_error_on_a_later_feed_has_no_earlier_messages() -> None:
    framer = LengthPrefixed(2, max_size=4)
    assert framer.feed(b"\x00\x01a") == [b"a"]
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"\x00\x09")
    assert info.value.messages == []


# --- Raw ---------------------------------------------------------------------------


def test_raw_accepts_max_size_one_and_refuses_zero() -> None:
    assert Raw(max_size=1).feed(b"ab") == [b"a", b"b"]
    with pytest.raises(ValueError, match="max_size must be at least 1, not 0"):
        Raw(max_size=0)


def test_raw_repr() -> None:
    assert repr(Raw()) == "Raw()"
    assert repr(Raw(max_size=3)) == "Raw(max_size=3)"


def test_raw_counts_and_hands_over_held_chunks() -> None:
    framer = Raw(max_size=10)
    assert framer.feed(b"ab", limit=0) == []
    assert framer.feed(b"cde", limit=0) == []
    assert framer.buffered == 5
    assert framer.detach() == b"abcde"
    assert framer.buffered == 0


# --- Netstring ---------------------------------------------------------------------


def test_netstring_after_detach_reads_a_fresh_stream() -> None:
    framer = Netstring()
    assert framer.feed(b"12:hello") == []
    assert framer.detach() == b"12:hello"
    assert framer.feed(b"2:hi,") == [b"hi"]
    assert framer.feed(b"0:,") == [b""]


# --- Lines and Delimited -----------------------------------------------------------


def test_lines_clone_keeps_ending_and_check() -> None:
    def no_q(head: bytes) -> str | None:
        return "q" if head.startswith(b"q") else None

    twin = Lines(line_ending=b"\r\n", check=no_q, check_size=1).clone()
    assert twin.encode(b"a") == b"a\r\n"
    with pytest.raises(MalformedFrame):
        twin.feed(b"quit\n")
    assert repr(twin) == repr(Lines(line_ending=b"\r\n", check=no_q, check_size=1))


def test_delimited_repr_names_a_check_without_qualname() -> None:
    bound = functools.partial(lambda head: None)
    assert repr(bound) in repr(Delimited(b"\n", check=bound, check_size=1))


# --- error texts, pinned: the log line alone must tell what the peer did -----------


@pytest.mark.parametrize(
    ("stream", "error", "text"),
    [
        (b"123", FrameTooLarge, "length field 12... is already over the limit of 5 bytes"),
        (b"6:hello!,", FrameTooLarge, "length field 6... is already over the limit of 5 bytes"),
        (b"01:", MalformedFrame, "length field has a leading zero"),
        (b":", MalformedFrame, "empty length before ':'"),
        (b"1:ab", MalformedFrame, "expected ',' after the 1-byte payload, got b'b'"),
    ],
)
def test_netstring_error_texts(stream: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        Netstring(max_size=5).feed(stream)
    assert str(info.value) == f"Netstring(max_size=5): {text}"


def test_netstring_accepts_exactly_max_size() -> None:
    assert Netstring(max_size=5).feed(b"5:hello,") == [b"hello"]
    assert Netstring(max_size=10).feed(b"10:helloworld,") == [b"helloworld"]


@pytest.mark.parametrize(
    ("framer", "message", "error", "text"),
    [
        (Netstring(max_size=5), b"toolong", FrameTooLarge, "over the limit of 5 bytes"),
        (FixedSize(3), b"ab", MalformedFrame, "2 bytes: records are 3"),
        (FixedSize(3), b"abcd", FrameTooLarge, "4 bytes: records are 3"),
        (Delimited(b"\n", max_size=2), b"abc", FrameTooLarge, "over the limit of 2 bytes"),
    ],
)
def test_encode_error_texts(framer: Any, message: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        framer.encode(message)
    prefix = f"{framer!r}: cannot encode a message of "
    rest = text if text[0].isdigit() else f"{len(message)} bytes: {text}"
    assert str(info.value) == prefix + rest
    assert info.value.framer == repr(framer)  # type: ignore[attr-defined]


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
            lambda: Delimited(b"\n", encode_delimiter=b"x"),
            "encode_delimiter b'x' is not one of the delimiters (b'\\n',)",
        ),
        (
            lambda: Lines(strict=True, line_ending=b"\n"),
            "strict Lines end every line with \\r\\n: line_ending must be too",
        ),
    ],
)
def test_delimited_settings_errors(make: Any, text: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert str(info.value) == text


@pytest.mark.parametrize(
    ("make", "stream", "held", "expected", "partial"),
    [
        (lambda: FixedSize(3), b"abcde", 2, 3, b"de"),
        (Netstring, b"1:a,3:b", 3, 6, b"3:b"),
        (Delimited, b"a\nbc", 2, None, b"bc"),
        (Lines, b"a\r\nb\r", 2, None, b"b\r"),
        (lambda: LengthPrefixed(2), b"\x00\x01a\x00\x05ab", 4, 7, b"\x00\x05ab"),
    ],
)
def test_incomplete_at_eof_carries_held_bytes_and_messages(
    make: Callable[[], Any], stream: bytes, held: int, expected: int | None, partial: bytes
) -> None:
    framer = make()
    # feed(limit=0) parses nothing: feed_eof finds the whole message and the tail.
    assert framer.feed(stream, limit=0) == []
    with pytest.raises(IncompleteFrame) as info:
        framer.feed_eof()
    exc = info.value
    assert (exc.framer, exc.held, exc.expected, exc.partial) == (
        repr(framer),
        held,
        expected,
        partial,
    )
    assert len(exc.messages) == 1


def test_fixed_size_keeps_the_tail_of_a_large_chunk() -> None:
    framer = FixedSize(3)
    assert framer.feed(b"abcdefgh") == [b"abc", b"def"]
    assert framer.buffered == 2
    assert framer.feed(bytearray(b"i")) == [b"ghi"]


def test_delimited_earliest_end_wins_over_a_longer_later_match() -> None:
    # "a" ends at 2, "abc" at 4: the earlier wins, leaving "bc" for the next record.
    got = feed_chunks(Delimited((b"a", b"abc"), on_eof="deliver"), [b"xabcqa"])
    assert got == [b"x", b"bcq"]


def test_delimited_clone_keeps_encode_delimiter() -> None:
    framer = Delimited((b"\n", b"\r\n"), encode_delimiter=b"\r\n").clone()
    assert framer.encode(b"a") == b"a\r\n"


def test_netstring_encode_error_carries_size_and_limit() -> None:
    with pytest.raises(FrameTooLarge) as info:
        Netstring(max_size=5).encode(b"toolong")
    assert (info.value.size, info.value.limit) == (7, 5)


def test_netstring_empty_length_keeps_earlier_messages() -> None:
    with pytest.raises(MalformedFrame) as info:
        Netstring().feed(b"1:a,:")
    assert info.value.messages == [b"a"]
