"""Serving framed connections: :func:`serve`, :func:`serve_unix` and :func:`serve_pipelined`.

::

    listeners (IPv4, IPv6, Unix)        one accept loop each
        | accept
        v
    governance      over max_connections (total, or per peer address)? close at once, count refused
        | a task per connection
        v
    handler(FramedStream)               framer.clone(), timeouts, a shared BufferBudget
        | returns or raises
        v
    close; a FramingError or timeout is one log line ("framing.server"), other
    exceptions a traceback; the server and the other connections carry on

Start a server on port 0 and learn where it listens::

    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, handler, LengthPrefixed(2))
        print(server.port, server.addresses)
        ...
        tg.cancel_scope.cancel()        # graceful shutdown

On cancellation the listeners close at once; a connection waiting between
messages sees the end of the stream (its ``async for`` ends), one inside a
message may finish it; handlers get ``grace_period`` seconds to finish writing,
then are cancelled and every connection is closed. ``serve`` returns (by
re-raising the cancellation) only when no task or socket of it is left.

(How a waiting receive is ended: on Linux TCP and Unix sockets, by
``shutdown(SHUT_RD)``, which costs nothing until it is used; elsewhere, and over
TLS, by a cancel scope around each wait between messages. With the former, a
message whose first bytes were read at the very moment of shutdown may end in
:class:`~framing.IncompleteFrame` instead.)
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast, final, overload

import anyio
from anyio import (
    TASK_STATUS_IGNORED,
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import (
    ByteStream,
    SocketAttribute,
    SocketListener,
    SocketStream,
    TaskGroup,
    TaskStatus,
)
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from framing.base import Framer
from framing.errors import FramingError
from framing.stream import (
    DEFAULT_RECEIVE_SIZE,
    BufferBudget,
    FramedStream,
    IdleTimeout,
    ReceiveTimeout,
    StreamStats,
    pause_unread_transport,
)

__all__ = ["ServerInfo", "ServerStats", "serve", "serve_pipelined", "serve_unix"]

T = TypeVar("T")

logger = logging.getLogger("framing.server")

Handler = Callable[[FramedStream[T]], Awaitable[None]]

# Defaults, and why these numbers:
# - 1024 connections: a common default 'ulimit -n' is 1024 descriptors, so a
#   server that needs more raises both. RFC 9210 suggests 150 in total and 25
#   per client for DNS; the DNS server passes those.
DEFAULT_MAX_CONNECTIONS = 1024
# - 64 MiB held by all framers together: a thousand connections each part-way
#   into a 64 KiB message. Beyond it, the connection that would exceed it closes.
DEFAULT_MAX_BUFFERED_TOTAL = 64 * 1024 * 1024
# - 5 s to finish after cancellation: enough to answer what is in flight.
DEFAULT_GRACE_PERIOD = 5.0
# - 10 s for a TLS handshake, done in the connection's own task.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# - 1 s to close a connection politely (TLS close_notify) before aborting it.
CLOSE_TIMEOUT = 1.0
# - 32 requests in flight per pipelined connection.
DEFAULT_MAX_IN_FLIGHT = 32
# serve_pipelined, inline: answers held before they are written, in bytes.
INLINE_FLUSH_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of a server's counters (:attr:`ServerInfo.stats` makes a new one).

    Message and byte counters add up every connection, open or closed.

    Attributes:
        connections_open: connections being served now.
        connections_accepted: connections accepted and served, in all.
        connections_refused: connections closed at once for a limit.
        messages_in: messages received, by all connections.
        messages_out: messages sent.
        bytes_in: bytes read.
        bytes_out: bytes written.
        messages_dropped: responses dropped because the peer had gone.
        errors: errors that ended connections' receiving, by class name
            (``"FrameTooLarge"``, ``"IdleTimeout"``, ``"TLSHandshakeFailed"``...).
        peak_buffered: the most bytes held by all framers together.
    """

    connections_open: int = 0
    connections_accepted: int = 0
    connections_refused: int = 0
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages_dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    peak_buffered: int = 0


