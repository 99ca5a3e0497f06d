"""Run a command's async main on the event loop the user picked, and stop it cleanly.

Every ``framing`` subcommand is an ``async def main()`` handed to :func:`run`,
which owns what a long-running server needs from the process around it:

- **the event loop**: ``--loop asyncio`` (the default), ``uvloop`` (asyncio with
  uvloop's faster loop, when it is installed) or ``trio``; the code is the same
  on all three because it is written on anyio;
- **signals**: SIGINT (Ctrl-C) and SIGTERM (``kill``, a service manager) cancel
  ``main``, which cleans up like any cancelled anyio task (its ``finally``
  blocks and ``async with`` exits run: connections are closed, not dropped), and
  the process exits with status 0, because being asked to stop is not a failure;
- **one-line errors**: ``main`` raises :class:`CommandError` for a failure the
  user can act on (a port already in use, a refused connection); :func:`run`
  prints ``framing: error: <message>`` on stderr and returns a non-zero status,
  instead of a traceback.

Typical use, in a subcommand::

    def register(subparsers):
        parser = subparsers.add_parser("echo")
        add_loop_argument(parser)
        parser.set_defaults(func=lambda args: run(partial(serve_echo, args), loop=args.loop))
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial

import anyio
import anyio.to_thread
from anyio import CancelScope

from framing.metrics import MetricsServer, MetricsUnavailable, mark_process_dead, serve_metrics
from framing.workers import ignore_stop_signals, run_workers, worker_count, worker_index

__all__ = [
    "LOOPS",
    "PROG",
    "CommandError",
    "add_loop_argument",
    "add_metrics_argument",
    "add_proxy_protocol_argument",
    "add_workers_argument",
    "error",
    "metrics_endpoint",
    "os_error_reason",
    "port_number",
    "report_errors",
    "reserved_port",
    "run",
    "supervise",
]

#: The program name used in error messages.
PROG = "framing"

#: The event loops :func:`run` knows, for ``--loop``.
LOOPS = ("asyncio", "uvloop", "trio")

#: The exit status for a :class:`CommandError` (argparse uses 2 for usage errors).
ERROR_STATUS = 1


class CommandError(Exception):
    """A failure to report to the user as one line on stderr, with a non-zero status.

    Attributes:
        status: the process exit status to return (1 unless given).
    """

    def __init__(self, message: str, *, status: int = ERROR_STATUS) -> None:
        super().__init__(message)
        self.status = status


def error(message: str) -> None:
    """Print ``framing: error: <message>`` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def os_error_reason(exc: OSError) -> str:
    """An OS error in a few lower-case words: ``"address already in use"``.

    The operating system's own words for the error number when there is one
    (event loops word the same failure differently), else the message.
    """
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc).lower()


def port_number(text: str) -> int:
    """An argparse ``type`` for a TCP or UDP port number, 0 to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {text!r}")
    return int(text)


def seconds(text: str) -> float:
    """An argparse ``type`` for a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def proxy_source(text: str) -> str:
    """An argparse ``type`` for ``--proxy-protocol``: an IP address or network, as given."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an IP address or network (ADDR or ADDR/PREFIX): {text!r}"
        ) from None
    return text


def add_proxy_protocol_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--proxy-protocol ADDR[/PREFIX]`` (repeatable) to ``parser``."""
    parser.add_argument(
        "--proxy-protocol",
        type=proxy_source,
        action="append",
        default=[],
        metavar="ADDR[/PREFIX]",
        help="a proxy trusted to send a PROXY header (v1 or v2; HAProxy's send-proxy): "
        "its connections must begin with one, and are served, limited and logged as the "
        "client it names; repeatable. From other peers such a header is refused",
    )


