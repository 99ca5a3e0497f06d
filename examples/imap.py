r"""A minimal IMAP greeter with STARTTLS (RFC 9051 6.2.1), on ``Lines``.

It greets, lists its capabilities (STARTTLS among them until the session is
under TLS), upgrades in place on STARTTLS, and says goodbye on LOGOUT; it has
no mailboxes, so everything else is refused. Enough for
``openssl s_client -starttls imap``. A session::

    S: * OK [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED] framing example ready
    C: a1 CAPABILITY
    S: * CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED
    S: a1 OK CAPABILITY completed
    C: a2 STARTTLS
    S: a2 OK Begin TLS negotiation now
       ... TLS handshake; from here on everything is encrypted ...
    C: a3 CAPABILITY
    S: * CAPABILITY IMAP4rev2 LOGINDISABLED
    S: a3 OK CAPABILITY completed
    C: a4 LOGOUT
    S: * BYE logging out
    S: a4 OK LOGOUT completed

Run it as the SMTP greeter is run (``python -m examples.imap --port 1143
--cert cert.pem --key key.pem``). STARTTLS is the same call as in
:mod:`examples.smtp`: :meth:`framing.FramedStream.start_tls` with the tagged
OK as its ``reply``, so that plaintext sent after ``STARTTLS`` (the injection
of CVE-2021-33515 in Dovecot) closes the connection instead of being read as
if it had come under TLS.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import ssl
import sys
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from framing import FramedStream, Lines, serve
from framing.server import ServerInfo

__all__ = ["handle_session", "main", "serve_imap"]

logger = logging.getLogger("examples.imap")

# RFC 9051 4: no limit on a command line, but servers set one; 8 KiB is
# Dovecot's (imap_max_line_length is 64 KiB; a greeter needs far less).
MAX_LINE = 8192
# RFC 9051 5.4: an idle client may be logged out after at least 30 minutes.
IDLE_TIMEOUT = 1800.0


async def handle_session(
    stream: FramedStream[bytes], *, ssl_context: ssl.SSLContext | None
) -> None:
    """Run one IMAP session on ``stream`` until LOGOUT or the client's end of stream.

    Args:
        stream: a connection framed with CRLF ``Lines``.
        ssl_context: the server's TLS settings, or ``None`` to offer no STARTTLS.

    Raises:
        PlaintextInjection: the client sent bytes after STARTTLS, before TLS.
        TLSHandshakeFailed: the TLS handshake after STARTTLS failed.
    """
    under_tls = False

    def capabilities() -> bytes:
        offer_tls = ssl_context is not None and not under_tls
        return b"IMAP4rev2" + (b" STARTTLS" if offer_tls else b"") + b" LOGINDISABLED"

    await stream.send(b"* OK [CAPABILITY " + capabilities() + b"] framing example ready")
    async for line in stream:  # one line per receive, so nothing after STARTTLS is parsed
        tag, _, rest = line.partition(b" ")
        command = rest.split(b" ", 1)[0].upper()
        if not tag or not command:
            await stream.send(b"* BAD expected a tag and a command")
        elif command == b"CAPABILITY":
            await stream.send_many(
                [b"* CAPABILITY " + capabilities(), tag + b" OK CAPABILITY completed"]
            )
        elif command == b"NOOP":
            await stream.send(tag + b" OK NOOP completed")
        elif command == b"STARTTLS" and ssl_context is not None and not under_tls:
            reply = tag + b" OK Begin TLS negotiation now"
            await stream.start_tls(ssl_context, server_side=True, reply=reply)
            under_tls = True
        elif command == b"LOGOUT":
            await stream.send_many([b"* BYE logging out", tag + b" OK LOGOUT completed"])
            return
        else:
            await stream.send(tag + b" BAD " + command + b" is not available here")


async def serve_imap(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None,
    idle_timeout: float = IDLE_TIMEOUT,
    task_status: TaskStatus[ServerInfo] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve IMAP until cancelled; ``task_group.start`` returns the :class:`ServerInfo`.

    Args:
        host: the address to listen on.
        port: the port (0 picks a free one: see ``ServerInfo.port``).
        ssl_context: the certificate for STARTTLS, or ``None`` to offer none.
        idle_timeout: seconds to wait for the next line before closing.
        task_status: for ``task_group.start``.
    """

    async def handler(stream: FramedStream[bytes]) -> None:
        await handle_session(stream, ssl_context=ssl_context)

    await serve(
        handler,
        Lines(line_ending=b"\r\n", max_size=MAX_LINE),
        host=host,
        port=port,
        idle_timeout=idle_timeout,
        task_status=task_status,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m examples.imap --port N --cert F --key F``."""
    parser = argparse.ArgumentParser(prog="python -m examples.imap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=1143, help="0 picks a free one")
    parser.add_argument("--cert", required=True, help="the certificate chain, PEM")
    parser.add_argument("--key", required=True, help="its private key, PEM")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.cert, args.key)
    except OSError as exc:  # ssl.SSLError included
        print(f"cannot load --cert/--key: {exc}", file=sys.stderr)
        return 1

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            info = await tg.start(
                lambda task_status: serve_imap(
                    host=args.host, port=args.port, ssl_context=context, task_status=task_status
                )
            )
            logger.info("listening on %s:%d", args.host, info.port)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean exit
        anyio.run(run, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
