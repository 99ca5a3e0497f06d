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

Receiving raises the peer's faults (:class:`~framing.FramingError`, the
:class:`~framing.ReceiveTimeout` family); sending raises the caller's
(:class:`~framing.EncodeError`). :mod:`framing.errors` draws the whole tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeGuard, TypeVar, cast, final

import anyio
from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
    ResourceGuard,
)
from anyio.abc import ByteStream, ObjectStream, SocketAttribute, SocketStream
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from framing.base import BytesLike, Framer
from framing.errors import (
    BufferBudgetExceeded,
    FramingError,
    IdleTimeout,
    MessageTimeout,
    ReceiveTimeout,
)

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


@final
class BufferBudget:
    """A bound on the bytes that the framers of many streams hold together.

    Each framer holds at most about its ``max_size``; a budget shared by all the
    connections of a server bounds the sum, so that many slow peers cannot each
    pin ``max_size``. :func:`framing.server.serve` makes one from
    ``max_buffered_total``.

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


def pause_unread_transport(stream: object) -> None:
    """Stop an asyncio socket from reading ahead until a receive asks for bytes.

    Why: anyio's asyncio ``SocketStream`` resumes reading only while a
    ``receive`` waits and pauses again when it wakes, but a stream it made from
    an accepted socket (or from ``from_socket``) starts out *reading*. Until a
    receive first has to wait, every byte the peer sends is appended to the
    protocol's ``read_queue``; a receive that finds the queue non-empty pops a
    chunk without waiting, so reading is never paused. A client that writes
    faster than the server consumes grows that queue without bound, and TCP's
    own flow control never engages. Pausing here restores the invariant anyio
    keeps for connected sockets: bytes are read from the kernel only while a
    receive is pending, so the peer meets a full window and its send blocks.

    Pausing is always safe for anyio's receive: it resumes reading whenever it
    finds nothing queued. Walks ``transport_stream`` links (TLS) to the socket;
    anything that is not an asyncio transport is left alone (trio reads only
    on demand already).
    """
    for _ in range(8):
        transport = getattr(stream, "_transport", None)
        # Duck-typed: uvloop's transports are not asyncio.ReadTransport instances.
        if _is_read_transport(transport) and transport.is_reading():
            transport.pause_reading()
        stream = getattr(stream, "transport_stream", None)
        if stream is None:
            return


def _is_read_transport(transport: object) -> TypeGuard[asyncio.ReadTransport]:
    """Whether ``transport`` is an asyncio read transport (asyncio's own or uvloop's)."""
    return isinstance(transport, asyncio.ReadTransport) or (
        callable(getattr(transport, "is_reading", None))
        and callable(getattr(transport, "pause_reading", None))
    )


# The fast send path (FramedStream._send), on anyio's asyncio SocketStream.
#
# Why: anyio's SocketStream.send writes to the asyncio transport and then, when
# the write did not have to wait, still yields to the event loop once
# (``cancel_shielded_checkpoint``) so that every send is a scheduling point.
# That turn of the loop costs more than encoding and writing a batch of small
# messages: profiled on uvloop, the echo server spent most of its time there.
# The fast path does what anyio's send does, in the same order, minus that
# yield: check for cancellation (before anything is written, so a cancelled
# send writes nothing), write to the transport, and wait (for the buffer to
# drain) only when the transport could not take everything. anyio sets the
# transport's high-water mark to 0, so "could not take everything" is exactly
# "the protocol's write_event is clear": backpressure is unchanged. Whenever
# anything is unusual (the transport closing, an error recorded, a write
# already waiting) the path hands the send to anyio, which raises as it maps
# errors. So that a task that only sends cannot starve the others, a send that
# follows _YIELD_EVERY fast operations without the task having waited anywhere
# in this stream goes through anyio's send, which yields; a receive that yields
# (one that waits, or anyio's own receive, which always does) resets the count,
# and the fast receive path counts its own reads that do not (see _READ_AHEAD).
# On trio, and on any other transport, send is anyio's own.
_YIELD_EVERY = 16


def _asyncio_socket(stream: ByteStream) -> tuple[Any, Any] | None:
    """The transport and protocol of anyio's asyncio ``SocketStream``, else ``None``.

    Recognised by what the fast send path uses (anyio 4's private attributes),
    so that a future anyio that changes them only loses the fast path.
    """
    transport = getattr(stream, "_transport", None)
    protocol = getattr(stream, "_protocol", None)
    if (
        isinstance(getattr(stream, "_closed", None), bool)
        and callable(getattr(transport, "write", None))
        and callable(getattr(transport, "is_closing", None))
        and isinstance(getattr(protocol, "write_event", None), asyncio.Event)
        and hasattr(protocol, "exception")
    ):
        return transport, protocol
    return None


# The fast receive path (FramedStream._receive_socket), on the same sockets.
#
# Why: anyio's SocketStream.receive, when its protocol's read queue is empty,
# resumes the transport's reading, waits, and pauses reading again as soon as
# it wakes; when the queue holds data, it still yields to the event loop first.
# For a connection that answers each batch before reading the next, that is a
# resume_reading/pause_reading pair (two epoll_ctl system calls on the selector
# loop) and one or two extra turns of the loop per batch: the largest part of
# an echo server's receiving. A hand-written asyncio Protocol pays none of it,
# because its transport simply keeps reading.
#
# The fast path keeps the transport reading after a wait, and pops queued
# chunks as anyio does (splitting one longer than asked, clearing read_event
# when the queue empties). Backpressure is kept by a bound instead of by
# pausing every time: _ReadAhead, installed as the protocol's data_received,
# pauses reading once _READ_AHEAD bytes wait in the queue unreceived, so a
# connection holds at most _READ_AHEAD bytes plus one read of the transport
# (256 KiB on asyncio's selector loop) beyond what its framer holds, and a
# peer that writes while nobody receives meets a full TCP window. The next
# receive that finds the queue empty resumes reading, as anyio's does.
#
# Cancellation is checked before a chunk is popped (checkpoint_if_cancelled,
# as the fast send path does), and the wait is the protocol's read_event, so a
# cancelled receive takes nothing from the queue. Whatever is unusual (the
# end of stream, a recorded error, the transport closing: the queue empty but
# read_event set) goes to anyio's own receive, which raises as it maps them
# (EndOfStream, BrokenResourceError, ClosedResourceError). The transport's own
# receive guard is held, so a second receiver still gets BusyResourceError.
# Fairness: popping a queued chunk does not yield, so a receive that follows
# _YIELD_EVERY operations of this stream that did not yield (sends and
# receives counted together) yields once, as anyio's receive always does.
_READ_AHEAD = 65536


@final
class _ReadAhead:
    """The ``data_received`` of anyio's protocol, pausing reading once too much is queued.

    ``held`` counts the bytes queued by this hook and not yet popped by the
    fast receive path; it is reset whenever that path finds the queue empty,
    so that chunks popped by anyio's own receive cannot leave it too high.
    """

    __slots__ = ("held", "original", "transport")

    def __init__(self, original: Callable[[bytes], None], transport: Any) -> None:
        self.original = original
        self.transport = transport
        self.held = 0

    def __call__(self, data: bytes) -> None:
        self.original(data)
        self.held += len(data)
        if self.held >= _READ_AHEAD:
            self.transport.pause_reading()


def _asyncio_reader(
    stream: ByteStream, socket_parts: tuple[Any, Any] | None
) -> tuple[Any, Any, _ReadAhead] | None:
    """The transport, protocol and read-ahead hook for the fast receive path, else ``None``.

    ``socket_parts`` is what :func:`_asyncio_socket` found. Installs the hook
    (once per protocol: a second stream over the same socket shares it), and
    re-sets the transport's protocol so that a transport that keeps the bound
    ``data_received`` (uvloop's) calls the hook. Anything that does not look
    exactly like anyio 4's ``StreamProtocol`` keeps anyio's receive.
    """
    if socket_parts is None:
        return None
    transport, protocol = socket_parts
    if not (
        isinstance(getattr(stream, "_receive_guard", None), ResourceGuard)
        and isinstance(getattr(protocol, "read_queue", None), deque)
        and isinstance(getattr(protocol, "read_event", None), asyncio.Event)
        and isinstance(getattr(protocol, "is_at_eof", None), bool)
        and callable(getattr(protocol, "data_received", None))
        and hasattr(protocol, "__dict__")
        and all(
            callable(getattr(transport, name, None))
            for name in ("is_reading", "pause_reading", "resume_reading", "set_protocol")
        )
        and not transport.is_closing()
    ):
        return None
    hook = vars(protocol).get("data_received")
    if hook is None:
        hook = _ReadAhead(protocol.data_received, transport)
        hook.held = sum(map(len, protocol.read_queue))  # read before this stream existed
        protocol.data_received = hook
        transport.set_protocol(protocol)
    elif not isinstance(hook, _ReadAhead):
        return None  # someone else's hook: leave it alone
    return transport, protocol, hook


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
    - Two tasks receiving at once get :class:`anyio.BusyResourceError`, and so do
      two tasks sending at once (as anyio's sockets do: serialize senders with a
      lock, or use :func:`framing.server.serve_pipelined`). One task may send
      while another receives.
    - After the peer's end of stream, sending still works (TCP half-open);
      ``send_eof()`` half-closes our side and receiving goes on, on transports
      that support it.

    Timeouts (RFC 7766 6.2.3), both off by default: ``idle_timeout`` bounds the
    wait for the first byte of a message when nothing of one is held, counted
    from when ``receive`` starts waiting, and raises :class:`IdleTimeout`;
    ``message_timeout`` bounds the time from a message's first byte to its last,
    however the bytes trickle, and raises :class:`MessageTimeout`. Either leaves
    the stream usable.

    Backpressure: ``send`` waits while the peer does not read (the transport's
    send waits), and bytes are read from the transport only while a receive is
    pending, so neither side grows without bound. (On anyio's asyncio sockets,
    reading goes on between receives, but pauses once 64 KiB wait unreceived:
    at most that plus one read of the transport is held beyond the framer.)

    Args:
        transport_stream: the byte stream to wrap (this stream owns it).
        framer: the framer, used for both directions; a server gives each
            connection its own (``framer.clone()``).
        receive_size: the most bytes asked of the transport per read.
        idle_timeout: seconds to wait for a message to begin, or ``None``.
        message_timeout: seconds for a begun message to finish, or ``None``.
        buffer_budget: a budget shared with other streams, or ``None``.

    Attributes:
        transport_stream: the wrapped byte stream.
        framer: the framer in use (replaced by :meth:`switch_framer`).
        stats: live counters (:class:`StreamStats`).
    """

    transport_stream: ByteStream
    framer: Framer[T]
    receive_size: int = field(default=DEFAULT_RECEIVE_SIZE, kw_only=True)
    idle_timeout: float | None = field(default=None, kw_only=True)
    message_timeout: float | None = field(default=None, kw_only=True)
    buffer_budget: BufferBudget | None = field(default=None, kw_only=True, repr=False)
    stats: StreamStats = field(init=False, default_factory=StreamStats, repr=False)
    # Messages parsed but not yet returned: only after an error or feed_eof
    # delivered several at once, since receive() parses one at a time.
    _pending: deque[T] = field(init=False, default_factory=deque, repr=False)
    _receive_guard: ResourceGuard = field(init=False, repr=False)
    _send_guard: ResourceGuard = field(init=False, repr=False)
    _closed: bool = field(init=False, default=False, repr=False)
    _eof: bool = field(init=False, default=False, repr=False)
    _error: BaseException | None = field(init=False, default=None, repr=False)
    _error_raised: bool = field(init=False, default=False, repr=False)
    _held: int = field(init=False, default=0, repr=False)
    _message_started: float | None = field(init=False, default=None, repr=False)
    # Graceful shutdown (see _drain): a receive waiting between messages is told
    # to end. On Linux sockets, shutdown(SHUT_RD) wakes it with an end of stream
    # for free; elsewhere (TLS...) each such wait needs a cancel scope, which costs
    # several microseconds per read, so it is only paid where needed.
    _drainable: bool = field(init=False, default=False, repr=False)
    _drain_socket: socket.socket | None = field(init=False, default=None, repr=False)
    _draining: bool = field(init=False, default=False, repr=False)
    _wait_scope: CancelScope | None = field(init=False, default=None, repr=False)
    # True while a receive waits in the transport (its only await), so _drain knows
    # whether there is a read to wake. Our own flag: anyio's ResourceGuard keeps
    # the same fact in a private attribute we should not rely on.
    _reading: bool = field(init=False, default=False, repr=False)
    # The fast send path (see _YIELD_EVERY): anyio's asyncio transport and
    # protocol, or None; and fast sends since this task last yielded here.
    _fast_send: tuple[Any, Any] | None = field(init=False, default=None, repr=False)
    _unyielded: int = field(init=False, default=0, repr=False)
    # The fast receive path (see _READ_AHEAD): transport, protocol and hook, or
    # None; and what reads one chunk (it, or the transport's own receive).
    _fast_receive: tuple[Any, Any, _ReadAhead] | None = field(init=False, default=None, repr=False)
    _receive_chunk: Callable[[int], Awaitable[bytes]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.receive_size < 1:
            raise ValueError(f"receive_size must be at least 1, not {self.receive_size}")
        for name in ("idle_timeout", "message_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, not {value}")
        self._receive_guard = ResourceGuard("reading from")
        self._send_guard = ResourceGuard("writing to")
        pause_unread_transport(self.transport_stream)
        self._fast_send = _asyncio_socket(self.transport_stream)
        self._fast_receive = _asyncio_reader(self.transport_stream, self._fast_send)
        if self._fast_receive is not None:
            self._receive_chunk = self._receive_socket
        elif self._fast_send is not None:
            self._receive_chunk = self._receive_yielding
        else:
            self._receive_chunk = self.transport_stream.receive
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
        with self._receive_guard:
            return (await self._next(1))[0]

    async def receive_many(self) -> list[T]:
        """Return every message already available: at least one, waiting if none.

        At most one read of the transport is made, and every message it
        completes is returned, so a busy peer's pipelined messages come back in
        one call. Raises as :meth:`receive` does.
        """
        with self._receive_guard:
            return await self._next(None)

    async def _next(self, limit: int | None) -> list[T]:
        if self._closed:
            raise ClosedResourceError
        if self._pending:
            return self._take_pending(limit)
        if self._error is not None:
            self._raise_error()
        if self._eof:
            raise EndOfStream
        framer = self.framer
        if framer.buffered:
            messages = self._feed(b"", limit)
            if messages:
                return messages
        elif self._draining:
            raise EndOfStream
        plain = self.idle_timeout is None and self.message_timeout is None and not self._drainable
        receive = self._receive_chunk
        size = self.receive_size
        stats = self.stats
        while True:
            self._reading = True
            try:
                chunk = await receive(size) if plain else await self._read_timed()
            except EndOfStream:
                self._reading = False
                return self._end_of_stream(limit)
            except BaseException as exc:
                self._reading = False
                if isinstance(exc, ReceiveTimeout | BrokenResourceError):
                    stats.count_error(exc)
                raise
            self._reading = False
            stats.bytes_in += len(chunk)
            messages = self._feed(chunk, limit)
            if messages:
                return messages

    async def _receive_yielding(self, max_bytes: int) -> bytes:
        """Read with the transport's receive, which yields: sends may skip yields again."""
        self._unyielded = 0
        return await self.transport_stream.receive(max_bytes)

    async def _receive_socket(self, max_bytes: int) -> bytes:
        """One chunk from anyio's asyncio socket, without its extra yields (see _READ_AHEAD)."""
        fast = self._fast_receive
        assert fast is not None
        transport, protocol, hook = fast
        queue = protocol.read_queue
        with self.transport_stream._receive_guard:  # type: ignore[attr-defined]
            if queue:
                self._unyielded += 1
                if self._unyielded > _YIELD_EVERY:
                    self._unyielded = 0
                    await checkpoint()
                else:
                    await checkpoint_if_cancelled()
            elif not (protocol.read_event.is_set() or transport.is_closing() or protocol.is_at_eof):
                hook.held = 0
                if not transport.is_reading():
                    transport.resume_reading()
                self._unyielded = 0
                await protocol.read_event.wait()
                # Reading goes on: _ReadAhead pauses it if nobody receives.
            if queue:
                chunk: bytes = queue.popleft()
                if len(chunk) > max_bytes:
                    chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
                    queue.appendleft(rest)
                    hook.held -= max_bytes
                elif queue:
                    hook.held -= len(chunk)
                else:
                    hook.held = 0
                    protocol.read_event.clear()
                return chunk
        # Nothing queued and nothing to wait for: the end of the stream, an error,
        # or a closed transport. anyio's receive raises as it maps them.
        return await self.transport_stream.receive(max_bytes)

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
        if budget is not None:
            budget.held += held - self._held
            budget.peak = max(budget.peak, budget.held)
        self._held = held
        self.stats.peak_buffered = max(self.stats.peak_buffered, held)
        if not held:
            self._message_started = None
        if grew and budget is not None and budget.held > budget.limit and self._error is None:
            # Whatever this feed completed is still returned; the next receive raises.
            exc = BufferBudgetExceeded(repr(self.framer), held, budget.held, budget.limit)
            self._fail(exc, [])

    def _fail(self, exc: BaseException, messages: list[Any]) -> None:
        """Record a fatal error: ``messages`` are delivered first, then it is raised."""
        self._error = exc
        self._pending.extend(messages)
        self.stats.count_error(exc)

    def _raise_error(self) -> None:
        error = self._error
        assert error is not None
        if not self._error_raised:
            self._error_raised = True
            raise error
        raise BrokenResourceError("the stream broke earlier") from error

    def _take_pending(self, limit: int | None) -> list[T]:
        pending = self._pending
        if limit == 1 and pending:
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
        self._pending.extend(messages)
        return self._take_pending(limit)

    async def _read_timed(self) -> bytes:
        """Read one chunk under whichever timer applies (and shutdown's drain)."""
        held = self.framer.buffered
        if held:
            timeout = self.message_timeout
            if timeout is None:
                return await self._receive_chunk(self.receive_size)
            if self._message_started is None:
                self._message_started = anyio.current_time()
            with CancelScope(deadline=self._message_started + timeout):
                return await self._receive_chunk(self.receive_size)
            raise MessageTimeout(
                f"a message was not finished within {timeout} s ({held} bytes of it held)",
                timeout=timeout,
                held=held,
            )
        if self._draining:
            raise EndOfStream
        timeout = self.idle_timeout
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        with CancelScope(deadline=deadline) as scope:
            self._wait_scope = scope
            try:
                return await self._receive_chunk(self.receive_size)
            finally:
                self._wait_scope = None
        if self._draining:
            raise EndOfStream
        assert timeout is not None
        raise IdleTimeout(f"no message began within {timeout} s", timeout=timeout, held=0)

    def _enable_drain(self) -> None:
        """Prepare for :meth:`_drain` (a server calls this on each connection)."""
        transport = self.transport_stream
        if sys.platform == "linux" and isinstance(transport, SocketStream):
            # Linux wakes a blocked read with EOF on shutdown(SHUT_RD), on both backends.
            self._drain_socket = transport.extra(SocketAttribute.raw_socket)
        else:
            self._drainable = True

    def _drain(self) -> None:
        """Make receiving end (``EndOfStream``) at the next message boundary.

        A receive waiting for a new message ends now; one inside a message is
        let finish it. Used by a server's graceful shutdown.
        """
        self._draining = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()
        elif (
            self._drain_socket is not None
            and self._reading
            and not self.framer.buffered
            and not (self._fast_receive is not None and self._fast_receive[1].read_queue)
        ):
            # A receive is waiting, with nothing of a message held (nor read
            # ahead, which the fast receive path may have): wake it.
            with contextlib.suppress(OSError):
                self._drain_socket.shutdown(socket.SHUT_RD)

    def _account(self) -> None:
        held = self.framer.buffered
        if held != self._held:
            self._held_changed(held)

    # -- sending -------------------------------------------------------------

    async def send(self, item: T) -> None:
        """Encode one message and write it, waiting while the peer does not read.

        Raises:
            FrameTooLarge: the framer cannot encode the message (nothing is sent).
            anyio.ClosedResourceError: this stream was closed.
            anyio.BrokenResourceError: the transport failed (the peer has gone).
            anyio.BusyResourceError: another task is sending.
        """
        with self._send_guard:
            if self._closed:
                raise ClosedResourceError
            data = self.framer.encode(item)
            await self._send(data)
            stats = self.stats
            stats.messages_out += 1
            stats.bytes_out += len(data)

    async def send_many(self, messages: Iterable[T]) -> None:
        """Encode several messages and write them in one transport write.

        Nothing is sent when one of them cannot be encoded. Raises as
        :meth:`send` does; an empty iterable sends nothing.
        """
        if self._closed:
            raise ClosedResourceError
        encode = self.framer.encode
        parts = [encode(message) for message in messages]
        if parts:
            await self._send_parts(parts)

    async def _send_parts(self, parts: list[bytes]) -> None:
        """Write messages already encoded by this stream's framer, in one write.

        :meth:`send_many` after encoding; :mod:`framing.server` uses it to
        write answers it encoded as they were made.
        """
        with self._send_guard:
            if self._closed:
                raise ClosedResourceError
            data = b"".join(parts)
            await self._send(data)
            stats = self.stats
            stats.messages_out += len(parts)
            stats.bytes_out += len(data)

    async def _send(self, data: bytes) -> None:
        """Write ``data`` to the transport: anyio's send, or the fast path (see _YIELD_EVERY)."""
        fast = self._fast_send
        if fast is None:
            await self.transport_stream.send(data)
            return
        transport, protocol = fast
        self._unyielded += 1
        if (
            self._unyielded > _YIELD_EVERY
            or not protocol.write_event.is_set()
            or protocol.exception is not None
            or transport.is_closing()
            or self.transport_stream._closed  # type: ignore[attr-defined]
        ):
            # Anything unusual, or time to yield: anyio's own send.
            self._unyielded = 0
            await self.transport_stream.send(data)
            return
        await checkpoint_if_cancelled()
        try:
            transport.write(data)
        except RuntimeError as exc:  # as anyio maps it (write after write_eof re-raises)
            if transport.is_closing():
                raise BrokenResourceError from exc
            raise
        if not protocol.write_event.is_set():
            # The kernel did not take it all: wait for the buffer to drain, as anyio does.
            self._unyielded = 0
            await protocol.write_event.wait()
            if self.transport_stream._closed:  # type: ignore[attr-defined]
                raise ClosedResourceError  # aclose() aborted the transport
            if protocol.exception is not None:
                raise BrokenResourceError from protocol.exception

    async def send_eof(self) -> None:
        """Half-close: send end of stream (TCP FIN) and keep receiving.

        Raises:
            NotImplementedError: the transport cannot half-close (TLS in
                standard-compatible mode, for one).
        """
        if self._closed:
            raise ClosedResourceError
        await self.transport_stream.send_eof()

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
            anyio.BusyResourceError: a receive is in progress.
            RuntimeError: messages parsed by the old framer are still undelivered
                (only after an end of stream or an error).
        """
        with self._receive_guard:
            if self._pending:
                raise RuntimeError("messages parsed by the old framer are still undelivered")
            rest = self.framer.detach()
            if rest:
                new.feed(rest, limit=0)
            self.framer = cast("Framer[T]", new)
            self._account()
        return cast("FramedStream[U]", self)

    async def aclose(self) -> None:
        """Close the stream and its transport; later calls raise ``ClosedResourceError``."""
        if not self._closed:
            self._closed = True
            budget = self.buffer_budget
            if budget is not None:
                budget.held -= self._held
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
    if tls or ssl_context is not None:
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
    stream = await anyio.connect_unix(path)
    return FramedStream(
        stream,
        framer,
        receive_size=receive_size,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
    )
