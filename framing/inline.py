"""Serving with a plain function per request, no task per connection: :func:`serve_inline`.

::

    listening socket --accept--> a protocol object per connection (no task)
        | the loop calls back with each read
        v
    framer.feed(chunk) --> respond(request), in order --> one write of every answer

:func:`framing.serve` runs an ``async def`` handler in a task per connection:
the handler may wait for anything, at the price of a suspended task (about 20
objects and 4 KB in anyio and asyncio) held by every connection, idle or not,
and a task started and torn down for each. Many protocols need no such
handler: each request is answered from memory (an echo, a cache, an
authoritative zone), which is the inline way of
:func:`~framing.pipeline.serve_pipelined`. :func:`serve_inline` serves exactly
that, on asyncio and uvloop, with no task at all: the loop's transport calls a
small protocol object back with each read, the framer splits it, ``respond``
answers every request it completed, in order, and the answers go out in one
write before the next read. An idle connection holds its transport, that
object and its framer.

It keeps the promises of :func:`~framing.serve`: limits and load shedding (a
newcomer at ``max_connections`` sheds the connection that has waited longest
for its next byte; refused only when every one is busy), the shared
``max_buffered_total``, ``idle_timeout`` and ``message_timeout`` (RFC 7766
6.2.3) with the same errors and log lines, backpressure (a peer that does not
read its answers is not read from until it does), out of descriptors (the
backlog closed at once), the peer's faults told apart from ``respond``'s, and a
graceful shutdown (``grace_period``). Half-close: when the peer ends its side,
what it sent last is answered, then the connection closes.

Behind proxies (``proxy_protocol``) each connection reads its PROXY header with
:class:`~framing.proxy.ProxyHeaderParser` before the framer sees a byte. Where
there is no such transport (trio), or with TLS, :func:`serve_inline` runs
:func:`~framing.serve` with :func:`~framing.pipeline.serve_pipelined` as the
handler, with the same results.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar, cast, final

import anyio
from anyio import TASK_STATUS_IGNORED, CancelScope
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskStatus
from anyio.streams.stapled import MultiListener

from framing import transport as _transport
from framing.base import BytesLike, Framer
from framing.errors import (
    BufferBudgetExceeded,
    FramingError,
    ProxyHeaderError,
)
from framing.pipeline import (
    INLINE_FLUSH_SIZE,
    _is_coroutine_function,
    _refuse_awaitable,
    serve_pipelined,
)
from framing.proxied import forged_header, header_too_late
from framing.proxy import ProxyHeader, ProxyHeaderParser
from framing.server import (
    _OUT_OF_RESOURCES,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_BUFFERED_TOTAL,
    DEFAULT_MAX_CONNECTIONS,
    ProxySource,
    ServerInfo,
    ServerStats,
    _bind,
    _client_of,
    _describe_peer,
    _DescriptorReserve,
    _flatten_listeners,
    _RateLimitedLog,
    _reason,
    _trusted_proxies,
    _trusts,
    serve,
)
from framing.stream import (
    DEFAULT_RECEIVE_SIZE,
    BufferBudget,
    FramedStream,
    check_stream_options,
    idle_timed_out,
    message_timed_out,
)

__all__ = ["serve_inline"]

T = TypeVar("T")

logger = logging.getLogger("framing.server")

# The transport's write high-water mark, as framing.transport sets it: above it
# the peer is not reading its answers, and it is not read from until it does.
_WRITE_HIGH = _transport._WRITE_HIGH
_CLOSE_LINGER = _transport.CLOSE_LINGER
# The clock of the timers: the loop's (asyncio's and uvloop's loop.time() read the
# same monotonic clock), called without a Python frame on each read.
_now = time.monotonic


@final
class _Listening(socket.socket):
    """A listening socket that, out of descriptors, closes its backlog at once.

    asyncio's loop accepts by calling this object's ``accept``; when that fails
    for want of descriptors, asyncio would stop accepting for a second and
    leave the backlog waiting. Here the reserved descriptor is given up, every
    waiting connection is accepted and closed, and the loop is told there is
    nothing more to accept (``BlockingIOError``). (uvloop accepts in libuv,
    which does the same with a reserved descriptor of its own, silently: see
    :meth:`_InlineServer.watch_descriptors`.)
    """

    server: _InlineServer

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            self.server.out_of_descriptors(self, exc)
            raise BlockingIOError from exc


@final
class _Connection(asyncio.BufferedProtocol):
    """One connection: the loop calls it back; it feeds the framer and answers."""

    __slots__ = (
        "address",
        "closing",
        "ended",
        "failure",
        "framer",
        "gate",
        "held",
        "message_started",
        "peer",
        "pending",
        "proxy",
        "server",
        "shed",
        "since",
        "timer",
        "transport",
        "write_paused",
    )

    def __init__(self, server: _InlineServer) -> None:
        self.server = server
        self.framer: Framer[Any] = server.framer.clone()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.address: str | None = None
        self.held = 0  # what the framer held after the last read, charged to the budget
        self.since = _now()  # when the last byte came (or the connection)
        self.message_started: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.write_paused = False
        # Requests of a read not yet answered: their answers would have gone over
        # the write high-water mark; answered when the peer has read some.
        self.pending: list[Any] | None = None
        self.ended = False  # the peer ended its side: close once all is answered
        self.failure: BaseException | None = None  # the peer's fault, told once all is
        self.closing = False
        self.shed = False
        # Behind proxies: the PROXY header awaited from a trusted proxy (its parser),
        # True for a direct client's first read (a PROXY signature in it is refused),
        # None once that is settled or when the server trusts no proxy.
        self.gate: ProxyHeaderParser | bool | None = None
        self.proxy: str | None = None  # the trusted proxy's own address, as a peer

    # -- the loop calls these ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport instances.
        self.transport = tr = cast("asyncio.Transport", transport)
        server = self.server
        peer = tr.get_extra_info("peername")
        self.peer, self.address = _describe_peer(_transport.address(peer or ""))
        if server.behind_proxies:
            if _trusts(server.proxies, server.proxy_unix, self.address):
                # Counted per peer once its header names the client.
                self.proxy, self.address = self.address or "", None
                self.gate = ProxyHeaderParser(optional=server.proxy_optional)
            else:
                self.gate = True
        if not server.admit(self):
            self.closing = True
            tr.abort()
            return
        tr.set_write_buffer_limits(high=_WRITE_HIGH)
        if server.idle_timeout is not None:
            self.timer = server.loop.call_at(self.since + server.idle_timeout, self.check_time)
        if self.proxy is not None:
            server.loop.call_at(self.since + server.handshake_timeout, self.header_late)
        if server.draining:
            self.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.view

    def buffer_updated(self, nbytes: int) -> None:
        server = self.server
        server.bytes_in += nbytes
        self.since = _now()
        if self.gate is not None:
            self.pass_gate(server.view[:nbytes])
            return
        self.received(server.view[:nbytes])

    def received(self, data: BytesLike) -> None:
        """Feed the framer a read, answer what it completed."""
        server = self.server
        framer = self.framer
        error: BaseException | None = None
        try:
            requests = framer.feed(data)
        except FramingError as exc:
            requests, error = exc.messages, exc
            exc.messages = []
        held = framer.buffered
        if held != self.held:
            error = self.held_changed(held) or error
        if requests:
            server.messages_in += len(requests)
            if held and server.message_timeout is not None:
                self.message_started = self.since  # what is left began in this read
            self.answer(requests)
        if error is not None:
            self.fail(error)
        elif server.draining and not held and self.pending is None:
            self.close()

    def eof_received(self) -> bool:
        if isinstance(self.gate, ProxyHeaderParser):
            parser, self.gate = self.gate, None
            if not parser.buffered:
                self.close()  # a proxy's connect-only health check: nothing to serve
                return True
            try:
                header, rest = parser.feed_eof()
            except ProxyHeaderError as exc:
                self.fail(exc)
                return True
            if not self.through_proxy(header) or self.closing:
                return True
            if rest:
                self.received(rest)
        error: BaseException | None = None
        try:
            requests = self.framer.feed_eof()
        except FramingError as exc:
            requests, error = exc.messages, exc
        if requests:
            self.server.messages_in += len(requests)
            self.answer(requests)
        if error is not None:
            self.fail(error)
        elif self.pending is None:
            self.close()
        else:
            self.ended = True  # closed once what waits for the peer to read is answered
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("connection %s lost: %r", self.peer, exc)
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.pending is not None:  # the peer went before reading their answers
            self.server.messages_dropped += len(self.pending)
            self.pending = None
        self.server.retire(self)

    def pause_writing(self) -> None:
        # The peer does not read its answers: read no more of its requests until it does.
        self.write_paused = True
        if not self.closing:
            self.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.write_paused = False
        self.since = _now()  # busy until now: the idle clock starts again
        if self.closing:
            return
        pending = self.pending
        if pending is not None:
            self.pending = None
            self.answer(pending)
            if self.pending is not None or self.closing:
                return  # paused again, or done
            if self.failure is not None:
                self.fail(self.failure)
                return
            if self.ended or (self.server.draining and not self.held):
                self.close()
                return
        self.transport.resume_reading()  # type: ignore[union-attr]

    # -- behind proxies ------------------------------------------------------------

    def pass_gate(self, data: memoryview) -> None:
        """A read before the PROXY question is settled: read the header, or refuse one."""
        gate = self.gate
        if gate is True:
            self.gate = None
            forged = forged_header(data)
            if forged is not None:
                self.fail(forged)
                return
            self.received(data)
            return
        assert isinstance(gate, ProxyHeaderParser)
        try:
            result = gate.feed(data)
        except ProxyHeaderError as exc:
            self.gate = None
            self.fail(exc)
            return
        if result is None:
            return  # more of the header to come (bounded: the parser's max_size)
        self.gate = None
        if self.through_proxy(result[0]) and result[1]:
            self.received(result[1])

    def through_proxy(self, header: ProxyHeader | None) -> bool:
        """The header is read: count the connection under its client; False if refused."""
        self.peer, self.address = _client_of(header, self.peer, self.proxy)
        if not self.server.admit(self, entered=True):
            self.closing = True
            self.transport.abort()  # type: ignore[union-attr]
            return False
        return True

    def header_late(self) -> None:
        """``handshake_timeout`` after the connection: is its PROXY header whole yet?"""
        gate = self.gate
        if isinstance(gate, ProxyHeaderParser) and not self.closing:
            self.gate = None
            self.fail(header_too_late(gate, self.server.handshake_timeout))

    # -- the work ------------------------------------------------------------------

    def held_changed(self, held: int) -> BaseException | None:
        """Charge the budget for what the framer holds now; the error if it is over."""
        server = self.server
        grew = held > self.held
        over = server.budget.charge(held - self.held)
        self.held = held
        if not held:
            self.message_started = None
        elif self.message_started is None and server.message_timeout is not None:
            self.message_started = self.since
            deadline = self.since + server.message_timeout
            if self.timer is None or self.timer.when() > deadline:
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = server.loop.call_at(deadline, self.check_time)
        if grew and over:
            budget = server.budget
            return BufferBudgetExceeded(repr(self.framer), held, budget.held, budget.limit)
        return None

    def answer(self, requests: list[Any]) -> None:
        """Answer ``requests`` in order, written together, in parts of ``INLINE_FLUSH_SIZE``.

        When a part takes the transport over its high-water mark (the peer is
        not reading), the requests not yet answered wait in ``pending`` until
        it has read some (``resume_writing``): what is held stays one read's
        requests and about one part of answers.
        """
        if self.closing:
            self.server.messages_dropped += len(requests)
            return
        if self.pending is not None:
            self.pending.extend(requests)  # in order, after those already waiting
            return
        server = self.server
        respond = server.respond
        encode = self.framer.encode
        parts: list[bytes] = []
        size = 0
        for index, request in enumerate(requests):
            try:
                answer = respond(request)
                if answer is None:
                    continue
                if not server.checked:
                    _refuse_awaitable(respond, answer, _REMEDY)
                    server.checked = True
                part = encode(answer)
            except FramingError as exc:
                # The request broke the protocol in a way the framer cannot see:
                # the peer's fault, as from receiving; what came before is written.
                self.write(parts)
                self.fail(exc)
                return
            except Exception as exc:  # respond's own bug: logged, counted, that connection ends
                server.handler_errors += 1
                logger.error("handler failed for %s", self.peer, exc_info=exc)
                self.closing = True
                self.transport.abort()  # type: ignore[union-attr]
                return
            parts.append(part)
            size += len(part)
            if size >= INLINE_FLUSH_SIZE:
                self.write(parts)
                parts, size = [], 0
                if self.write_paused and index + 1 < len(requests):
                    self.pending = requests[index + 1 :]
                    return
        if parts:  # self.write(parts), in line: most reads end here
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            server.messages_out += len(parts)
            server.bytes_out += len(data)
            self.transport.write(data)  # type: ignore[union-attr]

    def write(self, parts: list[bytes]) -> None:
        if not parts:
            return
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        server = self.server
        server.messages_out += len(parts)
        server.bytes_out += len(data)
        self.transport.write(data)  # type: ignore[union-attr]

    def fail(self, exc: BaseException) -> None:
        """The peer broke the framing (or timed out): one line, counted; close."""
        if self.closing:
            return  # ended already (respond's own error, say): one reason is enough
        if self.pending is not None:
            # Answers to the requests before the fault still wait for the peer to
            # read: they go first (reading is paused, so nothing else comes).
            self.failure = exc
            return
        server = self.server
        kind = type(exc).__name__
        server.errors[kind] = server.errors.get(kind, 0) + 1
        logger.info("closed %s: %s: %s", self.peer, kind, exc)
        self.close()

    def close(self) -> None:
        """Close once what was written is sent; abort if that takes over CLOSE_LINGER."""
        if self.closing:
            return
        self.closing = True
        transport = self.transport
        assert transport is not None
        transport.close()
        if transport.get_write_buffer_size():
            self.server.loop.call_later(_CLOSE_LINGER, transport.abort)

    def check_time(self) -> None:
        """The timer: close on an expired timeout, or set it for the next deadline."""
        self.timer = None
        if self.closing:
            return
        server = self.server
        now = _now()
        idle = server.idle_timeout
        if self.write_paused:
            self.since = now  # busy writing, not idle: wait on
        deadline = math.inf
        if self.held and server.message_timeout is not None and self.message_started is not None:
            limit = self.message_started + server.message_timeout
            if now >= limit:
                self.fail(message_timed_out(server.message_timeout, self.held))
                return
            deadline = limit
        if idle is not None:
            limit = self.since + idle
            if now >= limit:
                self.fail(idle_timed_out(idle, self.held))
                return
            deadline = min(deadline, limit)
        if deadline < math.inf:
            self.timer = server.loop.call_at(deadline, self.check_time)

    def waiting_since(self) -> float | None:
        """Since when it waits for its peer's next byte; ``None`` while busy or closing."""
        if self.closing or self.shed or self.write_paused or self.pending is not None:
            return None
        return self.since


