"""Serving framed connections: :func:`serve` and :func:`serve_unix`.

::

    listeners (IPv4, IPv6, Unix)        one accept loop each; out of descriptors?
        | accept                        close what cannot be served, at once
        v
    governance      table full (in all, or for this peer's address)? shed the
        |           connection that has waited longest for its next byte; refuse
        |           only when every connection is busy
        | a task per connection
        v
    handler(FramedStream)               framer.clone(), timeouts, a shared BufferBudget
        | returns or raises
        v
    close; the peer's fault (FramingError, ReceiveTimeout) is one INFO line on
    "framing.server"; the handler's own (anything else, an EncodeError included)
    an ERROR with its traceback; the server and the other connections carry on

Start a server on port 0 and learn where it listens::

    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, handler, LengthPrefixed(2))
        print(server.port, server.addresses)
        ...
        tg.cancel_scope.cancel()        # graceful shutdown

Load shedding. When ``max_connections`` (or ``max_connections_per_peer``) are
open, a newcomer is not refused while some connection sits idle or stalled:
the connection that has waited longest for its next byte (a receive pending,
nothing being answered or written: :attr:`FramedStream.waiting_since`) is
closed, logged and counted in :attr:`ServerStats.connections_shed`, and the
newcomer is served. RFC 7766 6.2.3 allows a DNS server under load to close
idle connections early; unbound instead shrinks its idle timeout as its table
fills, which still refuses newcomers while a slowloris holds every slot for
the shrunken timeout. Only when every open connection is busy is a newcomer
refused (closed at once, counted in ``connections_refused``).

Out of file descriptors. ``serve`` keeps one descriptor in reserve. When
accepting fails for want of descriptors, it gives the reserve back, accepts
and closes at once every connection waiting in the backlog (the clients see
an end of stream instead of waiting until they give up), counts them as
refused, and takes the reserve again, as nginx and libev do. The condition is
logged at most once a second, with its reason.

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

On asyncio and uvloop, TCP and Unix connections are accepted on the listening
socket directly and served by :mod:`framing.transport`; on trio, and for
listeners that are not sockets, by anyio's own streams.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import math
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, final

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

from framing import transport
from framing.base import Framer
from framing.errors import FramingError, ProxyHeaderError, ReceiveTimeout
from framing.proxied import UntrustedStream, read_proxy_header
from framing.proxy import ProxyHeader
from framing.stream import (
    DEFAULT_RECEIVE_SIZE,
    BufferBudget,
    FramedStream,
    StreamStats,
    check_stream_options,
)

__all__ = ["ServerInfo", "ServerStats", "serve", "serve_unix"]

T = TypeVar("T")

logger = logging.getLogger("framing.server")

Handler = Callable[[FramedStream[T]], Awaitable[None]]

#: What ``proxy_protocol`` takes: addresses or networks of trusted proxies, as
#: text (``"10.0.0.0/8"``) or ``ipaddress`` objects, or ``"unix"`` for the peers
#: of Unix sockets (which have no address).
ProxySource = (
    str
    | ipaddress.IPv4Network
    | ipaddress.IPv6Network
    | ipaddress.IPv4Address
    | ipaddress.IPv6Address
)

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
# - a condition that repeats (out of descriptors) is logged once a second at most.
LOG_INTERVAL = 1.0

# accept() errors that mean "no resources to take this connection now".
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of a server's counters (:attr:`ServerInfo.stats` makes a new one).

    Message and byte counters add up every connection, open or closed.

    Attributes:
        connections_open: connections being served now.
        connections_accepted: connections accepted and served, in all.
        connections_refused: connections closed at once, unserved: every open
            one busy at a limit, or no descriptor left to serve them.
        connections_shed: connections closed, under load, to serve a newcomer
            (each had waited longest for its next byte).
        messages_in: messages received, by all connections.
        messages_out: messages sent.
        bytes_in: bytes read.
        bytes_out: bytes written.
        messages_dropped: responses dropped because the peer had gone.
        errors: the peers' faults that ended connections, by class name
            (``"FrameTooLarge"``, ``"IdleTimeout"``, ``"TLSHandshakeFailed"``...).
        handler_errors: connections whose handler raised an exception of its own
            (a bug: logged with its traceback), an ``EncodeError`` included.
        peak_buffered: the most bytes held by all framers together.
    """

    connections_open: int = 0
    connections_accepted: int = 0
    connections_refused: int = 0
    connections_shed: int = 0
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages_dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    handler_errors: int = 0
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
        self,
        addresses: list[tuple[str, int]],
        paths: list[str],
        *,
        stats: Callable[[], ServerStats],
        shedding: Callable[[], bool] = lambda: False,
    ) -> None:
        self.addresses = addresses
        self.paths = paths
        self._stats = stats
        self._shedding = shedding

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
        return self._stats()

    @property
    def shedding(self) -> bool:
        """Whether the server is shedding load now.

        True while ``max_connections`` are open (the next newcomer sheds one) or
        connections shed are still closing. A protocol may tell its clients
        to go (DNS: an edns-tcp-keepalive of 0, RFC 7828 3.3.2).
        """
        return self._shedding()


