"""asyncio sockets as anyio byte streams, on asyncio's public protocol API.

::

    FramedStream  --receive()/send()-->  AsyncioSocketStream  (an anyio ByteStream)
                                               |
                                         _Protocol(asyncio.BufferedProtocol)
                                           get_buffer / buffer_updated -> chunks
                                               |
                                         the event loop's transport (asyncio or uvloop)

Why a transport of our own: anyio's asyncio ``SocketStream`` turns the event
loop once on every ``send`` that did not have to wait, resumes and pauses
reading around every ``receive`` that waits (two ``epoll_ctl`` calls on the
selector loop), and reads ahead without bound on accepted sockets until a
receive first waits. A hand-written asyncio protocol pays none of that. This
module is that protocol, written once, on asyncio's *public* API
(``asyncio.BufferedProtocol``, ``loop.connect_accepted_socket``,
``loop.create_connection``), wrapped as an :class:`anyio.abc.ByteStream` so that
everything above it (``FramedStream``, ``TLSStream``) is the same on every
backend. :func:`framing.connect` and :func:`framing.serve` choose it once, when a
connection is made, when the running backend is asyncio (or uvloop); on trio,
and over any other byte stream, anyio's own streams are used.

What it keeps of anyio's contract:

- ``receive`` raises :class:`anyio.EndOfStream` after the peer's end of stream,
  :class:`anyio.BrokenResourceError` once the connection failed,
  :class:`anyio.ClosedResourceError` after ``aclose``, and
  :class:`anyio.BusyResourceError` to a second task receiving at once (the same
  for sending).
- Cancellation: a cancelled ``receive`` takes no byte; a cancelled ``send``
  writes nothing (it checks before writing).
- Fairness: an operation that need not wait does not yield to the event loop,
  but every ``YIELD_EVERY``-th such operation in a row does, so a task that
  only sends or only finds data already queued cannot starve the others.

Backpressure and memory:

- Reading: chunks read from the socket wait in a queue until received. Once
  ``READ_AHEAD`` bytes wait unreceived, reading pauses; the next receive that
  finds the queue empty resumes it. A connection so holds at most
  ``READ_AHEAD`` plus one read (64 KiB) beyond what its framer holds, and a
  peer that writes while nobody receives meets a full TCP window.
  :attr:`AsyncioSocketStream.queued` says how many bytes wait.
- Writing: ``send`` returns once the transport has the bytes, and waits while
  more than ``_WRITE_HIGH`` bytes are unsent (the transport's ``pause_writing``).
- The receive buffer that the loop reads into is shared by every connection
  of a thread (``buffer_updated`` copies out what was read at once), so an
  idle connection holds no buffer of its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, cast, final

from anyio import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import ByteStream, SocketAttribute
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

__all__ = [
    "CLOSE_LINGER",
    "READ_AHEAD",
    "YIELD_EVERY",
    "AsyncioSocketStream",
    "address",
    "asyncio_loop",
    "connect_tcp",
    "connect_unix",
    "read_ahead",
    "wrap_accepted_socket",
]


def read_ahead(stream: ByteStream) -> int:
    """Bytes ``stream`` has read and not yet handed out, if it says (an int ``queued``).

    :class:`AsyncioSocketStream` and the wrappers of :mod:`framing.proxied` say;
    anyio's own streams do not (see :meth:`FramedStream.start_tls
    <framing.FramedStream.start_tls>` for why what they hold is still refused).
    """
    queued = getattr(stream, "queued", 0)
    return queued if isinstance(queued, int) else 0


# How much read and not yet received a connection may queue before reading
# pauses: one default FramedStream read. More only delays backpressure.
READ_AHEAD = 65536
# What the loop reads into, per call: the same size anyio's sockets read.
_READ_SIZE = 65536
# The transport's write high-water mark: sends return at once below it, so that
# a reply costs no turn of the loop, and wait above it (the peer is not reading).
_WRITE_HIGH = 65536
# Seconds a closed connection may go on sending what it had not yet written,
# before it is aborted: a peer that never reads cannot hold it open for long.
CLOSE_LINGER = 10.0
# Operations in a row that did not wait before one yields anyway (fairness).
YIELD_EVERY = 16

_local = threading.local()


def _read_buffer() -> memoryview:
    """The receive buffer shared by the connections of this thread's event loop."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_READ_SIZE))
    return view


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio event loop (asyncio's own or uvloop), or ``None`` (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@final
class _Protocol(asyncio.BufferedProtocol):
    """The state one connection shares between the event loop and its stream."""

    __slots__ = (
        "chunks",
        "eof",
        "exception",
        "held",
        "lost",
        "read_waiter",
        "transport",
        "view",
        "write_paused",
        "write_waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # None while nothing waits: an empty deque costs about 600 bytes, and
        # most connections spend their life with nothing queued.
        self.chunks: deque[bytes] | None = None
        self.held = 0  # bytes in chunks
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.write_paused = False
        self.read_waiter: asyncio.Future[None] | None = None
        self.write_waiter: asyncio.Future[None] | None = None
        self.view = _read_buffer()

    # -- the event loop calls these -----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport instances.
        self.transport = cast("asyncio.Transport", transport)
        self.transport.set_write_buffer_limits(high=_WRITE_HIGH)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        chunk = self.view[:nbytes].tobytes()
        if self.chunks is None:
            self.chunks = deque((chunk,))
        else:
            self.chunks.append(chunk)
        self.held += nbytes
        if self.held >= READ_AHEAD:
            assert self.transport is not None
            self.transport.pause_reading()
        self.wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self.wake_reader()
        return True  # keep the transport open: we may still send (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exception = exc
        self.wake_reader()
        self.wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake_writer()

    # -- the stream calls these ---------------------------------------------

    def wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake_writer(self) -> None:
        waiter = self.write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_writable(self) -> None:
        waiter = self.write_waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self.write_waiter = None


@final
class AsyncioSocketStream(ByteStream):
    """A TCP or Unix socket connection on asyncio's protocol API, as an anyio byte stream.

    Made by :func:`wrap_accepted_socket` and :func:`connect_tcp`; used by
    :func:`framing.serve` and :func:`framing.connect` on asyncio and uvloop. Its
    extra attributes are anyio's :class:`~anyio.abc.SocketAttribute` ones.
    """

    __slots__ = (
        "_is_closed",
        "_loop_transport",
        "_receiving",
        "_sending",
        "_socket",
        "_state",
        "_unyielded",
    )

    def __init__(
        self, transport: asyncio.Transport, protocol: _Protocol, sock: socket.socket | Any
    ) -> None:
        self._loop_transport = transport
        self._state = protocol
        self._socket = sock
        self._is_closed = False
        self._unyielded = 0
        # Busy flags, as anyio's ResourceGuard keeps them: two booleans cost an
        # idle connection nothing, where two guards were two more objects for the
        # collector to visit (and a bound __exit__ held by a waiting receive).
        self._receiving = False
        self._sending = False

    async def _fair_checkpoint(self) -> None:
        """An operation that did not wait: yield once every ``YIELD_EVERY`` (see module)."""
        self._unyielded += 1
        if self._unyielded > YIELD_EVERY:
            self._unyielded = 0
            await checkpoint()
        else:
            await checkpoint_if_cancelled()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return the next bytes read, at most ``max_bytes``, waiting if none are queued.

        Raises:
            anyio.EndOfStream: the peer ended its side and everything was received.
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BusyResourceError: another task is receiving.
        """
        if self._receiving:
            raise BusyResourceError("reading from")
        self._receiving = True
        try:
            protocol = self._state
            if protocol.chunks and not self._is_closed:
                await self._fair_checkpoint()
            while not protocol.chunks or self._is_closed:
                if self._is_closed:
                    raise ClosedResourceError
                if protocol.eof:
                    raise EndOfStream
                if protocol.lost:
                    raise BrokenResourceError from protocol.exception
                # Nothing queued: reading resumes (it pauses only at READ_AHEAD).
                self._loop_transport.resume_reading()
                self._unyielded = 0
                # Waits here, not in a method of the protocol: one coroutine frame
                # fewer held by every idle connection.
                waiter = protocol.read_waiter = asyncio.get_running_loop().create_future()
                try:
                    await waiter
                finally:
                    protocol.read_waiter = None
            chunks = protocol.chunks
            chunk = chunks.popleft()
            if len(chunk) > max_bytes:
                chunks.appendleft(chunk[max_bytes:])
                chunk = chunk[:max_bytes]
            elif not chunks:
                protocol.chunks = None
            protocol.held -= len(chunk)
            return chunk
        finally:
            self._receiving = False

    async def send(self, item: bytes) -> None:
        """Write ``item``; wait while the peer leaves too much of what was sent unread.

        Raises:
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BusyResourceError: another task is sending.
        """
        if self._sending:
            raise BusyResourceError("writing to")
        self._sending = True
        try:
            await self._fair_checkpoint()  # cancelled: nothing is written
            protocol = self._state
            if self._is_closed:
                raise ClosedResourceError
            if protocol.lost or self._loop_transport.is_closing():
                raise BrokenResourceError from protocol.exception
            self._loop_transport.write(item)
            while protocol.write_paused:
                self._unyielded = 0
                await protocol.wait_writable()
                if self._is_closed:
                    raise ClosedResourceError
                if protocol.lost:
                    raise BrokenResourceError from protocol.exception
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Half-close: end our side (TCP FIN); receiving goes on.

        Raises:
            anyio.BrokenResourceError: the connection failed.
            anyio.ClosedResourceError: this stream was closed.
        """
        await checkpoint_if_cancelled()
        if self._is_closed:
            raise ClosedResourceError
        if self._state.lost or self._loop_transport.is_closing():
            raise BrokenResourceError from self._state.exception
        try:
            self._loop_transport.write_eof()
        except OSError as exc:
            # The peer reset the connection before the loop noticed: shutdown()
            # says ENOTCONN (seen on asyncio's selector loop).
            raise BrokenResourceError from exc

    async def aclose(self) -> None:
        """Close at once; bytes sent and not yet taken by the peer still go, for a while.

        As a kernel lingers on a closed socket: the transport keeps sending what
        it holds (at most about ``_WRITE_HIGH`` bytes) for up to ``CLOSE_LINGER``
        seconds, then aborts. A cancelled close aborts at once, discarding them.
        """
        transport = self._loop_transport
        if not self._is_closed:
            self._is_closed = True
            self._state.wake_reader()
            self._state.wake_writer()
            transport.close()
            if transport.get_write_buffer_size():
                asyncio.get_running_loop().call_later(CLOSE_LINGER, transport.abort)
        try:
            await checkpoint()
        except BaseException:
            transport.abort()
            raise

    @property
    def queued(self) -> int:
        """Bytes read from the socket and not yet received (at most ``READ_AHEAD`` + one read).

        This transport reads ahead, so bytes the peer sent may wait here
        unseen by the reader. :meth:`FramedStream.start_tls
        <framing.FramedStream.start_tls>` counts them: any byte held after a
        STARTTLS request is a plaintext injection. Any byte stream that reads
        ahead may say the same in an ``int`` property of this name.
        """
        return self._state.held

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Anyio's socket attributes: family, addresses, ports, the raw socket."""
        sock = self._socket
        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: lambda: address(sock.getsockname()),
            SocketAttribute.raw_socket: lambda: sock,
        }
        peer = self._loop_transport.get_extra_info("peername")
        if peer is not None:
            attributes[SocketAttribute.remote_address] = lambda: address(peer)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attributes[SocketAttribute.local_port] = lambda: sock.getsockname()[1]
            if peer is not None:
                attributes[SocketAttribute.remote_port] = lambda: peer[1]
        return attributes


def address(sockaddr: Any) -> Any:
    """A socket address as anyio gives it: IPv6 as ``(host, port)``, with ``%scope`` if any."""
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _flowinfo, scope_id = sockaddr
        return (f"{host}%{scope_id}" if scope_id else host), port
    return sockaddr


async def wrap_accepted_socket(sock: socket.socket) -> AsyncioSocketStream:
    """Make a stream of a socket ``accept`` returned, on the running asyncio loop.

    Raises:
        OSError: the socket could not be registered with the loop.
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_accepted_socket(_Protocol, sock)
    return AsyncioSocketStream(transport, protocol, sock)


async def connect_tcp(
    host: str,
    port: int,
    *,
    local_host: str | None = None,
    happy_eyeballs_delay: float = 0.25,
) -> AsyncioSocketStream:
    """Connect over TCP on the running asyncio loop (Happy Eyeballs on asyncio's own).

    Raises:
        OSError: the connection failed.
    """
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {}
    if isinstance(loop, asyncio.BaseEventLoop):
        # asyncio's own loop races the addresses (RFC 8305); uvloop has no such
        # option and tries them one after another.
        options["happy_eyeballs_delay"] = happy_eyeballs_delay
    transport, protocol = await loop.create_connection(
        _Protocol,
        host,
        port,
        local_addr=(local_host, 0) if local_host is not None else None,
        **options,
    )
    sock = transport.get_extra_info("socket")
    return AsyncioSocketStream(transport, protocol, sock)


async def connect_unix(path: str | bytes) -> AsyncioSocketStream:
    """Connect to a Unix socket on the running asyncio loop.

    Raises:
        OSError: the connection failed.
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_unix_connection(_Protocol, path)  # type: ignore[arg-type]
    sock = transport.get_extra_info("socket")
    return AsyncioSocketStream(transport, protocol, sock)
