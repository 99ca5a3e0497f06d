"""FramedStream.start_tls: STARTTLS in place, and the plaintext injection it refuses.

Both ends upgrade over every plaintext transport the conformance suite knows
(anyio's and framing's own TCP and Unix streams), on
asyncio, uvloop and trio, with certificates from trustme. The injection tests
are the bug class of CVE-2011-0411 (Postfix) and CVE-2021-33515 (Dovecot): a
peer that sends ``STARTTLS\\r\\nRSET\\r\\n`` in one write.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest
from anyio.streams.tls import TLSAttribute, TLSStream

from framing import (
    FramedStream,
    Lines,
    MalformedFrame,
    PlaintextInjection,
    TLSHandshakeFailed,
    serve,
)
from framing.proxied import ProxiedStream
from framing.server import ServerInfo
from framing.transport import AsyncioSocketStream
from tests.framing.transports import stream_pair, tls_contexts, until

pytestmark = pytest.mark.anyio

T = TypeVar("T")

# Not "memory": its sends wait for the peer to receive, and a TLS handshake has
# both ends send at once (TLS 1.3's session tickets cross the client's Finished),
# so TLS over it deadlocks whoever starts it; sockets buffer.
PLAINTEXT = ["tcp4", "tcp6", "unix", "framing-tcp4", "framing-tcp6", "framing-unix"]


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Both backends, and uvloop: framing's own transport runs on its event loop."""
    return request.param


@pytest.fixture(params=PLAINTEXT)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def while_sending(
    send: Callable[[], Coroutine[Any, Any, object]], receive: Callable[[], Awaitable[T]]
) -> T:
    """Await ``receive`` while ``send`` runs in a task, so a send that waits cannot stall."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        received = await receive()
    return received


async def upgrade_both(client: FramedStream[bytes], server: FramedStream[bytes]) -> None:
    """The SMTP exchange: STARTTLS, the server's 220 sent by start_tls, both handshakes."""
    server_ctx, client_ctx = tls_contexts()
    assert await while_sending(lambda: client.send(b"STARTTLS"), server.receive) == b"STARTTLS"
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: server.start_tls(server_ctx, server_side=True, reply=b"220 2.0.0 Ready")
        )
        assert await client.receive() == b"220 2.0.0 Ready"
        await client.start_tls(client_ctx, server_side=False, hostname="localhost")


async def test_start_tls_upgrades_both_sides_in_place(kind: str) -> None:
    """Same stream objects, framers and counters; bytes exact, in reads of 7 bytes."""
    big = bytes(range(32, 127)) * 700  # 66500 bytes: several TLS records
    after = [b"EHLO client", b"", big, b"QUIT"]
    with anyio.fail_after(20):
        async with stream_pair(kind) as (a, b):
            client = FramedStream(a, Lines(max_size=70000))
            server = FramedStream(b, Lines(max_size=70000))
            framer, stats = server.framer, server.stats
            ehlo = await while_sending(lambda: client.send(b"EHLO before"), server.receive)
            assert ehlo == b"EHLO before"
            await upgrade_both(client, server)

            assert server.framer is framer
            assert server.stats is stats
            assert isinstance(server.transport_stream, TLSStream)
            assert isinstance(client.transport_stream, TLSStream)
            assert server.extra(TLSAttribute.server_side) is True
            assert client.extra(TLSAttribute.server_side) is False
            server.receive_size = client.receive_size = 7  # split reads under TLS
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send_many, after)
                assert [await server.receive() for _ in after] == after
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.send, big)
                assert await client.receive() == big
            # Counted across the upgrade: the reply is a message sent, the TLS records are not.
            assert server.stats.messages_in == 2 + len(after)
            assert server.stats.messages_out == 2
            assert client.stats.messages_in == 2
            assert server.stats.errors == {}
            assert client.stats.errors == {}


async def test_start_tls_sends_wait_for_the_upgrade_and_go_under_tls() -> None:
    """A send made during the upgrade waits (the send lock) and goes out encrypted."""
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            client, server = FramedStream(a, Lines()), FramedStream(b, Lines())
            server_ctx, client_ctx = tls_contexts()
            await client.send(b"STARTTLS")
            assert await server.receive() == b"STARTTLS"
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: server.start_tls(server_ctx, server_side=True, reply=b"220 go")
                )
                await anyio.sleep(0.05)  # let start_tls take the send lock
                tg.start_soon(server.send, b"250 after")
                assert await client.receive() == b"220 go"
                await client.start_tls(client_ctx, server_side=False, hostname="localhost")
            assert await client.receive() == b"250 after"