class _InlineServer:
    """The running state of one :func:`serve_inline` on an asyncio loop."""

    def __init__(
        self,
        respond: Callable[[Any], Any],
        framer: Framer[Any],
        *,
        idle_timeout: float | None,
        message_timeout: float | None,
        receive_size: int,
        max_connections: int,
        max_connections_per_peer: int | None,
        max_buffered_total: int,
        proxy_protocol: Sequence[ProxySource] = (),
        proxy_protocol_optional: bool = False,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.respond = respond
        self.proxies, self.proxy_unix = _trusted_proxies(proxy_protocol)
        self.behind_proxies = bool(self.proxies) or self.proxy_unix
        self.proxy_optional = proxy_protocol_optional
        self.handshake_timeout = handshake_timeout
        self.framer = framer
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.budget = BufferBudget(max_buffered_total)
        self.loop = asyncio.get_running_loop()
        # One receive buffer for every connection: each read is fed to its framer
        # (which copies what it keeps) before the loop reads again.
        self.view = memoryview(bytearray(receive_size))
        self.connections: set[_Connection] = set()
        self.per_peer: dict[str, set[_Connection]] = {}
        self.shedding = 0
        self.draining = False
        self.checked = False
        self.accepted = self.refused = self.shed_count = self.handler_errors = 0
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.messages_dropped = 0
        self.errors: dict[str, int] = {}
        self.all_closed = asyncio.Event()
        self.all_closed.set()
        self.reserve = _DescriptorReserve()
        self.descriptors_log = _RateLimitedLog()

    def stats(self) -> ServerStats:
        return ServerStats(
            connections_open=len(self.connections),
            connections_accepted=self.accepted,
            connections_refused=self.refused,
            connections_shed=self.shed_count,
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            messages_dropped=self.messages_dropped,
            errors=dict(self.errors),
            handler_errors=self.handler_errors,
            peak_buffered=self.budget.peak,
        )

    def is_shedding(self) -> bool:
        return self.shedding > 0 or len(self.connections) >= self.max_connections

    # -- the table -----------------------------------------------------------------

    def admit(self, connection: _Connection, *, entered: bool = False) -> bool:
        """Make room for a newcomer, shedding if need be, and enter it; ``False``: refuse.

        ``entered``: a connection from a trusted proxy, in the table already, whose
        PROXY header has named its client: it is counted per peer now.
        """
        address = connection.address
        open_now = len(self.connections) - self.shedding
        victims: Iterable[_Connection] = ()
        if not entered and open_now >= self.max_connections:
            reason = f"{open_now} connections open, the limit"
            victims = self.connections
        elif (
            self.max_connections_per_peer is not None
            and address is not None
            and (mine := sum(not c.shed for c in self.per_peer.get(address, ())))
            >= self.max_connections_per_peer
        ):
            reason = f"{mine} connections open from {address}, the limit"
            victims = self.per_peer[address]
        if victims:
            victim: _Connection | None = None
            best = math.inf
            for candidate in victims:
                since = candidate.waiting_since()
                if since is not None and since < best:
                    victim, best = candidate, since
            if victim is None:
                self.refused += 1
                logger.info("refused %s: %s, every one busy", connection.peer, reason)
                if entered:
                    self.accepted -= 1  # refused after all, not served
                return False
            victim.shed = True
            self.shedding += 1
            self.shed_count += 1
            logger.info(
                "shed %s (waited %.1f s for its next byte) to serve %s: %s",
                victim.peer,
                _now() - best,
                connection.peer,
                reason,
            )
            victim.close()
        if address is not None:
            self.per_peer.setdefault(address, set()).add(connection)
        if entered:
            return True
        self.connections.add(connection)
        self.accepted += 1
        self.all_closed.clear()
        return True

    def retire(self, connection: _Connection) -> None:
        if connection not in self.connections:
            return  # refused: never entered
        self.connections.discard(connection)
        if connection.shed:
            self.shedding -= 1
        address = connection.address
        same = None if address is None else self.per_peer.get(address)
        if same is not None:
            same.discard(connection)
            if not same:
                del self.per_peer[address]  # type: ignore[arg-type]
        if connection.held:
            self.budget.charge(-connection.held)
            connection.held = 0
        if not self.connections:
            self.all_closed.set()

    # -- out of descriptors ------------------------------------------------------

    def out_of_descriptors(self, listening: socket.socket, exc: OSError) -> None:
        """Close every waiting connection with the reserve, as serve does; log once a second."""
        closed = self.reserve.close_backlog(listening)
        self.refused += closed
        self.descriptors_log.log(
            logging.WARNING,
            "cannot accept connections (%s): closed %d waiting connections unserved",
            _reason(exc),
            closed,
        )

    def watch_descriptors(self) -> None:
        """Where the loop accepts in C (uvloop), tell when descriptors run out, once a second.

        libuv, like ``serve``, closes the backlog at once with a descriptor it keeps
        in reserve, but silently: a probe a second (open a descriptor, close it)
        finds the condition and logs it with its reason. The connections it
        closed are not counted (``connections_refused``): libuv does not say.
        """
        if self.draining:
            return
        try:
            os.close(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self.descriptors_log.log(
                    logging.WARNING,
                    "cannot accept connections (%s): connections arriving now are closed unserved",
                    _reason(exc),
                )
        self.loop.call_later(1.0, self.watch_descriptors)

    # -- shutting down -------------------------------------------------------------

    async def shut_down(self, grace_period: float) -> None:
        """Close what waits between messages now; the rest within ``grace_period``."""
        self.draining = True
        for connection in list(self.connections):
            if not connection.held and connection.waiting_since() is not None:
                connection.close()
        with anyio.move_on_after(grace_period):
            await self.all_closed.wait()
        for connection in list(self.connections):
            connection.closing = True
            if connection.transport is not None:
                connection.transport.abort()
        await self.all_closed.wait()


#: What to do instead of passing serve_inline a function that waits.
_REMEDY = "use serve with serve_pipelined for answers that wait"


def _served_inline(listeners: Sequence[SocketListener], ssl_context: ssl.SSLContext | None) -> bool:
    """Whether :func:`serve_inline` can serve these listeners without tasks."""
    if ssl_context is not None or _transport.asyncio_loop() is None:
        return False
    for listener in listeners:
        raw = listener.extra(SocketAttribute.raw_socket, None)
        if not isinstance(raw, socket.socket) or raw.type != socket.SOCK_STREAM:
            return False
    return True


async def serve_inline(
    respond: Callable[[T], T | None],
    framer: Framer[T],
    *,
    host: str | Sequence[str] | None = "127.0.0.1",
    port: int = 0,
    listeners: Sequence[SocketListener | MultiListener[SocketStream]] | None = None,
    idle_timeout: float | None = None,
    message_timeout: float | None = None,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_peer: int | None = None,
    max_buffered_total: int = DEFAULT_MAX_BUFFERED_TOTAL,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    backlog: int = 65536,
    reuse_port: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    proxy_protocol: Iterable[ProxySource] = (),
    proxy_protocol_optional: bool = False,
    task_status: TaskStatus[ServerInfo] = TASK_STATUS_IGNORED,
) -> None:
    """Serve requests with a plain function, until cancelled: no task per connection.

    Each connection gets ``framer.clone()``; every request it completes is
    passed to ``respond``, in arrival order, and what ``respond`` returns is
    encoded and written (``None``: no reply), the answers to one read in one
    write, as :func:`~framing.pipeline.serve_pipelined` answers inline. When the
    peer ends its side, its last requests are answered, then the connection
    closes. On asyncio and uvloop the loop calls each connection back (see the
    module); elsewhere, or with ``ssl_context``, this is :func:`~framing.serve`
    with ``serve_pipelined(stream, respond)`` as the handler. The results,
    counters and log lines are the same either way. Behind proxies
    (``proxy_protocol``), as :func:`~framing.serve` says: the header is read
    before the framer sees a byte, limits and log lines use the client it names,
    and a PROXY header from anyone else is refused.

    ``respond`` raising a :class:`~framing.FramingError` (say
    :class:`~framing.MalformedFrame` for a request the framer cannot judge) is
    the peer's fault: the answers before it are written, then the connection
    closes with one INFO line. Any other exception (an ``EncodeError`` from
    encoding its answer included) is a bug in ``respond``: logged at ERROR with
    its traceback, counted in ``handler_errors``, and that connection is
    aborted. Neither touches the other connections.

    Args:
        respond: turns a request into its answer, or ``None``; a plain function
            (a coroutine function is refused: use :func:`~framing.serve` with
            :func:`~framing.pipeline.serve_pipelined` for answers that wait).
        framer: the template framer.
        host: as for :func:`~framing.serve`.
        port: as for :func:`~framing.serve`.
        listeners: as for :func:`~framing.serve`.
        idle_timeout: seconds a connection may stay without a byte from its
            peer (not counting time its answers wait for the peer to read them).
        message_timeout: seconds a begun message has to finish.
        receive_size: the most bytes read at once.
        max_connections: connections served at once; a newcomer beyond it sheds
            the one that has waited longest for its next byte.
        max_connections_per_peer: the same, per peer address.
        max_buffered_total: bytes all framers may hold together.
        grace_period: seconds connections get to finish after cancellation.
        backlog: the listen queue's length.
        reuse_port: set ``SO_REUSEPORT`` on the listening sockets.
        ssl_context: serve TLS (then :func:`~framing.serve` serves).
        tls_standard_compatible: as for :func:`~framing.serve` (with TLS).
        handshake_timeout: seconds for a TLS handshake, or for a PROXY header.
        proxy_protocol: the proxies trusted to send a PROXY header, as for
            :func:`~framing.serve`.
        proxy_protocol_optional: serve a trusted proxy's connection that does
            not begin with a PROXY header as its own, instead of refusing it.
        task_status: for ``task_group.start``: receives the :class:`ServerInfo`.

    Raises:
        TypeError: ``respond`` is a coroutine function.
        OSError: a listener could not be bound.
        ValueError: a receive_size or timeout no stream can have.
    """
    if _is_coroutine_function(respond):
        raise TypeError(
            f"{respond!r} is a coroutine function: serve_inline answers with a plain "
            f"function ({_REMEDY})"
        )
    check_stream_options(
        receive_size=receive_size, idle_timeout=idle_timeout, message_timeout=message_timeout
    )
    # Read once: a generator given here is passed on to serve, too.
    proxy_protocol = [proxy_protocol] if isinstance(proxy_protocol, str) else [*proxy_protocol]
    _trusted_proxies(proxy_protocol)  # a bad entry raises before binding
    common: dict[str, Any] = {
        "idle_timeout": idle_timeout,
        "message_timeout": message_timeout,
        "receive_size": receive_size,
        "max_connections": max_connections,
        "max_connections_per_peer": max_connections_per_peer,
        "max_buffered_total": max_buffered_total,
        "handshake_timeout": handshake_timeout,
        "proxy_protocol": proxy_protocol,
        "proxy_protocol_optional": proxy_protocol_optional,
    }
    if listeners is None:
        bound = await _bind(host, port, backlog=backlog, reuse_port=reuse_port)
    else:
        bound = _flatten_listeners(listeners)
    if not _served_inline(bound, ssl_context):
        handler = partial(_pipelined, respond=respond)
        await serve(
            handler,
            framer,
            listeners=bound,
            grace_period=grace_period,
            ssl_context=ssl_context,
            tls_standard_compatible=tls_standard_compatible,
            task_status=task_status,
            **common,
        )
        return
    server = _InlineServer(respond, framer, **common)
    servers: list[asyncio.AbstractServer] = []
    server.reserve.take()
    try:
        with CancelScope(shield=True):
            addresses, paths = await _listen(server, bound, backlog, servers)
        if not isinstance(server.loop, asyncio.BaseEventLoop):
            server.watch_descriptors()  # it accepts without calling _Listening.accept
        task_status.started(
            ServerInfo(addresses, paths, stats=server.stats, shedding=server.is_shedding)
        )
        await anyio.sleep(math.inf)
    finally:
        with CancelScope(shield=True):
            for made in servers:
                made.close()
            for listener in bound:
                await anyio.aclose_forcefully(listener)
            await server.shut_down(grace_period)
            server.reserve.release()


async def _listen(
    server: _InlineServer,
    bound: Sequence[SocketListener],
    backlog: int,
    servers: list[asyncio.AbstractServer],
) -> tuple[list[tuple[str, int]], list[str]]:
    """Serve each listener's socket with the loop's own server; their addresses and paths."""
    addresses: list[tuple[str, int]] = []
    paths: list[str] = []
    factory = partial(_Connection, server)
    for listener in bound:
        raw = listener.extra(SocketAttribute.raw_socket)
        local = listener.extra(SocketAttribute.local_address)
        if isinstance(local, tuple):
            addresses.append((str(local[0]), int(local[1])))
        else:
            paths.append(str(local))
        # Our own descriptor of the listening socket (the listener's is closed).
        sock = _Listening(raw.family, raw.type, raw.proto, fileno=os.dup(raw.fileno()))
        sock.server = server
        await listener.aclose()
        if sock.family == socket.AF_UNIX:
            made = await server.loop.create_unix_server(factory, sock=sock, backlog=backlog)
        else:
            made = await server.loop.create_server(factory, sock=sock, backlog=backlog)
        servers.append(made)
    return addresses, paths


async def _pipelined(stream: FramedStream[Any], *, respond: Callable[[Any], Any]) -> None:
    """The handler :func:`serve_inline` gives :func:`~framing.serve` where it needs tasks."""
    await serve_pipelined(stream, respond, inline=True)
