"""Every error the package raises on purpose, in one tree, sorted by whose fault it is.

::

    Exception
     +-- FramingError                the PEER broke the framing: end that connection
     |    +-- FrameTooLarge          a message over max_size (or over what a header can carry)
     |    +-- IncompleteFrame        the stream ended inside a message
     |    +-- MalformedFrame         bytes that cannot be a valid header or delimiter
     |    |    +-- ProxyHeaderError  a missing, malformed or unknown PROXY protocol header
     |    |    +-- PlaintextInjection  bytes held after a STARTTLS request (start_tls refuses)
     |    +-- BufferBudgetExceeded   the connections sharing a BufferBudget hold too much
     |    +-- TLSHandshakeFailed     start_tls's handshake failed or timed out
     +-- RequestFailed               a Requester call can get no reply: its stream ended or broke
     |    +-- UnexpectedReply        the PEER sent a reply that matches no call in flight
     +-- TimeoutError (builtin)
     |    +-- ReceiveTimeout         the PEER was too slow; the stream is still usable
     |    |    +-- IdleTimeout       no byte arrived within idle_timeout
     |    |    +-- MessageTimeout    a begun message was not finished within message_timeout
     |    +-- RequestTimeout         a Requester call got no reply within its timeout
     +-- ValueError (builtin)
          +-- EncodeError            the CALLER asked for something that cannot be framed
               +-- MessageTooLarge   a message over max_size, or more than the header can express
               +-- MessageTypeError  not bytes (a str...); a TypeError too

The split is h11's (``RemoteProtocolError`` against ``LocalProtocolError``):

- **The peer's faults** come from ``feed`` and from receiving. A server logs
  each as one INFO line, closes that connection and serves everyone else. The
  promise, as h11 makes it for HTTP: whatever bytes a framer is fed, it either
  returns messages or raises a :class:`FramingError`. Any other exception from
  ``feed`` is a bug.
- **The caller's faults** come from ``encode`` and from sending: a message over
  ``max_size``, one that contains the delimiter, one of the wrong size, a
  ``str`` where bytes were due. Nothing is written. Inside a server's handler
  that is a bug in the handler, so a server logs it at ERROR with its
  traceback and counts it apart from the peers' errors.

Every error names the framer (its ``repr``) and the numbers, so that a log line
alone tells what happened. The client side's errors (:class:`RequestFailed`,
:class:`RequestTimeout`) stand apart from the server side's peer faults on
purpose: a server's handler that calls an upstream and fails must not be
logged as its own client's fault. An error raised by ``feed`` also carries, in
:attr:`FramingError.messages`, the messages that the same call completed before
the fault, so nothing a peer sent correctly is lost.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BufferBudgetExceeded",
    "EncodeError",
    "FrameTooLarge",
    "FramingError",
    "IdleTimeout",
    "IncompleteFrame",
    "MalformedFrame",
    "MessageTimeout",
    "MessageTooLarge",
    "MessageTypeError",
    "PlaintextInjection",
    "ProxyHeaderError",
    "ReceiveTimeout",
    "RequestFailed",
    "RequestTimeout",
    "TLSHandshakeFailed",
    "UnexpectedReply",
]


class FramingError(Exception):
    """Base class of the peer's faults: the byte stream does not follow the framing.

    Attributes:
        framer: ``repr`` of the framer that raised, such as ``"LengthPrefixed(width=2)"``.
        detail: what was wrong, with the numbers.
        messages: the messages completed by the same ``feed`` call before the fault,
            in order; deliver them before acting on the error.
    """

    def __init__(self, framer: str, detail: str, *, messages: list[Any] | None = None) -> None:
        super().__init__(f"{framer}: {detail}")
        self.framer = framer
        self.detail = detail
        self.messages: list[Any] = messages if messages is not None else []


class FrameTooLarge(FramingError):
    """The peer announced or sent a message larger than the framer's limit.

    Raised by ``feed`` as soon as the size is known to be too large (from a header,
    or from bytes arriving without a delimiter), before the bytes are held.

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


class ProxyHeaderError(MalformedFrame):
    """A trusted proxy's PROXY protocol header is missing, malformed, unknown or too long.

    Raised by :class:`~framing.proxy.ProxyHeaderParser` (and so by a server
    whose ``proxy_protocol`` trusts the peer): a wrong signature, an unknown
    version, command, family or protocol, a version 1 line that is not
    canonical or has no CRLF within 107 bytes, a version 2 TLV whose length
    runs past the header, a bad checksum, or the stream ending inside the
    header. ``reason`` says which, with the numbers.
    """


class PlaintextInjection(MalformedFrame):
    """Bytes arrived after the request to start TLS and before the handshake (STARTTLS).

    Raised by :meth:`FramedStream.start_tls <framing.FramedStream.start_tls>`,
    which closes the connection instead of upgrading it. Those bytes were sent
    in plaintext, yet once the stream is under TLS they would be read as if
    they had come under it: the command injection of CVE-2011-0411 (Postfix)
    and CVE-2021-33515 (Dovecot). A client that sends ``STARTTLS`` and ``RSET``
    in one write is such a peer.

    Attributes:
        held: bytes held after the request (by the framer and the transport).
        messages_held: messages already parsed from them and not yet delivered.
    """

    def __init__(self, framer: str, held: int, messages_held: int = 0) -> None:
        detail = f"plaintext injection: {held} bytes received after the request to start TLS"
        if messages_held:
            detail += f" ({messages_held} messages parsed from them)"
        super().__init__(framer, detail + ", before the handshake; not upgrading")
        self.held = held
        self.messages_held = messages_held