async def test_start_tls_refuses_plaintext_injected_after_starttls(kind: str) -> None:
    """``STARTTLS\\r\\nRSET\\r\\n`` in one write: refused, named, counted, connection closed."""
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            server = FramedStream(b, Lines())
            request = await while_sending(lambda: a.send(b"STARTTLS\r\nRSET\r\n"), server.receive)
            assert request == b"STARTTLS"
            with pytest.raises(PlaintextInjection) as caught:
                await server.start_tls(server_ctx, server_side=True, reply=b"220 Ready")
            assert caught.value.held == len(b"RSET\r\n")
            assert isinstance(caught.value, MalformedFrame)
            assert "plaintext injection: 6 bytes" in str(caught.value)
            assert server.stats.errors == {"PlaintextInjection": 1}
            assert server.stats.messages_out == 0  # the 220 was never sent
            with pytest.raises(anyio.ClosedResourceError):
                await server.send(b"250 too late")
            assert not isinstance(server.transport_stream, TLSStream)
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await a.receive()  # closed, and not one byte of a reply


async def test_start_tls_refuses_bytes_read_ahead_by_the_transport(kind: str) -> None:
    """``RSET`` not in the framer but read ahead by the transport is an injection too.

    The framer reads 10 bytes (``STARTTLS\\r\\n``). framing's asyncio transport
    has read the rest and says so (``queued``); other transports leave it in
    the kernel or hold it unsaid, and then the handshake fails on it. Either
    way the stream is never upgraded and ``RSET`` is never read as a command.
    """
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            server = FramedStream(b, Lines(), receive_size=len(b"STARTTLS\r\n"))
            request = await while_sending(lambda: a.send(b"STARTTLS\r\nRSET\r\n"), server.receive)
            assert request == b"STARTTLS"
            read_ahead = isinstance(b, AsyncioSocketStream)
            if isinstance(b, AsyncioSocketStream):
                assert b.queued == len(b"RSET\r\n")
            assert server.framer.buffered == 0
            with pytest.raises((PlaintextInjection, TLSHandshakeFailed)) as caught:
                await server.start_tls(server_ctx, server_side=True, reply=b"220 Ready")
            if read_ahead:
                assert isinstance(caught.value, PlaintextInjection)
                assert caught.value.held == len(b"RSET\r\n")
            with pytest.raises(anyio.ClosedResourceError):
                await server.receive()


async def test_start_tls_counts_the_bytes_a_proxied_stream_holds(kind: str) -> None:
    """Behind a PROXY header, bytes read with the header and not yet handed out count too."""
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair(kind) as (_a, b):
            # As read_proxy_header leaves it: the bytes after the header, read with it.
            proxied = ProxiedStream(b, None, b"STARTTLS\r\nRSET\r\n")
            server = FramedStream(proxied, Lines(), receive_size=len(b"STARTTLS\r\n"))
            assert await server.receive() == b"STARTTLS"
            assert proxied.queued == len(b"RSET\r\n")
            with pytest.raises(PlaintextInjection) as caught:
                await server.start_tls(server_ctx, server_side=True, reply=b"220 Ready")
            assert caught.value.held == len(b"RSET\r\n")


async def test_start_tls_client_refuses_bytes_after_the_go_ahead(kind: str) -> None:
    """A client that finds bytes after the server's 220 refuses them (a forged reply)."""
    _, client_ctx = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            client = FramedStream(a, Lines())
            assert await while_sending(lambda: client.send(b"STARTTLS"), b.receive) == b"STARTTLS\n"
            forged = b"220 Ready\r\n250 forged\r\n"
            assert await while_sending(lambda: b.send(forged), client.receive) == b"220 Ready"
            with pytest.raises(PlaintextInjection) as caught:
                await client.start_tls(client_ctx, server_side=False, hostname="localhost")
            assert caught.value.held == len(b"250 forged\r\n")
            with pytest.raises(anyio.ClosedResourceError):
                await client.receive()


