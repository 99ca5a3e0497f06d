"""Netstrings (D. J. Bernstein, 1997): a decimal length, a colon, the bytes, a comma.

::

    Netstring()
    wire:      | 5:hello, | 0:, | 12:hello world!, |
    messages:  b"hello", b"", b"hello world!"

    +--------+---+---------------+---+
    | 12     | : | hello world!  | , |
    +--------+---+---------------+---+
      length       12 bytes

The length is ASCII decimal with no sign, no spaces and no leading zeros (djb:
"``0:``" is the only length that starts with ``0``). Anything else is a
:class:`~framing.MalformedFrame`, found at the first byte that cannot fit: a
non-digit in the length, an empty length (``:`` first), a leading zero, a byte
other than ``,`` after the payload. A length over ``max_size`` is a
:class:`~framing.FrameTooLarge` as soon as its digits prove it, so a peer cannot
make the framer read endless digits: at most ``len(str(max_size)) + 1`` bytes of
a header are ever looked at.
"""

from __future__ import annotations

from typing import Final, final

from framing.base import BytesLike, message_bytes
from framing.errors import FrameTooLarge, IncompleteFrame, MalformedFrame, MessageTooLarge

__all__ = ["Netstring"]

# 64 KiB, as Delimited's and Raw's defaults: netstrings carry requests and
# headers (QMQP, SCGI), and a peer can make a server hold up to this much per
# connection before a frame is complete.
DEFAULT_MAX_SIZE: Final = 65536

_COLON: Final = 0x3A
_COMMA: Final = 0x2C
_ZERO: Final = 0x30


@final
class Netstring:
    """Frames each message as ``<length>:<bytes>,`` (djb's netstrings).

    Args:
        max_size: the largest payload accepted, in bytes; a length over it raises
            :class:`~framing.FrameTooLarge` as soon as enough digits have arrived
            to prove it. 64 KiB by default.

    Raises:
        ValueError: ``max_size`` is negative.
    """

    __slots__ = ("_buf", "_digits", "_head", "_max_size", "_need")

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be at least 0, not {max_size}")
        self._max_size = max_size
        # The longest valid length field: a header with more digits than this,
        # and no leading zero, is over max_size.
        self._digits = len(str(max_size))
        # The frame being received, from its first header byte. The header is
        # parsed once and remembered (_head, _need) while the payload arrives;
        # it stays in _buf so that detach() returns the frame whole.
        self._buf = bytearray()
        self._head = 0  # bytes of "<length>:" once parsed, else 0
        self._need = 0  # the payload length announced, once parsed

    def __repr__(self) -> str:
        if self._max_size == DEFAULT_MAX_SIZE:
            return "Netstring()"
        return f"Netstring(max_size={self._max_size})"

    @property
    def max_size(self) -> int:
        """The largest payload accepted, in bytes (length, colon and comma excluded)."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes held: the frame being received, header included."""
        return len(self._buf)

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        """Append a chunk and return every netstring it completes, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many messages and parse no further.

        Returns:
            The payloads completed; ``[]`` when more bytes are needed.

        Raises:
            MalformedFrame: a bad length field or a missing comma.
            FrameTooLarge: a length over ``max_size``.
        """
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while limit is None or len(out) < limit:
            if not self._head:
                # Only the first _digits + 1 bytes can hold the colon of a valid
                # header; looking no further bounds the work on endless digits.
                colon = buf.find(b":", pos, pos + self._digits + 1)
                if colon < 0:
                    # Judge the digits so far: an error shows as soon as it arrives.
                    self._judge_length(bytes(buf[pos : pos + self._digits + 1]), out)
                    break
                digits = bytes(buf[pos:colon])
                if not digits.isdigit() or (digits[0] == _ZERO and len(digits) > 1):
                    self._judge_length(digits, out)
                if not digits:
                    raise MalformedFrame(repr(self), "empty length before ':'", messages=out)
                need = int(digits)
                if need > self._max_size:
                    self._judge_length(digits, out)
                self._head = colon + 1 - pos
                self._need = need
            stop = pos + self._head + self._need  # where the comma must be
            if stop >= end:
                break
            if buf[stop] != _COMMA:
                raise MalformedFrame(
                    repr(self),
                    f"expected ',' after the {self._need}-byte payload, got {bytes([buf[stop]])!r}",
                    messages=out,
                )
            out.append(bytes(buf[pos + self._head : stop]))
            pos = stop + 1
            self._head = 0
        if pos:
            del buf[:pos]
        return out

    def _judge_length(self, digits: bytes, out: list[bytes]) -> None:
        """Raise for the first byte of a length field that cannot be valid, if any.

        Byte by byte, in the order they arrive, so the error does not depend on
        how the stream was split.
        """
        value = 0
        for i, byte in enumerate(digits):
            if not _ZERO <= byte <= _ZERO + 9:
                raise MalformedFrame(
                    repr(self),
                    f"byte {bytes([byte])!r} at offset {i} of a length field is not a digit",
                    messages=out,
                )
            if i == 1 and digits[0] == _ZERO:
                raise MalformedFrame(repr(self), "length field has a leading zero", messages=out)
            value = value * 10 + byte - _ZERO
            if value > self._max_size:
                raise FrameTooLarge(
                    repr(self),
                    value,
                    self._max_size,
                    detail=(
                        f"length field {digits[: i + 1].decode()}... is already over "
                        f"the limit of {self._max_size} bytes"
                    ),
                    messages=out,
                )

    def feed_eof(self) -> list[bytes]:
        """Say the stream has ended; return netstrings held back by a ``limit``.

        Raises:
            IncompleteFrame: the stream ended inside a netstring (``exc.expected``
                is the whole frame's size once its length field was read).
        """
        out = self.feed()
        if self._buf:
            expected = self._head + self._need + 1 if self._head else None
            held = self.detach()
            raise IncompleteFrame(
                repr(self), len(held), expected=expected, partial=held, messages=out
            )
        return out

    def encode(self, message: BytesLike) -> bytes:
        """Return ``b"<len>:" + message + b","``.

        Raises:
            MessageTooLarge: the message is over ``max_size``.
            EncodeError: ``message`` is not bytes-like (a ``str``, say).
        """
        msg = message_bytes(self, message)
        if len(msg) > self._max_size:
            raise MessageTooLarge(
                repr(self),
                len(msg),
                self._max_size,
                detail=(
                    f"cannot encode a message of {len(msg)} bytes: "
                    f"over the limit of {self._max_size} bytes"
                ),
            )
        return b"%d:%b," % (len(msg), msg)

    def detach(self) -> bytes:
        """Remove and return every byte held (a partial netstring, header included)."""
        held = bytes(self._buf)
        self._buf.clear()
        self._head = 0
        self._need = 0
        return held

    def clone(self) -> Netstring:
        """Return a new, empty framer with the same ``max_size``."""
        return Netstring(max_size=self._max_size)
