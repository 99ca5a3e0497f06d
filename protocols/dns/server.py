"""The DNS server's transports: UDP datagrams and length-prefixed TCP, on one port.

::

    UDP    | DNS message |                     one datagram, one message;
                                               answers over 512 bytes (or the
                                               client's EDNS0 size) get TC
    TCP    | 00 1D | DNS message (29 bytes) |   LengthPrefixed(2), RFC 1035 4.2.2;
           | 00 21 | DNS message (33 bytes) |   many queries per connection (RFC 7766)

Both transports hand each message to the same sans-IO
:class:`~protocols.dns.answer.Authority` and send back what it returns; neither
knows anything about DNS beyond that.

TCP, as RFC 7766 asks: a connection carries any number of queries, served by
:func:`framing.server.serve_pipelined`. Answering is synchronous and takes
microseconds (most answers come ready from a cache), so ``serve_pipelined``
answers inline: queries pipelined in one burst are read together, answered in
order, and the answers written together in one write, with no task per query.
Idle connections are closed after ``idle_timeout``, and one that takes longer
than ``message_timeout`` to finish a query it began (a peer trickling bytes,
RFC 7766 6.2.3) is closed too; at most
``max_connections`` are served at once. A frame too short to hold a message
id (``| 00 00 |``, ``| 00 01 | AB |``), or over ``max_query_size``, closes that
connection only, after the answers to the queries before it are written;
``framing.server`` logs it.

UDP, on a plain non-blocking socket rather than anyio's ``UDPSocket``: per
datagram, anyio's ``receive`` yields to the event loop and its ``sendto``
yields again, and on asyncio those turns of the loop cost more than the
answer (profiled: 3.0 of 3.6 s in ``sendto``). Here the loop reads every
datagram the kernel holds, answers each and sends it with ``sendto`` straight
away, and waits (``anyio.wait_readable``) only when the socket is empty: the
same code on asyncio and trio. A batch of :data:`_UDP_BATCH` datagrams ends
with a checkpoint, so a flood cannot starve the TCP side.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.lowlevel import checkpoint
from anyio.streams.stapled import MultiListener

from framing.errors import MalformedFrame
from framing.length import LengthPrefixed
from framing.pipeline import serve_pipelined
from framing.server import ServerInfo, serve
from framing.stream import FramedStream, IdleTimeout
from protocols.dns.answer import DEFAULT_CACHE_SIZE, Authority
from protocols.dns.proxied_udp import serve_proxied_udp
from protocols.dns.stats import CountingAuthority, DNSStats
from protocols.dns.zone import Zone, example_zone

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUERY_SIZE",
    "DEFAULT_MESSAGE_TIMEOUT",
    "DNSServerInfo",
    "run_dns_server",
]

logger = logging.getLogger("protocols.dns")

#: RFC 7766 6.2.3 suggests an idle timeout of the order of seconds; 10 s lets a
#: resolver reuse a connection for a burst without holding it for long.
DEFAULT_IDLE_TIMEOUT: Final = 10.0
#: RFC 7766 6.2.3: a server should not let a client hold a connection open by
#: trickling a query byte by byte. A query is a few hundred bytes that a client
#: sends in one write: 5 s is ample even over a slow path, and shorter than the
#: idle timeout, so a slow-loris peer is cut before an idle one would be.
DEFAULT_MESSAGE_TIMEOUT: Final = 5.0
#: RFC 9210 4.1 suggests 150 concurrent TCP connections in all.
DEFAULT_MAX_CONNECTIONS: Final = 150
#: A query is a header, a question and perhaps an OPT record: well under 1 KB.
#: 4 KB leaves room for large EDNS options; anything bigger is not a query.
DEFAULT_MAX_QUERY_SIZE: Final = 4096
#: How many times to look for a port free for both TCP and UDP.
_BIND_ATTEMPTS: Final = 20
#: UDP datagrams answered in a row before yielding to the other tasks.
_UDP_BATCH: Final = 64
#: The largest datagram read: any UDP payload fits, so none is cut short.
_UDP_RECEIVE_SIZE: Final = 65535


@dataclass(frozen=True, slots=True)
class DNSServerInfo:
    """Where a running :func:`run_dns_server` listens.

    Attributes:
        host: the address bound, for both transports.
        port: the port, the same for UDP and TCP.
        zone: the zone served.
        tcp: the TCP server's live information and counters.
    """

    host: str
    port: int
    zone: Zone
    tcp: ServerInfo


async def _bind(
    host: str, port: int, *, reuse_port: bool = False
) -> tuple[MultiListener[SocketStream], socket.socket]:
    """Bind TCP, then UDP on the same port; with port 0, retry until both are free."""
    for _ in range(_BIND_ATTEMPTS):
        listener = await anyio.create_tcp_listener(
            local_host=host, local_port=port, reuse_port=reuse_port
        )
        bound = listener.extra(SocketAttribute.local_port)
        try:
            udp = await _udp_socket(host, bound, reuse_port=reuse_port)
        except OSError:
            await listener.aclose()
            if port:
                raise
            continue  # the kernel's free TCP port is taken for UDP: ask again
        return listener, udp
    raise OSError(f"no port on {host} was free for both TCP and UDP")


async def _udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking UDP socket bound to ``host`` (a name or an address) and ``port``."""
    family, _, _, _, address = (
        await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    )[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:  # the kernel spreads datagrams over the sockets sharing the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _serve_udp(sock: socket.socket, authority: Authority) -> None:
    """Answer datagrams forever: each is one query; errors cost that datagram only."""
    respond = authority.respond
    recvfrom = sock.recvfrom
    answered = 0
    while True:
        try:
            data, peer = recvfrom(_UDP_RECEIVE_SIZE)
        except BlockingIOError:
            await anyio.wait_readable(sock)  # nothing queued: the one wait
            answered = 0
            continue
        except OSError as exc:  # an ICMP error reported on the socket: not fatal
            logger.debug("UDP receive failed: %r", exc)
            continue
        answer = respond(data, udp=True)
        if answer is not None:
            await _send_datagram(sock, answer, peer)
        answered += 1
        if answered >= _UDP_BATCH:
            answered = 0
            await checkpoint()


async def _send_datagram(sock: socket.socket, answer: bytes, peer: tuple[str, int]) -> None:
    """Send one answer; wait once if the socket's buffer is full, then give up on it."""
    for attempt in range(2):
        try:
            sock.sendto(answer, peer)
        except BlockingIOError:
            if attempt:
                logger.debug("UDP send to %s:%s dropped: the socket stayed full", *peer[:2])
                return
            await anyio.wait_writable(sock)
        except OSError as exc:
            logger.debug("UDP send to %s:%s failed: %r", peer[0], peer[1], exc)
            return
        else:
            return


def _tcp_handler(
    authority: Authority, framer: str
) -> Callable[[FramedStream[bytes]], Awaitable[None]]:
    answer = authority.respond

    # A plain function, so serve_pipelined answers inline, in one write per read.
    # (Not partial(answer, udp=False): a partial with a keyword builds a dict per
    # call, a third of a microsecond per query.)
    def respond(query: bytes) -> bytes | None:
        if len(query) < 2:
            # Not even an id to answer to (a zero-length frame): the stream cannot
            # be a DNS client's. serve_pipelined writes the answers before it and
            # raises; serve closes the connection and logs it.
            raise MalformedFrame(framer, f"a {len(query)}-byte message has no id")
        return answer(query, udp=False)

    async def handle(stream: FramedStream[bytes]) -> None:
        with contextlib.suppress(IdleTimeout):  # quiet too long: close (RFC 7766 6.2.3)
            await serve_pipelined(stream, respond)

    return handle


async def run_dns_server(
    zone: Zone | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 5053,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_peer: int | None = None,
    proxy_protocol: Sequence[str] = (),
    max_query_size: int = DEFAULT_MAX_QUERY_SIZE,
    cache_size: int = DEFAULT_CACHE_SIZE,
    reuse_port: bool = False,
    stats: DNSStats | None = None,
    task_status: TaskStatus[DNSServerInfo] = TASK_STATUS_IGNORED,
) -> None:
    """Serve ``zone`` over UDP and TCP on one port until cancelled.

    Start it in a task group to learn the port (``port=0`` picks a free one)::

        info = await tg.start(partial(run_dns_server, port=0))
        print(info.port)

    Args:
        zone: the zone; ``None`` serves the embedded example zone.
        host: the IP address to bind (both transports).
        port: the port; 0 finds one free for both UDP and TCP.
        idle_timeout: seconds a TCP connection may stay quiet; ``None``: forever.
        message_timeout: seconds a TCP query may take to arrive once its first
            byte has; ``None``: no limit.
        max_connections: TCP connections served at once.
        max_connections_per_peer: TCP connections served at once from one IP
            address (RFC 7766 6.2.2 advises a limit); ``None``: only
            ``max_connections`` applies.
        proxy_protocol: addresses or networks of proxies (dnsdist, HAProxy)
            trusted to send a PROXY header on TCP (see :func:`framing.serve`);
            the per-peer limit then counts the clients they name. Their UDP
            datagrams must each begin with one too, as dnsdist's
            ``useProxyProtocol`` sends them (:mod:`protocols.dns.proxied_udp`).
        max_query_size: the largest TCP query accepted; a larger frame closes
            its connection.
        cache_size: ready answers kept per transport.
        reuse_port: bind both transports with ``SO_REUSEPORT``, to share the
            port with other processes (the workers of ``--workers``).
        stats: count every answer there, by transport, type and rcode
            (:mod:`protocols.dns.stats`, for ``--metrics``).
        task_status: for ``task_group.start``: receives the :class:`DNSServerInfo`.

    Raises:
        OSError: the port could not be bound.
    """
    zone = zone if zone is not None else example_zone()
    if stats is None:
        authority = Authority(zone, cache_size=cache_size)
    else:
        authority = CountingAuthority(zone, cache_size=cache_size, stats=stats)
    framer = LengthPrefixed(2, max_size=max_query_size)
    listener, udp = await _bind(host, port, reuse_port=reuse_port)
    bound = listener.extra(SocketAttribute.local_port)
    with udp:  # closed once the task group, and so _serve_udp, has ended
        async with anyio.create_task_group() as tg:
            if proxy_protocol:
                proxies = [proxy_protocol] if isinstance(proxy_protocol, str) else proxy_protocol
                tg.start_soon(serve_proxied_udp, udp, authority, proxies, _send_datagram)
            else:
                tg.start_soon(_serve_udp, udp, authority)
            tcp = await tg.start(
                partial(
                    serve,
                    _tcp_handler(authority, repr(framer)),
                    framer,
                    listeners=[listener],
                    idle_timeout=idle_timeout,
                    message_timeout=message_timeout,
                    max_connections=max_connections,
                    max_connections_per_peer=max_connections_per_peer,
                    proxy_protocol=proxy_protocol,
                )
            )
            task_status.started(DNSServerInfo(host, bound, zone, tcp))
