r"""A byte stream after its PROXY header: the real client in its attributes, no byte lost.

::

    proxy's connection   | PROXY TCP4 192.0.2.7 ... \r\n | \x00\x05hello ...
                           read by read_proxy_header       replayed first by ProxiedStream,
                           (ProxyHeaderParser)             then read straight through

:func:`read_proxy_header` reads a stream's first chunks until
:class:`~framing.proxy.ProxyHeaderParser` has the header, and returns a
:class:`ProxiedStream`: an :class:`anyio.abc.ByteStream` whose ``receive``
hands out, first, the bytes that arrived after the header in the same reads,
and then reads the wrapped stream. Whatever comes next (a framer, a TLS
handshake) sees the stream exactly as the client sent it.

Its typed attributes are the wrapped stream's, except that
``SocketAttribute.remote_address`` and ``remote_port`` name the client that
the header names (for ``PROXY`` over IPv4 or IPv6). The proxy's own address
stays available as :attr:`ProxyAttribute.proxy_address` and
:attr:`ProxyAttribute.proxy_port`, and the header itself as
:attr:`ProxyAttribute.header`. A ``LOCAL`` header (a health check), an
``UNKNOWN`` or unspecified one, or none at all leaves the remote address the
proxy's own.

:func:`framing.serve` does this for connections from the proxies it is told to
trust (``proxy_protocol``); use these directly over any other byte stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, final

import anyio
from anyio import EndOfStream, TypedAttributeSet, typed_attribute
from anyio.abc import ByteStream, SocketAttribute
from anyio.lowlevel import checkpoint

from framing.base import BytesLike
from framing.errors import ProxyHeaderError
from framing.proxy import DEFAULT_MAX_V2_SIZE, V2_SIGNATURE, ProxyHeader, ProxyHeaderParser
from framing.transport import read_ahead

__all__ = ["ProxiedStream", "ProxyAttribute", "UntrustedStream", "read_proxy_header"]


class ProxyAttribute(TypedAttributeSet):
    """Typed attributes of a :class:`ProxiedStream` (``stream.extra(ProxyAttribute.header)``)."""

    #: The PROXY header read (absent when none was: an optional header left out).
    header: ProxyHeader = typed_attribute()
    #: The proxy's own address: what ``SocketAttribute.remote_address`` is for
    #: a ``LOCAL`` header or none, and was before the header named the client.
    proxy_address: Any = typed_attribute()
    #: The proxy's own port: what ``SocketAttribute.remote_port`` was.
    proxy_port: int = typed_attribute()


class _Relay(ByteStream):
    """A byte stream over another one that it owns: sends, half-closes and closes pass through."""

    __slots__ = ("transport_stream",)

    def __init__(self, transport_stream: ByteStream) -> None:
        self.transport_stream = transport_stream

    async def send(self, item: bytes) -> None:
        """Send on the wrapped stream."""
        await self.transport_stream.send(item)

    async def send_eof(self) -> None:
        """Half-close the wrapped stream."""
        await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self.transport_stream.aclose()


@final
class ProxiedStream(_Relay):
    """A byte stream whose PROXY header was read: the bytes after it first, then the rest.

    Args:
        transport_stream: the stream the header was read from (this stream owns it).
        header: the header, or ``None`` when an optional one was left out.
        rest: bytes read past the header, handed out first by ``receive``.

    Attributes:
        transport_stream: the wrapped stream.
        header: as given.
    """

    __slots__ = ("_rest", "header")

    def __init__(
        self, transport_stream: ByteStream, header: ProxyHeader | None, rest: bytes
    ) -> None:
        super().__init__(transport_stream)
        self.header = header
        self._rest = rest

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return the bytes read past the header first, then read the wrapped stream."""
        rest = self._rest
        if rest:
            await checkpoint()
            self._rest = rest[max_bytes:]
            return rest[:max_bytes]
        return await self.transport_stream.receive(max_bytes)

    @property
    def queued(self) -> int:
        """Bytes read and not yet received: those left after the header, and the wrapped stream's.

        The wrapped stream's count when it says (a ``queued`` of its own), as
        :meth:`FramedStream.start_tls <framing.FramedStream.start_tls>` asks.
        """
        return len(self._rest) + read_ahead(self.transport_stream)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's attributes, the remote end being the client the header names."""
        attributes: dict[Any, Callable[[], Any]] = dict(self.transport_stream.extra_attributes)
        for own, theirs in (
            (SocketAttribute.remote_address, ProxyAttribute.proxy_address),
            (SocketAttribute.remote_port, ProxyAttribute.proxy_port),
        ):
            if own in attributes:
                attributes[theirs] = attributes[own]
        header = self.header
        if header is None:
            return attributes
        attributes[ProxyAttribute.header] = lambda: header
        client = header.client_address
        if client is None:
            return attributes
        port = header.source_port
        attributes[SocketAttribute.remote_address] = lambda: (client, port)
        attributes[SocketAttribute.remote_port] = lambda: port
        return attributes


