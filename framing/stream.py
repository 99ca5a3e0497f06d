r"""The anyio adapter: any framer on any anyio byte stream, as an object stream of messages.

::

    application      await stream.receive() -> b"hello"     await stream.send(b"hi")
         |                      ^                                      |
    FramedStream     framer.feed(chunk, limit=1)            framer.encode(message)
         |                      ^                                      v
    byte stream      | \x00\x05hel | lo\x00\x02h | i |      | \x00\x02hi |
                     (TCP, TLS, a Unix socket, a memory pair: any ``anyio.abc.ByteStream``)

:class:`FramedStream` is an :class:`anyio.abc.ObjectStream`, so everything written
for anyio's streams works with it. :func:`connect` and :func:`connect_unix` open
a connection and wrap it; :mod:`framing.server` accepts them.
:meth:`FramedStream.start_tls` upgrades one to TLS in place (STARTTLS).

Receiving raises the peer's faults (:class:`~framing.FramingError`, the
:class:`~framing.ReceiveTimeout` family); sending raises the caller's
(:class:`~framing.EncodeError`). :mod:`framing.errors` draws the whole tree.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast, final

import anyio
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import ByteStream, ObjectStream, SocketAttribute, SocketStream
from anyio.streams.tls import TLSStream

from framing import transport
from framing.base import BytesLike, Framer, message_bytes
from framing.errors import (
    BufferBudgetExceeded,
    FramingError,
    IdleTimeout,
    MessageTimeout,
    PlaintextInjection,
    ReceiveTimeout,
    TLSHandshakeFailed,
)
from framing.proxied import ProxiedStream, UntrustedStream

__all__ = [
    "BufferBudget",
    "BufferBudgetExceeded",
    "FramedStream",
    "IdleTimeout",
    "MessageTimeout",
    "ReceiveTimeout",
    "StreamStats",
    "connect",
    "connect_unix",
]

T = TypeVar("T")
U = TypeVar("U")

# What one read of the transport asks for. 64 KiB is what anyio's sockets return
# at most and what a loopback read usually gets under load: big enough that a
# busy peer's messages arrive in few reads, small enough to hold per connection.
DEFAULT_RECEIVE_SIZE = 65536
# Seconds a STARTTLS handshake may take: as long as serve gives its own TLS
# handshakes (a few round trips; a peer that takes longer is not coming).
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


@final
class BufferBudget:
    """A bound on the bytes that the framers of many streams hold together.

    Each framer holds at most about its ``max_size``; a budget shared by all the
    connections of a server bounds the sum, so that many slow peers cannot each
    pin ``max_size``. :func:`framing.server.serve` makes one from
    ``max_buffered_total``; a :class:`FramedStream` given one reports to it with
    :meth:`charge` whenever what its framer holds changes.

    Args:
        limit: the most bytes all the streams may hold at once.

    Attributes:
        limit: as given.
        held: bytes held now, by every stream sharing the budget.
        peak: the most ever held at once.
    """

    __slots__ = ("held", "limit", "peak")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self.held = 0
        self.peak = 0

    def __repr__(self) -> str:
        return f"BufferBudget(limit={self.limit}, held={self.held}, peak={self.peak})"

    def charge(self, delta: int) -> bool:
        """Add ``delta`` bytes (negative to release); return whether ``held`` is over the limit."""
        held = self.held = self.held + delta
        self.peak = max(self.peak, held)
        return held > self.limit


@dataclass(slots=True)
class StreamStats:
    """Live counters of one :class:`FramedStream` (they change as it is used).

    Take a snapshot with :func:`dataclasses.replace`; after
    :meth:`FramedStream.switch_framer` the counting carries on in the same object.

    Attributes:
        messages_in: messages delivered by ``receive``/``receive_many``.
        messages_out: messages written by ``send``/``send_many``.
        bytes_in: bytes read from the transport.
        bytes_out: bytes written to the transport (headers included).
        peak_buffered: the most bytes the framer ever held.
        errors: errors raised by receiving, by class name (``"FrameTooLarge"``,
            ``"IncompleteFrame"``, ``"IdleTimeout"``...).
        messages_dropped: responses discarded, or requests left unanswered,
            because the peer had gone (counted by
            :func:`framing.server.serve_pipelined`).
    """

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    peak_buffered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    messages_dropped: int = 0

    def count_error(self, exc: BaseException) -> None:
        """Add one to the count of errors of ``exc``'s kind."""
        kind = type(exc).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _describe(exc: BaseException) -> str:
    """An error in words: its text, else its cause's (anyio raises bare wrappers), else its name."""
    while not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def idle_timed_out(timeout: float, held: int) -> IdleTimeout:
    """The error, in its words, for no byte within ``timeout`` (``held``: bytes of a message)."""
    detail = f"no byte arrived within {timeout} s"
    if held:
        detail += f" ({held} bytes of an unfinished message held)"
    return IdleTimeout(detail, timeout=timeout, held=held)