class TLSHandshakeFailed(FramingError):
    """The TLS handshake of :meth:`FramedStream.start_tls <framing.FramedStream.start_tls>` failed.

    The peer sent something that is not TLS, refused our certificate (or we
    its), ended the connection, or did not finish within the handshake
    timeout. The connection is closed; the original error is the cause
    (``__cause__``), and serve counts it as ``"TLSHandshakeFailed"``, as it
    counts its own handshakes that fail.

    Attributes:
        reason: what failed, in words.
    """

    def __init__(self, framer: str, reason: str) -> None:
        super().__init__(framer, f"TLS handshake failed: {reason}")
        self.reason = reason


class BufferBudgetExceeded(FramingError):
    """Holding more bytes would take a shared ``BufferBudget`` over its limit.

    Raised by the receive whose read took the total over the limit; that stream
    is the one to close (the policy: the connection that would exceed the budget
    is cut, the others keep going).

    Attributes:
        held: bytes this stream's framer held after the read.
        total: bytes held by every stream sharing the budget, this one included.
        limit: the budget's limit.
    """

    def __init__(self, framer: str, held: int, total: int, limit: int) -> None:
        detail = (
            f"holding {held} bytes takes all connections together to {total} bytes, "
            f"over the budget of {limit} bytes"
        )
        super().__init__(framer, detail)
        self.held = held
        self.total = total
        self.limit = limit


class ReceiveTimeout(TimeoutError):
    """A receive gave up waiting for the peer (RFC 7766 6.2.3's timeouts).

    The wait was cancelled cleanly: no byte was lost and the stream is still
    usable (a server closes it; a client may carry on).

    Attributes:
        timeout: the limit that expired, in seconds.
        held: bytes of an unfinished message held when it expired (0 when none).
    """

    def __init__(self, detail: str, *, timeout: float, held: int) -> None:
        super().__init__(detail)
        self.timeout = timeout
        self.held = held


class IdleTimeout(ReceiveTimeout):
    """No byte at all arrived within ``idle_timeout`` seconds, whatever the framer held."""


class MessageTimeout(ReceiveTimeout):
    """A message was begun but not finished within ``message_timeout`` seconds."""


class RequestTimeout(TimeoutError):
    """A :class:`~framing.Requester` call got no reply within its ``timeout``.

    Only that call is given up: its reply is discarded when it comes, and the
    other calls on the stream carry on.

    Attributes:
        timeout: the limit that expired, in seconds.
    """

    def __init__(self, detail: str, *, timeout: float) -> None:
        super().__init__(detail)
        self.timeout = timeout


class RequestFailed(Exception):
    """A :class:`~framing.Requester` call can get no reply: the stream cannot give one.

    Raised to every call in flight, and to every later call, once the stream
    has ended (``__cause__`` is :class:`anyio.EndOfStream`), receiving failed
    (``__cause__`` is the error: a :class:`FramingError`, a reset), or the
    ``Requester`` was closed.

    Attributes:
        reason: what happened, in words.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnexpectedReply(RequestFailed):
    """The peer sent a reply that matches no call in flight: a protocol error.

    The replies can no longer be trusted to match their calls, so every call
    in flight, and every later one, fails with this error.

    Attributes:
        reply: the reply that matched nothing.
    """

    def __init__(self, reason: str, *, reply: object) -> None:
        super().__init__(reason)
        self.reply = reply


class EncodeError(ValueError):
    """Base class of the caller's faults: a message that this framing cannot carry.

    Raised by ``encode`` and so by ``send`` and ``send_many``, before anything
    is written. It is a :class:`ValueError`, never a :class:`FramingError`: the
    peer did nothing wrong.

    Attributes:
        framer: ``repr`` of the framer that refused.
        detail: why, with the numbers.
    """

    def __init__(self, framer: str, detail: str) -> None:
        super().__init__(f"{framer}: {detail}")
        self.framer = framer
        self.detail = detail


class MessageTooLarge(EncodeError):
    """A message over the framer's ``max_size``, or more than its header can express.

    Attributes:
        size: the message's size in bytes.
        limit: the largest size the framer can send.
    """

    def __init__(self, framer: str, size: int, limit: int, *, detail: str | None = None) -> None:
        text = detail or f"cannot encode a message of {size} bytes: the limit is {limit} bytes"
        super().__init__(framer, text)
        self.size = size
        self.limit = limit


class MessageTypeError(EncodeError, TypeError):
    """A message of the wrong type: a ``str`` (or an ``int``...) where bytes were due.

    Both an :class:`EncodeError` (the caller's fault; nothing is written) and a
    :class:`TypeError`, which is what Python raises for a value of the wrong
    type: ``except TypeError`` catches it as well. Its text names the framer
    and the type: ``"Lines(): expects bytes, not str"``.

    Attributes:
        kind: the name of the type given, such as ``"str"``.
        expected: what was expected, such as ``"bytes"``.
    """

    def __init__(self, framer: str, kind: str, *, expected: str = "bytes") -> None:
        super().__init__(framer, f"expects {expected}, not {kind}")
        self.kind = kind
        self.expected = expected
