"""The PROXY header on a live connection: ProxiedStream, and serve(proxy_protocol=...)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSStream

from framing import ProxyAttribute, ProxyCommand, ProxyHeader, ProxyHeaderError
from framing.length import LengthPrefixed
from framing.proxied import ProxiedStream, read_proxy_header
from framing.proxy import PP2_TYPE_AUTHORITY, V2_SIGNATURE
from framing.server import ServerInfo, serve, serve_unix
from framing.stream import FramedStream
from tests.framing.transports import memory_pair, tls_contexts, until

pytestmark = pytest.mark.anyio

LOGGER = "framing.server"
FRAMER = LengthPrefixed(2)


def header(
    client: str = "192.0.2.7",
    port: int = 40000,
    *,
    version: int = 2,
    command: ProxyCommand = ProxyCommand.PROXY,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    family = socket.AF_INET6 if ":" in client else socket.AF_INET
    destination = "2001:db8::1" if ":" in client else "198.51.100.1"
    return ProxyHeader(
        version, command, family, socket.SOCK_STREAM, client, port, destination, 53, tlvs, 0
    ).to_bytes()


def frame(*messages: bytes) -> bytes:
    return b"".join(FRAMER.encode(m) for m in messages)


class Seen:
    """What the handler saw of each connection: remote address, proxy address, header."""

    def __init__(self) -> None:
        self.remote: list[Any] = []
        self.proxy: list[Any] = []
        self.headers: list[ProxyHeader | None] = []

    async def echo(self, stream: FramedStream[bytes]) -> None:
        self.remote.append(stream.extra(SocketAttribute.remote_address))
        self.proxy.append(stream.extra(ProxyAttribute.proxy_address, None))
        self.headers.append(stream.extra(ProxyAttribute.header, None))
        async for message in stream:
            await stream.send(message)


@asynccontextmanager
async def running(handler: Any, **options: Any) -> AsyncIterator[ServerInfo]:
    async with anyio.create_task_group() as tg:
        info = await tg.start(
            lambda task_status: serve(handler, FRAMER, task_status=task_status, **options)
        )
        yield info
        tg.cancel_scope.cancel()


async def dial(
    info: ServerInfo, data: bytes = b"", local: str = "127.0.0.1"
) -> FramedStream[bytes]:
    """Connect from ``local`` as a proxy would, send ``data`` in one write."""
    raw = await anyio.connect_tcp("127.0.0.1", info.port, local_host=local)
    if data:
        await raw.send(data)
    return FramedStream(raw, LengthPrefixed(2))


async def closed_by_server(client: FramedStream[bytes]) -> bool:
    try:
        await client.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return True
    return False


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# -- ProxiedStream and read_proxy_header, over a memory pair ------------------------------


async def test_read_proxy_header_replays_the_bytes_after_it_in_order() -> None:
    ours, theirs = memory_pair()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(theirs.send, header(version=1) + b"abcdef")
            proxied = await read_proxy_header(ours, header_timeout=5)
            assert proxied.header is not None
            assert proxied.header.source_address == "192.0.2.7"
            assert await proxied.receive(4) == b"abcd"
            assert await proxied.receive() == b"ef"
            tg.start_soon(theirs.send, b"later")
            assert await proxied.receive() == b"later"


async def test_read_proxy_header_times_out_with_a_proxy_header_error() -> None:
    ours, theirs = memory_pair()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(theirs.send, b"PROXY TCP4 ")
            with pytest.raises(ProxyHeaderError, match=r"no complete PROXY header within 0\.1 s"):
                await read_proxy_header(ours, header_timeout=0.1)


async def test_proxied_stream_attributes_name_the_client_and_keep_the_proxy() -> None:
    ours, _ = memory_pair()
    parsed = ProxyHeader(
        2, ProxyCommand.PROXY, socket.AF_INET, socket.SOCK_STREAM, "192.0.2.9", 7, "x", 1, (), 0
    )
    stream = ProxiedStream(ours, parsed, b"")
    assert stream.extra(SocketAttribute.remote_address) == ("192.0.2.9", 7)
    assert stream.extra(SocketAttribute.remote_port) == 7
    assert stream.extra(ProxyAttribute.header) is parsed
    # A memory stream has no address of its own: no proxy address either.
    assert stream.extra(ProxyAttribute.proxy_address, None) is None


# -- serve(proxy_protocol=...) ------------------------------------------------------------


async def test_trusted_v1_client_address_and_first_chunk_reach_the_handler() -> None:
    seen = Seen()
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.1"]) as info:
            data = header("203.0.113.5", 1234, version=1) + frame(b"one", b"two")
            async with await dial(info, data) as client:
                assert await client.receive() == b"one"
                assert await client.receive() == b"two"
                local = client.extra(SocketAttribute.local_address)
    assert seen.remote == [("203.0.113.5", 1234)]
    assert seen.proxy == [local]


async def test_trusted_v2_ipv6_client_with_tlvs() -> None:
    seen = Seen()
    tlvs = ((PP2_TYPE_AUTHORITY, b"example.com"),)
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.0/8"]) as info:
            client = await dial(info, header("2001:db8::7", 5, tlvs=tlvs) + frame(b"hi"))
            async with client:
                assert await client.receive() == b"hi"
    assert seen.remote == [("2001:db8::7", 5)]
    parsed = seen.headers[0]
    assert parsed is not None
    assert parsed.tlv(PP2_TYPE_AUTHORITY) == b"example.com"


async def test_local_health_check_is_served_as_the_proxy() -> None:
    seen = Seen()
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.1"]) as info:
            data = V2_SIGNATURE + b"\x20\x00\x00\x00" + frame(b"ping")
            async with await dial(info, data) as client:
                assert await client.receive() == b"ping"
                local = client.extra(SocketAttribute.local_address)
    assert seen.remote == [local]
    parsed = seen.headers[0]
    assert parsed is not None
    assert parsed.command is ProxyCommand.LOCAL


async def test_untrusted_sender_header_is_ordinary_data(caplog: pytest.LogCaptureFixture) -> None:
    """From outside proxy_protocol a PROXY header is never believed: the framer gets it."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = Seen()
    forged = b"PROXY TCP4 6.6.6.6 1.1.1.1 666 53\r\n"
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["10.0.0.0/8"]) as info:
            # Sent inside a frame, the forged line is a message like any other.
            client = await dial(info, frame(forged))
            async with client:
                assert await client.receive() == forged
                local = client.extra(SocketAttribute.local_address)
    assert seen.remote == [local]
    assert seen.headers == [None]
    assert not any("ProxyHeaderError" in line for line in log_lines(caplog))


