"""The error tree's promises, across every framer: whose fault, which framer, the numbers.

:mod:`framing.errors` draws the tree. Each framer's own faults are tested in its
own file; these are the promises every framer keeps alike: an error from
``feed`` names its framer and carries the messages completed before it, one
from ``encode`` is an :class:`~framing.EncodeError` (never a
:class:`~framing.FramingError`) with the sizes in its text, and an end of
stream inside a frame says how much was held. Many were found by mutation
testing (docs/ROBUSTNESS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from construct import Int8ub, Int16ub, Struct

import framing
from framing.base import BytesLike
from framing.delimited import Delimited, Lines
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    FramingError,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
    MessageTypeError,
)
from framing.fixed import FixedSize
from framing.length import Frame, LengthPrefixed, StructPrefixed
from framing.netstring import Netstring
from framing.raw import Raw


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
def test_feed_error_names_framer_and_keeps_earlier_messages(
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


@pytest.mark.parametrize(
    ("framer", "message", "error", "text"),
    [
        (Netstring(max_size=5), b"toolong", MessageTooLarge, "over the limit of 5 bytes"),
        (FixedSize(3), b"ab", EncodeError, "2 bytes: records are 3"),
        (FixedSize(3), b"abcd", MessageTooLarge, "4 bytes: records are 3"),
        (Delimited(b"\n", max_size=2), b"abc", MessageTooLarge, "the limit is 2 bytes"),
    ],
)
def test_encode_error_names_framer_and_numbers(
    framer: Any, message: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        framer.encode(message)
    assert type(info.value) is error
    assert not isinstance(info.value, FramingError)  # the caller's fault, not the peer's
    prefix = f"{framer!r}: cannot encode a message of "
    rest = text if text[0].isdigit() else f"{len(message)} bytes: {text}"
    assert str(info.value) == prefix + rest
    assert info.value.framer == repr(framer)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "framer",
    [
        Raw(),
        LengthPrefixed(2),
        LengthPrefixed("varint"),
        LengthPrefixed(2, length_offset=1, strip=0),
        StructPrefixed(Struct("length" / Int16ub)),
        Delimited(b"\n"),
        Lines(),
        Netstring(),
        FixedSize(5),
    ],
    ids=repr,
)
@pytest.mark.parametrize("message", ["hello", 5, None, [1, 2]], ids=lambda m: type(m).__name__)
def test_encode_of_a_non_bytes_message_is_a_type_error_naming_the_framer(
    framer: Any, message: object
) -> None:
    """Issue 12: a ``str`` is told it should be bytes, by the framer that refused it."""
    if isinstance(framer, StructPrefixed):
        message = Frame({}, message)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        framer.encode(message)
    exc = info.value
    assert isinstance(exc, MessageTypeError)
    assert isinstance(exc, EncodeError)  # the caller's fault, as every encode error
    assert not isinstance(exc, FramingError)
    kind = type(message if not isinstance(message, Frame) else message.payload).__name__
    assert str(exc) == f"{framer!r}: expects bytes, not {kind}"
    assert (exc.framer, exc.kind) == (repr(framer), kind)


def test_struct_prefixed_encode_of_a_non_frame_is_a_type_error() -> None:
    framer = StructPrefixed(Struct("length" / Int16ub))
    with pytest.raises(MessageTypeError, match=r": expects a Frame, not bytes$"):
        framer.encode(b"payload")  # type: ignore[arg-type]


def test_public_names_include_bytes_like_and_the_new_errors() -> None:
    """``BytesLike`` (for writing a framer) and the errors are importable from ``framing``."""
    for name in ("BytesLike", "MessageTypeError", "PlaintextInjection", "TLSHandshakeFailed"):
        assert name in framing.__all__
    assert framing.BytesLike is BytesLike
    assert framing.MessageTypeError is MessageTypeError


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
def test_feed_eof_mid_frame_raises_incomplete_with_held_bytes_and_messages(
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