def message_timed_out(timeout: float, held: int) -> MessageTimeout:
    """The error, in its words, for a message begun and not finished within ``timeout``."""
    return MessageTimeout(
        f"a message was not finished within {timeout} s ({held} bytes of it held)",
        timeout=timeout,
        held=held,
    )


def check_stream_options(
    *, receive_size: int, idle_timeout: float | None, message_timeout: float | None
) -> None:
    """Refuse settings no :class:`FramedStream` can have (``serve`` checks before it binds).

    Raises:
        ValueError: ``receive_size`` under 1, or a timeout that is not positive.
    """
    if receive_size < 1:
        raise ValueError(f"receive_size must be at least 1, not {receive_size}")
    for name, value in (("idle_timeout", idle_timeout), ("message_timeout", message_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive or None, not {value}")


@final
class _SendLock:
    """A first-come, first-served lock that costs nothing while it is free.

    Why not ``anyio.Lock``: before anyio 4.5 (and without ``fast_acquire``), a
    free ``anyio.Lock`` still yields to the event loop on every acquire, which
    would cost each send a turn of the loop. The send that follows checks for
    cancellation and yields fairly on its own, so taking a free lock need not.
    When taken, the lock passes directly to the first waiter on release. The
    queue of waiters is made on first contention: most connections never send
    from two tasks at once, and an empty deque costs about 600 bytes.
    """

    __slots__ = ("locked", "waiters")

    def __init__(self) -> None:
        self.locked = False
        self.waiters: deque[anyio.Event] | None = None

    async def acquire(self) -> None:
        if not self.locked:
            self.locked = True
            return
        event = anyio.Event()
        waiters = self.waiters
        if waiters is None:
            waiters = self.waiters = deque()
        waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # handed the lock just as it was cancelled: pass it on
            else:
                waiters.remove(event)
            raise

    def release(self) -> None:
        if self.waiters:
            self.waiters.popleft().set()  # stays locked: ownership passes
        else:
            self.locked = False


@dataclass(eq=False)
class FramedStream(ObjectStream[T], Generic[T]):
    """An object stream of messages over a byte stream, cut and joined by a framer.

    The :class:`anyio.abc.ObjectStream` contract:

    - ``receive()`` returns the next message. A clean end of the stream raises
      :class:`anyio.EndOfStream` (which ends ``async for``), and so does every
      later call; an end inside a message raises
      :class:`~framing.IncompleteFrame`. A :class:`~framing.FramingError`
      propagates as the framer raised it, after the messages completed before
      the fault have been delivered (its ``messages`` is then emptied, as they
      were already returned); after that, receiving raises
      :class:`anyio.BrokenResourceError`.
    - After ``aclose()`` every call raises :class:`anyio.ClosedResourceError`.
      A transport that fails raises :class:`anyio.BrokenResourceError`.
    - Two tasks receiving at once get :class:`anyio.BusyResourceError`.
      Sending is different: ``send``, ``send_many`` and ``send_bytes`` may be
      called from several tasks at once; each waits its turn (first come, first
      served) and its bytes go out whole, never interleaved with another's.
      One task may send while another receives.
    - After the peer's end of stream, sending still works (TCP half-open);
      ``send_eof()`` half-closes our side and receiving goes on, on transports
      that support it.

    Whose fault an error is (:mod:`framing.errors`): receiving raises the
    peer's faults (:class:`~framing.FramingError`, :class:`ReceiveTimeout`);
    sending raises the caller's (:class:`~framing.EncodeError`: a message the
    framer cannot carry), before anything is written.

    Timeouts, both off by default, both leaving the stream usable:

    - ``idle_timeout``: no byte at all has arrived for that long while a receive
      waited, whatever the framer holds (nothing, or part of a message). Raises
      :class:`IdleTimeout`. A stream that is busy answering (a send in
      progress, or :attr:`work_in_flight` above 0) is not idle: the wait goes on.
    - ``message_timeout``: a message whose first byte has arrived is not
      finished within that long, however its bytes trickle in (RFC 7766 6.2.3).
      Raises :class:`MessageTimeout`.

    Backpressure: ``send`` waits while the peer does not read (the transport's
    send waits), and the transport holds at most one read-ahead beyond what a
    receive asked for, so neither side grows without bound.

    Args:
        transport_stream: the byte stream to wrap (this stream owns it).
        framer: the framer, used for both directions; a server gives each
            connection its own (``framer.clone()``).
        receive_size: the most bytes asked of the transport per read.
        idle_timeout: seconds without a byte before a waiting receive gives up,
            or ``None``.
        message_timeout: seconds for a begun message to finish, or ``None``.
        buffer_budget: a budget shared with other streams, or ``None``.
        drainable: let :meth:`drain` end a receive that is waiting between
            messages at once (a server sets it; on transports that are not
            Linux sockets it costs a cancel scope per wait).

    Attributes:
        transport_stream: the wrapped byte stream.
        framer: the framer in use (replaced by :meth:`switch_framer`).
        stats: live counters (:class:`StreamStats`).
        work_in_flight: requests being answered on this stream; while above 0
            the stream is busy, not idle (see ``idle_timeout``), and a server
            does not shed it. :func:`framing.serve_pipelined` keeps it.
    """

    transport_stream: ByteStream
    framer: Framer[T]
    receive_size: int = field(default=DEFAULT_RECEIVE_SIZE, kw_only=True)
    idle_timeout: float | None = field(default=None, kw_only=True)
    message_timeout: float | None = field(default=None, kw_only=True)
    buffer_budget: BufferBudget | None = field(default=None, kw_only=True, repr=False)
    drainable: bool = field(default=False, kw_only=True, repr=False)
    stats: StreamStats = field(init=False, default_factory=StreamStats, repr=False)
    work_in_flight: int = field(init=False, default=0, repr=False)
    # Messages parsed but not yet returned: only after an error or feed_eof
    # delivered several at once, since receive() parses one at a time. Made
    # then (see _queue): an idle connection need not hold an empty deque.
    _pending: deque[T] | None = field(init=False, default=None, repr=False)
    # A receive (or switch_framer, start_tls) in progress: a flag, as anyio's
    # ResourceGuard keeps one, without the guard object and the bound __exit__ a
    # waiting receive would hold (two objects per idle connection for the collector).
    _receiving: bool = field(init=False, default=False, repr=False)
    _send_lock: _SendLock = field(init=False, default_factory=_SendLock, repr=False)
    _is_closed: bool = field(init=False, default=False, repr=False)
    _eof: bool = field(init=False, default=False, repr=False)
    _error: BaseException | None = field(init=False, default=None, repr=False)
    _error_raised: bool = field(init=False, default=False, repr=False)
    _held: int = field(init=False, default=0, repr=False)
    _message_started: float | None = field(init=False, default=None, repr=False)
    # Graceful shutdown (see drain): a receive waiting between messages is told
    # to end. On Linux sockets, shutdown(SHUT_RD) wakes it with an end of stream
    # for free; elsewhere (TLS...) each such wait needs a cancel scope, which costs
    # several microseconds per read, so it is only paid where needed.
    _drain_socket: socket.socket | None = field(init=False, default=None, repr=False)
    _draining: bool = field(init=False, default=False, repr=False)
    _wait_scope: CancelScope | None = field(init=False, default=None, repr=False)
    # True while a receive waits in the transport (its only await), and since
    # when (for waiting_since); our own flags, so drain knows there is a read
    # to wake and a server knows who has waited longest.
    _reading: bool = field(init=False, default=False, repr=False)
    _wait_started: float = field(init=False, default=0.0, repr=False)
    _sending: bool = field(init=False, default=False, repr=False)
    # Whether a read needs _read_timed (a timeout, or a drain to honour).
    _timed: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        check_stream_options(
            receive_size=self.receive_size,
            idle_timeout=self.idle_timeout,
            message_timeout=self.message_timeout,
        )
        if self.drainable and sys.platform == "linux":
            # Linux wakes a blocked read with EOF on shutdown(SHUT_RD), on every backend.
            # Only on the socket's own stream: under TLS an EOF would be an error.
            stream = self.transport_stream
            if isinstance(stream, ProxiedStream | UntrustedStream):
                stream = stream.transport_stream  # behind proxies: the socket's own
            if isinstance(stream, SocketStream | transport.AsyncioSocketStream):
                raw = stream.extra(SocketAttribute.raw_socket, None)
                if isinstance(raw, socket.socket):
                    self._drain_socket = raw
        self._timed = (
            self.idle_timeout is not None or self.message_timeout is not None or self.drainable
        )
        self._account()

    # -- receiving ---------------------------------------------------------

    async def receive(self) -> T:
        """Return the next message, parsing exactly one so framing may switch after it.

        Returns without waiting when a message is already buffered.

        Raises:
            anyio.EndOfStream: the peer ended the stream cleanly.
            IncompleteFrame: the peer ended the stream inside a message.
            FramingError: the peer broke the framing (as the framer raised it).
            ReceiveTimeout: ``idle_timeout`` or ``message_timeout`` expired.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed, or an error was
                already raised.
            anyio.BusyResourceError: another task is receiving.
        """
        return (await self._next(1))[0]

    def receive_many(self) -> Coroutine[Any, Any, list[T]]:
        """Return every message already available: at least one, waiting if none.

        At most one read of the transport is made, and every message it
        completes is returned, so a busy peer's pipelined messages come back in
        one call. Raises as :meth:`receive` does. (Await it: it returns the
        coroutine that does the work, so that an idle connection waiting in it
        holds one coroutine frame fewer.)
        """
        return self._next(None)

    @contextlib.contextmanager
    def _receive_turn(self) -> Iterator[None]:
        """Hold the receiving side (``BusyResourceError`` if a receive is in progress)."""
        if self._receiving:
            raise BusyResourceError("reading from")
        self._receiving = True
        try:
            yield
        finally:
            self._receiving = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called (by anyone: the handler, a shed, an error)."""
        return self._is_closed

    @property
    def waiting_since(self) -> float | None:
        """Since when (``time.monotonic()``) a receive has waited for the peer's next byte.

        ``None`` while no receive is waiting in the transport, or while the
        stream is busy (a send in progress, :attr:`work_in_flight` above 0). A
        server sheds, under load, the stream that has waited longest.
        """
        if self._reading and not self._sending and not self.work_in_flight:
            return self._wait_started
        return None

    async def _next(self, limit: int | None) -> list[T]:
        if self._receiving:
            raise BusyResourceError("reading from")
        self._receiving = True
        try:
            messages = self._ready(limit)
            stats = self.stats
            while not messages:
                self._reading = True
                self._wait_started = time.monotonic()  # cheaper than anyio's clock, per read
                try:
                    untimed = not self._timed or self._untimed()
                    chunk = (
                        await self.transport_stream.receive(self.receive_size)
                        if untimed
                        else await self._read_timed()
                    )
                except EndOfStream:
                    self._reading = False
                    return self._end_of_stream(limit)
                except BaseException as exc:
                    self._reading = False
                    # A transport may refuse the peer too (a PROXY header from
                    # a client that is not a trusted proxy): counted the same.
                    if isinstance(exc, ReceiveTimeout | BrokenResourceError | FramingError):
                        stats.count_error(exc)
                    raise
                self._reading = False
                stats.bytes_in += len(chunk)
                messages = self._feed(chunk, limit)
            return messages
        finally:
            self._receiving = False

    def _ready(self, limit: int | None) -> list[T]:
        """What a receive returns without reading (maybe nothing), or the error it raises."""
        if self._is_closed:
            raise ClosedResourceError
        if self._pending:
            return self._take_pending(limit)
        if self._error is not None:
            self._raise_error()
        if self._eof:
            raise EndOfStream
        if self.framer.buffered:
            return self._feed(b"", limit)
        if self._draining:
            raise EndOfStream
        return []

    def _untimed(self) -> bool:
        """Whether a read needs neither timer nor scope (``_read_timed``'s first case).

        A server's wait between messages with no idle timer, which a drain wakes
        through the socket. Decided here and awaited in ``_next``: one coroutine
        frame fewer held by every idle connection.

        Raises:
            EndOfStream: draining, with nothing of a message held.
        """
        if self.idle_timeout is not None or self._drain_socket is None or self.framer.buffered:
            return False
        if self._draining:
            raise EndOfStream
        return True

    async def _read_timed(self) -> bytes:
        """Read one chunk under the timeouts that apply, and a drain's wake-up."""
        held = self.framer.buffered
        if not held and self._draining:
            raise EndOfStream
        idle = self.idle_timeout
        receive = self.transport_stream.receive
        if idle is None and not held and self._drain_socket is not None:
            # No timer, and a drain wakes this read through the socket: no scope.
            return await receive(self.receive_size)
        now = anyio.current_time()
        idle_deadline = math.inf if idle is None else now + idle
        message_deadline = math.inf
        if held and self.message_timeout is not None:
            if self._message_started is None:
                self._message_started = now
            message_deadline = self._message_started + self.message_timeout
        while True:
            with CancelScope(deadline=min(idle_deadline, message_deadline)) as scope:
                # Only a wait between messages is for a drain to end.
                self._wait_scope = None if held else scope
                try:
                    return await receive(self.receive_size)
                finally:
                    self._wait_scope = None
            if self._draining and not held:
                raise EndOfStream
            now = anyio.current_time()
            if now >= message_deadline:
                timeout = self.message_timeout
                assert timeout is not None
                raise message_timed_out(timeout, held)
            assert idle is not None
            if self._sending or self.work_in_flight:
                idle_deadline = now + idle  # busy answering, not idle: wait on
                continue
            raise idle_timed_out(idle, held)

    def _feed(self, data: BytesLike, limit: int | None) -> list[T]:
        framer = self.framer
        try:
            messages = framer.feed(data, limit=limit)
        except FramingError as exc:
            self._account()
            self._fail(exc, exc.messages)
            exc.messages = []
            return self._take_pending(limit)
        held = framer.buffered
        if held != self._held:
            self._held_changed(held)
            if self._error is not None and not messages:
                self._raise_error()  # over the budget, with nothing to deliver first
        if messages:
            self.stats.messages_in += len(messages)
            if self.message_timeout is not None and held:
                # What is left began no earlier than this chunk: restart the clock.
                self._message_started = anyio.current_time()
        elif held and self.message_timeout is not None and self._message_started is None:
            self._message_started = anyio.current_time()
        return messages

    def _held_changed(self, held: int) -> None:
        grew = held > self._held
        budget = self.buffer_budget
        over = budget is not None and budget.charge(held - self._held)
        self._held = held
        self.stats.peak_buffered = max(self.stats.peak_buffered, held)
        if not held:
            self._message_started = None
        if grew and over and self._error is None:
            # Whatever this feed completed is still returned; the next receive raises.
            assert budget is not None
            exc = BufferBudgetExceeded(repr(self.framer), held, budget.held, budget.limit)
            self._fail(exc, [])

    def _fail(self, exc: BaseException, messages: list[Any]) -> None:
        """Record a fatal error: ``messages`` are delivered first, then it is raised."""
        self._error = exc
        self._queue(messages)
        self.stats.count_error(exc)

    def _raise_error(self) -> None:
        error = self._error
        assert error is not None
        if not self._error_raised:
            self._error_raised = True
            raise error
        raise BrokenResourceError("the stream broke earlier") from error

    def _queue(self, messages: list[T]) -> None:
        if messages:
            if self._pending is None:
                self._pending = deque(messages)
            else:
                self._pending.extend(messages)

    def _take_pending(self, limit: int | None) -> list[T]:
        pending = self._pending
        if not pending:
            out = []
        elif limit == 1:
            out = [pending.popleft()]
        else:
            out = list(pending)
            pending.clear()
        if not out:
            # Nothing to deliver before the error: raise it now.
            self._raise_error()
        self.stats.messages_in += len(out)
        return out

    def _end_of_stream(self, limit: int | None) -> list[T]:
        self._eof = True
        try:
            messages = self.framer.feed_eof()
        except FramingError as exc:
            self._fail(exc, exc.messages)
            exc.messages = []
            return self._take_pending(limit)
        finally:
            self._account()
        if not messages:
            raise EndOfStream
        self._queue(messages)
        return self._take_pending(limit)

    def drain(self) -> None:
        """Make receiving end (``EndOfStream``) at the next message boundary.

        A receive waiting for a new message ends now (on a stream made with
        ``drainable=True``; otherwise when it next returns); one inside a
        message may finish it first. A server's graceful shutdown calls this on
        every connection.
        """
        self._draining = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()
        elif self._drain_socket is not None and self._reading and not self.framer.buffered:
            # A receive is waiting, with nothing of a message held: wake it.
            with contextlib.suppress(OSError):
                self._drain_socket.shutdown(socket.SHUT_RD)

    def _account(self) -> None:
        held = self.framer.buffered
        if held != self._held:
            self._held_changed(held)

    # -- sending -------------------------------------------------------------

    async def send(self, item: T) -> None:
        """Encode one message and write it, waiting while the peer does not read.

        Several tasks may send at once: each message goes out whole, in turn.

        Raises:
            MessageTooLarge: the message is over the framer's ``max_size``
                (nothing is sent).
            MessageTypeError: the message is not bytes (a ``str``...): an
                ``EncodeError`` that is also a ``TypeError`` (nothing is sent).
            EncodeError: any other message the framer cannot carry, such as
                one containing the delimiter (nothing is sent).
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed (the peer has gone).
            ssl.SSLError: over TLS, the TLS layer failed otherwise.
        """
        if self._is_closed:
            raise ClosedResourceError
        await self._write(self.framer.encode(item), 1)

    async def send_many(self, messages: Iterable[T]) -> None:
        """Encode several messages and write them in one transport write.

        Nothing is sent when one of them cannot be encoded; an empty iterable
        sends nothing.

        Raises:
            MessageTooLarge: a message is over the framer's ``max_size``.
            MessageTypeError: a message is not bytes (a ``str``...).
            EncodeError: any other message the framer cannot carry.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed (the peer has gone).
            ssl.SSLError: over TLS, the TLS layer failed otherwise.
        """
        if self._is_closed:
            raise ClosedResourceError
        encode = self.framer.encode
        parts = [encode(message) for message in messages]
        if parts:
            await self._write(b"".join(parts), len(parts))

    async def send_bytes(self, data: BytesLike, *, messages: int = 0) -> None:
        """Write bytes already in wire form, bypassing the framer's ``encode``.

        For protocols that mix framing: memcached's data block after its
        ``VALUE`` line, an HTTP body after its header. The bytes are counted in
        ``stats.bytes_out`` and go out under the same turn-taking as
        :meth:`send`, never interleaved with another task's message.

        Args:
            data: the bytes to write, as they go on the wire.
            messages: how many whole messages ``data`` carries, for
                ``stats.messages_out`` (0 for bytes outside the framing).

        Raises:
            MessageTypeError: ``data`` is not bytes-like (a ``str``...).
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed (the peer has gone).
            ssl.SSLError: over TLS, the TLS layer failed otherwise.
        """
        if self._is_closed:
            raise ClosedResourceError
        await self._write(message_bytes(self.framer, data), messages)

    async def _write(self, data: bytes, messages: int) -> None:
        lock = self._send_lock
        await lock.acquire()
        try:
            if self._is_closed:
                raise ClosedResourceError
            self._sending = True
            try:
                await self.transport_stream.send(data)
            finally:
                self._sending = False
        finally:
            lock.release()
        stats = self.stats
        stats.messages_out += messages
        stats.bytes_out += len(data)

    async def send_eof(self) -> None:
        """Half-close: send end of stream (TCP FIN) and keep receiving.

        Waits for sends already in progress, so the end follows their bytes.

        Raises:
            NotImplementedError: the transport cannot half-close (TLS, for one).
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed (the peer has gone).
        """
        if self._is_closed:
            raise ClosedResourceError
        lock = self._send_lock
        await lock.acquire()
        try:
            await self.transport_stream.send_eof()
        except OSError as exc:
            # A reset not yet seen makes shutdown() say ENOTCONN, which anyio's
            # socket streams let through bare on trio: the connection is broken.
            raise BrokenResourceError from exc
        finally:
            lock.release()

    # -- the rest ------------------------------------------------------------

    def switch_framer(self, new: Framer[U]) -> FramedStream[U]:
        """Switch framing mid-stream, in place; return this same stream, retyped.

        Every byte read but not yet consumed by a message moves to ``new``
        (``framer.detach()`` then ``new.feed(rest, limit=0)``), so nothing is
        lost. Because :meth:`receive` parses one message per call, switching
        after it is exact; :meth:`receive_many` may already have parsed, with
        the old framer, messages meant for the new one. Use the returned
        reference: it is typed for ``new``'s messages. Counters, timeouts and the
        buffer budget carry on.

        Raises:
            anyio.ClosedResourceError: this stream was closed.
            anyio.BusyResourceError: a receive is in progress.
            RuntimeError: messages parsed by the old framer are still undelivered
                (only after an end of stream or an error).
        """
        if self._is_closed:
            raise ClosedResourceError
        with self._receive_turn():
            if self._pending:
                raise RuntimeError("messages parsed by the old framer are still undelivered")
            rest = self.framer.detach()
            if rest:
                new.feed(rest, limit=0)
            self.framer = cast("Framer[T]", new)
            self._account()
        return cast("FramedStream[U]", self)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        server_side: bool,
        hostname: str | None = None,
        reply: T | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        standard_compatible: bool = True,
    ) -> None:
        """Upgrade this stream to TLS in place (STARTTLS): same object, framer and counters.

        Call it between receives, right after the message that agreed to the
        upgrade: on a server, the peer's ``STARTTLS``; on a client, the
        server's go-ahead (``220 Ready``). In that order, with sends held back
        until it returns:

        1. **Check.** A byte received after that message would still be held,
           by the framer or read ahead by the transport (see
           :attr:`framing.transport.AsyncioSocketStream.queued`). If one is,
           the peer sent plaintext where TLS was due, which would later be read
           as if it had come under TLS (CVE-2011-0411): the stream is closed
           and :class:`~framing.PlaintextInjection` raised.
        2. **Reply** (server side): ``reply``, encoded by the framer, is sent.
           It must be sent here and not before: the client answers it with its
           TLS ClientHello at once, and that hello, read ahead, would fail the
           check.
        3. **Handshake**, within ``handshake_timeout``; then the stream reads
           and writes through :class:`anyio.streams.tls.TLSStream`.

        Bytes the transport holds without saying so, or still in the kernel,
        reach the TLS engine as the start of the handshake, which fails on them
        (plaintext is not a TLS record): they are never read as if under TLS.
        Receive with :meth:`receive` before an upgrade, not :meth:`receive_many`,
        which may hand out, already parsed, the messages that followed.

        Args:
            ssl_context: the TLS settings (a server's holds its certificate);
                ``None`` makes a default one.
            server_side: whether this end is the TLS server.
            hostname: the name the server's certificate must carry (client side).
            reply: a message to send after the check and before the handshake,
                or ``None``.
            handshake_timeout: seconds for the handshake to finish, or ``None``
                for no limit.
            standard_compatible: send and expect TLS ``close_notify`` on close.

        Raises:
            PlaintextInjection: bytes were held after the upgrade request (the
                stream is closed).
            TLSHandshakeFailed: the handshake failed or timed out (the stream
                is closed; the original error is the cause).
            EncodeError: the framer cannot carry ``reply`` (nothing was done).
            anyio.BusyResourceError: a receive is in progress.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed, or an error was
                already raised.
        """
        if self._is_closed:
            raise ClosedResourceError
        data = None if reply is None else self.framer.encode(reply)
        with self._receive_turn():
            lock = self._send_lock
            await lock.acquire()
            try:
                if self._error is not None:
                    self._raise_error()
                held = self.framer.buffered + transport.read_ahead(self.transport_stream)
                if held or self._pending:
                    pending = len(self._pending or ())
                    injection = PlaintextInjection(repr(self.framer), held, pending)
                    await self._abort(injection)
                    raise injection
                if data is not None:
                    await self.transport_stream.send(data)
                    self.stats.messages_out += 1
                    self.stats.bytes_out += len(data)
                try:
                    with anyio.fail_after(handshake_timeout):
                        tls = await TLSStream.wrap(
                            self.transport_stream,
                            server_side=server_side,
                            hostname=hostname,
                            ssl_context=ssl_context,
                            standard_compatible=standard_compatible,
                        )
                except (OSError, BrokenResourceError, EndOfStream) as cause:
                    # ssl.SSLError and TimeoutError (ours, from fail_after) are OSErrors.
                    if isinstance(cause, TimeoutError):
                        reason = f"not finished within {handshake_timeout} s"
                    else:
                        reason = _describe(cause)
                    failed = TLSHandshakeFailed(repr(self.framer), reason)
                    await self._abort(failed)
                    raise failed from cause
                except BaseException:
                    await anyio.aclose_forcefully(self)  # cancelled mid-handshake: unusable
                    raise
                self.transport_stream = tls
                self._drain_socket = None  # an EOF under TLS would be an error (see drain)
            finally:
                lock.release()

    async def _abort(self, exc: BaseException) -> None:
        """End the connection for ``exc``, counted; later calls raise ``ClosedResourceError``."""
        self.stats.count_error(exc)
        await anyio.aclose_forcefully(self)

    async def aclose(self) -> None:
        """Close the stream and its transport; later calls raise ``ClosedResourceError``."""
        if not self._is_closed:
            self._is_closed = True
            budget = self.buffer_budget
            if budget is not None:
                budget.charge(-self._held)
            self._held = 0
        await self.transport_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's typed attributes (addresses, TLS details...)."""
        return self.transport_stream.extra_attributes


async def connect(
    host: str,
    port: int,
    framer: Framer[T],
    *,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    tls_hostname: str | None = None,
    happy_eyeballs_delay: float = 0.25,
    local_host: str | None = None,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    idle_timeout: float | None = None,
    message_timeout: float | None = None,
) -> FramedStream[T]:
    """Connect over TCP (and TLS, if asked) and return a :class:`FramedStream`.

    Args:
        host: a name or an IP address; names resolving to several addresses are
            tried with Happy Eyeballs (RFC 6555).
        port: the port.
        framer: the framer for this connection (used as is, not cloned).
        tls: wrap the connection in TLS (also implied by ``ssl_context``).
        ssl_context: an :class:`ssl.SSLContext`; ``None`` gives a default one.
        tls_standard_compatible: send and expect TLS ``close_notify`` on close.
        tls_hostname: the name to check the certificate against (default ``host``).
        happy_eyeballs_delay: seconds before trying the next address.
        local_host: the local interface to connect from.
        receive_size: as for :class:`FramedStream`.
        idle_timeout: as for :class:`FramedStream`.
        message_timeout: as for :class:`FramedStream`.

    Returns:
        The connected stream; close it (``async with``) when done.

    Raises:
        OSError: the connection failed.
    """
    stream: ByteStream
    if transport.asyncio_loop() is not None:
        # asyncio or uvloop: our own transport (see framing.transport), TLS over it.
        stream = await transport.connect_tcp(
            host, port, local_host=local_host, happy_eyeballs_delay=happy_eyeballs_delay
        )
        if tls or ssl_context is not None:
            try:
                stream = await TLSStream.wrap(
                    stream,
                    hostname=tls_hostname or host,
                    ssl_context=ssl_context,
                    standard_compatible=tls_standard_compatible,
                )
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
    elif tls or ssl_context is not None:
        stream = await anyio.connect_tcp(
            host,
            port,
            local_host=local_host,
            tls=True,
            ssl_context=ssl_context,
            tls_standard_compatible=tls_standard_compatible,
            tls_hostname=tls_hostname,
            happy_eyeballs_delay=happy_eyeballs_delay,
        )
    else:
        stream = await anyio.connect_tcp(
            host, port, local_host=local_host, happy_eyeballs_delay=happy_eyeballs_delay
        )
    return FramedStream(
        stream,
        framer,
        receive_size=receive_size,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
    )


async def connect_unix(
    path: str | bytes | os.PathLike[str],
    framer: Framer[T],
    *,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    idle_timeout: float | None = None,
    message_timeout: float | None = None,
) -> FramedStream[T]:
    """Connect to a Unix socket and return a :class:`FramedStream`.

    Args:
        path: the socket's path.
        framer: the framer for this connection (used as is, not cloned).
        receive_size: as for :class:`FramedStream`.
        idle_timeout: as for :class:`FramedStream`.
        message_timeout: as for :class:`FramedStream`.

    Raises:
        OSError: the connection failed.
    """
    stream: ByteStream
    if transport.asyncio_loop() is not None:
        stream = await transport.connect_unix(os.fsdecode(path))
    else:
        stream = await anyio.connect_unix(path)
    return FramedStream(
        stream,
        framer,
        receive_size=receive_size,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
    )
