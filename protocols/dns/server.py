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
answer (profiled: 3.0 of 3.6 s in ``sendto``). Here every datagram the kernel
holds is read, answered and sent with ``sendto`` straight away, in batches of
:data:`_UDP_BATCH`; between batches the other tasks run, so a flood cannot
starve the TCP side. On trio a task loops and waits (``anyio.wait_readable``)
only when the socket is empty. On asyncio and uvloop the socket stays
registered with the loop (``loop.add_reader``) and the loop calls
:class:`_UDPReader` back when it is readable: waiting then costs no system
call of its own. A query answered before is answered from
:meth:`~protocols.dns.answer.Authority.ready_udp_answers` (its id, then the
bytes held), without a call into the authority. Profiled under dnsperf, the
two system calls per datagram are then 86% of the time. (An asyncio
``DatagramProtocol`` was measured too: slower on asyncio's own loop, which
reads one datagram per turn of the loop, and no faster on uvloop.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Final

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import SocketAttribute, SocketStream, TaskGroup, TaskStatus
from anyio.lowlevel import checkpoint
from anyio.streams.stapled import MultiListener

from framing.errors import MalformedFrame
from framing.length import LengthPrefixed
from framing.pipeline import serve_pipelined
from framing.server import ServerInfo, serve
from framing.stream import FramedStream, IdleTimeout
from framing.transport import asyncio_loop
from protocols.dns.answer import DEFAULT_CACHE_SIZE, Authority
from protocols.dns.errors import DNSFormatError
from protocols.dns.message import (
    SOA,
    Header,
    Message,
    Opcode,
    Question,
    Rcode,
    RecordType,
    build_message,
    parse_message,
)
from protocols.dns.proxied_udp import serve_proxied_udp
from protocols.dns.stats import CountingAuthority, DNSStats
from protocols.dns.zone import Zone, example_zone

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUERY_SIZE",
    "DEFAULT_MESSAGE_TIMEOUT",
    "DNS_PORT",
    "DNSServerInfo",
    "run_dns_server",
    "send_notify",
]

logger = logging.getLogger("protocols.dns")

#: The port NOTIFY is sent to when none is given.
DNS_PORT: Final = 53
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
#: Transfers asked for on one connection and not yet sent: more are refused,
#: so a peer pipelining AXFR queries cannot make the server hold many.
_MAX_TRANSFERS_QUEUED: Final = 4
#: NOTIFY (RFC 1996 3.6): a first wait for the answer, doubled at each of the
#: attempts: 1 + 2 + 4 + 8 + 16 s, about half a minute before giving up.
NOTIFY_TIMEOUT: Final = 1.0
NOTIFY_ATTEMPTS: Final = 5

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NOTHING_READY: Final[Mapping[bytes, bytes]] = MappingProxyType({})


@dataclass(slots=True)
class _Serving:
    """What a running server answers from, replaced whole on reload."""

    authority: Authority
    notify: tuple[tuple[str, int], ...]
    task_group: TaskGroup | None = None
    tcp: ServerInfo | None = None  # once TCP serves: whether it sheds load


