"""The SMTP greeter (examples/smtp.py) against real clients: openssl s_client, smtplib.

Each test starts the server in-process on a free port (``tg.start(serve_smtp, ...)``)
on the anyio backend under test, except the command-line test, which runs
``python -m examples.smtp`` as a user would.
"""

from __future__ import annotations

import logging
import select
import smtplib
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import trustme

from examples.smtp import serve_smtp
from framing import FramedStream, Lines
from framing.server import ServerInfo
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def smtp_server(context: ssl.SSLContext) -> AsyncIterator[ServerInfo]:
    async with anyio.create_task_group() as tg:
        info: ServerInfo = await tg.start(
            lambda task_status: serve_smtp(ssl_context=context, task_status=task_status)
        )
        yield info
        tg.cancel_scope.cancel()


async def receive_reply(stream: FramedStream[bytes]) -> list[bytes]:
    """One SMTP reply: its lines, up to the one whose code is followed by a space."""
    lines = [await stream.receive()]
    for _ in range(20):
        if lines[-1][3:4] != b"-":
            return lines
        lines.append(await stream.receive())
    raise AssertionError(f"a reply of more than 20 lines: {lines}")


async def command(stream: FramedStream[bytes], line: bytes) -> list[bytes]:
    await stream.send(line)
    return await receive_reply(stream)


@pytest.mark.anyio
async def test_openssl_s_client_starttls_smtp_handshake_then_ehlo_and_quit(
    server_context: ssl.SSLContext, ca_file: Path
) -> None:
    """``openssl s_client -starttls smtp`` upgrades, verifies, then EHLO and QUIT under TLS."""
    openssl = require_tool("openssl")
    with anyio.fail_after(30):
        async with smtp_server(server_context) as info:
            result = await anyio.run_process(
                [
                    openssl,
                    "s_client",
                    "-starttls",
                    "smtp",
                    "-connect",
                    f"127.0.0.1:{info.port}",
                    "-CAfile",
                    str(ca_file),
                    "-verify_return_error",
                    "-verify_hostname",
                    "localhost",
                    "-crlf",
                    "-ign_eof",  # keep reading after stdin ends, until the server closes
                ],
                input=b"EHLO client.example\nQUIT\n",
                check=False,
            )
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out + result.stderr.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert "Cipher is " in out
    assert "Server certificate" in out
    after = out[out.index("Verify return code") :]  # what came back under TLS
    assert "250-localhost" in after
    assert "250 8BITMIME" in after  # the last extension: STARTTLS is offered no more
    assert "STARTTLS" not in after
    assert "221 2.0.0 Bye" in after