_SUMMED = ("messages_in", "messages_out", "bytes_in", "bytes_out", "messages_dropped")


@final
class ServerInfo:
    """Where a running :func:`serve` listens, and its counters.

    ``task_group.start(serve, ...)`` returns it once every listener is bound.

    Attributes:
        addresses: ``(host, port)`` of every IP listener.
        paths: the path of every Unix listener.
    """

    def __init__(
        self, addresses: list[tuple[str, int]], paths: list[str], *, budget: BufferBudget
    ) -> None:
        self.addresses = addresses
        self.paths = paths
        self._budget = budget
        self._open: set[FramedStream[Any]] = set()
        self._per_peer: dict[str, int] = {}
        self._connections = 0
        self._accepted = 0
        self._refused = 0
        self._closed_totals = StreamStats()
        self._errors: dict[str, int] = {}

    def __repr__(self) -> str:
        where = [f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in self.addresses]
        return f"ServerInfo({', '.join(where + self.paths)})"

    @property
    def port(self) -> int:
        """The port of the first IP listener.

        Raises:
            LookupError: the server has no IP listener.
        """
        if not self.addresses:
            raise LookupError("this server has no IP listener")
        return self.addresses[0][1]

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the counters, summed over all connections, open and closed."""
        sums = {name: getattr(self._closed_totals, name) for name in _SUMMED}
        errors = dict(self._errors)
        for stream in self._open:
            for name in _SUMMED:
                sums[name] += getattr(stream.stats, name)
            for kind, count in stream.stats.errors.items():
                errors[kind] = errors.get(kind, 0) + count
        return ServerStats(
            connections_open=self._connections,
            connections_accepted=self._accepted,
            connections_refused=self._refused,
            errors=errors,
            peak_buffered=self._budget.peak,
            **sums,
        )

    def _retire(self, stream: FramedStream[Any]) -> None:
        self._open.discard(stream)
        totals = self._closed_totals
        for name in _SUMMED:
            setattr(totals, name, getattr(totals, name) + getattr(stream.stats, name))
        for kind, count in stream.stats.errors.items():
            self._errors[kind] = self._errors.get(kind, 0) + count


def _peer_of(stream: ByteStream) -> tuple[str, str | None]:
    """Return the peer as text for logs, and its address (``None`` on Unix sockets)."""
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return "unknown peer", None
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), host
    return f"unix:{address or '(unnamed)'}", None


def _flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _flatten(inner)]
    return [exc]


class _Server:
    """The running state of one :func:`serve` call."""

    def __init__(
        self,
        handler: Handler[Any],
        framer: Framer[Any],
        info: ServerInfo,
        *,
        ssl_context: ssl.SSLContext | None,
        tls_standard_compatible: bool,
        handshake_timeout: float,
        idle_timeout: float | None,
        message_timeout: float | None,
        receive_size: int,
        max_connections: int,
        max_connections_per_peer: int | None,
    ) -> None:
        self.handler = handler
        self.framer = framer
        self.info = info
        self.ssl_context = ssl_context
        self.tls_standard_compatible = tls_standard_compatible
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.receive_size = receive_size
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        # One shielded scope per connection: cancelled only after the grace period.
        self.scopes: set[CancelScope] = set()
        self.all_closed = anyio.Event()
        self.all_closed.set()

    async def accept_loop(self, listener: SocketListener, connections: TaskGroup) -> None:
        info = self.info
        while True:
            try:
                raw = await listener.accept()
            except ClosedResourceError:
                return
            except (OSError, BrokenResourceError) as exc:
                # Out of file descriptors, a connection reset before accept...:
                # the listener itself is fine; breathe and go on.
                logger.warning("accept failed: %s", exc)
                await anyio.sleep(0.1)
                continue
            pause_unread_transport(raw)
            peer, address = _peer_of(raw)
            per_peer = info._per_peer.get(address, 0) if address is not None else 0
            if info._connections >= self.max_connections:
                reason = f"{info._connections} connections open, the limit"
            elif (
                self.max_connections_per_peer is not None
                and address is not None
                and per_peer >= self.max_connections_per_peer
            ):
                reason = f"{per_peer} connections open from this address, the limit"
            else:
                reason = ""
            if reason:
                info._refused += 1
                logger.info("refused %s: %s", peer, reason)
                await anyio.aclose_forcefully(raw)
                continue
            info._connections += 1
            info._accepted += 1
            if address is not None:
                info._per_peer[address] = per_peer + 1
            self.all_closed = anyio.Event() if self.all_closed.is_set() else self.all_closed
            connections.start_soon(self.run_connection, raw, peer, address)

    async def run_connection(self, raw: ByteStream, peer: str, address: str | None) -> None:
        info = self.info
        stream: FramedStream[Any] | None = None
        transport = raw
        with CancelScope(shield=True) as scope:
            self.scopes.add(scope)
            try:
                if self.ssl_context is not None:
                    try:
                        with anyio.fail_after(self.handshake_timeout):
                            transport = await TLSStream.wrap(
                                raw,
                                server_side=True,
                                ssl_context=self.ssl_context,
                                standard_compatible=self.tls_standard_compatible,
                            )
                    except (OSError, TimeoutError, BrokenResourceError, EndOfStream) as exc:
                        kind = "TLSHandshakeFailed"
                        info._errors[kind] = info._errors.get(kind, 0) + 1
                        logger.info("closed %s: TLS handshake failed: %r", peer, exc)
                        return
                stream = FramedStream(
                    transport,
                    self.framer.clone(),
                    receive_size=self.receive_size,
                    idle_timeout=self.idle_timeout,
                    message_timeout=self.message_timeout,
                    buffer_budget=info._budget,
                )
                stream._enable_drain()
                info._open.add(stream)
                await self.handler(stream)
            except Exception as exc:
                self.report(peer, exc)
            finally:
                self.scopes.discard(scope)
                await self.close(stream if stream is not None else transport)
                if stream is not None:
                    info._retire(stream)
                info._connections -= 1
                if address is not None:
                    left = info._per_peer[address] - 1
                    if left:
                        info._per_peer[address] = left
                    else:
                        del info._per_peer[address]
                if not info._connections:
                    self.all_closed.set()

    @staticmethod
    def report(peer: str, exc: Exception) -> None:
        """Log why a connection ended: one line for the peer's fault, a traceback for ours."""
        leaves = _flatten(exc)
        if all(isinstance(e, FramingError | ReceiveTimeout) for e in leaves):
            reason = "; ".join(f"{type(e).__name__}: {e}" for e in leaves)
            logger.info("closed %s: %s", peer, reason)
        elif all(
            isinstance(e, BrokenResourceError | ClosedResourceError | EndOfStream | OSError)
            for e in leaves
        ):
            logger.debug("connection %s lost: %r", peer, exc)
        else:
            logger.error("handler failed for %s", peer, exc_info=exc)

    @staticmethod
    async def close(resource: anyio.abc.AsyncResource) -> None:
        """Close politely (TLS close_notify) within CLOSE_TIMEOUT, else abort."""
        with CancelScope(shield=True):
            with anyio.move_on_after(CLOSE_TIMEOUT) as scope:
                with contextlib.suppress(OSError, BrokenResourceError, ClosedResourceError):
                    await resource.aclose()
            if scope.cancelled_caught:
                await anyio.aclose_forcefully(resource)

    async def shut_down(self, grace_period: float) -> None:
        """Drain every connection, wait up to ``grace_period``, then cancel what is left."""
        for stream in list(self.info._open):
            stream._drain()
        with anyio.move_on_after(grace_period):
            await self.all_closed.wait()
        for scope in list(self.scopes):
            scope.cancel()
        await self.all_closed.wait()


