"""``framing dns``: run the authoritative DNS server from the command line.

::

    $ framing dns                      # the embedded zone framing.test., port 5053
    framing dns: serving framing.test. on 127.0.0.1 port 5053 (UDP and TCP)
    try: dig @127.0.0.1 -p 5053 +tcp www.framing.test

    $ framing dns --zone example.zone --port 0 --loop trio

``register`` adds the subcommand to the ``framing`` parser; ``python -m
protocols.dns.cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio

from framing.metrics import ServerStatsExporter, refresh_metrics
from framing.workers import worker_index
from protocols.dns.errors import ZoneError
from protocols.dns.message import RecordType
from protocols.dns.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MESSAGE_TIMEOUT,
    DNSServerInfo,
    run_dns_server,
)
from protocols.dns.stats import DNSStats, dns_metrics
from protocols.dns.zone import Zone, example_zone, parse_zone
from protocols.runner import (
    CommandError,
    add_loop_argument,
    add_metrics_argument,
    add_proxy_protocol_argument,
    add_workers_argument,
    metrics_endpoint,
    port_number,
    reserved_port,
    run,
    seconds,
    supervise,
)
from protocols.spec import positive_int

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "main", "register", "serve_dns"]

DEFAULT_HOST = "127.0.0.1"
#: 53 needs privileges; 5053 is the usual unprivileged stand-in.
DEFAULT_PORT = 5053


def load_zone(path: str | None) -> Zone:
    """Read the zone file at ``path``, or return the embedded zone for ``None``.

    Raises:
        CommandError: the file cannot be read or is not a valid zone.
    """
    if path is None:
        return example_zone()
    try:
        text = Path(path).read_text(encoding="utf-8")
        return parse_zone(text)
    except (OSError, UnicodeDecodeError, ZoneError) as exc:
        raise CommandError(f"cannot load zone {path}: {exc}") from exc


def _example_name(zone: Zone) -> str:
    """A name of the zone worth asking dig about: an A record's owner, www first."""
    owners = [r.name for r in zone.records if r.rtype == RecordType.A]
    for name in owners:
        if name.labels[:1] == (b"www",):
            return name.to_text().rstrip(".")
    return (owners[0] if owners else zone.origin).to_text().rstrip(".")


async def serve_dns(
    *,
    zone: Zone,
    host: str,
    port: int,
    idle_timeout: float | None,
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT,
    max_connections: int,
    max_connections_per_peer: int | None = None,
    proxy_protocol: Sequence[str] = (),
    reuse_port: bool = False,
    metrics: tuple[str, int] | None = None,
) -> None:
    """Serve until cancelled, printing where and how to query once listening.

    With ``metrics`` (``--metrics``), the TCP server's counters (label
    ``server="dns"``) and the queries by transport, type and rcode are
    exported (:mod:`protocols.dns.stats`) and served there, unless this is a
    worker, whose supervisor serves them.

    Raises:
        CommandError: the address could not be bound.
    """
    stats = DNSStats() if metrics is not None else None
    async with metrics_endpoint(metrics, _print), anyio.create_task_group() as tg:
        try:
            info: DNSServerInfo = await tg.start(
                partial(
                    run_dns_server,
                    zone,
                    host=host,
                    port=port,
                    idle_timeout=idle_timeout,
                    message_timeout=message_timeout,
                    max_connections=max_connections,
                    max_connections_per_peer=max_connections_per_peer,
                    proxy_protocol=proxy_protocol,
                    reuse_port=reuse_port,
                    stats=stats,
                )
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host} port {port}: {exc}") from exc
        print(
            f"{_worker_prefix()}"
            f"framing dns: serving {zone.origin} on {info.host} port {info.port} (UDP and TCP)\n"
            f"try: dig @{info.host} -p {info.port} +tcp {_example_name(zone)}",
            flush=True,
        )
        if stats is not None:
            tcp = info.tcp
            exporter = ServerStatsExporter(lambda: tcp.stats, server="dns")
            tg.start_soon(refresh_metrics, exporter, dns_metrics(stats))


def _print(line: str) -> None:
    # One write, newline included: workers share standard output (see echo's).
    sys.stdout.write(f"{_worker_prefix()}framing dns: {line}\n")
    sys.stdout.flush()


def _worker_prefix() -> str:
    """``worker 1 (pid 4242): `` in a worker of ``--workers``, else nothing."""
    index = worker_index()
    return "" if index is None else f"worker {index} (pid {os.getpid()}): "


def _main(args: argparse.Namespace) -> int:
    """Run ``framing dns`` with parsed arguments."""
    try:
        zone = load_zone(args.zone)
    except CommandError as exc:
        print(f"framing: error: {exc}", file=sys.stderr)
        return exc.status
    main = partial(
        serve_dns,
        zone=zone,
        host=args.host,
        port=args.port,
        idle_timeout=args.idle_timeout,
        message_timeout=args.message_timeout,
        max_connections=args.max_connections,
        max_connections_per_peer=args.max_connections_per_peer,
        proxy_protocol=args.proxy_protocol,
        metrics=args.metrics,
    )
    if args.workers > 1:
        # Each worker binds UDP and TCP with SO_REUSEPORT; port 0 is chosen here, once.
        try:
            with reserved_port(args.host, args.port, udp=True) as port:
                main = partial(main, port=port, reuse_port=True)
                return supervise(main, workers=args.workers, loop=args.loop, metrics=args.metrics)
        except CommandError as exc:
            print(f"framing: error: {exc}", file=sys.stderr)
            return exc.status
    return run(main, loop=args.loop)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dns`` subcommand."""
    parser = subparsers.add_parser(
        "dns",
        help="run the authoritative DNS server",
        description="Serve a zone over UDP and TCP on one port, until interrupted.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="default: %(default)s")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="default: %(default)s; 0 picks one"
    )
    parser.add_argument(
        "--zone", metavar="FILE", help="a master file (RFC 1035 5); default: the embedded zone"
    )
    parser.add_argument(
        "--idle-timeout",
        type=seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="close a TCP connection from which no byte has arrived for S seconds, "
        "inside a query or between queries (default: %(default)s)",
    )
    parser.add_argument(
        "--message-timeout",
        type=seconds,
        default=DEFAULT_MESSAGE_TIMEOUT,
        metavar="S",
        help="close a TCP connection whose query takes over S seconds to arrive "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="serve at most N TCP connections at once; a newcomer then sheds the one "
        "that has waited longest for its next byte (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections-per-peer",
        type=positive_int,
        metavar="N",
        help="serve at most N TCP connections at once from one IP address (default: no limit)",
    )
    add_proxy_protocol_argument(parser)
    add_workers_argument(parser)
    add_metrics_argument(parser)
    add_loop_argument(parser)
    parser.set_defaults(func=_main)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dns`` as a program of its own: ``python -m protocols.dns.cli [options]``."""
    parser = argparse.ArgumentParser(prog="framing")
    subparsers = parser.add_subparsers()
    register(subparsers)
    args = parser.parse_args(["dns", *(sys.argv[1:] if argv is None else argv)])
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
