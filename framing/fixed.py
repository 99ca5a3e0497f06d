"""Fixed-size framing: every message is exactly ``size`` bytes; nothing else on the wire.

::

    FixedSize(4)
    wire:      | abcdef | gh | ijkl |
    messages:  b"abcd", b"efgh", b"ijkl"

Records of one size are common in binary protocols (a 48-byte NTP packet, the
8-byte SOCKS4 reply, 512-byte disk blocks). As the size never varies there is
no header to check: the only faults are a stream that ends inside a record
(:class:`~framing.IncompleteFrame`) and, on ``encode``, a message of another size.
"""

from __future__ import annotations

from typing import final

from framing.base import BytesLike, message_bytes
from framing.errors import EncodeError, IncompleteFrame, MessageTooLarge

__all__ = ["FixedSize"]


@final
class FixedSize:
    """Each message is exactly ``size`` bytes.

    Args:
        size: the size of every message, in bytes (at least 1); also ``max_size``.

    Raises:
        ValueError: ``size`` is less than 1.

    ``encode`` refuses a message of any other length: :class:`~framing.MessageTooLarge`
    when it is longer, :class:`~framing.EncodeError` when it is shorter (padding
    it would change the message; a short message is a caller's mistake that this
    framing cannot carry). Both are the caller's fault (an ``EncodeError``), never
    a :class:`~framing.FramingError`.
    """

    __slots__ = ("_buf", "_size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self._size = size
        # Less than one record between calls (unless a limit held more back).
        self._buf = bytearray()

    def __repr__(self) -> str:
        return f"FixedSize({self._size})"

    @property
    def size(self) -> int:
        """The size of every message, in bytes."""
        return self._size

    @property
    def max_size(self) -> int:
        """The size of every message (the largest, and the smallest)."""
        return self._size

    @property
    def buffered(self) -> int:
        """Bytes held: less than ``size`` unless a ``limit`` held records back."""
        return len(self._buf)

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        """Append a chunk and return every whole record, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many records and parse no further.

        Returns:
            The completed records; ``[]`` when more bytes are needed.
        """
        size = self._size
        buf = self._buf
        if not buf and limit is None and type(data) is bytes:
            # The hot path: slice the chunk itself, hold only the remainder.
            whole = len(data) - len(data) % size
            if whole:
                buf += data[whole:]
                return [data[i : i + size] for i in range(0, whole, size)]
        buf += data
        count = len(buf) // size
        if limit is not None:
            count = min(count, limit)
        whole = count * size
        with memoryview(buf) as view:
            out = [bytes(view[i : i + size]) for i in range(0, whole, size)]
        del buf[:whole]
        return out

    def feed_eof(self) -> list[bytes]:
        """Say the stream has ended; return records held back by a ``limit``.

        Raises:
            IncompleteFrame: the stream ended inside a record (``exc.held`` bytes
                of ``exc.expected == size``; ``exc.partial`` holds them).
        """
        out = self.feed()
        if self._buf:
            held = self.detach()
            raise IncompleteFrame(
                repr(self), len(held), expected=self._size, partial=held, messages=out
            )
        return out

    def encode(self, message: BytesLike) -> bytes:
        """Return the message itself, which must be exactly ``size`` bytes.

        Raises:
            MessageTooLarge: the message is longer than ``size``.
            EncodeError: the message is shorter than ``size``, or not bytes-like.
        """
        msg = message_bytes(self, message)
        if len(msg) != self._size:
            detail = f"cannot encode a message of {len(msg)} bytes: records are {self._size}"
            if len(msg) > self._size:
                raise MessageTooLarge(repr(self), len(msg), self._size, detail=detail)
            raise EncodeError(repr(self), detail)
        return msg

    def detach(self) -> bytes:
        """Remove and return every byte held."""
        held = bytes(self._buf)
        self._buf.clear()
        return held

    def clone(self) -> FixedSize:
        """Return a new, empty framer of the same size."""
        return FixedSize(self._size)
