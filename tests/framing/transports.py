"""Connected byte-stream pairs over every transport the anyio layer is tested on.

`stream_pair(kind)` yields two connected `anyio.abc.ByteStream`s: over TCP on
127.0.0.1 and ::1, a Unix socket, TLS on loopback (certificates from trustme),
an in-memory pair (anyio has no in-memory *byte* stream, so `MemoryByteStream`
adapts two unbuffered memory object streams), and the transports `framing` itself
picks ("framing-tcp4", "framing-unix", "framing-tls"): on asyncio, its own
(`framing.transport`, client side as `connect` makes it, server side as `serve`
accepts); on trio, anyio's.
"""

from __future__ import annotations

import functools
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import trustme
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.tls import TLSStream

from framing import transport

TRANSPORTS = [
    "memory",
    "tcp4",
    "tcp6",
    "unix",
    "tls",
    "framing-tcp4",
    "framing-tcp6",
    "framing-unix",
    "framing-tls",
]


@dataclass(frozen=True)
class Capabilities:
    half_close: bool  # send_eof works (TLS in standard-compatible mode cannot)
    socket: bool  # has socket attributes (remote_address...)


CAPABILITIES = {
    "memory": Capabilities(half_close=True, socket=False),
    "tcp4": Capabilities(half_close=True, socket=True),
    "tcp6": Capabilities(half_close=True, socket=True),
    "unix": Capabilities(half_close=True, socket=True),
    "tls": Capabilities(half_close=False, socket=True),
    "framing-tcp4": Capabilities(half_close=True, socket=True),
    "framing-tcp6": Capabilities(half_close=True, socket=True),
    "framing-unix": Capabilities(half_close=True, socket=True),
    "framing-tls": Capabilities(half_close=False, socket=True),
}


class MemoryByteStream(ByteStream):
    """One end of an in-memory byte stream pair; unbuffered, so sends wait for the peer."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive
        self._leftover = memoryview(b"")

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._leftover:
            self._leftover = memoryview(await self._receive.receive())
        chunk, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
        return bytes(chunk)

    async def send(self, item: bytes) -> None:
        await self._send.send(bytes(item))

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {}


async def until(predicate: Callable[[], bool], *, polls: int = 500) -> None:
    """Poll `predicate` every 10 ms (at most `polls` times); fail if it never holds."""
    for _ in range(polls):
        if predicate():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition never held")


def memory_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](0)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](0)
    return MemoryByteStream(a_send, a_receive), MemoryByteStream(b_send, b_receive)


@functools.cache
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts from a throwaway trustme CA, for localhost and loopback."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def _accept_one(host: str) -> tuple[ByteStream, ByteStream]:
    async with await anyio.create_tcp_listener(local_host=host) as listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await anyio.connect_tcp(host, port)
        server = await listener.listeners[0].accept()  # type: ignore[attr-defined]
    return client, server


async def _framing_pair(family: socket.AddressFamily, where: str) -> tuple[ByteStream, ByteStream]:
    """(client, server) over the transports framing picks on the running backend."""
    loop = transport.asyncio_loop()
    if loop is None:  # trio: anyio's own streams
        if family == socket.AF_UNIX:
            async with await anyio.create_unix_listener(where) as listener:
                return await anyio.connect_unix(where), await listener.accept()
        return await _accept_one(where)
    if family == socket.AF_UNIX:
        listening = socket.socket(socket.AF_UNIX)
        listening.bind(where)
    else:
        listening = socket.socket(family)
        listening.bind((where, 0))
    with listening:
        listening.listen()
        listening.setblocking(False)
        client: ByteStream
        if family == socket.AF_UNIX:
            client = await transport.connect_unix(where)
        else:
            client = await transport.connect_tcp(where, listening.getsockname()[1])
        accepted, _ = await loop.sock_accept(listening)
        return client, await transport.wrap_accepted_socket(accepted)


async def _tls_wrap(left: ByteStream, right: ByteStream) -> tuple[ByteStream, ByteStream]:
    server_ctx, client_ctx = tls_contexts()
    wrapped: dict[str, ByteStream] = {}

    async def wrap_server() -> None:
        wrapped["server"] = await TLSStream.wrap(right, server_side=True, ssl_context=server_ctx)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wrap_server)
        left = await TLSStream.wrap(left, hostname="localhost", ssl_context=client_ctx)
    return left, wrapped["server"]


@asynccontextmanager
async def stream_pair(kind: str) -> AsyncIterator[tuple[ByteStream, ByteStream]]:
    """Yield (client, server) connected byte streams of the given kind; close both after."""
    left: ByteStream
    right: ByteStream
    if kind == "memory":
        left, right = memory_pair()
    elif kind in ("tcp4", "tcp6", "tls"):
        left, right = await _accept_one("::1" if kind == "tcp6" else "127.0.0.1")
        if kind == "tls":
            left, right = await _tls_wrap(left, right)
    elif kind == "unix":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sock"
            async with await anyio.create_unix_listener(path) as listener:
                left = await anyio.connect_unix(path)
                right = await listener.accept()
    elif kind in ("framing-tcp4", "framing-tcp6", "framing-tls"):
        host = "::1" if kind == "framing-tcp6" else "127.0.0.1"
        family = socket.AF_INET6 if kind == "framing-tcp6" else socket.AF_INET
        left, right = await _framing_pair(family, host)
        if kind == "framing-tls":
            left, right = await _tls_wrap(left, right)
    elif kind == "framing-unix":
        with tempfile.TemporaryDirectory() as tmp:
            left, right = await _framing_pair(socket.AF_UNIX, str(Path(tmp) / "sock"))
    else:
        raise ValueError(kind)
    try:
        yield left, right
    finally:
        await anyio.aclose_forcefully(left)
        await anyio.aclose_forcefully(right)