async def _bind(
    host: str | Sequence[str] | None, port: int, *, backlog: int, reuse_port: bool
) -> list[SocketListener]:
    """Bind every host (all interfaces for ``None``), on one port when port is 0."""
    if host is None or isinstance(host, str):
        multi = await anyio.create_tcp_listener(
            local_host=host, local_port=port, backlog=backlog, reuse_port=reuse_port
        )
        return _flatten_listeners([multi])
    for _ in range(10):
        listeners: list[SocketListener] = []
        bound = port
        try:
            for name in host:
                multi = await anyio.create_tcp_listener(
                    local_host=name, local_port=bound, backlog=backlog, reuse_port=reuse_port
                )
                listeners.extend(_flatten_listeners([multi]))
                if not bound:
                    bound = multi.extra(SocketAttribute.local_port)
        except OSError:
            for listener in listeners:
                await listener.aclose()
            if port:
                raise
            continue  # the port 0 gave on one host was taken on another: again
        return listeners
    raise OSError(f"could not bind one free port on all of {list(host)}")


def _flatten_listeners(
    listeners: Iterable[SocketListener | MultiListener[SocketStream]],
) -> list[SocketListener]:
    out: list[SocketListener] = []
    for listener in listeners:
        if isinstance(listener, MultiListener):
            out.extend(_flatten_listeners(listener.listeners))  # type: ignore[arg-type]
        else:
            out.append(listener)
    return out


