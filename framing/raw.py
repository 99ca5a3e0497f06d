"""Raw passthrough: every chunk of the stream is a message.

There is no framing on the wire at all; a message is whatever one read of the
socket returned, so its boundaries mean nothing to the peer. This is the echo
service's framing: bytes go back as they came.

::

    wire:      | hello wor | ld |
    messages:  b"hello wor", b"ld"
"""

from __future__ import annotations

from collections import deque
from typing import final

from framing.base import BytesLike, message_bytes

__all__ = ["Raw"]

# A chunk larger than this is handed over in pieces, so that a message from
# Raw is never larger than a message from any other framer with the default
# limit. 64 KiB is also what a socket read returns at most here.
DEFAULT_MAX_SIZE = 65536


@final
class Raw:
    """Each non-empty chunk fed is one message; ``encode`` is the identity.

    Args:
        max_size: the largest message delivered; a larger chunk is delivered as
            several messages of at most this size, in order. Encoding has no limit.
    """

    __slots__ = ("_max_size", "_pending", "_pending_bytes")

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self._max_size = max_size
        # Chunks not yet returned: only ever non-empty when a caller passed a limit.
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0

    def __repr__(self) -> str:
        if self._max_size == DEFAULT_MAX_SIZE:
            return "Raw()"
        return f"Raw(max_size={self._max_size})"

    @property
    def max_size(self) -> int:
        """The largest message delivered."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned (only when ``feed`` was given a limit)."""
        return self._pending_bytes

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        """Return the chunk as a message (split at ``max_size``); nothing for an empty chunk."""
        size = self._max_size
        if not self._pending and limit is None:
            # The hot path: nothing held back, no limit.
            if len(data) <= size:
                return [bytes(data)] if data else []
            view = memoryview(data)
            return [bytes(view[i : i + size]) for i in range(0, len(view), size)]
        if data:
            view = memoryview(data)
            for i in range(0, len(view), size):
                self._pending.append(bytes(view[i : i + size]))
            self._pending_bytes += len(view)
        count = len(self._pending) if limit is None else min(limit, len(self._pending))
        out = [self._pending.popleft() for _ in range(count)]
        self._pending_bytes -= sum(map(len, out))
        return out

    def feed_eof(self) -> list[bytes]:
        """Return whatever a limited ``feed`` held back; raw framing cannot be incomplete."""
        return self.feed()

    def encode(self, message: BytesLike) -> bytes:
        """Return the message itself, of any size.

        Raises:
            EncodeError: ``message`` is not bytes-like (a ``str``, say).
        """
        return message_bytes(self, message)

    def detach(self) -> bytes:
        """Remove and return the chunks held back by a limited ``feed``."""
        held = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return held

    def clone(self) -> Raw:
        """Return a new, empty ``Raw`` with the same ``max_size``."""
        return Raw(max_size=self._max_size)
