"""The IMAP greeter (examples/imap.py) against ``openssl s_client -starttls imap``."""

from __future__ import annotations

import logging
import select
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import trustme

from examples.imap import serve_imap
from framing import FramedStream, Lines
from framing.server import ServerInfo
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def imap_server(context: ssl.SSLContext) -> AsyncIterator[ServerInfo]:
    async with anyio.create_task_group() as tg:
        info: ServerInfo = await tg.start(
            lambda task_status: serve_imap(ssl_context=context, task_status=task_status)
        )
        yield info
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_openssl_s_client_starttls_imap_handshake_then_capability_and_logout(
    server_context: ssl.SSLContext, ca_file: Path
) -> None:
    openssl = require_tool("openssl")
    with anyio.fail_after(30):
        async with imap_server(server_context) as info:
            result = await anyio.run_process(
                [
                    openssl,
                    "s_client",
                    "-starttls",
                    "imap",
                    "-connect",
                    f"127.0.0.1:{info.port}",
                    "-CAfile",
                    str(ca_file),
                    "-verify_return_error",
                    "-verify_hostname",
                    "localhost",
                    "-crlf",
                    "-ign_eof",
                ],
                input=b"a3 CAPABILITY\na4 LOGOUT\n",
                check=False,
            )
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "Didn't find STARTTLS" not in result.stderr.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    after = out[out.index("Verify return code") :]  # what came back under TLS
    assert "* CAPABILITY IMAP4rev2 LOGINDISABLED\r\na3 OK CAPABILITY completed" in after
    assert "a4 OK LOGOUT completed" in after


@pytest.mark.anyio
async def test_starttls_with_an_injected_command_closes_that_connection_and_logs_why(
    server_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """``a STARTTLS`` and ``b LOGOUT`` in one write (CVE-2021-33515): closed, not answered."""
    caplog.set_level(logging.INFO, logger="framing.server")
    with anyio.fail_after(20):
        async with imap_server(server_context) as info:
            async with await anyio.connect_tcp("127.0.0.1", info.port) as raw:
                client = FramedStream(raw, Lines(line_ending=b"\r\n"))
                greeting = await client.receive()
                assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED]")
                await raw.send(b"a STARTTLS\r\nb LOGOUT\r\n")
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await client.receive()  # no tagged OK, no BYE
            stats = info.stats
    lines = [r.getMessage() for r in caplog.records if r.name == "framing.server"]
    assert any("PlaintextInjection" in line and "10 bytes" in line for line in lines), lines
    assert stats.errors.get("PlaintextInjection") == 1


@pytest.mark.anyio
async def test_session_before_and_after_starttls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(20):
        async with imap_server(server_context) as info:
            stream = FramedStream(
                await anyio.connect_tcp("127.0.0.1", info.port), Lines(line_ending=b"\r\n")
            )
            async with stream:
                await stream.receive()
                await stream.send_many([b"a1 NOOP", b"a2 LOGIN me secret", b"nocommand"])
                assert [await stream.receive() for _ in range(3)] == [
                    b"a1 OK NOOP completed",
                    b"a2 BAD LOGIN is not available here",
                    b"* BAD expected a tag and a command",
                ]
                await stream.send(b"a3 STARTTLS")
                assert await stream.receive() == b"a3 OK Begin TLS negotiation now"
                await stream.start_tls(client_context, server_side=False, hostname="localhost")
                await stream.send(b"a4 STARTTLS")
                assert await stream.receive() == b"a4 BAD STARTTLS is not available here"
                await stream.send(b"a5 LOGOUT")
                assert [await stream.receive() for _ in range(2)] == [
                    b"* BYE logging out",
                    b"a5 OK LOGOUT completed",
                ]
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()


def test_command_line_listens_and_greets(server_cert: trustme.LeafCert, tmp_path: Path) -> None:
    """``python -m examples.imap --port 0 --cert F --key F``: logs its port, greets."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    command = [sys.executable, "-m", "examples.imap", "--port", "0"]
    command += ["--cert", str(cert), "--key", str(key), "--backend", "trio"]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            readable, _, _ = select.select([proc.stderr], [], [], 20)
            assert readable, "the server said nothing within 20 s"
            first = proc.stderr.readline()
            assert "listening on 127.0.0.1:" in first, first
            port = int(first.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                assert sock.recv(100).startswith(b"* OK [CAPABILITY IMAP4rev2 STARTTLS")
        finally:
            proc.kill()