def workers(text: str) -> int:
    """An argparse ``type`` for ``--workers``: a whole number of at least 1, or ``auto``."""
    try:
        return worker_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers N|auto`` (default 1) to ``parser``."""
    parser.add_argument(
        "--workers",
        type=workers,
        default=1,
        metavar="N|auto",
        help="serve from N processes on one port (SO_REUSEPORT) under a supervisor that "
        "restarts a worker that dies and passes SIGHUP on; auto: one per usable CPU "
        "(default: 1, this process alone)",
    )


def metrics_address(text: str) -> tuple[str, int]:
    """An argparse ``type`` for ``--metrics HOST:PORT`` (``[::1]:9100`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT (such as 127.0.0.1:9100): {text!r}")
    return host, int(port)


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics HOST:PORT`` (default: off) to ``parser``."""
    parser.add_argument(
        "--metrics",
        type=metrics_address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one and "
        "prints it); with --workers, the sum of all workers. Needs prometheus_client "
        "(pip install 'framing[metrics]'). Default: off",
    )


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--loop asyncio|uvloop|trio`` (default ``asyncio``) to ``parser``."""
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="asyncio",
        help="the event loop to run on (default: %(default)s; uvloop when installed)",
    )


def run(main: Callable[[], Awaitable[object]], *, loop: str = "asyncio") -> int:
    """Run ``main`` on the chosen event loop until it returns or a signal stops it.

    Args:
        main: the command, an async function of no arguments. It may return an
            ``int``, the exit status; anything else (``None``) means 0.
        loop: ``"asyncio"``, ``"uvloop"`` or ``"trio"``.

    Returns:
        The process exit status: ``main``'s, 0 when SIGINT or SIGTERM stopped it,
        or :attr:`CommandError.status` (with the message printed on stderr) when
        ``main`` raised :class:`CommandError` or the loop is not available.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = [signal.getsignal(signum) for signum in _STOP_SIGNALS] if main_thread else []
    try:
        backend, options = _backend(loop)
        return anyio.run(_supervise, main, backend=backend, backend_options=options)
    except CommandError as exc:
        error(str(exc))
        return exc.status
    except KeyboardInterrupt:
        # A Ctrl-C that landed before the signal receiver was open (while the
        # loop was starting) or after it closed: still a requested stop.
        return 0
    finally:
        for signum, handler in zip(_STOP_SIGNALS, previous, strict=False):
            signal.signal(signum, handler)


def _backend(loop: str) -> tuple[str, dict[str, object]]:
    """Map a ``--loop`` name to anyio's backend name and options."""
    if loop == "asyncio":
        return "asyncio", {}
    if loop == "trio":
        if importlib.util.find_spec("trio") is None:
            raise CommandError("--loop trio needs trio, which is not installed (pip install trio)")
        return "trio", {}
    if loop == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            raise CommandError(
                "--loop uvloop needs uvloop, which is not installed (pip install uvloop)"
            )
        return "asyncio", {"use_uvloop": True}
    raise CommandError(f"unknown event loop {loop!r}: choose one of {', '.join(LOOPS)}")


async def _supervise(main: Callable[[], Awaitable[object]]) -> int:
    """Run ``main`` beside a signal watcher; the first to finish stops the other."""
    # The receiver is opened before main starts, so a signal that arrives once a
    # server has printed its address is always caught here (a test relies on it).
    # A second stop signal is common (Ctrl-C reaches every process of the
    # terminal's group; a service manager may send SIGTERM too) and must not turn
    # a clean stop into a death by signal: trio gives the receiver's signals their
    # previous handlers back when it closes, then delivers again those still
    # queued, and asyncio gives them their default action back. So they are
    # ignored before it opens (the previous handler trio restores) and again once
    # it has closed, with no await in between, as each worker does; run() restores them.
    ignore_stop_signals()
    with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
        status: object = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_signal, signals, tg.cancel_scope)
                status = await main()
                tg.cancel_scope.cancel()
        except* CommandError as group:
            # Raised inside a task group, so it arrives wrapped (perhaps twice).
            raise _first(group) from None
    ignore_stop_signals()  # asyncio restored the default action on closing
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _first(group: BaseExceptionGroup[CommandError]) -> CommandError:
    """The first :class:`CommandError` in a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def _cancel_on_signal(signals: AsyncIterator[int], scope: CancelScope) -> None:
    """Cancel ``scope`` at the first SIGINT or SIGTERM; ``main`` then cleans up."""
    async for signum in signals:
        print(f"{PROG}: stopping on {signal.Signals(signum).name}", file=sys.stderr, flush=True)
        scope.cancel()
        return


# -- workers ------------------------------------------------------------------------


async def report_errors(main: Callable[[], Awaitable[object]]) -> int:
    """Run ``main`` in a worker: a :class:`CommandError` is one line on stderr and a status.

    What :func:`run` does for a single process, for the ``main`` of each
    worker of :func:`supervise`.
    """
    try:
        status = await main()
    except CommandError as exc:
        failure = exc
    except BaseExceptionGroup as group:
        found, _ = group.split(CommandError)
        if found is None:
            raise
        failure = _first(found)
    else:
        return status if isinstance(status, int) and not isinstance(status, bool) else 0
    error(str(failure))
    return failure.status


def supervise(
    main: Callable[[], Awaitable[object]],
    *,
    workers: int,
    loop: str,
    metrics: tuple[str, int] | None = None,
) -> int:
    """Run ``main`` in ``workers`` processes with :func:`framing.workers.run_workers`.

    ``main`` must pickle (a :func:`functools.partial` of a module-level async
    function) and serve with ``reuse_port=True``. The supervisor's log lines
    go to stderr, as ``framing: worker 1 (pid 4242) killed by SIGKILL ...``.

    With ``metrics``, the supervisor serves the workers' metrics, summed,
    from a ``PROMETHEUS_MULTIPROC_DIR`` of its own, removed when it returns
    (see :mod:`framing.metrics`); ``main`` exports its counters.

    Returns:
        The exit status: 0 after a stop on SIGTERM or SIGINT, else see
        :func:`~framing.workers.run_workers`.
    """
    try:
        backend, options = _backend(loop)
    except CommandError as exc:
        error(str(exc))
        return exc.status
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    log = logging.getLogger("framing.workers")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # not also through a handler the command set on "framing"
    directory: str | None = None
    endpoint = None
    try:
        env: dict[str, str] = {}
        on_exit: Callable[[int], None] | None = None
        if metrics is not None:
            directory = tempfile.mkdtemp(prefix="framing-metrics-")
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
            on_exit = partial(_forget_worker, directory)
            endpoint = _start_metrics(metrics, multiprocess_dir=directory)
            log.info("metrics of all workers on %s", endpoint.url)
        return run_workers(
            report_errors,
            main,
            workers=workers,
            backend=backend,
            backend_options=options,
            env=env,
            on_exit=on_exit,
        )
    except CommandError as exc:
        error(str(exc))
        return exc.status
    finally:
        if endpoint is not None:
            endpoint.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        log.removeHandler(handler)


def _forget_worker(directory: str, pid: int) -> None:
    mark_process_dead(pid, directory)


def _start_metrics(
    address: tuple[str, int], *, multiprocess_dir: str | None = None
) -> MetricsServer:
    """Start the metrics endpoint, or say in one line why it cannot be."""
    host, port = address
    try:
        return serve_metrics(host, port, multiprocess_dir=multiprocess_dir)
    except MetricsUnavailable as exc:
        raise CommandError(f"--metrics: {exc}") from None
    except OSError as exc:
        raise CommandError(
            f"cannot serve metrics on {host}:{port}: {os_error_reason(exc)}"
        ) from None


@contextlib.asynccontextmanager
async def metrics_endpoint(
    address: tuple[str, int] | None, log: Callable[[str], None]
) -> AsyncIterator[None]:
    """Serve ``/metrics`` for the body's duration (``log`` says where), for ``--metrics``.

    Nothing when ``address`` is ``None``, or in a worker of :func:`supervise`,
    whose supervisor serves the whole group's.

    Raises:
        CommandError: prometheus_client is missing, or the address is taken.
    """
    if address is None or worker_index() is not None:
        yield
        return
    endpoint = _start_metrics(address)
    log(f"metrics on {endpoint.url}")
    try:
        yield
    finally:
        with CancelScope(shield=True):
            await anyio.to_thread.run_sync(endpoint.close)


@contextlib.contextmanager
def reserved_port(host: str, port: int, *, udp: bool = False) -> Iterator[int]:
    """The port the workers are to share: ``port``, or for 0 a free one, held meanwhile.

    With ``--port 0`` every worker binding port 0 would get a port of its own,
    so the supervisor picks one first: a TCP socket bound with ``SO_REUSEPORT``
    (and, with ``udp``, the same port checked free for UDP) keeps other
    programs off it while the workers, which set ``SO_REUSEPORT`` too, bind it.
    A bound TCP socket that does not listen receives no connection.

    Raises:
        CommandError: no port could be found, or ``host`` cannot be resolved.
    """
    if port:
        yield port
        return
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}: {os_error_reason(exc)}") from exc
    for _ in range(20):
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            tcp.bind(address)
            chosen = int(tcp.getsockname()[1])
            if udp:  # closed at once: a bound UDP socket would receive datagrams
                with socket.socket(family, socket.SOCK_DGRAM) as check:
                    check.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    check.bind((address[0], chosen, *address[2:]))
        except OSError:
            tcp.close()
            continue
        with tcp:
            yield chosen
        return
    raise CommandError(f"no port on {host} was free for the workers")
