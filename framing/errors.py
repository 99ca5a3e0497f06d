"""The errors a framer raises, all under one base class.

::

    FramingError                 the peer broke the framing; end that connection
     +-- FrameTooLarge           a message over max_size (or over what a header can carry)
     +-- IncompleteFrame         the stream ended inside a message
     +-- MalformedFrame          bytes that cannot be a valid header or delimiter

The promise, as h11 makes it for HTTP: whatever bytes a framer is fed, it either
returns messages or raises a :class:`FramingError`. Any other exception is a bug.

Every error names the framer (its ``repr``) and the numbers, so that a log line
alone tells what the peer did wrong. An error raised by ``feed`` also carries, in
:attr:`FramingError.messages`, the messages that the same call completed before
the fault, so nothing a peer sent correctly is lost.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FrameTooLarge", "FramingError", "IncompleteFrame", "MalformedFrame"]


class FramingError(Exception):
    """Base class: the byte stream does not follow the framing.

    Attributes:
        framer: ``repr`` of the framer that raised, such as ``"LengthPrefixed(width=2)"``.
        messages: the messages completed by the same ``feed`` call before the fault,
            in order; deliver them before acting on the error.
    """

    def __init__(self, framer: str, detail: str, *, messages: list[Any] | None = None) -> None:
        super().__init__(f"{framer}: {detail}")
        self.framer = framer
        self.detail = detail
        self.messages: list[Any] = messages if messages is not None else []


class FrameTooLarge(FramingError):
    """A message is larger than the framer's limit.

    Raised by ``feed`` as soon as the size is known to be too large (from a header,
    or from bytes arriving without a delimiter), before the bytes are held; raised
    by ``encode`` for a message the header cannot express or over ``max_size``.

    Attributes:
        size: the size announced or seen so far, in payload bytes (at least this many).
        limit: the largest size allowed.
    """

    def __init__(
        self,
        framer: str,
        size: int,
        limit: int,
        *,
        detail: str | None = None,
        messages: list[Any] | None = None,
    ) -> None:
        text = detail or f"frame of {size} bytes is over the limit of {limit} bytes"
        super().__init__(framer, text, messages=messages)
        self.size = size
        self.limit = limit


class IncompleteFrame(FramingError):
    """The stream ended inside a message.

    Attributes:
        held: how many bytes of the unfinished message were held.
        expected: the whole frame's size on the wire when a header announced it,
            else ``None``.
        partial: the bytes held, for a caller that wants the unterminated record.
    """

    def __init__(
        self,
        framer: str,
        held: int,
        *,
        expected: int | None = None,
        partial: bytes = b"",
        messages: list[Any] | None = None,
    ) -> None:
        if expected is None:
            text = f"stream ended with {held} bytes of an unfinished message held"
        else:
            text = f"stream ended {held} bytes into a {expected}-byte frame"
        super().__init__(framer, text, messages=messages)
        self.held = held
        self.expected = expected
        self.partial = partial


class MalformedFrame(FramingError):
    """Bytes that cannot be a valid frame: a bad header, a missing trailer.

    Attributes:
        reason: what was wrong, in words.
    """

    def __init__(self, framer: str, reason: str, *, messages: list[Any] | None = None) -> None:
        super().__init__(framer, reason, messages=messages)
        self.reason = reason