async def serve(
    handler: Callable[[FramedStream[T]], Awaitable[None]],
    framer: Framer[T],
    *,
    host: str | Sequence[str] | None = "127.0.0.1",
    port: int = 0,
    listeners: Sequence[SocketListener | MultiListener[SocketStream]] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    idle_timeout: float | None = None,
    message_timeout: float | None = None,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_peer: int | None = None,
    max_buffered_total: int = DEFAULT_MAX_BUFFERED_TOTAL,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    backlog: int = 65536,
    reuse_port: bool = False,
    task_status: TaskStatus[ServerInfo] = TASK_STATUS_IGNORED,
) -> None:
    """Serve framed connections until cancelled, each in its own task.

    Every connection gets ``framer.clone()`` (so ``framer`` is only a template)
    and is handed to ``handler`` as a :class:`~framing.stream.FramedStream`;
    when the handler returns or raises, the connection is closed. A
    :class:`~framing.FramingError` or :class:`~framing.stream.ReceiveTimeout`
    escaping the handler is the peer's fault: one line is logged on the
    ``framing.server`` logger (peer address and reason). Any other exception
    is logged with its traceback. Neither stops the server nor touches the
    other connections.

    Limits: a connection accepted while ``max_connections`` are open, or while
    ``max_connections_per_peer`` are open from its address, is closed at once,
    counted as refused and logged. The framers of all connections share a
    :class:`~framing.stream.BufferBudget` of ``max_buffered_total`` bytes: the
    connection whose read would take the total over it fails with
    :class:`~framing.stream.BufferBudgetExceeded` (and is closed), so that many
    slow peers cannot pin many times ``max_size``.

    Args:
        handler: called with each connection's stream.
        framer: the template framer.
        host: the address to listen on, several, or ``None`` for all interfaces
            (IPv4 and IPv6). With port 0 and several hosts, all share one port.
        port: the port; 0 picks a free one (see :attr:`ServerInfo.port`).
        listeners: listeners to serve instead of binding ``host``/``port``
            (``serve`` closes them when it ends).
        ssl_context: serve TLS with this context (handshake in each
            connection's task, within ``handshake_timeout`` seconds).
        tls_standard_compatible: send and expect TLS ``close_notify``.
        handshake_timeout: seconds for a TLS handshake.
        idle_timeout: seconds a connection may wait for a message to begin.
        message_timeout: seconds a begun message has to finish.
        receive_size: the most bytes read at once per connection.
        max_connections: connections served at once, in all.
        max_connections_per_peer: connections served at once per peer address
            (``None``: no limit).
        max_buffered_total: bytes all framers may hold together.
        grace_period: seconds handlers get to finish after cancellation.
        backlog: the listen queue's length.
        reuse_port: set ``SO_REUSEPORT`` on the listening sockets.
        task_status: for ``task_group.start``: receives the :class:`ServerInfo`.

    Raises:
        OSError: a listener could not be bound.
    """
    if listeners is None:
        bound = await _bind(host, port, backlog=backlog, reuse_port=reuse_port)
    else:
        bound = _flatten_listeners(listeners)
    addresses: list[tuple[str, int]] = []
    paths: list[str] = []
    for listener in bound:
        try:
            local = listener.extra(SocketAttribute.local_address)
        except anyio.TypedAttributeLookupError:
            continue
        if isinstance(local, tuple):
            addresses.append((str(local[0]), int(local[1])))
        else:
            paths.append(str(local))
    info = ServerInfo(addresses, paths, budget=BufferBudget(max_buffered_total))
    server = _Server(
        handler,
        framer,
        info,
        ssl_context=ssl_context,
        tls_standard_compatible=tls_standard_compatible,
        handshake_timeout=handshake_timeout,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
        receive_size=receive_size,
        max_connections=max_connections,
        max_connections_per_peer=max_connections_per_peer,
    )
    async with anyio.create_task_group() as connections:
        try:
            async with anyio.create_task_group() as accepting:
                for listener in bound:
                    accepting.start_soon(server.accept_loop, listener, connections)
                task_status.started(info)
                await anyio.sleep(math.inf)
        finally:
            # Shielded: this is the graceful part of a cancellation.
            with CancelScope(shield=True):
                for listener in bound:
                    await anyio.aclose_forcefully(listener)
                await server.shut_down(grace_period)