@final
class _Connection:
    """One served connection, as the server's table knows it."""

    __slots__ = ("accepted_at", "address", "peer", "proxy", "scope", "shed", "stream")

    def __init__(self, peer: str, address: str | None) -> None:
        self.peer = peer
        self.address = address
        # From a trusted proxy, whose PROXY header is still to be read: its address
        # ("" on a Unix socket). Until then the connection counts per peer for no one.
        self.proxy: str | None = None
        # Until its stream exists (a TLS handshake, say), it waits since accepted.
        self.accepted_at = time.monotonic()  # the clock of FramedStream.waiting_since
        self.scope = CancelScope(shield=True)  # cancelled to shed it, or after the grace period
        self.stream: FramedStream[Any] | None = None
        self.shed = False


def _closed_at_once(resource: anyio.abc.AsyncResource) -> bool:
    """Whether ``resource`` is a stream its handler closed, over our asyncio transport.

    That transport closes without waiting (what is unsent lingers on its own, see
    :data:`framing.transport.CLOSE_LINGER`), so closing it again would only cost
    two cancel scopes and a turn of the loop per connection.
    """
    return (
        isinstance(resource, FramedStream)
        and resource.closed
        and isinstance(resource.transport_stream, transport.AsyncioSocketStream)
    )


def _peer_of(stream: ByteStream) -> tuple[str, str | None]:
    """Return the peer as text for logs, and its address (``None`` on Unix sockets)."""
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return "unknown peer", None
    return _describe_peer(address)


def _describe_peer(address: Any) -> tuple[str, str | None]:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), host
    return f"unix:{address or '(unnamed)'}", None


def _trusted_proxies(
    sources: Iterable[ProxySource],
) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], bool]:
    """The networks of ``proxy_protocol``, and whether Unix peers are trusted.

    Raises:
        ValueError: an entry is not an address, a network or ``"unix"``.
    """
    if isinstance(sources, str):
        sources = [sources]
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    unix = False
    for source in sources:
        if source == "unix":
            unix = True
        else:
            networks.append(ipaddress.ip_network(source, strict=False))
    return tuple(networks), unix


def _client_of(header: ProxyHeader | None, peer: str, proxy: str | None) -> tuple[str, str | None]:
    """The peer (for logs) and address (for limits) a trusted proxy's connection counts as.

    ``peer`` and ``proxy`` are the proxy's own (``proxy`` ``""`` on a Unix socket).
    LOCAL (a health check), UNKNOWN, or no header where optional: the proxy itself.
    """
    client = None if header is None else header.client_address
    if header is None or client is None:
        return peer, proxy or None
    described, address = _describe_peer((client, header.source_port))
    return f"{described} (via {peer})", address