async def test_start_tls_handshake_times_out() -> None:
    """A client that never says hello: the handshake gives up with a clear error."""
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            server = FramedStream(b, Lines())
            await a.send(b"STARTTLS\r\n")
            assert await server.receive() == b"STARTTLS"
            with pytest.raises(TLSHandshakeFailed, match=r"not finished within 0\.2 s"):
                await server.start_tls(server_ctx, server_side=True, handshake_timeout=0.2)
            assert server.stats.errors == {"TLSHandshakeFailed": 1}
            with pytest.raises(anyio.ClosedResourceError):
                await server.receive()


async def test_start_tls_handshake_on_plaintext_fails_with_the_tls_reason(kind: str) -> None:
    """A client that answers the 220 in plaintext: the TLS engine's reason, stream closed."""
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair(kind) as (a, b):
            server = FramedStream(b, Lines())
            request = await while_sending(lambda: a.send(b"STARTTLS\r\n"), server.receive)
            assert request == b"STARTTLS"

            async def answer_in_plaintext() -> None:
                assert await a.receive() == b"220 Ready\n"
                await a.send(b"RSET\r\n" * 20)

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_in_plaintext)
                with pytest.raises(TLSHandshakeFailed) as caught:
                    await server.start_tls(server_ctx, server_side=True, reply=b"220 Ready")
            assert caught.value.__cause__ is not None
            assert caught.value.reason  # the TLS engine's words, never blank
            with pytest.raises(anyio.ClosedResourceError):
                await server.send(b"x")


async def test_start_tls_during_a_receive_is_refused() -> None:
    server_ctx, _ = tls_contexts()
    with anyio.fail_after(10):
        async with stream_pair("tcp4") as (a, b):
            server = FramedStream(b, Lines())
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.receive)
                await until(lambda: server.waiting_since is not None)
                with pytest.raises(anyio.BusyResourceError):
                    await server.start_tls(server_ctx, server_side=True)
                await a.send(b"done\r\n")  # ends the receive


async def test_start_tls_on_a_closed_stream_raises() -> None:
    server_ctx, _ = tls_contexts()
    async with stream_pair("memory") as (_a, b):
        server = FramedStream(b, Lines())
        await server.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await server.start_tls(server_ctx, server_side=True)


@asynccontextmanager
async def starttls_server() -> AsyncIterator[ServerInfo]:
    """A line server: STARTTLS upgrades (220), anything else is echoed after ``250``."""
    server_ctx, _ = tls_contexts()

    async def handler(stream: FramedStream[bytes]) -> None:
        async for line in stream:
            if line == b"STARTTLS":
                await stream.start_tls(server_ctx, server_side=True, reply=b"220 Ready")
            else:
                await stream.send(b"250 " + line)

    async with anyio.create_task_group() as tg:
        info: ServerInfo = await tg.start(
            lambda task_status: serve(
                handler, Lines(line_ending=b"\r\n"), port=0, task_status=task_status
            )
        )
        yield info
        tg.cancel_scope.cancel()


async def test_serve_closes_only_the_injecting_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The injection ends that connection with one INFO line; another one carries on."""
    caplog.set_level(logging.INFO, logger="framing.server")
    _, client_ctx = tls_contexts()
    with anyio.fail_after(10):
        async with starttls_server() as info:
            good = FramedStream(await anyio.connect_tcp("127.0.0.1", info.port), Lines())
            async with good:
                await good.send(b"NOOP")
                assert await good.receive() == b"250 NOOP"
                async with await anyio.connect_tcp("127.0.0.1", info.port) as bad:
                    await bad.send(b"STARTTLS\r\nRSET\r\n")
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await bad.receive()  # closed, not one byte of a reply
                await good.send(b"STARTTLS")
                assert await good.receive() == b"220 Ready"
                await good.start_tls(client_ctx, server_side=False, hostname="localhost")
                await good.send(b"NOOP")
                assert await good.receive() == b"250 NOOP"
            stats = info.stats
    lines = [r.getMessage() for r in caplog.records if r.name == "framing.server"]
    assert any("PlaintextInjection" in line and "6 bytes" in line for line in lines), lines
    assert stats.errors.get("PlaintextInjection") == 1
    assert stats.handler_errors == 0
