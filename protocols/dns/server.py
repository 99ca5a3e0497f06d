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
Idle connections are closed after ``idle_timeout``; at most
``max_connections`` are served at once. A frame too short to hold a message
id (``| 00 00 |``, ``| 00 01 | AB |``), or over ``max_query_size``, closes that
connection only, after the answers to the queries before it are written;
``framing.server`` logs it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import SocketAttribute, SocketStream, TaskStatus, UDPSocket
from anyio.streams.stapled import MultiListener

from framing.errors import MalformedFrame
from framing.length import LengthPrefixed
from framing.server import ServerInfo, serve, serve_pipelined
from framing.stream import FramedStream, IdleTimeout
from protocols.dns.answer import DEFAULT_CACHE_SIZE, Authority
from protocols.dns.zone import Zone, example_zone

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUERY_SIZE",
    "DNSServerInfo",
    "run_dns_server",
]

logger = logging.getLogger("protocols.dns")

#: RFC 7766 6.2.3 suggests an idle timeout of the order of seconds; 10 s lets a
#: resolver reuse a connection for a burst without holding it for long.
DEFAULT_IDLE_TIMEOUT: Final = 10.0
#: RFC 9210 4.1 suggests 150 concurrent TCP connections in all.
DEFAULT_MAX_CONNECTIONS: Final = 150
#: A query is a header, a question and perhaps an OPT record: well under 1 KB.
#: 4 KB leaves room for large EDNS options; anything bigger is not a query.
DEFAULT_MAX_QUERY_SIZE: Final = 4096
#: How many times to look for a port free for both TCP and UDP.
_BIND_ATTEMPTS: Final = 20


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


async def _bind(host: str, port: int) -> tuple[MultiListener[SocketStream], UDPSocket]:
    """Bind TCP, then UDP on the same port; with port 0, retry until both are free."""
    for _ in range(_BIND_ATTEMPTS):
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        bound = listener.extra(SocketAttribute.local_port)
        try:
            udp = await anyio.create_udp_socket(local_host=host, local_port=bound)
        except OSError:
            await listener.aclose()
            if port:
                raise
            continue  # the kernel's free TCP port is taken for UDP: ask again
        return listener, udp
    raise OSError(f"no port on {host} was free for both TCP and UDP")


async def _serve_udp(sock: UDPSocket, authority: Authority) -> None:
    """Answer datagrams forever: each is one query; errors cost that datagram only."""
    respond = authority.respond
    while True:
        try:
            data, (peer_host, peer_port) = await sock.receive()
        except OSError as exc:  # an ICMP error reported on the socket: not fatal
            logger.debug("UDP receive failed: %r", exc)
            continue
        answer = respond(data, udp=True)
        if answer is not None:
            try:
                await sock.sendto(answer, peer_host, peer_port)
            except OSError as exc:
                logger.debug("UDP send to %s:%s failed: %r", peer_host, peer_port, exc)


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
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_query_size: int = DEFAULT_MAX_QUERY_SIZE,
    cache_size: int = DEFAULT_CACHE_SIZE,
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
        max_connections: TCP connections served at once.
        max_query_size: the largest TCP query accepted; a larger frame closes
            its connection.
        cache_size: ready answers kept per transport.
        task_status: for ``task_group.start``: receives the :class:`DNSServerInfo`.

    Raises:
        OSError: the port could not be bound.
    """
    zone = zone if zone is not None else example_zone()
    authority = Authority(zone, cache_size=cache_size)
    framer = LengthPrefixed(2, max_size=max_query_size)
    listener, udp = await _bind(host, port)
    bound = listener.extra(SocketAttribute.local_port)
    async with udp, anyio.create_task_group() as tg:
        tg.start_soon(_serve_udp, udp, authority)
        tcp = await tg.start(
            partial(
                serve,
                _tcp_handler(authority, repr(framer)),
                framer,
                listeners=[listener],
                idle_timeout=idle_timeout,
                max_connections=max_connections,
            )
        )
        task_status.started(DNSServerInfo(host, bound, zone, tcp))
