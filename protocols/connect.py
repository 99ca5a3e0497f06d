r"""``framing connect HOST PORT``: a framed netcat.

Each line of standard input (without its line ending) is sent as one message
in the chosen framing; each message received is printed on its own line, as
text when it is printable UTF-8 and in hex otherwise (``--hex``: always hex).
At the end of standard input the client half-closes the connection (its FIN
tells the server there is no more), keeps printing replies until the server
ends the connection, and exits 0 (1, with the reason on stderr, when a line
could not be sent in the framing, or the server's replies broke it)::

    $ printf 'hello\nworld\n' | framing connect 127.0.0.1 1234 --framing length:2
    hello
    world

With ``--framing raw`` there are no messages on the wire, only bytes, so it
behaves as netcat does: standard input goes out as it is read, newlines and
all, and what arrives is written out unchanged (in hex, a line per chunk
received, with ``--hex``).

Standard input is read by a daemon thread, because no portable event loop can
wait on a terminal, a pipe and a file alike; lines cross into the event loop
through a :class:`~anyio.from_thread.BlockingPortal`. A daemon thread, because
when the server closes first the thread is still blocked reading a line that
may never come, and it must not keep the process alive.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

import anyio
from anyio.abc import ObjectSendStream
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream

from framing.errors import EncodeError, FramingError
from framing.raw import Raw
from framing.stream import FramedStream, connect
from protocols.runner import (
    CommandError,
    add_loop_argument,
    error,
    os_error_reason,
    port_number,
    run,
)
from protocols.spec import add_framing_arguments, parse_framing

__all__ = ["register", "render", "talk"]

#: Lines gathered into one write (more when one read of standard input had
#: more): enough to fill a segment with short lines.
_BATCH = 256

#: Bytes asked of standard input per read, and reads queued for sending: a
#: slow server makes the reader wait instead of holding the input in memory.
_READ_SIZE = 65536
_QUEUED = 16


def render(message: bytes, *, hex_output: bool = False) -> bytes:
    r"""One output line for ``message``: its text if printable UTF-8, else hex pairs.

    Args:
        message: the message received.
        hex_output: always hex (``--hex``).

    Returns:
        The line, newline included: ``b"hello\n"`` or ``b"00 01 ff\n"``.
    """
    if not hex_output:
        try:
            text = message.decode()
        except UnicodeDecodeError:
            pass
        else:
            if text.isprintable():
                return message + b"\n"
    return message.hex(" ").encode() + b"\n"


async def talk(
    host: str,
    port: int,
    *,
    framing: str = "raw",
    max_size: int | None = None,
    hex_output: bool = False,
    source: BinaryIO | None = None,
    sink: BinaryIO | None = None,
) -> None:
    """Send each line of ``source`` as a message; write each message received to ``sink``.

    Returns when the server has ended the connection: after ``source`` ran out
    and the client half-closed, or earlier when the server closed first.

    Args:
        host: the server's address.
        port: the server's port.
        framing: a framing spec (:mod:`protocols.spec`).
        max_size: the framer's largest message; ``None`` keeps its default.
        hex_output: print every message in hex.
        source: where lines come from (standard input's bytes by default).
        sink: where messages go (standard output's bytes by default).

    Raises:
        CommandError: the framing cannot be made, the connection could not be
            made or broke, the server broke the framing, or a line could not be
            sent in the framing (the others were sent; each refused line was
            reported on stderr as it came).
    """
    source = sys.stdin.buffer if source is None else source
    sink = sys.stdout.buffer if sink is None else sink
    try:
        framer = parse_framing(framing, max_size=max_size)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    raw = isinstance(framer, Raw)
    try:
        stream = await connect(host, port, framer)
    except OSError as exc:
        raise CommandError(f"cannot connect to {host}:{port}: {_reason(exc)}") from None

    send_lines, receive_lines = anyio.create_memory_object_stream[list[bytes]](_QUEUED)
    # Raised after the task group, so that it is not wrapped in a group.
    failure: CommandError | None = None
    refused = _Refused()
    async with stream, BlockingPortal() as portal:
        try:
            async with anyio.create_task_group() as tg:
                reader = partial(_read_lines, _reader(source), portal, send_lines, raw=raw)
                threading.Thread(target=reader, name="stdin reader", daemon=True).start()
                tg.start_soon(_send_lines, stream, receive_lines, refused)
                await _print_messages(stream, sink, raw=raw, hex_output=hex_output)
                # The server has ended the connection: stop sending, even if
                # standard input still has lines.
                tg.cancel_scope.cancel()
        except* FramingError as group:
            failure = CommandError(f"the server broke the framing: {_first(group)}")
        except* (anyio.BrokenResourceError, ConnectionError) as group:
            lost = _first(group)
            failure = CommandError(f"connection lost: {_lost_reason(lost)}")
        finally:
            # Lines the thread is handing over now are dropped, not waited for,
            # and any it reads later have nowhere to go.
            await portal.stop(cancel_remaining=True)
            send_lines.close()
    if failure is None and refused.count:
        failure = CommandError(f"{_lines(refused.count)} not sent: the framing cannot carry them")
    if failure is not None:
        raise failure


@dataclass
class _Refused:
    """How many lines the framing could not carry (reported one by one as they came)."""

    count: int = 0


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def _reason(exc: OSError) -> str:
    """Why a connection failed, in words: anyio puts the socket's errors in ``__cause__``."""
    causes = _leaves(exc.__cause__) if exc.__cause__ is not None else [exc]
    words = [os_error_reason(c) if isinstance(c, OSError) else str(c) for c in causes]
    return "; ".join(dict.fromkeys(words))


def _lost_reason(exc: BaseException) -> str:
    """Why an open connection broke: anyio's errors carry the socket's in ``__cause__``."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, OSError):
        return os_error_reason(cause)
    return str(cause) or type(cause).__name__


def _leaves(exc: BaseException) -> list[BaseException]:
    """Every exception in a (possibly nested) group, or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in a (possibly nested) exception group."""
    return _leaves(group)[0]


def _reader(source: BinaryIO) -> Callable[[], bytes]:
    """A function returning the next bytes of ``source`` (``b""`` at its end).

    A real file is read with ``os.read`` on its descriptor, not through
    ``sys.stdin.buffer``: a daemon thread blocked inside a buffered read holds
    that buffer's lock, and the interpreter aborts when it finds the lock taken
    as it shuts down.
    """
    try:
        fd = source.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return partial(source.read, _READ_SIZE)
    return partial(os.read, fd, _READ_SIZE)


def _read_lines(
    read: Callable[[], bytes],
    portal: BlockingPortal,
    lines: ObjectSendStream[list[bytes]],
    *,
    raw: bool,
) -> None:
    r"""In a daemon thread: hand the lines of each read to the event loop, then the end.

    Lines go without their ending (``\n`` or ``\r\n``); a last line without one
    goes at the end. With ``raw``, each read goes as it is, newlines included.
    """
    rest = b""
    try:
        while chunk := read():
            if raw:
                portal.call(lines.send, [chunk])
                continue
            *complete, rest = (rest + chunk).split(b"\n")
            if complete:
                portal.call(lines.send, [line.removesuffix(b"\r") for line in complete])
        if rest:
            portal.call(lines.send, [rest.removesuffix(b"\r")])
        portal.call(lines.aclose)
    except Exception:
        # The command finished first (the portal stopped, the receiver closed):
        # nobody wants the rest of standard input.
        return


async def _send_lines(
    stream: FramedStream[bytes],
    lines: MemoryObjectReceiveStream[list[bytes]],
    refused: _Refused,
) -> None:
    """Send the lines as messages, many per write when they come fast; then half-close.

    Lines the framing cannot carry are reported, skipped and counted in ``refused``.
    """
    async with lines:
        async for first in lines:
            batch = first
            # Lines already waiting go in the same write (a pasted or piped input).
            while len(batch) < _BATCH:
                try:
                    batch += lines.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            refused.count += await _send_batch(stream, batch)
    await stream.send_eof()


async def _send_batch(stream: FramedStream[bytes], batch: list[bytes]) -> int:
    """Send ``batch`` in one write; if a line cannot be framed, say so, send the others.

    Returns:
        How many lines were not sent.
    """
    try:
        await stream.send_many(batch)
    except EncodeError:
        pass
    else:
        return 0
    # Too large for the framing, or containing the delimiter: find which.
    refused = 0
    for message in batch:
        try:
            await stream.send(message)
        except EncodeError as exc:
            error(f"line not sent: {exc}")
            refused += 1
    return refused


async def _print_messages(
    stream: FramedStream[bytes], sink: BinaryIO, *, raw: bool, hex_output: bool
) -> None:
    """Write each message received to ``sink`` until the server ends the connection."""
    while True:
        try:
            batch = await stream.receive_many()
        except anyio.EndOfStream:
            return
        if raw and not hex_output:
            sink.write(b"".join(batch))
        else:
            sink.write(b"".join(render(m, hex_output=hex_output) for m in batch))
        sink.flush()


def _main(args: argparse.Namespace) -> int:
    """Run ``framing connect`` with parsed arguments."""
    return run(
        partial(
            talk,
            args.host,
            args.port,
            framing=args.framing,
            max_size=args.max_size,
            hex_output=args.hex,
        ),
        loop=args.loop,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``connect`` subcommand."""
    parser = subparsers.add_parser(
        "connect",
        help="a framed netcat: lines in, messages out",
        description=(
            "Send each line of standard input as one message; print each message "
            "received on its own line. At the end of input, half-close and wait "
            "for the remaining replies."
        ),
    )
    parser.add_argument("host", help="the server's address")
    parser.add_argument("port", type=port_number, help="the server's port")
    add_framing_arguments(parser)
    parser.add_argument("--hex", action="store_true", help="print every message in hex")
    add_loop_argument(parser)
    parser.set_defaults(func=_main)