@pytest.mark.parametrize("version", [1, 2])
async def test_untrusted_peer_sending_a_proxy_header_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture, version: int
) -> None:
    """Issue 14: from anyone but a trusted proxy a PROXY header is an error, never trusted."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = Seen()
    forged = header("6.6.6.6", 666, version=version) + frame(b"hi")
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["10.0.0.0/8"]) as info:
            client = await dial(info, forged)
            async with client:
                assert await closed_by_server(client)
            other = await dial(info, frame(b"still served"))
            async with other:
                assert await other.receive() == b"still served"
            await until(lambda: any("not a trusted proxy" in line for line in log_lines(caplog)))
            assert info.stats.errors == {"ProxyHeaderError": 1}
    assert not any("6.6.6.6" in line for line in log_lines(caplog))
    lines = [line for line in log_lines(caplog) if "not a trusted proxy" in line]
    assert lines == [
        f"closed 127.0.0.1:{lines[0].split(':')[1].split(' ')[0]}: ProxyHeaderError: "
        f"PROXY protocol: a version {version} header from a peer that is not a trusted proxy"
    ]


async def test_missing_header_from_trusted_proxy_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = Seen()
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.1"]) as info:
            async with await dial(info, frame(b"no header")) as client:
                assert await closed_by_server(client)
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.errors == {"ProxyHeaderError": 1}
            assert info.stats.handler_errors == 0
    assert seen.remote == []
    [line] = [line for line in log_lines(caplog) if "ProxyHeaderError" in line]
    assert "not a PROXY header" in line
    assert line.startswith("closed 127.0.0.1:")


async def test_optional_header_left_out_is_served_as_the_proxy() -> None:
    seen = Seen()
    with anyio.fail_after(10):
        async with running(
            seen.echo, proxy_protocol=["127.0.0.1"], proxy_protocol_optional=True
        ) as info:
            async with await dial(info, frame(b"plain")) as client:
                assert await client.receive() == b"plain"
                local = client.extra(SocketAttribute.local_address)
            async with await dial(info, header("192.0.2.1", 9) + frame(b"proxied")) as client:
                assert await client.receive() == b"proxied"
    assert seen.remote == [local, ("192.0.2.1", 9)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (V2_SIGNATURE + b"\x21\x11\x00\x0f" + bytes(12) + b"\x01\x00\x09", "announces 9 bytes"),
        (V2_SIGNATURE + b"\x23\x11\x00\x0c" + bytes(12), "unknown version 2 command"),
        (V2_SIGNATURE + b"\x21\x51\x00\x0c" + bytes(12), "unknown version 2 address family"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", "not a port"),
        (b"PROXY " + b"x" * 120, "no CRLF in the first 107 bytes"),
    ],
)
async def test_malformed_header_closes_only_that_connection(
    caplog: pytest.LogCaptureFixture, data: bytes, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = Seen()
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.1"]) as info:
            async with await dial(info, header("192.0.2.1", 1) + frame(b"kept")) as good:
                assert await good.receive() == b"kept"
                async with await dial(info, data + frame(b"lost")) as bad:
                    assert await closed_by_server(bad)
                await good.send(b"still served")
                assert await good.receive() == b"still served"
            assert info.stats.errors == {"ProxyHeaderError": 1}
    assert any(reason in line for line in log_lines(caplog))


async def test_truncated_header_at_end_of_stream_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(Seen().echo, proxy_protocol=["127.0.0.1"]) as info:
            async with await dial(info, header()[:20]) as client:
                await client.send_eof()
                assert await closed_by_server(client)
            await until(lambda: info.stats.errors.get("ProxyHeaderError") == 1)
    assert any("ended 20 bytes into a PROXY header" in line for line in log_lines(caplog))


async def test_header_slower_than_handshake_timeout_is_refused() -> None:
    with anyio.fail_after(10):
        async with running(
            Seen().echo, proxy_protocol=["127.0.0.1"], handshake_timeout=0.2
        ) as info:
            async with await dial(info, b"PROXY TCP4 ") as client:
                assert await closed_by_server(client)
            assert info.stats.errors == {"ProxyHeaderError": 1}


async def test_connect_only_health_check_is_closed_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with anyio.fail_after(10):
        async with running(Seen().echo, proxy_protocol=["127.0.0.1"]) as info:
            raw = await anyio.connect_tcp("127.0.0.1", info.port)
            await raw.aclose()
            await until(lambda: info.stats.connections_open == 0)
            assert info.stats.errors == {}
    assert log_lines(caplog) == []


async def test_header_and_message_one_byte_at_a_time() -> None:
    seen = Seen()
    data = header("198.51.100.77", 4242) + frame(b"slow")
    with anyio.fail_after(10):
        async with running(seen.echo, proxy_protocol=["127.0.0.1"]) as info:
            raw = await anyio.connect_tcp("127.0.0.1", info.port)
            raw.extra(SocketAttribute.raw_socket).setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
            async with FramedStream(raw, LengthPrefixed(2)) as client:
                for index in range(len(data)):
                    await raw.send(data[index : index + 1])
                    await anyio.sleep(0.002)
                assert await client.receive() == b"slow"
    assert seen.remote == [("198.51.100.77", 4242)]


async def test_per_peer_limit_counts_the_clients_not_the_proxy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One proxy, three clients behind it, max_connections_per_peer=1: only the repeat is shed."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = Seen()
    with anyio.fail_after(10):
        async with running(
            seen.echo, proxy_protocol=["127.0.0.1"], max_connections_per_peer=1
        ) as info:
            first_a = await dial(info, header("192.0.2.1", 1) + frame(b"a1"))
            assert await first_a.receive() == b"a1"
            b = await dial(info, header("192.0.2.2", 2) + frame(b"b"))
            assert await b.receive() == b"b"
            async with await dial(info, header("192.0.2.1", 3) + frame(b"a2")) as second_a:
                assert await second_a.receive() == b"a2"
                assert await closed_by_server(first_a)
                await b.send(b"b untouched")
                assert await b.receive() == b"b untouched"
            await first_a.aclose()
            await b.aclose()
            assert info.stats.connections_shed == 1
            assert info.stats.connections_refused == 0
    [shed] = [line for line in log_lines(caplog) if line.startswith("shed")]
    assert shed.startswith("shed 192.0.2.1:1 (via 127.0.0.1:")
    assert "to serve 192.0.2.1:3 (via 127.0.0.1:" in shed
    assert "1 connections open from 192.0.2.1, the limit" in shed


async def test_per_peer_refusal_after_the_header_is_not_counted_as_accepted() -> None:
    async def busy(stream: FramedStream[bytes]) -> None:
        await stream.receive()
        stream.work_in_flight += 1  # never idle: cannot be shed
        await anyio.sleep_forever()

    with anyio.fail_after(10):
        async with running(busy, proxy_protocol=["127.0.0.1"], max_connections_per_peer=1) as info:
            first = await dial(info, header("192.0.2.1", 1) + frame(b"x"))
            async with first:
                await until(lambda: info.stats.messages_in == 1)
                async with await dial(info, header("192.0.2.1", 2) + frame(b"y")) as second:
                    assert await closed_by_server(second)
                await until(lambda: info.stats.connections_refused == 1)
                assert info.stats.connections_accepted == 1
                await first.aclose()


async def test_tls_after_the_proxy_header() -> None:
    """HAProxy relaying TLS untouched: the header first in clear, then the handshake."""
    server_context, client_context = tls_contexts()
    seen = Seen()
    with anyio.fail_after(10):
        async with running(
            seen.echo, proxy_protocol=["127.0.0.1"], ssl_context=server_context
        ) as info:
            raw: ByteStream = await anyio.connect_tcp("127.0.0.1", info.port)
            await raw.send(header("192.0.2.44", 443))
            tls = await TLSStream.wrap(raw, hostname="localhost", ssl_context=client_context)
            async with FramedStream(tls, LengthPrefixed(2)) as client:
                await client.send(b"secret")
                assert await client.receive() == b"secret"
    assert seen.remote == [("192.0.2.44", 443)]


async def test_serve_unix_trusts_its_peers_with_unix(tmp_path: Path) -> None:
    seen = Seen()
    path = tmp_path / "proxied.sock"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: serve_unix(
                    seen.echo,
                    FRAMER,
                    path=path,
                    proxy_protocol=["unix"],
                    task_status=task_status,
                )
            )
            raw = await anyio.connect_unix(path)
            await raw.send(header("192.0.2.3", 33, version=1) + frame(b"via unix"))
            async with FramedStream(raw, LengthPrefixed(2)) as client:
                assert await client.receive() == b"via unix"
            tg.cancel_scope.cancel()
    assert seen.remote == [("192.0.2.3", 33)]


async def test_trusted_network_matches_ipv4_mapped_peers() -> None:
    from framing.server import _Server

    server = _Server(
        Seen().echo,
        FRAMER,
        ssl_context=None,
        tls_standard_compatible=True,
        handshake_timeout=1,
        idle_timeout=None,
        message_timeout=None,
        receive_size=1024,
        max_connections=1,
        max_connections_per_peer=None,
        max_buffered_total=1024,
        proxy_protocol=["10.0.0.0/8", "2001:db8::/32"],
    )
    assert server.trusts("10.1.2.3")
    assert server.trusts("::ffff:10.1.2.3")
    assert server.trusts("2001:db8::5")
    assert not server.trusts("11.0.0.1")
    assert not server.trusts("::ffff:11.0.0.1")
    assert not server.trusts(None)


async def test_proxy_protocol_entry_that_is_no_address_is_refused() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        await serve(Seen().echo, FRAMER, proxy_protocol=["haproxy.example"])


@pytest.mark.parametrize("trusted", [False, True], ids=["direct", "proxied"])
async def test_shutdown_drains_idle_connections_behind_proxies_at_once(trusted: bool) -> None:
    """A server behind proxies drains its idle connections at shutdown, whether they came
    through a proxy (ProxiedStream) or straight (UntrustedStream), not after the grace period."""
    finished: list[str] = []

    async def handler(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            await stream.send(message)
        finished.append("drained")

    with anyio.fail_after(10):  # a grace period of 60 s would blow this
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve(
                    handler,
                    FRAMER,
                    proxy_protocol=["127.0.0.1" if trusted else "10.0.0.0/8"],
                    grace_period=60,
                    task_status=task_status,
                )
            )
            client = await dial(info, (header("192.0.2.7") if trusted else b"") + frame(b"hi"))
            assert await client.receive() == b"hi"
            tg.cancel_scope.cancel()
        await anyio.aclose_forcefully(client)
    assert finished == ["drained"]