async def serve_unix(
    handler: Callable[[FramedStream[T]], Awaitable[None]],
    framer: Framer[T],
    *,
    path: str | os.PathLike[str],
    mode: int | None = None,
    **options: Any,
) -> None:
    """Serve framed connections on a Unix socket; as :func:`serve` otherwise.

    Args:
        handler: called with each connection's stream.
        framer: the template framer.
        path: where to create the socket (it must not exist).
        mode: permissions to set on the socket file.
        **options: any keyword of :func:`serve` but ``host``, ``port`` and
            ``listeners`` (``max_connections_per_peer`` does not apply: Unix
            peers have no address).
    """
    listener = await anyio.create_unix_listener(path, mode=mode)
    await serve(handler, framer, listeners=[listener], **options)


# What serve_pipelined accepts: a coroutine function, or a plain one.
_Respond = Callable[[T], Awaitable[T | None]] | Callable[[T], T | None]


@overload
async def serve_pipelined(
    stream: FramedStream[T],
    respond: Callable[[T], Awaitable[T | None]],
    *,
    max_in_flight: int = ...,
    inline: Literal[False] | None = ...,
) -> None: ...


@overload
async def serve_pipelined(
    stream: FramedStream[T],
    respond: Callable[[T], T | None],
    *,
    max_in_flight: int = ...,
    inline: Literal[True] | None = ...,
) -> None: ...


