"""The peer echo servers for 2-byte length-prefixed messages, one per way of writing one.

    python -m benchmarks.echo_peers KIND [--port 0]

prints ``listening on 127.0.0.1:PORT`` once it listens, then serves until
SIGTERM. Each echoes every message whole, re-encoded with its header, as an
application that looks at its messages would (none just copies the bytes back):

- ``asyncio-protocol`` / ``uvloop-protocol``: a hand-written ``asyncio.Protocol``
  that decodes every frame of a read from one bytearray and answers them all in
  one write (the fastest way to write it on asyncio).
- ``twisted``: an ``Int16StringReceiver`` whose ``stringReceived`` calls
  ``sendString`` (Twisted joins the writes of one read); TCP_NODELAY on, as
  asyncio and anyio set it by default.
- ``asyncio-protocol-proxy``: the same Protocol behind HAProxy's ``send-proxy-v2``
  (``BENCH=scale``): it skips the PROXY header (v2, or v1) at the start of each
  connection, trusting it unread, as the least a PROXY-aware server must do.
- ``asyncio-streams``: ``readexactly`` the header, ``readexactly`` the body,
  ``write`` + ``drain`` per message.
- ``anyio-natural``: anyio on asyncio, ``BufferedByteReceiveStream.receive_exactly``
  for header and body, one ``send`` per message.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from benchmarks.connload import raise_nofile

HOST = "127.0.0.1"
#: The listen backlog of every peer, as large as Linux's default somaxconn (anyio asks
#: for more and gets that): Twisted's default of 50 would drop the SYNs of a burst.
BACKLOG = 4096


def announce(port: int) -> None:
    print(f"listening on {HOST}:{port}", flush=True)


class EchoProtocol(asyncio.Protocol):
    """Decodes every whole frame of each read, answers them in one write."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        end = len(buf)
        pos = 0
        replies: list[bytes] = []
        append = replies.append
        while end - pos >= 2:
            stop = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
            if stop > end:
                break
            message = bytes(buf[pos + 2 : stop])
            append(len(message).to_bytes(2, "big"))
            append(message)
            pos = stop
        if pos:
            del buf[:pos]
            self.transport.write(b"".join(replies))


#: The 12 bytes that open a PROXY v2 header; then version and command, family,
#: and a 2-byte length of the addresses and TLVs that follow.
PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


class ProxiedEchoProtocol(EchoProtocol):
    """Skips the PROXY header that opens the connection, then echoes as EchoProtocol."""

    def __init__(self) -> None:
        super().__init__()
        self.head: bytearray | None = bytearray()  # None once the header is skipped

    def data_received(self, data: bytes) -> None:
        head = self.head
        if head is None:
            super().data_received(data)
            return
        head += data
        if head.startswith(PROXY_V2):
            if len(head) < 16:
                return
            end = 16 + (head[14] << 8 | head[15])
        elif head.startswith(b"PROXY "):
            end = head.find(b"\r\n") + 2
            if end == 1:
                return
        elif len(head) < 12 and (PROXY_V2.startswith(head) or b"PROXY ".startswith(head[:6])):
            return
        else:
            end = 0  # no header
        if len(head) < end:
            return
        self.head = None
        if len(head) > end:
            super().data_received(bytes(head[end:]))


async def serve_protocol(factory: type[EchoProtocol] = EchoProtocol) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, HOST, 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


async def serve_streams() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(2)
                message = await reader.readexactly(int.from_bytes(header, "big"))
                writer.write(len(message).to_bytes(2, "big") + message)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def serve_anyio() -> None:
    import anyio
    from anyio.abc import SocketStream
    from anyio.streams.buffered import BufferedByteReceiveStream

    async def handle(stream: SocketStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        async with stream:
            try:
                while True:
                    header = await buffered.receive_exactly(2)
                    message = await buffered.receive_exactly(int.from_bytes(header, "big"))
                    await stream.send(len(message).to_bytes(2, "big") + message)
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
                pass

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
        announce(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(handle)

    anyio.run(main, backend="asyncio")


def serve_twisted() -> None:
    from twisted.internet import protocol, reactor
    from twisted.protocols.basic import Int16StringReceiver

    class Echo(Int16StringReceiver):  # type: ignore[misc]
        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)

        def stringReceived(self, string: bytes) -> None:
            self.sendString(string)

    factory = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, factory, backlog=BACKLOG, interface=HOST)
    announce(port.getHost().port)
    reactor.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "kind",
        choices=[
            "asyncio-protocol",
            "uvloop-protocol",
            "asyncio-protocol-proxy",
            "twisted",
            "asyncio-streams",
            "anyio-natural",
        ],
    )
    args = parser.parse_args(argv)
    raise_nofile()
    if args.kind == "asyncio-protocol":
        asyncio.run(serve_protocol())
    elif args.kind == "uvloop-protocol":
        import uvloop

        uvloop.run(serve_protocol())
    elif args.kind == "asyncio-protocol-proxy":
        asyncio.run(serve_protocol(ProxiedEchoProtocol))
    elif args.kind == "asyncio-streams":
        asyncio.run(serve_streams())
    elif args.kind == "anyio-natural":
        serve_anyio()
    else:
        serve_twisted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