def _trusts(
    proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    unix: bool,
    address: str | None,
) -> bool:
    """Whether the peer at ``address`` (``None``: a Unix socket's) may send a PROXY header."""
    if address is None:
        return unix
    if not proxies:
        return False
    ip = ipaddress.ip_address(address.partition("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:10.0.0.5 on a dual-stack socket
    return any(ip in network or (mapped is not None and mapped in network) for network in proxies)


def _flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _flatten(inner)]
    return [exc]


def _os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind ``exc`` (anyio on trio wraps it in BrokenResourceError)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _reason(exc: BaseException) -> str:
    """Why accepting failed, never blank: errno name and text, or the exception's repr."""
    error = _os_error(exc)
    if error is not None and error.errno is not None:
        return f"{errno.errorcode.get(error.errno, error.errno)}: {os.strerror(error.errno)}"
    return str(exc) or repr(exc)


@final
class _RateLimitedLog:
    """Log a repeating condition at most once per ``LOG_INTERVAL``, with how often it recurred."""

    __slots__ = ("last", "suppressed")

    def __init__(self) -> None:
        self.last = -math.inf
        self.suppressed = 0

    def log(self, level: int, message: str, *args: object) -> None:
        now = anyio.current_time()
        if now - self.last < LOG_INTERVAL:
            self.suppressed += 1
            return
        if self.suppressed:
            message += " (and %d times more since the last report)"
            args = (*args, self.suppressed)
        self.last = now
        self.suppressed = 0
        logger.log(level, message, *args)


@final
class _DescriptorReserve:
    """One descriptor held back, to close a listener's backlog when descriptors run out.

    When accepting fails for want of descriptors, the reserve is given back,
    every connection waiting is accepted and closed at once (the clients see an
    end of stream instead of waiting until they give up), and the reserve is
    taken again, as nginx and libev do.
    """

    __slots__ = ("fd",)

    def __init__(self) -> None:
        self.fd: int | None = None

    def take(self) -> None:
        """Hold one descriptor back (no error if there is none to hold)."""
        if self.fd is None:
            with contextlib.suppress(OSError):
                self.fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close_backlog(self, listening: socket.socket) -> int:
        """Accept and close every connection waiting on ``listening``; how many."""
        self.release()
        closed = 0
        try:
            while True:
                try:
                    # socket.socket's own accept: the listener may be a subclass
                    # whose accept calls this.
                    sock, _ = socket.socket.accept(listening)  # the listener is non-blocking
                except OSError:
                    break  # the backlog is empty, or descriptors ran out even so
                sock.close()
                closed += 1
        finally:
            self.take()
        return closed


class _Server:
    """The running state of one :func:`serve` call."""

    def __init__(
        self,
        handler: Handler[Any],
        framer: Framer[Any],
        *,
        ssl_context: ssl.SSLContext | None,
        tls_standard_compatible: bool,
        handshake_timeout: float,
        idle_timeout: float | None,
        message_timeout: float | None,
        receive_size: int,
        max_connections: int,
        max_connections_per_peer: int | None,
        max_buffered_total: int,
        proxy_protocol: Iterable[ProxySource] = (),
        proxy_protocol_optional: bool = False,
    ) -> None:
        self.handler = handler
        self.framer = framer
        self.ssl_context = ssl_context
        self.tls_standard_compatible = tls_standard_compatible
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.message_timeout = message_timeout
        self.receive_size = receive_size
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.budget = BufferBudget(max_buffered_total)
        self.proxies, self.proxy_unix = _trusted_proxies(proxy_protocol)
        self.proxy_optional = proxy_protocol_optional
        self.connections: set[_Connection] = set()
        self.per_peer: dict[str, set[_Connection]] = {}
        self.shedding = 0  # shed, and not yet gone from the table
        self.accepted = 0
        self.refused = 0
        self.shed_count = 0
        self.handler_errors = 0
        self.closed_totals = StreamStats()
        self.errors: dict[str, int] = {}
        self.all_closed = anyio.Event()
        self.all_closed.set()
        self.out_of_descriptors = _RateLimitedLog()
        self.accept_errors = _RateLimitedLog()
        self.reserve = _DescriptorReserve()

    # -- counters --------------------------------------------------------------

    def stats(self) -> ServerStats:
        """A snapshot of the counters (what :attr:`ServerInfo.stats` returns)."""
        sums = {name: getattr(self.closed_totals, name) for name in _SUMMED}
        errors = dict(self.errors)
        for connection in self.connections:
            stream = connection.stream
            if stream is None:
                continue
            for name in _SUMMED:
                sums[name] += getattr(stream.stats, name)
            for kind, count in stream.stats.errors.items():
                errors[kind] = errors.get(kind, 0) + count
        return ServerStats(
            connections_open=len(self.connections),
            connections_accepted=self.accepted,
            connections_refused=self.refused,
            connections_shed=self.shed_count,
            errors=errors,
            handler_errors=self.handler_errors,
            peak_buffered=self.budget.peak,
            **sums,
        )

    def count_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    # -- accepting -------------------------------------------------------------

    async def accept_loop(self, listener: SocketListener, connections: TaskGroup) -> None:
        raw = listener.extra(SocketAttribute.raw_socket, None)
        if not isinstance(raw, socket.socket):
            raw = None
        loop = transport.asyncio_loop()
        own = loop is not None and raw is not None
        while True:
            try:
                if own:
                    assert loop is not None
                    assert raw is not None
                    sock, address = await loop.sock_accept(raw)
                    connection = self.admit(*_describe_peer(transport.address(address)))
                    if connection is not None:
                        connections.start_soon(self.run_connection, sock, connection)
                    else:
                        sock.close()
                else:
                    stream = await listener.accept()
                    connection = self.admit(*_peer_of(stream))
                    if connection is not None:
                        connections.start_soon(self.run_connection, stream, connection)
                    else:
                        await anyio.aclose_forcefully(stream)
            except ClosedResourceError:
                return
            except (OSError, BrokenResourceError) as exc:
                await self.accept_failed(exc, raw)

    async def accept_failed(self, exc: BaseException, raw: socket.socket | None) -> None:
        """Accepting failed: out of descriptors, close the backlog at once; else breathe."""
        error = _os_error(exc)
        if error is not None and error.errno in _OUT_OF_RESOURCES:
            closed = 0 if raw is None else self.reserve.close_backlog(raw)
            self.refused += closed
            self.out_of_descriptors.log(
                logging.WARNING,
                "cannot accept connections (%s): closed %d waiting connections unserved",
                _reason(exc),
                closed,
            )
            if closed:
                return  # the backlog is empty: wait for the next newcomer
        else:
            # A connection reset before accept, and the like: the listener is fine.
            self.accept_errors.log(logging.WARNING, "accept failed: %s", _reason(exc))
        await anyio.sleep(0.1)

    def admit(
        self, peer: str, address: str | None, proxied: _Connection | None = None
    ) -> _Connection | None:
        """Make room for a newcomer (shedding if need be) and enter it; ``None``: refuse it.

        ``proxied``: a connection from a trusted proxy, already entered, whose
        PROXY header has named its client: it is counted per peer now, under
        ``address``.
        """
        proxy = (address or "") if proxied is None and self.trusts(address) else None
        if proxy is not None:
            address = None  # counted per peer once its header names the client
        open_now = len(self.connections) - self.shedding
        victims: Iterable[_Connection] = ()
        if proxied is None and open_now >= self.max_connections:
            reason = f"{open_now} connections open, the limit"
            victims = self.connections
        elif (
            self.max_connections_per_peer is not None
            and address is not None
            and (mine := self.open_from(address)) >= self.max_connections_per_peer
        ):
            reason = f"{mine} connections open from {address}, the limit"
            victims = self.per_peer[address]
        else:
            return self.enter(peer, address, proxied, proxy)
        victim, since = self.longest_waiting(victims)
        if victim is None:
            self.refused += 1
            logger.info("refused %s: %s, every one busy", peer, reason)
            return None
        waited = time.monotonic() - since
        victim.shed = True
        self.shedding += 1
        self.shed_count += 1
        victim.scope.cancel()
        logger.info(
            "shed %s (waited %.1f s for its next byte) to serve %s: %s",
            victim.peer,
            waited,
            peer,
            reason,
        )
        return self.enter(peer, address, proxied, proxy)

    def enter(
        self,
        peer: str,
        address: str | None,
        proxied: _Connection | None = None,
        proxy: str | None = None,
    ) -> _Connection:
        """Put a newcomer in the table (before its task starts, so bursts count it)."""
        if proxied is not None:
            proxied.peer, proxied.address = peer, address
            if address is not None:
                self.per_peer.setdefault(address, set()).add(proxied)
            return proxied
        connection = _Connection(peer, address)
        connection.proxy = proxy
        self.connections.add(connection)
        if address is not None:
            self.per_peer.setdefault(address, set()).add(connection)
        self.accepted += 1
        if self.all_closed.is_set():
            self.all_closed = anyio.Event()
        return connection

    def is_shedding(self) -> bool:
        """What :attr:`ServerInfo.shedding` says: the table is full, or shed ones still close."""
        return self.shedding > 0 or len(self.connections) >= self.max_connections

    def trusts(self, address: str | None) -> bool:
        """Whether the peer at ``address`` (``None``: a Unix socket's) may send a PROXY header."""
        return _trusts(self.proxies, self.proxy_unix, address)

    def open_from(self, address: str) -> int:
        """Connections open from ``address``, not counting those shed and still closing."""
        return sum(not connection.shed for connection in self.per_peer.get(address, ()))

    @staticmethod
    def longest_waiting(connections: Iterable[_Connection]) -> tuple[_Connection | None, float]:
        """The connection waiting longest for its peer's next byte, and since when."""
        best: _Connection | None = None
        best_since = math.inf
        for connection in connections:
            if connection.shed:
                continue
            stream = connection.stream
            since = connection.accepted_at if stream is None else stream.waiting_since
            if since is not None and since < best_since:
                best, best_since = connection, since
        return best, best_since

    # -- one connection ----------------------------------------------------------

    async def run_connection(
        self, accepted: ByteStream | socket.socket, connection: _Connection
    ) -> None:
        peer = connection.peer
        stream: FramedStream[Any] | None = None
        resource: anyio.abc.AsyncResource | None = None
        with connection.scope:
            try:
                if isinstance(accepted, socket.socket):
                    try:
                        byte_stream: ByteStream = await transport.wrap_accepted_socket(accepted)
                    except BaseException:
                        accepted.close()
                        raise
                else:
                    byte_stream = accepted
                resource = byte_stream
                if connection.proxy is not None:
                    proxied = await self.read_proxy_header(byte_stream, connection)
                    if proxied is None:
                        return
                    resource = byte_stream = proxied
                    peer = connection.peer
                elif self.proxies or self.proxy_unix:
                    # Behind proxies, a direct client's PROXY header is refused.
                    resource = byte_stream = UntrustedStream(byte_stream)
                if self.ssl_context is not None:
                    try:
                        with anyio.fail_after(self.handshake_timeout):
                            byte_stream = await TLSStream.wrap(
                                byte_stream,
                                server_side=True,
                                ssl_context=self.ssl_context,
                                standard_compatible=self.tls_standard_compatible,
                            )
                    except (OSError, TimeoutError, BrokenResourceError, EndOfStream) as exc:
                        self.count_error("TLSHandshakeFailed")
                        logger.info("closed %s: TLS handshake failed: %r", peer, exc)
                        return
                    resource = byte_stream
                stream = FramedStream(
                    byte_stream,
                    self.framer.clone(),
                    receive_size=self.receive_size,
                    idle_timeout=self.idle_timeout,
                    message_timeout=self.message_timeout,
                    buffer_budget=self.budget,
                    drainable=True,
                )
                resource = connection.stream = stream
                await self.handler(stream)
            except Exception as exc:
                self.report(peer, exc)
            finally:
                if resource is not None and not _closed_at_once(resource):
                    await self.close(resource)
                self.retire(connection)

    async def read_proxy_header(
        self, byte_stream: ByteStream, connection: _Connection
    ) -> ByteStream | None:
        """Read a trusted proxy's PROXY header and count the connection under its client.

        Returns the stream after the header, or ``None`` when the connection is
        to be closed: no valid header in time (logged, counted), or the
        client's per-peer limit refusing it.
        """
        try:
            proxied = await read_proxy_header(
                byte_stream, header_timeout=self.handshake_timeout, optional=self.proxy_optional
            )
        except ProxyHeaderError as exc:
            self.count_error(type(exc).__name__)
            logger.info("closed %s: %s: %s", connection.peer, type(exc).__name__, exc)
            return None
        except (EndOfStream, BrokenResourceError, OSError) as exc:
            logger.debug("connection %s lost before its PROXY header: %r", connection.peer, exc)
            return None
        peer, address = _client_of(proxied.header, connection.peer, connection.proxy)
        if self.admit(peer, address, connection) is None:
            self.accepted -= 1  # refused after all, not served
            return None
        return proxied

    def retire(self, connection: _Connection) -> None:
        """Take a closed connection off the table and keep its counts."""
        self.connections.discard(connection)
        if connection.shed:
            self.shedding -= 1
        address = connection.address
        if address is not None:
            same = self.per_peer[address]
            same.discard(connection)
            if not same:
                del self.per_peer[address]
        stream = connection.stream
        if stream is not None:
            totals = self.closed_totals
            for name in _SUMMED:
                setattr(totals, name, getattr(totals, name) + getattr(stream.stats, name))
            for kind, count in stream.stats.errors.items():
                self.errors[kind] = self.errors.get(kind, 0) + count
        if not self.connections:
            self.all_closed.set()

    def report(self, peer: str, exc: Exception) -> None:
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
            self.handler_errors += 1
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
        for connection in list(self.connections):
            if connection.stream is not None:
                connection.stream.drain()
        with anyio.move_on_after(grace_period):
            await self.all_closed.wait()
        for connection in list(self.connections):
            connection.scope.cancel()
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
    proxy_protocol: Iterable[ProxySource] = (),
    proxy_protocol_optional: bool = False,
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
        proxy_protocol: the proxies trusted to send a PROXY protocol header
            (v1 or v2): addresses or networks (``"10.0.0.0/8"``, ``ipaddress``
            objects), and ``"unix"`` for Unix socket peers. See "PROXY
            protocol" above.
        proxy_protocol_optional: serve a trusted proxy's connection that does
            not begin with a PROXY header as its own, instead of refusing it.
        task_status: for ``task_group.start``: receives the :class:`ServerInfo`.

    PROXY protocol: a connection from a peer in ``proxy_protocol`` must begin
    with a PROXY header (HAProxy's ``send-proxy``/``send-proxy-v2``), read
    within ``handshake_timeout`` and before TLS or the framer sees a byte; the
    bytes after it go on to them unchanged. A missing header (unless
    ``proxy_protocol_optional``), a malformed one or one too slow closes that
    connection with one INFO line, counted as ``"ProxyHeaderError"`` in
    :attr:`ServerStats.errors`. The handler's
    ``stream.extra(SocketAttribute.remote_address)`` is then the client the
    header names, and the proxy's own is
    ``stream.extra(ProxyAttribute.proxy_address)`` (see
    :mod:`framing.proxied`); the per-peer limit, shedding and log lines use the
    client's address too. A ``LOCAL`` header (a health check) is served as the
    proxy's own connection. From any peer *not* in ``proxy_protocol``, a PROXY
    header is never believed: when ``proxy_protocol`` is given, a connection
    whose first bytes read are a PROXY signature is refused (``ProxyHeaderError``,
    logged and counted; see :class:`~framing.proxied.UntrustedStream`).

    Raises:
        OSError: a listener could not be bound.
        ValueError: a receive_size or timeout no stream can have (before binding).
        ValueError: ``proxy_protocol`` holds something that is not an
            address, a network or ``"unix"``.
    """
    proxies = _trusted_proxies(proxy_protocol)  # a bad entry raises before binding
    check_stream_options(
        receive_size=receive_size, idle_timeout=idle_timeout, message_timeout=message_timeout
    )
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
    server = _Server(
        handler,
        framer,
        ssl_context=ssl_context,
        tls_standard_compatible=tls_standard_compatible,
        handshake_timeout=handshake_timeout,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
        receive_size=receive_size,
        max_connections=max_connections,
        max_connections_per_peer=max_connections_per_peer,
        max_buffered_total=max_buffered_total,
        proxy_protocol=[*map(str, proxies[0]), *(["unix"] if proxies[1] else [])],
        proxy_protocol_optional=proxy_protocol_optional,
    )
    info = ServerInfo(addresses, paths, stats=server.stats, shedding=server.is_shedding)
    server.reserve.take()
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
                server.reserve.release()


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
            peers have no address). ``proxy_protocol=["unix"]`` trusts every
            peer of the socket (its permissions decide who connects) to send
            a PROXY header, and per-peer limits then apply to the clients it
            names.
    """
    listener = await anyio.create_unix_listener(path, mode=mode)
    await serve(handler, framer, listeners=[listener], **options)