async def serve_pipelined(
    stream: FramedStream[T],
    respond: _Respond[T],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    inline: bool | None = None,
) -> None:
    """Answer pipelined requests on one connection until the peer is done.

    Two ways to answer, chosen once, from ``respond``:

    - **Concurrently**, when ``respond`` is a coroutine function (``async
      def``): for answers that wait (a database, an upstream server). Requests
      are read as they come (:meth:`~framing.stream.FramedStream.receive_many`)
      and each runs ``await respond(request)`` in its own task, at most
      ``max_in_flight`` at once (reading waits while that many are running).
      Responses are written in the order they complete, not the order asked
      (RFC 7766 6.2.1.1), by one writer that sends together, in one write,
      every response ready at that moment.
    - **Inline**, when ``respond`` is a plain function: for answers that never
      wait (a cache, an authoritative zone), where a task per request would
      cost more than the answer. Every request one read brought is answered in
      arrival order, and the answers are written together in one
      :meth:`~framing.stream.FramedStream.send_many` before the next read: no
      task, one system call per batch each way. ``max_in_flight`` does not
      apply; what is held at once is one read's requests (at most the stream's
      ``receive_size`` bytes of them) and at most ``INLINE_FLUSH_SIZE`` (64 KiB)
      of answers plus one: a batch of large answers is written in parts.

    The choice is :func:`inspect.iscoroutinefunction` (which sees through
    bound methods and :func:`functools.partial`), also applied to a callable
    object's ``__call__``. A plain callable that returns an awaitable (a
    ``lambda`` around a coroutine function) is not recognised: pass
    ``inline=False`` for it (``inline=True`` forces the inline way). Left
    unrecognised, its first answer raises :class:`TypeError` rather than being
    written.

    ``respond`` returning ``None`` means no reply. Ends, either way:

    - At the peer's clean end of stream: returns once every request read has
      been answered and written (the peer may have half-closed).
    - When the peer has gone (a reset; a failed write): in-flight requests are
      cancelled and pending responses dropped (RFC 7766 6.2.4), counted in
      ``stream.stats.messages_dropped``; returns normally.
    - On an error from receiving (a :class:`~framing.FramingError`, a
      :class:`~framing.stream.MessageTimeout`): answers and writes what was read
      before it, then raises it. An :class:`~framing.stream.IdleTimeout` while
      requests are in flight is not idleness: reading goes on; with none (always,
      inline), it is raised.
    - An exception from ``respond`` propagates; responses not yet written are
      abandoned (concurrently, the other requests in flight are cancelled).
      Inline, ``respond`` may raise a :class:`~framing.FramingError` (say
      :class:`~framing.MalformedFrame`) for a request that breaks the protocol
      in a way the framer cannot see: it is treated as one from receiving
      (counted in ``stream.stats.errors``; the answers to the requests before
      it are written, then it is raised, and :func:`serve` logs one line).

    Args:
        stream: the connection; not closed here.
        respond: turns a request into its response, or ``None``.
        max_in_flight: requests handled at once on this connection
            (concurrent way only).
        inline: ``None`` to choose from ``respond`` as above; ``True`` or
            ``False`` to say which.

    Raises:
        ValueError: ``max_in_flight`` is less than 1.
        TypeError: ``respond``, answering inline, returned an awaitable.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
    if inline is None:
        inline = not _is_coroutine_function(respond)
    if inline:
        await _answer_inline(stream, cast("Callable[[T], T | None]", respond))
    else:
        pipe = _Pipeline(stream, cast("Callable[[T], Awaitable[T | None]]", respond), max_in_flight)
        await pipe.run()


def _is_coroutine_function(function: Callable[..., object]) -> bool:
    """Whether calling ``function`` makes a coroutine: functions, methods, partials, objects."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    )


def _refuse_awaitable(respond: Callable[..., object], answer: object) -> None:
    """Raise if ``respond``, called inline, turned out to return an awaitable.

    Checked on a connection's first answer only: a function that returns a
    coroutine does so every time, and checking once costs nothing per request.
    """
    if inspect.isawaitable(answer):
        if inspect.iscoroutine(answer):
            answer.close()  # never to be awaited: say so now, not in a warning
        raise TypeError(
            f"{respond!r} returned an awaitable, but is not a coroutine function: "
            "pass inline=False to serve_pipelined to have it awaited"
        )