@pytest.mark.anyio
async def test_starttls_then_a_session_under_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Our own client: EHLO offers STARTTLS, the upgrade, then EHLO no longer offers it."""
    with anyio.fail_after(20):
        async with smtp_server(server_context) as info:
            stream = FramedStream(
                await anyio.connect_tcp("127.0.0.1", info.port), Lines(line_ending=b"\r\n")
            )
            async with stream:
                assert await receive_reply(stream) == [b"220 localhost ESMTP framing example"]
                assert await command(stream, b"MAIL FROM:<a@example.test>") == [
                    b"503 5.5.1 Send EHLO first"
                ]
                assert await command(stream, b"HELO me") == [b"250 localhost"]
                assert await command(stream, b"EHLO me") == [
                    b"250-localhost",
                    b"250-PIPELINING",
                    b"250-8BITMIME",
                    b"250 STARTTLS",
                ]
                assert await command(stream, b"MAIL FROM:<a@example.test>") == [b"250 2.1.0 Ok"]
                assert await command(stream, b"STARTTLS now") == [
                    b"501 5.5.4 Syntax error: STARTTLS takes no parameters"
                ]
                assert await command(stream, b"STARTTLS") == [b"220 2.0.0 Ready to start TLS"]
                await stream.start_tls(client_context, server_side=False, hostname="localhost")
                # RFC 3207 4.2: the server forgot the EHLO and the MAIL from before TLS.
                assert await command(stream, b"RCPT TO:<b@example.test>") == [
                    b"503 5.5.1 Need MAIL first"
                ]
                assert await command(stream, b"MAIL FROM:<a@example.test>") == [
                    b"503 5.5.1 Send EHLO first"
                ]
                assert await command(stream, b"EHLO me") == [
                    b"250-localhost",
                    b"250-PIPELINING",
                    b"250 8BITMIME",
                ]
                assert await command(stream, b"STARTTLS") == [b"503 5.5.1 TLS already active"]
                assert await command(stream, b"NOOP") == [b"250 2.0.0 Ok"]
                assert await command(stream, b"MAIL FROM:<a@example.test>") == [b"250 2.1.0 Ok"]
                assert await command(stream, b"DATA") == [b"503 5.5.1 Need RCPT first"]
                assert await command(stream, b"RCPT TO:<b@example.test>") == [b"250 2.1.5 Ok"]
                assert await command(stream, b"DATA") == [b"354 End data with <CR><LF>.<CR><LF>"]
                await stream.send_many([b"Subject: hi", b"", b"..stuffed", b"body"])
                assert await command(stream, b".") == [
                    b"250 2.0.0 Ok: 32 bytes accepted, and discarded"
                ]
                assert await command(stream, b"VRFY b") == [b"502 5.5.2 Command not implemented"]
                assert await command(stream, b"RSET") == [b"250 2.0.0 Ok"]
                assert await command(stream, b"QUIT") == [b"221 2.0.0 Bye"]
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()


@pytest.mark.anyio
async def test_starttls_with_injected_rset_closes_that_connection_and_logs_why(
    server_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """``STARTTLS\\r\\nRSET\\r\\n`` in one write: no 220, no 250, the connection closed, logged."""
    caplog.set_level(logging.INFO, logger="framing.server")
    with anyio.fail_after(20):
        async with smtp_server(server_context) as info:
            other = FramedStream(
                await anyio.connect_tcp("127.0.0.1", info.port), Lines(line_ending=b"\r\n")
            )
            async with other:
                await receive_reply(other)
                async with await anyio.connect_tcp("127.0.0.1", info.port) as raw:
                    client = FramedStream(raw, Lines(line_ending=b"\r\n"))
                    await receive_reply(client)
                    assert (await command(client, b"EHLO me"))[-1] == b"250 STARTTLS"
                    await raw.send(b"STARTTLS\r\nRSET\r\n")
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await client.receive()  # not one line: no 220, no 250
                # The other connection is served as before.
                assert await command(other, b"NOOP") == [b"250 2.0.0 Ok"]
            stats = info.stats
    lines = [r.getMessage() for r in caplog.records if r.name == "framing.server"]
    injected = [line for line in lines if "PlaintextInjection" in line]
    assert len(injected) == 1, lines
    assert "plaintext injection: 6 bytes received after the request to start TLS" in injected[0]
    assert stats.errors.get("PlaintextInjection") == 1
    assert stats.handler_errors == 0


@pytest.mark.anyio
async def test_smtplib_starttls_and_sendmail(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Python's smtplib, in a thread: starttls(), EHLO again, a mail sent, QUIT."""

    def session(port: int) -> tuple[bool, bool, dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("client.example")
            offered = smtp.has_extn("starttls")
            smtp.starttls(context=client_context)
            smtp.ehlo("client.example")
            offered_again = smtp.has_extn("starttls")
            refused = smtp.sendmail(
                "a@example.test", ["b@example.test"], "Subject: hi\r\n\r\n.\r\n"
            )
        return offered, offered_again, refused

    with anyio.fail_after(30):
        async with smtp_server(server_context) as info:
            offered, offered_again, refused = await anyio.to_thread.run_sync(session, info.port)
    assert offered
    assert not offered_again
    assert refused == {}


def test_command_line_serves_starttls(server_cert: trustme.LeafCert, ca_file: Path) -> None:
    """``python -m examples.smtp --port 0 --cert F --key F``: listens, logs the port, serves."""
    directory = ca_file.parent
    cert, key = directory / "cert.pem", directory / "key.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context(cafile=str(ca_file))
    command = [sys.executable, "-m", "examples.smtp", "--port", "0"]
    command += ["--cert", str(cert), "--key", str(key)]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            readable, _, _ = select.select([proc.stderr], [], [], 20)
            assert readable, "the server said nothing within 20 s"
            first = proc.stderr.readline()
            assert "listening on 127.0.0.1:" in first, first
            port = int(first.rsplit(":", 1)[1])
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.starttls(context=context)
                assert smtp.noop()[0] == 250
        finally:
            proc.kill()


def test_command_line_refuses_a_missing_key(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    result = subprocess.run(
        [sys.executable, "-m", "examples.smtp", "--cert", missing, "--key", missing],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot load --cert/--key" in result.stderr