@dataclass(frozen=True, slots=True)
class DNSServerInfo:
    """Where a running :func:`run_dns_server` listens, and what it serves.

    Attributes:
        host: the first address bound, for both transports.
        port: the port, the same for UDP and TCP, on every address.
        zone: the first zone served when the server started.
        tcp: the TCP server's live information and counters.
        hosts: every address bound.
    """

    host: str
    port: int
    zone: Zone
    tcp: ServerInfo
    hosts: tuple[str, ...] = ()
    _serving: _Serving | None = field(default=None, repr=False, compare=False)

    @property
    def zones(self) -> tuple[Zone, ...]:
        """The zones served now (after any :meth:`replace_zones`)."""
        return self._state().authority.zones

    def prepare(self, zones: Sequence[Zone]) -> Authority:
        """Build what serving ``zones`` takes, for :meth:`replace_zones`; serves nothing yet.

        The answer index of a large zone takes seconds to build (about 2 s for
        100,000 records). This touches nothing the server uses, so a reload
        runs it in a worker thread (``anyio.to_thread.run_sync``) and queries
        are answered meanwhile.

        Raises:
            ValueError: no zone, or two with the same origin.
        """
        return self._state().authority.with_zones(zones)

    def replace_zones(
        self, zones: Sequence[Zone], *, prepared: Authority | None = None
    ) -> tuple[Zone, ...]:
        """Serve ``zones`` from now on, and NOTIFY the secondaries of those that changed.

        Queries answered from now on see the new zones; a transfer already
        begun goes on with the zone it started with. For each zone whose SOA
        serial went up (RFC 1982 serial arithmetic), or that is new, a NOTIFY
        (RFC 1996) goes to every address of ``notify``, in the background.

        Args:
            zones: every zone to serve (the whole set, not just the changed ones).
            prepared: what :meth:`prepare` built for ``zones`` (in a worker
                thread); ``None`` builds it here, on the event loop.

        Returns:
            The zones whose serial went up or that are new: those notified.

        Raises:
            ValueError: no zone, or two with the same origin.
        """
        serving = self._state()
        old = {zone.origin.key: zone for zone in serving.authority.zones}
        serving.authority = (
            prepared if prepared is not None else serving.authority.with_zones(zones)
        )
        changed = tuple(
            zone
            for zone in zones
            if zone.origin.key not in old or _serial_newer(zone, old[zone.origin.key])
        )
        for zone in changed:
            logger.info("serving %s serial %d", zone.origin, _serial(zone))
            if serving.task_group is not None:
                for host, port in serving.notify:
                    serving.task_group.start_soon(_notify_quietly, zone, host, port)
        return changed

    def _state(self) -> _Serving:
        if self._serving is None:
            raise RuntimeError("this DNSServerInfo is not a running server's")
        return self._serving


def _serial(zone: Zone) -> int:
    soa = zone.soa.rdata
    assert isinstance(soa, SOA)
    return soa.serial


def _serial_newer(new: Zone, old: Zone) -> bool:
    """RFC 1982 3.2: whether ``new``'s serial is greater than ``old``'s, modulo 2**32."""
    difference = (_serial(new) - _serial(old)) % 2**32
    return 0 < difference < 2**31


async def _bind(
    hosts: Sequence[str], port: int, *, reuse_port: bool = False
) -> tuple[list[MultiListener[SocketStream]], list[socket.socket], int]:
    """Bind TCP and UDP on one port on every host; with port 0, retry until all are free."""
    for _ in range(_BIND_ATTEMPTS):
        listeners: list[MultiListener[SocketStream]] = []
        sockets: list[socket.socket] = []
        bound = port
        try:
            for host in hosts:
                listener = await anyio.create_tcp_listener(
                    local_host=host, local_port=bound, reuse_port=reuse_port
                )
                listeners.append(listener)
                bound = listener.extra(SocketAttribute.local_port)
                sockets.append(await _udp_socket(host, bound, reuse_port=reuse_port))
        except OSError:
            for listener in listeners:
                await listener.aclose()
            for sock in sockets:
                sock.close()
            if port:
                raise
            continue  # the port found free for one is taken for another: ask again
        return listeners, sockets, bound
    raise OSError(f"no port on {', '.join(hosts)} was free for both TCP and UDP")


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


def _asks_transfer(query: bytes) -> bool:
    """Whether the first question of ``query`` may ask for AXFR or IXFR: a cheap first look."""
    pos = 12
    size = len(query)
    while pos < size:
        length = query[pos]
        if length == 0:
            return query[pos + 1 : pos + 3] in (b"\x00\xfc", b"\x00\xfb")
        if length & 0xC0:
            return True  # a pointer in a question: let the parser decide
        pos += length + 1
    return False


def _describe(peer: Any) -> str:
    if isinstance(peer, tuple):
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peer)


def _allowed(peer: Any, networks: Sequence[_Network]) -> bool:
    """Whether ``peer`` (an address tuple) is in ``networks``, IPv4-mapped peers included."""
    if not isinstance(peer, tuple) or not networks:
        return False
    try:
        ip = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return any(ip in net or (mapped is not None and mapped in net) for net in networks)


def _question_text(query: bytes) -> str:
    try:
        question = parse_message(query).questions[0]
    except (DNSFormatError, IndexError):
        return "a zone"
    kind = "IXFR" if question.qtype == RecordType.IXFR else "AXFR"
    return f"{kind} of {question.name}"


