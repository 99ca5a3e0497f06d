"""DNS over UDP behind a proxy: a PROXY header before each datagram (dnsdist's proxy protocol).

::

    from dnsdist   | PROXY v2 header (16 + n bytes) | DNS query |    one datagram
    to dnsdist     | DNS answer |                                    no header

A load balancer that relays UDP (dnsdist with ``useProxyProtocol=true``)
cannot open a connection per client, so it prepends the HAProxy PROXY header
(version 2, the binary one) to every datagram instead. From the peers listed
in ``proxy_protocol`` each datagram must begin with one, parsed by the same
sans-IO :class:`~framing.proxy.ProxyHeaderParser` as TCP's; the rest is the
query, and the answer goes back, bare, to the proxy, which relays it. A
datagram from such a peer without a valid header is dropped (a DNS client
cannot tell a dropped query from a lost one, and answering the header's bytes
as a query would answer the wrong client), with an INFO line on
``protocols.dns`` at most once a second, saying how many were dropped. From
any other peer a header is never looked for: its bytes are the query, as on TCP.

The loop is a copy of the task-and-wait loop of
:func:`protocols.dns.server._serve_udp` (the one it runs on trio), kept apart so
that the loop without proxies pays nothing for them.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

import anyio
from anyio.lowlevel import checkpoint

from framing.errors import ProxyHeaderError
from framing.proxy import ProxyHeader, ProxyHeaderParser
from protocols.dns.answer import Authority

__all__ = ["Answering", "read_datagram_header", "serve_proxied_udp"]

logger = logging.getLogger("protocols.dns")

#: UDP datagrams answered in a row before yielding to the other tasks.
_UDP_BATCH: Final = 64
#: The largest datagram read: any UDP payload fits, so none is cut short.
_UDP_RECEIVE_SIZE: Final = 65535
#: Dropped datagrams are reported at most once per this many seconds.
_LOG_INTERVAL: Final = 1.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Send = Callable[[socket.socket, bytes, tuple[str, int]], Awaitable[None]]


def read_datagram_header(datagram: bytes) -> tuple[ProxyHeader, bytes]:
    """Split a datagram from a proxy into its PROXY header and the payload after it.

    Raises:
        ProxyHeaderError: the datagram does not begin with a whole, valid
            header (a datagram is never continued by another).
    """
    parser = ProxyHeaderParser()
    parsed = parser.feed(datagram)
    if parsed is None:
        parsed = parser.feed_eof()  # raises: the header is cut short
    header, rest = parsed
    if header is None:  # only an optional parser returns no header
        raise ProxyHeaderError(repr(parser), "no PROXY header")
    return header, rest


def trusted_networks(sources: Sequence[str]) -> tuple[Network, ...]:
    """The networks of ``proxy_protocol`` entries (``"unix"`` does not apply to UDP)."""
    return tuple(ipaddress.ip_network(s, strict=False) for s in sources if s != "unix")


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:10.0.0.5 on a dual-stack socket
    return any(ip in net or (mapped is not None and mapped in net) for net in networks)


class Answering(Protocol):
    """Where the authority answering now is found (it is replaced whole on reload)."""

    authority: Authority


async def serve_proxied_udp(
    sock: socket.socket, serving: Answering, proxies: Sequence[str], send: Send
) -> None:
    """Answer datagrams forever, reading a PROXY header before those of ``proxies``.

    Args:
        sock: the bound, non-blocking UDP socket.
        serving: its ``authority`` answers the queries (read for each one).
        proxies: addresses or networks of the trusted proxies.
        send: sends one answer to a peer (``protocols.dns.server._send_datagram``).
    """
    networks = trusted_networks(proxies)
    trusted: dict[str, bool] = {}  # by peer address: the proxies are few
    recvfrom = sock.recvfrom
    answered = 0
    dropped = 0
    last_report = -_LOG_INTERVAL
    while True:
        try:
            data, peer = recvfrom(_UDP_RECEIVE_SIZE)
        except BlockingIOError:
            await anyio.wait_readable(sock)
            answered = 0
            continue
        except OSError as exc:  # an ICMP error reported on the socket: not fatal
            logger.debug("UDP receive failed: %r", exc)
            continue
        host = peer[0]
        is_proxy = trusted.get(host)
        if is_proxy is None:
            is_proxy = trusted[host] = _is_trusted(host, networks)
            if len(trusted) > 1024:  # a bound on the memo, whoever sends
                trusted.clear()
        client = host
        if is_proxy:
            try:
                header, data = read_datagram_header(data)
            except ProxyHeaderError as exc:
                dropped += 1
                now = time.monotonic()
                if now - last_report >= _LOG_INTERVAL:
                    logger.info(
                        "dropped %d UDP datagram(s) from proxy %s:%s: ProxyHeaderError: %s",
                        dropped,
                        host,
                        peer[1],
                        exc,
                    )
                    last_report, dropped = now, 0
                continue
            if header.source_address is not None:  # not LOCAL (a health check)
                client = header.source_address
        answer = serving.authority.respond(data, udp=True, peer=client)
        if answer is not None:
            await send(sock, answer, peer)
        answered += 1
        if answered >= _UDP_BATCH:
            answered = 0
            await checkpoint()