async def _answer_inline(stream: FramedStream[T], respond: Callable[[T], T | None]) -> None:
    """The inline way of :func:`serve_pipelined`: one read, answers in order, written together.

    Answers are encoded as they are made and written once the read's requests
    are all answered, or sooner, as soon as ``INLINE_FLUSH_SIZE`` bytes of them
    are ready: what is held never grows with the answers' sizes.
    """
    receive_many = stream.receive_many
    checked = False
    while True:
        # Everything read before has been answered and written, so nothing is
        # pending here: errors from receiving need no flush, only to be raised
        # (IdleTimeout, FramingError, MessageTimeout) or to end the loop.
        try:
            requests = await receive_many()
        except EndOfStream:
            return
        except (BrokenResourceError, ClosedResourceError):
            return  # the peer has gone, with every answer already written
        encode = stream.framer.encode
        parts: list[bytes] = []
        held = 0
        for index, request in enumerate(requests):
            try:
                answer = respond(request)
            except FramingError as exc:
                # The request broke the protocol's framing, as bytes from the peer
                # can: like an error from receiving, answer what came before, then raise.
                stream.stats.count_error(exc)
                if parts:
                    await _write(stream, parts)
                raise
            if answer is None:
                continue
            if not checked:
                checked = True
                _refuse_awaitable(respond, answer)
            part = encode(answer)
            parts.append(part)
            held += len(part)
            if held >= INLINE_FLUSH_SIZE:
                if not await _write(stream, parts):
                    # The requests not yet answered are dropped with it.
                    stream.stats.messages_dropped += len(requests) - index - 1
                    return
                parts = []
                held = 0
        if parts and not await _write(stream, parts):
            return


async def _write(stream: FramedStream[T], parts: list[bytes]) -> bool:
    """Write encoded answers in one write; if the peer has gone, count them dropped: False."""
    try:
        await stream._send_parts(parts)  # the package's own stream
    except (BrokenResourceError, ClosedResourceError):
        stream.stats.messages_dropped += len(parts)
        return False
    return True


class _Pipeline:
    """The state shared by the reader, the request tasks and the writer.

    A request holds one of ``max_in_flight`` slots from the moment it is read
    until its response is written (or it turned out to need none), so that a
    peer that sends but does not read stalls the reader instead of piling up
    responses: nothing grows without bound.
    """

    def __init__(
        self,
        stream: FramedStream[Any],
        respond: Callable[[Any], Awaitable[Any]],
        max_in_flight: int,
    ) -> None:
        self.stream = stream
        self.respond = respond
        self.slots = anyio.Semaphore(max_in_flight)
        self.outstanding = 0  # read, and not yet answered on the wire or found answerless
        self.outbox: list[Any] = []
        self.wake = anyio.Event()
        self.reading = True

    async def run(self) -> None:
        error: FramingError | ReceiveTimeout | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.write, tg)
            try:
                await self.read(tg)
            except (BrokenResourceError, ClosedResourceError):
                self.peer_gone(tg)
            except (FramingError, ReceiveTimeout) as exc:
                error = exc
            finally:
                self.reading = False
                self.wake.set()
        if error is not None:
            raise error

    async def read(self, tg: TaskGroup) -> None:
        stream = self.stream
        slots = self.slots
        while True:
            try:
                requests = await stream.receive_many()
            except EndOfStream:
                return
            except IdleTimeout:
                if self.outstanding:
                    continue  # not idle: the peer is waiting for answers
                raise
            for request in requests:
                await slots.acquire()
                self.outstanding += 1
                tg.start_soon(self.handle, request)

    async def handle(self, request: Any) -> None:
        queued = False
        try:
            response = await self.respond(request)
            if response is not None:
                self.outbox.append(response)
                queued = True
        finally:
            if not queued:
                self.done(1)
        self.wake.set()

    def done(self, count: int) -> None:
        self.outstanding -= count
        for _ in range(count):
            self.slots.release()

    async def write(self, tg: TaskGroup) -> None:
        stream = self.stream
        while True:
            while not self.outbox:
                if not self.reading and not self.outstanding:
                    return
                await self.wake.wait()
                self.wake = anyio.Event()
            batch, self.outbox = self.outbox, []
            try:
                await stream.send_many(batch)
            except (BrokenResourceError, ClosedResourceError):
                self.outbox[:0] = batch
                self.peer_gone(tg)
                return
            self.done(len(batch))

    def peer_gone(self, tg: TaskGroup) -> None:
        """Drop pending responses and cancel the requests still being handled."""
        self.stream.stats.messages_dropped += self.outstanding
        self.outbox.clear()
        self.reading = False
        tg.cancel_scope.cancel()