def _answer_udp(authority: Authority, query: bytes, peer: Any) -> bytes | None:
    """The answer to a datagram with no answer held ready; a bug costs that datagram only.

    Malformed queries get their FORMERR from ``respond``; an exception out of it is
    a bug of ours, logged with its traceback, and the next datagram is answered
    (on every loop: on asyncio the loop's callback would go on, on trio the task
    would end).
    """
    try:
        answer = authority.respond(query, udp=True, peer=peer[0])
    except Exception:
        logger.exception("answering a UDP query from %s failed", _describe(peer))
        return None
    if answer is not None and answer[3] & 0xF == Rcode.REFUSED and _asks_transfer(query):
        logger.info(
            "refused %s to %s: transfers go over TCP (RFC 5936 4.2)",
            _question_text(query),
            _describe(peer),
        )
    return answer


async def _serve_udp(sock: socket.socket, serving: _Serving) -> None:
    """Answer datagrams forever: each is one query; errors cost that datagram only."""
    loop = asyncio_loop()
    if loop is not None:
        reader = _UDPReader(loop, sock, serving)
        try:
            loop.add_reader(sock.fileno(), reader.on_readable)
        except NotImplementedError:  # an asyncio loop without readiness callbacks
            pass
        else:
            try:
                await anyio.sleep_forever()
            finally:
                reader.stop()
    await _serve_udp_waiting(sock, serving)


