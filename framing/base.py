r"""The `Framer` protocol that every framer meets, and the types framers share.

A framer is a small synchronous object that does no I/O. It is fed chunks of a
byte stream, cut however the network cut them, and hands back whole messages::

    framer = LengthPrefixed(2)
    framer.feed(b"\x00\x05he")          # -> []            (4 bytes buffered)
    framer.feed(b"llo\x00\x01!")        # -> [b"hello", b"!"]
    framer.feed_eof()                 # -> []            (nothing held)
    framer.encode(b"hi")              # -> b"\x00\x02hi"

Switching framing mid-stream (a header in lines, then a length-prefixed body)
uses ``limit`` and ``detach``: ``feed(data, limit=1)`` returns at most one message
and parses no further, so every byte after it is still unparsed; ``detach()``
hands those bytes over for the next framer to ``feed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, TypeVar, runtime_checkable

from framing.errors import MessageTypeError

__all__ = ["BytesLike", "EarlyCheck", "EofPolicy", "Framer", "OversizePolicy", "message_bytes"]

T = TypeVar("T")

#: What ``feed`` accepts: any contiguous bytes-like object.
BytesLike = bytes | bytearray | memoryview

#: An early check: called with the first ``check_size`` bytes of a frame as they
#: are on the wire (header included), or with the whole frame when it is shorter,
#: as soon as those bytes have arrived and before the rest is waited for. It
#: returns ``None`` to accept the frame, or a reason (a short phrase) to reject
#: it, which the framer raises as :class:`~framing.MalformedFrame`.
EarlyCheck = Callable[[bytes], str | None]

#: What a framer does with a message over ``max_size``: ``"raise"``
#: :class:`~framing.FrameTooLarge` (the default), or ``"skip"`` exactly that
#: message and carry on, counting it in ``skipped_frames`` and ``skipped_bytes``.
OversizePolicy = Literal["raise", "skip"]

#: What a delimited framer does when the stream ends inside a record:
#: ``"raise"`` :class:`~framing.IncompleteFrame` (the default), or ``"deliver"``
#: the unterminated last record as a message.
EofPolicy = Literal["raise", "deliver"]


@runtime_checkable
class Framer(Protocol[T]):
    """Turns chunks of a byte stream into messages of type ``T``, and back.

    The contract every framer keeps:

    - Whatever bytes it is fed, it returns messages or raises a
      :class:`~framing.FramingError`; the messages are exactly those encoded,
      however the stream was split into chunks.
    - It never holds much more than ``max_size`` bytes (plus a header), whatever a
      peer sends: a message known to be too large raises
      :class:`~framing.FrameTooLarge` before its bytes are held.
    - After it raises a :class:`~framing.FramingError`, the stream cannot be
      trusted: discard the framer with its connection. ``encode`` never raises
      one: a message it cannot carry is an :class:`~framing.EncodeError`, and
      the framer is still usable.
    """

    @property
    def max_size(self) -> int:
        """The largest message payload accepted, in bytes (headers and delimiters excluded)."""
        ...

    @property
    def buffered(self) -> int:
        """How many bytes are held, waiting to become messages."""
        ...

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[T]:
        """Append a chunk and return every message it completes, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many messages and parse no further, so the
                bytes after the last one returned stay unparsed (see ``detach``).

        Returns:
            The completed messages; ``[]`` when more bytes are needed.

        Raises:
            FramingError: the stream broke the framing. ``exc.messages`` holds the
                messages completed by this call before the fault.
        """
        ...

    def feed_eof(self) -> list[T]:
        """Say the stream has ended; return any last messages.

        Raises:
            IncompleteFrame: bytes are held that do not make a whole message.
        """
        ...

    def encode(self, message: T) -> bytes:
        """Return the bytes that carry ``message`` on the wire.

        Raises:
            MessageTooLarge: the message is over ``max_size`` or more than the
                framing can express (an :class:`~framing.EncodeError`).
            MessageTypeError: the message is not bytes (a ``str``...): an
                :class:`~framing.EncodeError` that is also a :class:`TypeError`,
                naming the framer.
            EncodeError: any other message this framing cannot carry: one that
                contains the delimiter, one of the wrong size. It is the
                caller's fault, a :class:`ValueError`, never a
                :class:`~framing.FramingError`; nothing is written.
        """
        ...

    def detach(self) -> bytes:
        """Remove and return every byte held that no message has consumed yet.

        The framer is left empty. Feed the result to another framer to switch
        framing mid-stream without losing a byte.
        """
        ...

    def clone(self) -> Framer[T]:
        """Return a new, empty framer with the same settings (a server's template)."""
        ...


def message_bytes(framer: object, message: object) -> bytes:
    """Return ``message`` (any bytes-like object) as ``bytes``, for ``encode``.

    Raises:
        MessageTypeError: ``message`` is not bytes-like (a ``str``, an
            ``int``...), naming ``framer``; an ``EncodeError`` and a
            ``TypeError``. ``bytes(message)`` would raise a bare ``TypeError``
            ("string argument without an encoding"), or for an ``int`` quietly
            make that many zero bytes.
    """
    if type(message) is bytes:
        return message
    try:
        with memoryview(message) as view:  # type: ignore[arg-type]
            return view.tobytes()
    except TypeError:
        raise MessageTypeError(repr(framer), type(message).__name__) from None
