r"""The echo server of the seed chapter ("Code A TCP Server"), done properly, on any framer.

The chapter's server, in Node.js, logs each new connection, echoes every chunk
of data as it arrives, closes when the data contains ``q``, and logs ``EOF.``
when the client ends its side. This is the same server on anyio, with the
things the chapter's discussion leaves as exercises done:

- **Any framing.** With ``--framing raw`` (the default) a message is whatever one
  read returned, as in the chapter. With a real framing (``length:2``, ``line``,
  ...) the server echoes whole messages, re-encoded, however the client's writes
  were split or joined on the way.
- **Batches.** Each turn of the loop takes every message already received
  (``receive_many``) and writes all their echoes at once (``send_many``): a client
  that pipelines a thousand small messages costs a few system calls, not two
  thousand.
- **No task per connection when quiet.** With ``--quiet`` and no ``--close-on`` there
  is nothing to do per connection but echo, so the server is
  :func:`framing.serve_inline` with the identity as its answer: on asyncio and uvloop
  the loop calls each connection back, and an idle one costs about 2.5 KiB instead of
  the 9 KiB of a task (same limits, timeouts and half-close; trio runs the handler).
- **Half-open.** When the client half-closes (shuts down its sending side), the
  server has already written every reply (each batch is echoed before the next
  receive), logs ``EOF.``, and closes: the client reads every echo, then the
  end of stream.
- **Active close.** ``--close-on q`` echoes the message (or chunk) containing
  the byte, then ends the server's side as Node's ``socket.end()`` does: a FIN
  first, then it waits (a bounded time) for the client's own end before
  closing. Closing at once, with the client's later bytes unread, would make the
  kernel send a reset, and a reset can destroy echoes the client has not read yet.

A session, as in the chapter::

    $ framing echo
    listening on 127.0.0.1:1234 (Raw())
    new connection 127.0.0.1:52810
    127.0.0.1:52810 data: b'hello\n'
    127.0.0.1:52810 EOF.
    127.0.0.1:52810 closed

    $ socat tcp:127.0.0.1:1234 -          # or: nc -N 127.0.0.1 1234
    hello
    hello
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import anyio
from anyio.abc import SocketAttribute

from framing.errors import FramingError
from framing.inline import serve_inline
from framing.metrics import export_server_stats
from framing.server import serve
from framing.stream import FramedStream
from framing.workers import worker_index
from protocols.runner import (
    CommandError,
    add_loop_argument,
    add_metrics_argument,
    add_proxy_protocol_argument,
    add_workers_argument,
    error,
    metrics_endpoint,
    os_error_reason,
    port_number,
    reserved_port,
    run,
    seconds,
    supervise,
)
from protocols.spec import add_framing_arguments, parse_framing, positive_int

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LINGER", "echo", "register", "serve_echo"]

#: The chapter's address.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1234

#: After an active close, how long to wait for the client to end its side
#: before closing anyway, in seconds. Long enough for a client on the other side
#: of the world to notice our FIN; short enough that a client that never closes
#: holds a connection slot only briefly.
LINGER = 5.0

#: The most bytes of a message shown in a ``data:`` log line.
_SHOWN = 60

#: Where log lines go: ``print`` by default, a no-op with ``--quiet``.
Log = Callable[[str], None]


def _print(line: str) -> None:
    """Log to standard output, flushed, so a pipe or a file sees each line at once."""
    print(line, flush=True)


def _quiet(line: str) -> None:
    """Log nothing."""


def _worker_prefix() -> str:
    """``worker 1 (pid 4242): `` in a worker of ``--workers``, else nothing."""
    index = worker_index()
    return "" if index is None else f"worker {index} (pid {os.getpid()}): "


def _print_as_worker(line: str) -> None:
    """Log to standard output, each line naming the worker that wrote it.

    One write per line, newline included: the workers share standard output,
    and ``print`` on an unbuffered stream (``PYTHONUNBUFFERED``) writes the
    newline apart, so another worker's line could land in between.
    """
    sys.stdout.write(f"{_worker_prefix()}{line}\n")
    sys.stdout.flush()


def _address(address: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6) for a socket address tuple or a path."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _show(batch: list[bytes]) -> str:
    """The ``data:`` part of a log line: the message, or a count and the first one."""
    first = batch[0]
    shown = repr(first[:_SHOWN]) + ("..." if len(first) > _SHOWN else "")
    if len(batch) == 1:
        return shown
    total = sum(map(len, batch))
    return f"{len(batch)} messages, {total} bytes: {shown} ..."


async def echo(
    stream: FramedStream[bytes], *, close_on: bytes | None = None, log: Log = _quiet
) -> None:
    """Echo every message received on ``stream`` until the peer ends, then close it.

    A connection handler for :func:`framing.server.serve`. Each batch of messages
    is echoed, in order and in one write, before the next is received, so when
    the peer half-closes every reply has already been sent.

    Args:
        stream: the connection.
        close_on: when a message contains this byte string, echo the messages up
            to and including it, then close (see :data:`LINGER`).
        log: called with one line of text for each event.
    """
    peer = _address(stream.extra(SocketAttribute.remote_address, "peer"))
    log(f"new connection {peer}")
    # Building a data line costs more than echoing a small batch: skip it when
    # the lines go nowhere (--quiet).
    show = log is not _quiet
    try:
        while True:
            try:
                batch = await stream.receive_many()
            except anyio.EndOfStream:
                log(f"{peer} EOF.")
                break
            if show:
                log(f"{peer} data: {_show(batch)}")
            if close_on is not None:
                hit = next((i for i, m in enumerate(batch) if close_on in m), None)
                if hit is not None:
                    await stream.send_many(batch[: hit + 1])
                    log(f"{peer} closing: received {close_on!r}")
                    await _end_and_linger(stream)
                    break
            await stream.send_many(batch)
    except FramingError as exc:
        # The peer broke the framing: nothing after the fault can be trusted.
        log(f"{peer} closing: {exc}")
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError) as exc:
        log(f"{peer} connection lost: {exc or type(exc).__name__}")
    except TimeoutError:
        log(f"{peer} closing: timed out")
    finally:
        await stream.aclose()
    log(f"{peer} closed")


def _same(message: bytes) -> bytes:
    """The echo, answered inline: the message itself."""
    return message


async def _end_and_linger(stream: FramedStream[bytes]) -> None:
    """Send our FIN, then discard what the peer still sends until its own end."""
    await stream.send_eof()
    with anyio.move_on_after(LINGER):
        try:
            while True:
                await stream.receive_many()
        except (anyio.EndOfStream, FramingError, TimeoutError):
            # Its end, or bytes that no longer matter, or silence: close.
            pass


async def serve_echo(
    *,
    framing: str = "raw",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_size: int | None = None,
    idle_timeout: float | None = None,
    message_timeout: float | None = None,
    max_connections: int | None = None,
    max_connections_per_peer: int | None = None,
    proxy_protocol: Sequence[str] = (),
    reuse_port: bool = False,
    metrics: tuple[str, int] | None = None,
    close_on: bytes | None = None,
    quiet: bool = False,
    log: Log = _print,
) -> None:
    """Serve the echo service until cancelled.

    Args:
        framing: a framing spec (:mod:`protocols.spec`), such as ``"raw"`` or ``"length:2"``.
        host: the address to listen on.
        port: the port to listen on; 0 picks a free one (the log line says which).
        max_size: the framer's largest message; ``None`` keeps its default.
        idle_timeout: close a connection silent for this many seconds.
        message_timeout: close a connection that takes longer than this many
            seconds to finish a message it began (a peer trickling bytes).
        max_connections: serve at most this many connections at once.
        max_connections_per_peer: serve at most this many connections at once
            from one IP address; more are closed at once, with a log line.
        proxy_protocol: addresses or networks of proxies trusted to send a
            PROXY header (see :func:`framing.serve`): their connections are
            logged and limited as the client the header names.
        reuse_port: bind with ``SO_REUSEPORT``, to share the port with other
            processes (the workers of ``--workers``).
        metrics: ``(host, port)``: export the server's counters
            (:mod:`framing.metrics`, label ``server="echo"``) and serve them
            there (in a worker, the supervisor serves them).
        close_on: see :func:`echo`.
        quiet: log only the ``listening on`` line, not each connection's events.
        log: called with one line of text for each event; the first is
            ``listening on HOST:PORT (FRAMER)``. A SIGHUP is logged too (the
            echo server has nothing to reload) and does not stop the server.

    Raises:
        CommandError: the framing cannot be made (``max_size`` over what its
            header can carry), or the address cannot be listened on (a port
            already in use).
    """
    try:
        framer = parse_framing(framing, max_size=max_size)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    # Pass on only the options given, so serve() keeps its own defaults.
    options: dict[str, Any] = {"host": host, "port": port}
    given = {
        "idle_timeout": idle_timeout,
        "message_timeout": message_timeout,
        "max_connections": max_connections,
        "max_connections_per_peer": max_connections_per_peer,
    }
    options.update((name, value) for name, value in given.items() if value is not None)
    if proxy_protocol:
        options["proxy_protocol"] = list(proxy_protocol)
    if reuse_port:
        options["reuse_port"] = True
    if quiet and close_on is None:
        # Nothing to log per connection and no active close: each message is
        # answered by itself, with no task per connection (framing.inline).
        serving = partial(serve_inline, _same, framer, **options)
    else:
        handler = partial(echo, close_on=close_on, log=_quiet if quiet else log)
        serving = partial(serve, handler, framer, **options)
    failure: OSError | None = None
    async with metrics_endpoint(metrics, log), anyio.create_task_group() as tg:
        try:
            server = await tg.start(serving)
        except OSError as exc:
            # Raised after the task group, so that it is not wrapped in a group.
            failure = exc
        else:
            addresses = ", ".join(_address(a) for a in server.addresses)
            log(f"listening on {addresses} ({framer!r})")
            tg.start_soon(_log_sighup, log)
            if metrics is not None:
                tg.start_soon(partial(export_server_stats, server, server="echo"))
    if failure is not None:
        reason = os_error_reason(failure)
        raise CommandError(f"cannot listen on {_address((host, port))}: {reason}")


async def _log_sighup(log: Log) -> None:
    """Log each SIGHUP (sent on by the supervisor of ``--workers``) and carry on."""
    try:
        receiver = anyio.open_signal_receiver(signal.SIGHUP)
        with receiver as signals:
            async for _ in signals:
                log("SIGHUP: the echo server has nothing to reload")
    except (RuntimeError, ValueError, NotImplementedError):
        # Not the main thread (signals are the main thread's), or no signals here:
        # SIGHUP keeps whatever disposition the program gave it.
        return


async def _serve_as_worker(*, quiet: bool, **options: Any) -> None:
    """One worker of ``framing echo --workers N``: its log lines name it."""
    _show_server_log(quiet=quiet)
    await serve_echo(**options, quiet=quiet, reuse_port=True, log=_print_as_worker)


def _close_on_byte(text: str) -> bytes:
    """An argparse ``type``: one character, as the one byte it encodes to."""
    data = text.encode()
    if len(data) != 1:
        raise argparse.ArgumentTypeError(f"must be a single byte, such as q, not {text!r}")
    return data


def _show_server_log(*, quiet: bool) -> None:
    """Send the ``framing`` library's log (refused connections...) to standard output."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"{_worker_prefix()}%(message)s"))
    logger = logging.getLogger("framing")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def _main(args: argparse.Namespace) -> int:
    """Run ``framing echo`` with parsed arguments."""
    options: dict[str, Any] = {
        "framing": args.framing,
        "host": args.host,
        "port": args.port,
        "max_size": args.max_size,
        "idle_timeout": args.idle_timeout,
        "message_timeout": args.message_timeout,
        "max_connections": args.max_connections,
        "max_connections_per_peer": args.max_connections_per_peer,
        "proxy_protocol": args.proxy_protocol,
        "close_on": args.close_on,
        "quiet": args.quiet,
        "metrics": args.metrics,
    }
    if args.workers > 1:
        try:
            with reserved_port(args.host, args.port) as port:
                main = partial(_serve_as_worker, **{**options, "port": port})
                return supervise(main, workers=args.workers, loop=args.loop, metrics=args.metrics)
        except CommandError as exc:
            error(str(exc))
            return exc.status
    _show_server_log(quiet=args.quiet)
    # What is loaded by now (modules, classes, functions) lives as long as the
    # process: move it out of the collector's reach, so that its full passes,
    # which a server's growing connection table triggers, do not revisit it.
    gc.collect()
    gc.freeze()
    return run(partial(serve_echo, **options), loop=args.loop)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``echo`` subcommand."""
    parser = subparsers.add_parser(
        "echo",
        help="run the echo server",
        description="Echo every message back, on any framing, until interrupted.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="default: %(default)s")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="default: %(default)s; 0 picks a free port and prints it",
    )
    add_framing_arguments(parser)
    parser.add_argument(
        "--idle-timeout",
        type=seconds,
        metavar="S",
        help="close a connection from which no byte has arrived for S seconds, "
        "inside a message or between messages",
    )
    parser.add_argument(
        "--message-timeout",
        type=seconds,
        metavar="S",
        help="close a connection that takes over S seconds to finish a message",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        metavar="N",
        help="serve at most N at once; a newcomer then sheds the connection that "
        "has waited longest for its next byte (refused only if all are busy)",
    )
    parser.add_argument(
        "--max-connections-per-peer",
        type=positive_int,
        metavar="N",
        help="serve at most N at once from one IP address (shedding as above)",
    )
    add_proxy_protocol_argument(parser)
    parser.add_argument(
        "--close-on",
        type=_close_on_byte,
        metavar="BYTE",
        help="close a connection after echoing a message that contains BYTE (such as q)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log only the listening address")
    add_workers_argument(parser)
    add_metrics_argument(parser)
    add_loop_argument(parser)
    parser.set_defaults(func=_main)