class _UDPReader:
    """On asyncio (or uvloop): answers datagrams from the loop's readiness callback.

    The socket stays registered with the loop (``add_reader``) for as long as it is
    served: each time the loop finds it readable, :meth:`on_readable` answers at
    most :data:`_UDP_BATCH` datagrams and returns, and the loop runs everything
    else that is ready (TCP) before calling it again. Waiting this way costs
    nothing per wait, where ``anyio.wait_readable`` registers and unregisters the
    socket (two ``epoll_ctl`` calls and a turn of the loop) each time the socket
    runs dry. A send that finds the buffer full swaps the registration for
    ``add_writer`` until that one answer is sent or, full again, dropped.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, serving: _Serving
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.serving = serving
        self.current: Authority | None = None
        self.ready = _NOTHING_READY.get

    def on_readable(self) -> None:
        """Answer the datagrams queued, at most a batch of them."""
        recvfrom = self.sock.recvfrom
        sendto = self.sock.sendto
        serving = self.serving
        ready = self.ready
        for _ in range(_UDP_BATCH):
            try:
                data, peer = recvfrom(_UDP_RECEIVE_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:  # an ICMP error reported on the socket: not fatal
                logger.debug("UDP receive failed: %r", exc)
                continue
            authority = serving.authority
            if authority is not self.current:
                self.current = authority
                ready = self.ready = authority.ready_udp_answers().get
            tail = ready(data[2:])
            answer = data[:2] + tail if tail is not None else _answer_udp(authority, data, peer)
            if answer is not None:
                try:
                    sendto(answer, peer)
                except BlockingIOError:
                    self.loop.remove_reader(self.fd)
                    self.loop.add_writer(self.fd, self.on_writable, answer, peer)
                    return
                except OSError as exc:
                    logger.debug("UDP send to %s:%s failed: %r", peer[0], peer[1], exc)

    def on_writable(self, answer: bytes, peer: tuple[str, int]) -> None:
        """The buffer has room: send the answer held back, then read again."""
        self.loop.remove_writer(self.fd)
        self.loop.add_reader(self.fd, self.on_readable)
        try:
            self.sock.sendto(answer, peer)
        except BlockingIOError:
            logger.debug("UDP send to %s:%s dropped: the socket stayed full", *peer[:2])
        except OSError as exc:
            logger.debug("UDP send to %s:%s failed: %r", peer[0], peer[1], exc)

    def stop(self) -> None:
        """Unregister the socket: the loop no longer calls back."""
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)


async def _serve_udp_waiting(sock: socket.socket, serving: _Serving) -> None:
    """Answer datagrams forever from a task, waiting when the socket is empty (trio)."""
    # The common datagram is a query answered before: its answer is the query's id
    # and bytes held ready (Authority.ready_udp_answers), sent straight back. The
    # loop keeps every name it needs in a local, so that path is a few dozen
    # bytecodes between two system calls (recvfrom and sendto are most of the time).
    recvfrom = sock.recvfrom
    sendto = sock.sendto
    current: Authority | None = None
    ready = _NOTHING_READY.get
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
        authority = serving.authority
        if authority is not current:  # started, or reloaded: the new one's answers
            current = authority
            ready = authority.ready_udp_answers().get
        tail = ready(data[2:])  # never a transfer's, never a cookie's
        answer = data[:2] + tail if tail is not None else _answer_udp(authority, data, peer)
        if answer is not None:
            # Sent inline: a coroutine per datagram for the rare full buffer costs more
            # than the send. Only a full buffer goes to _send_datagram, to wait once.
            try:
                sendto(answer, peer)
            except BlockingIOError:
                await _send_datagram(sock, answer, peer, wait_first=True)
            except OSError as exc:
                logger.debug("UDP send to %s:%s failed: %r", peer[0], peer[1], exc)
        answered += 1
        if answered >= _UDP_BATCH:
            answered = 0
            await checkpoint()


async def _send_datagram(
    sock: socket.socket, answer: bytes, peer: tuple[str, int], *, wait_first: bool = False
) -> None:
    """Send one answer; wait once if the socket's buffer is full, then give up on it.

    ``wait_first``: the caller's own send just found the buffer full, so wait before trying.
    """
    for attempt in range(1 if wait_first else 0, 2):
        if attempt:
            await anyio.wait_writable(sock)
        try:
            sock.sendto(answer, peer)
        except BlockingIOError:
            if attempt:
                logger.debug("UDP send to %s:%s dropped: the socket stayed full", *peer[:2])
                return
        except OSError as exc:
            logger.debug("UDP send to %s:%s failed: %r", peer[0], peer[1], exc)
            return
        else:
            return


class _Transfers:
    """The zone transfers asked for on one connection, sent one after another."""

    def __init__(self, stream: FramedStream[bytes], task_group: TaskGroup, peer: str) -> None:
        self.stream = stream
        self.task_group = task_group
        self.peer = peer
        self.lock = anyio.Lock()
        self.queued = 0

    def start(self, what: str, messages: Iterator[bytes]) -> bool:
        """Queue a transfer; ``False`` when too many are queued already."""
        if self.queued >= _MAX_TRANSFERS_QUEUED:
            return False
        self.queued += 1
        # Busy, not idle, while it is sent: idle_timeout waits (a slow secondary).
        self.stream.work_in_flight += 1
        self.task_group.start_soon(self.send, what, messages)
        return True

    async def send(self, what: str, messages: Iterator[bytes]) -> None:
        sent = size = 0
        try:
            async with self.lock:
                for message in messages:
                    # In wire form: the framer's max_size bounds queries, not these.
                    frame = len(message).to_bytes(2, "big") + message
                    await self.stream.send_bytes(frame, messages=1)
                    sent += 1
                    size += len(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.info("%s to %s broken off after %d messages", what, self.peer, sent)
        else:
            logger.info("sent %s to %s: %d messages, %d bytes", what, self.peer, sent, size)
        finally:
            self.queued -= 1
            self.stream.work_in_flight -= 1


def _tcp_handler(
    serving: _Serving, framer: str, allow_transfer: Sequence[_Network]
) -> Callable[[FramedStream[bytes]], Awaitable[None]]:
    async def handle(stream: FramedStream[bytes]) -> None:
        peer = stream.extra(SocketAttribute.remote_address, None)
        host = str(peer[0]) if isinstance(peer, tuple) else None
        async with anyio.create_task_group() as tg:
            transfers = _Transfers(stream, tg, _describe(peer))

            # A plain function, so serve_pipelined answers inline, in one write per read.
            def respond(query: bytes) -> bytes | None:
                if len(query) < 2:
                    # Not even an id to answer to (a zero-length frame): the stream
                    # cannot be a DNS client's. serve_pipelined writes the answers
                    # before it and raises; serve closes the connection and logs it.
                    raise MalformedFrame(framer, f"a {len(query)}-byte message has no id")
                authority = serving.authority
                answer = authority.respond(query, udp=False, peer=host)
                # The authority refuses every transfer; a REFUSED answer (rare)
                # is looked at again here, where the peer is known.
                if answer is None or answer[3] & 0xF != Rcode.REFUSED:
                    return answer
                messages = authority.transfer(query)
                if messages is None:
                    return answer
                what = _question_text(query)
                if not _allowed(peer, allow_transfer):
                    logger.info(
                        "refused %s to %s: not an allowed address (allow_transfer)",
                        what,
                        transfers.peer,
                    )
                    return answer
                if not transfers.start(what, messages):
                    logger.info("refused %s to %s: too many transfers queued", what, transfers.peer)
                    return answer
                return None

            with contextlib.suppress(IdleTimeout):  # quiet too long: close (RFC 7766 6.2.3)
                await serve_pipelined(stream, respond)

    return handle


def _notify_message(zone: Zone, query_id: int) -> bytes:
    """RFC 1996 3.7: opcode NOTIFY, AA, the zone's SOA as question and as answer."""
    header = Header(query_id, opcode=Opcode.NOTIFY, aa=True)
    question = Question(zone.origin, RecordType.SOA)
    return build_message(Message(header, (question,), (zone.soa,)))


