r"""A minimal SMTP greeter with STARTTLS (RFC 5321, RFC 3207), on ``Lines``.

It greets, answers EHLO with its extensions (STARTTLS among them until the
session is under TLS), upgrades in place on STARTTLS, and takes mail without
keeping it: enough for ``openssl s_client -starttls smtp`` and Python's
``smtplib`` to do everything they do. A session::

    S: 220 localhost ESMTP framing example
    C: EHLO client.example
    S: 250-localhost
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250 STARTTLS
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
       ... TLS handshake; from here on everything is encrypted ...
    C: EHLO client.example
    S: 250-localhost
    S: 250-PIPELINING
    S: 250 8BITMIME                  (no STARTTLS: already under TLS)
    C: QUIT
    S: 221 2.0.0 Bye

Run it with a certificate and its key::

    python -m examples.smtp --port 2525 --cert cert.pem --key key.pem
    openssl s_client -starttls smtp -connect 127.0.0.1:2525 -CAfile ca.pem

What STARTTLS needs from the framing library, and gets from
:meth:`framing.FramedStream.start_tls`:

- **Nothing sent in plaintext is read as if under TLS.** A client (or a man in
  the middle) that sends ``STARTTLS\r\nRSET\r\n`` in one write would otherwise
  have its ``RSET`` run as a command of the encrypted session (CVE-2011-0411
  in Postfix). ``start_tls`` finds those bytes still held and refuses: the
  connection closes, and ``serve`` logs one line naming the injection.
- **The 220 is sent by start_tls**, after that check: sent before, a fast
  client's TLS hello could arrive first and be taken for an injection.
- **One message per receive** (``async for``, not ``receive_many``), so that
  nothing after ``STARTTLS`` has been parsed when the upgrade is asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from framing import FramedStream, Lines, serve
from framing.server import ServerInfo

__all__ = ["handle_session", "main", "serve_smtp"]

logger = logging.getLogger("examples.smtp")

# RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF; command
# lines are shorter (512). A longer line ends the connection (FrameTooLarge).
MAX_LINE = 998
# RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for the next command.
IDLE_TIMEOUT = 300.0


@dataclass
class _Session:
    """One SMTP session: what it knows, and a method per command."""

    stream: FramedStream[bytes]
    ssl_context: ssl.SSLContext | None
    name: bytes
    under_tls: bool = False
    greeted: bool = False
    sender: bytes | None = None
    recipients: int = 0

    def forget(self) -> None:
        """Drop the greeting and the mail transaction (STARTTLS: RFC 3207 4.2)."""
        self.greeted, self.sender, self.recipients = False, None, 0

    # Each command gets what followed its verb, and says whether the session goes on.

    async def ehlo(self, argument: bytes) -> bool:
        self.forget()
        self.greeted = True
        extensions = [self.name, b"PIPELINING", b"8BITMIME"]
        if self.ssl_context is not None and not self.under_tls:
            extensions.append(b"STARTTLS")
        *first, last = extensions  # a multiline reply: "250-" on all lines but the last
        await self.stream.send_many([b"250-" + e for e in first] + [b"250 " + last])
        return True

    async def helo(self, argument: bytes) -> bool:
        self.forget()
        self.greeted = True
        await self.stream.send(b"250 " + self.name)
        return True

    async def starttls(self, argument: bytes) -> bool:
        if argument:
            await self.stream.send(b"501 5.5.4 Syntax error: STARTTLS takes no parameters")
        elif self.under_tls:
            await self.stream.send(b"503 5.5.1 TLS already active")
        elif self.ssl_context is None:
            await self.stream.send(b"454 4.7.0 TLS not available")
        else:
            # Checks that nothing followed STARTTLS, sends the 220, then shakes hands;
            # raises PlaintextInjection (and closes the connection) if something did.
            await self.stream.start_tls(
                self.ssl_context, server_side=True, reply=b"220 2.0.0 Ready to start TLS"
            )
            self.under_tls = True
            self.forget()  # the client must say EHLO again
        return True

    async def mail(self, argument: bytes) -> bool:
        if not self.greeted:
            await self.stream.send(b"503 5.5.1 Send EHLO first")
        elif not argument.upper().startswith(b"FROM:"):
            await self.stream.send(b"501 5.5.4 Syntax: MAIL FROM:<address>")
        else:
            self.sender, self.recipients = argument[5:].strip(), 0
            await self.stream.send(b"250 2.1.0 Ok")
        return True

    async def rcpt(self, argument: bytes) -> bool:
        if self.sender is None:
            await self.stream.send(b"503 5.5.1 Need MAIL first")
        elif not argument.upper().startswith(b"TO:"):
            await self.stream.send(b"501 5.5.4 Syntax: RCPT TO:<address>")
        else:
            self.recipients += 1
            await self.stream.send(b"250 2.1.5 Ok")
        return True

    async def data(self, argument: bytes) -> bool:
        if not self.recipients:
            await self.stream.send(b"503 5.5.1 Need RCPT first")
            return True
        await self.stream.send(b"354 End data with <CR><LF>.<CR><LF>")
        size = 0
        async for text in self.stream:  # the message, up to a line with a lone dot
            if text == b".":
                break
            size += len(text) + 2  # kept nowhere: this greeter only counts it
        else:
            return False  # the client ended the stream inside the message
        self.sender, self.recipients = None, 0
        await self.stream.send(b"250 2.0.0 Ok: %d bytes accepted, and discarded" % size)
        return True

    async def rset(self, argument: bytes) -> bool:
        self.sender, self.recipients = None, 0
        await self.stream.send(b"250 2.0.0 Ok")
        return True

    async def noop(self, argument: bytes) -> bool:
        await self.stream.send(b"250 2.0.0 Ok")
        return True

    async def quit(self, argument: bytes) -> bool:
        await self.stream.send(b"221 2.0.0 Bye")
        return False


_COMMANDS: dict[bytes, Callable[[_Session, bytes], Awaitable[bool]]] = {
    b"EHLO": _Session.ehlo,
    b"HELO": _Session.helo,
    b"STARTTLS": _Session.starttls,
    b"MAIL": _Session.mail,
    b"RCPT": _Session.rcpt,
    b"DATA": _Session.data,
    b"RSET": _Session.rset,
    b"NOOP": _Session.noop,
    b"QUIT": _Session.quit,
}


async def handle_session(
    stream: FramedStream[bytes], *, ssl_context: ssl.SSLContext | None, hostname: str
) -> None:
    """Run one SMTP session on ``stream`` until QUIT or the client's end of stream.

    Args:
        stream: a connection framed with CRLF ``Lines``.
        ssl_context: the server's TLS settings, or ``None`` to offer no STARTTLS.
        hostname: the name the server greets with.

    Raises:
        PlaintextInjection: the client sent bytes after STARTTLS, before TLS.
        TLSHandshakeFailed: the TLS handshake after STARTTLS failed.
    """
    session = _Session(stream, ssl_context, hostname.encode())
    await stream.send(b"220 " + session.name + b" ESMTP framing example")
    async for line in stream:  # one line per receive: see the module docstring
        verb, _, argument = line.partition(b" ")
        command = _COMMANDS.get(verb.upper())
        if command is None:
            await stream.send(b"502 5.5.2 Command not implemented")
        elif not await command(session, argument):
            return


async def serve_smtp(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None,
    hostname: str = "localhost",
    idle_timeout: float = IDLE_TIMEOUT,
    task_status: TaskStatus[ServerInfo] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve SMTP until cancelled; ``task_group.start`` returns the :class:`ServerInfo`.

    Args:
        host: the address to listen on.
        port: the port (0 picks a free one: see ``ServerInfo.port``).
        ssl_context: the certificate for STARTTLS, or ``None`` to offer none.
        hostname: the name the server greets with.
        idle_timeout: seconds to wait for the next line before closing.
        task_status: for ``task_group.start``.
    """

    async def handler(stream: FramedStream[bytes]) -> None:
        await handle_session(stream, ssl_context=ssl_context, hostname=hostname)

    await serve(
        handler,
        Lines(line_ending=b"\r\n", max_size=MAX_LINE),
        host=host,
        port=port,
        idle_timeout=idle_timeout,
        task_status=task_status,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m examples.smtp --port N --cert F --key F``."""
    parser = argparse.ArgumentParser(prog="python -m examples.smtp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=2525, help="0 picks a free one")
    parser.add_argument("--cert", required=True, help="the certificate chain, PEM")
    parser.add_argument("--key", required=True, help="its private key, PEM")
    parser.add_argument("--hostname", default="localhost", help="the name to greet with")
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
                lambda task_status: serve_smtp(
                    host=args.host,
                    port=args.port,
                    ssl_context=context,
                    hostname=args.hostname,
                    task_status=task_status,
                )
            )
            logger.info("listening on %s:%d", args.host, info.port)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean exit
        anyio.run(run, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