async def read_proxy_header(
    stream: ByteStream,
    *,
    header_timeout: float,
    optional: bool = False,
    max_size: int = DEFAULT_MAX_V2_SIZE,
) -> ProxiedStream:
    """Read the PROXY header that begins ``stream``; return the stream after it.

    Args:
        stream: a connection from a proxy trusted to send the header.
        header_timeout: seconds for the whole header to arrive.
        optional: a stream that does not begin with a header is served as it
            is (``header`` ``None``), instead of refused.
        max_size: the largest version 2 header accepted (see
            :class:`~framing.proxy.ProxyHeaderParser`).

    Returns:
        A :class:`ProxiedStream` over ``stream``.

    Raises:
        ProxyHeaderError: the header is missing (unless ``optional``),
            malformed, cut short by the end of the stream, or not complete
            within ``header_timeout``.
        anyio.EndOfStream: the stream ended before a single byte (a proxy's
            connect-only health check): nothing to serve.
        anyio.BrokenResourceError: the connection failed.
    """
    parser = ProxyHeaderParser(optional=optional, max_size=max_size)
    with anyio.move_on_after(header_timeout):
        while True:
            try:
                chunk = await stream.receive()
            except EndOfStream:
                if not parser.buffered:
                    raise
                header, rest = parser.feed_eof()
                return ProxiedStream(stream, header, rest)
            result = parser.feed(chunk)
            if result is not None:
                return ProxiedStream(stream, *result)
    raise header_too_late(parser, header_timeout)


def header_too_late(parser: ProxyHeaderParser, timeout: float) -> ProxyHeaderError:
    """The error for a trusted proxy's header not whole within ``timeout`` seconds."""
    return ProxyHeaderError(
        repr(parser),
        f"no complete PROXY header within {timeout} s ({parser.buffered} bytes of it held)",
    )


def forged_header(first: BytesLike) -> ProxyHeaderError | None:
    """The error for a first read from an untrusted peer that begins a PROXY header, or ``None``.

    Only a signature whole in ``first`` counts (see :class:`UntrustedStream`).
    """
    head = bytes(first[:12])
    if not head.startswith((b"PROXY ", V2_SIGNATURE)):
        return None
    version = 1 if head.startswith(b"PROXY ") else 2
    return ProxyHeaderError(
        "PROXY protocol", f"a version {version} header from a peer that is not a trusted proxy"
    )


@final
class UntrustedStream(_Relay):
    """A direct client's stream on a server behind proxies: a PROXY header from it is refused.

    A server that trusts proxies to tell it the client's address (``serve(...,
    proxy_protocol=...)``) never trusts a header from anyone else. One that
    arrives anyway is a client claiming another address (a forged header, or a
    proxy not configured as trusted): the first receive raises
    :class:`~framing.ProxyHeaderError` when the first bytes read begin with a
    version 1 or version 2 signature, so the server logs it and closes that
    connection. Nothing is waited for (a protocol where the server speaks first
    works as before); a header split so that its signature does not arrive
    whole in the first read is served as the plain data it then is, never
    trusted.

    Args:
        transport_stream: the accepted connection (this stream owns it).

    Attributes:
        transport_stream: the wrapped stream.
    """

    __slots__ = ("_checked",)

    def __init__(self, transport_stream: ByteStream) -> None:
        super().__init__(transport_stream)
        self._checked = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Read the wrapped stream; the first read may not begin with a PROXY signature.

        Raises:
            ProxyHeaderError: the first bytes are a PROXY signature.
        """
        chunk = await self.transport_stream.receive(max_bytes)
        if not self._checked:
            self._checked = True
            forged = forged_header(chunk)
            if forged is not None:
                raise forged
        return chunk

    @property
    def queued(self) -> int:
        """The wrapped stream's count of bytes read and not yet received, when it says."""
        return read_ahead(self.transport_stream)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped stream's attributes."""
        return self.transport_stream.extra_attributes