async def send_notify(
    zone: Zone,
    host: str,
    port: int = DNS_PORT,
    *,
    attempts: int = NOTIFY_ATTEMPTS,
    first_wait: float = NOTIFY_TIMEOUT,
) -> bool:
    """Tell a secondary that ``zone`` changed (RFC 1996), over UDP, until it answers.

    The NOTIFY is sent again when no answer comes, waiting twice as long each
    time (RFC 1996 3.6). Only an answer from ``host`` with the query's id, QR
    and opcode NOTIFY counts.

    Args:
        zone: the zone whose SOA is announced.
        host: the secondary's address.
        port: its port.
        attempts: how many times to send before giving up.
        first_wait: the first wait for an answer, in seconds.

    Returns:
        Whether the secondary answered (whatever its rcode, which is logged).
    """
    query_id = int.from_bytes(os.urandom(2), "big")
    message = _notify_message(zone, query_id)
    where = _describe((host, port))
    try:
        async with await anyio.create_connected_udp_socket(host, port) as udp:
            wait = first_wait
            for _ in range(attempts):
                await udp.send(message)
                with anyio.move_on_after(wait):
                    while True:
                        try:
                            reply = parse_message(await udp.receive())
                        except DNSFormatError:
                            continue
                        except (OSError, anyio.BrokenResourceError):
                            # ICMP port unreachable: wait out this attempt
                            await anyio.sleep_forever()
                        header = reply.header
                        if header.id == query_id and header.qr and header.opcode == Opcode.NOTIFY:
                            logger.info(
                                "NOTIFY for %s serial %d to %s: answered, rcode %d",
                                zone.origin,
                                _serial(zone),
                                where,
                                reply.rcode,
                            )
                            return True
                wait *= 2
    except OSError as exc:
        logger.warning("NOTIFY for %s to %s failed: %r", zone.origin, where, exc)
        return False
    logger.warning(
        "NOTIFY for %s to %s: no answer after %d attempts, given up", zone.origin, where, attempts
    )
    return False


async def _notify_quietly(zone: Zone, host: str, port: int) -> None:
    await send_notify(zone, host, port)


async def run_dns_server(
    zone: Zone | Sequence[Zone] | None = None,
    *,
    host: str | Sequence[str] = "127.0.0.1",
    port: int = 5053,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_peer: int | None = None,
    proxy_protocol: Sequence[str] = (),
    max_query_size: int = DEFAULT_MAX_QUERY_SIZE,
    cache_size: int = DEFAULT_CACHE_SIZE,
    allow_transfer: Sequence[str] = (),
    notify: Sequence[tuple[str, int]] = (),
    nsid: bytes | None = None,
    reuse_port: bool = False,
    stats: DNSStats | None = None,
    task_status: TaskStatus[DNSServerInfo] = TASK_STATUS_IGNORED,
) -> None:
    """Serve ``zone`` over UDP and TCP on one port until cancelled.

    Start it in a task group to learn the port (``port=0`` picks a free one)::

        info = await tg.start(partial(run_dns_server, port=0))
        print(info.port)

    EDNS: a client cookie gets a server cookie back (RFC 7873); a TCP query
    with the edns-tcp-keepalive option learns the idle timeout, 0 while the
    server sheds load (RFC 7828); NSID is given when ``nsid`` is set (RFC 5001).

    Zone transfers (AXFR, and IXFR answered as AXFR) go over TCP to the
    addresses of ``allow_transfer`` only; everyone else, and every transfer
    asked over UDP, gets REFUSED and a log line. ``info.replace_zones(zones)``
    swaps the zones served and NOTIFYs the addresses of ``notify``.

    Args:
        zone: the zone, or several (each name is answered from the zone with the
            longest matching origin); ``None`` serves the embedded example zone.
        host: the IP address to bind (both transports), or several, all on one port.
        port: the port; 0 finds one free for both UDP and TCP.
        idle_timeout: seconds a TCP connection may stay quiet; ``None``: forever.
        message_timeout: seconds a TCP query may take to arrive once its first
            byte has; ``None``: no limit.
        max_connections: TCP connections served at once.
        max_connections_per_peer: TCP connections served at once from one IP
            address (RFC 7766 6.2.2 advises a limit); ``None``: only
            ``max_connections`` applies.
        proxy_protocol: addresses or networks of proxies (dnsdist, HAProxy)
            trusted to send a PROXY header (see :func:`framing.serve`): on
            TCP, and before each UDP datagram from them, as dnsdist's
            ``useProxyProtocol`` sends it (:mod:`protocols.dns.proxied_udp`);
            the per-peer limit, cookies and logs then see the clients they name.
        max_query_size: the largest TCP query accepted; a larger frame closes
            its connection.
        cache_size: ready answers kept per transport.
        allow_transfer: addresses or networks (``ADDR[/PREFIX]``) allowed to
            transfer the zones; none by default.
        notify: (address, port) of the secondaries told of a zone's new serial.
        nsid: the server's identifier, given to queries that ask for it (RFC 5001).
        reuse_port: bind both transports with ``SO_REUSEPORT``, to share the
            port with other processes (the workers of ``--workers``).
        stats: count every answer there, by transport, type and rcode
            (:mod:`protocols.dns.stats`, for ``--metrics``).
        task_status: for ``task_group.start``: receives the :class:`DNSServerInfo`.

    Raises:
        OSError: the port could not be bound.
        ValueError: an entry of ``allow_transfer`` is not an address or network.
    """
    if zone is None:
        zones: tuple[Zone, ...] = (example_zone(),)
    elif isinstance(zone, Zone):
        zones = (zone,)
    else:
        zones = tuple(zone)
    hosts = (host,) if isinstance(host, str) else tuple(host)
    if not hosts:
        raise ValueError("run_dns_server needs at least one host")
    networks = [ipaddress.ip_network(source, strict=False) for source in allow_transfer]

    def keepalive() -> int:
        # RFC 7828 3.3.2: the idle timeout in units of 100 ms; 0 asks the client to
        # close its connection, when the server sheds load.
        if serving.tcp is not None and serving.tcp.shedding:
            return 0
        return round((idle_timeout or 0) * 10)

    settings: dict[str, Any] = {
        "cache_size": cache_size,
        "nsid": nsid,
        "tcp_keepalive": keepalive if idle_timeout is not None else None,
    }
    authority = (
        Authority(zones, **settings)
        if stats is None
        else CountingAuthority(zones, stats=stats, **settings)
    )
    serving = _Serving(authority, tuple(notify))
    framer = LengthPrefixed(2, max_size=max_query_size)
    listeners, sockets, bound = await _bind(hosts, port, reuse_port=reuse_port)
    with contextlib.ExitStack() as stack:
        for sock in sockets:  # closed once the task group, and so _serve_udp, has ended
            stack.enter_context(sock)
        async with anyio.create_task_group() as tg:
            serving.task_group = tg
            for sock in sockets:
                if proxy_protocol:
                    tg.start_soon(serve_proxied_udp, sock, serving, proxy_protocol, _send_datagram)
                else:
                    tg.start_soon(_serve_udp, sock, serving)
            tcp = await tg.start(
                partial(
                    serve,
                    _tcp_handler(serving, repr(framer), networks),
                    framer,
                    listeners=listeners,
                    idle_timeout=idle_timeout,
                    message_timeout=message_timeout,
                    max_connections=max_connections,
                    max_connections_per_peer=max_connections_per_peer,
                    proxy_protocol=proxy_protocol,
                )
            )
            serving.tcp = tcp
            task_status.started(DNSServerInfo(hosts[0], bound, zones[0], tcp, hosts, serving))
