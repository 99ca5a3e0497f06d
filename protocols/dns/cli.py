r"""``framing dns``: run the authoritative DNS server from the command line.

::

    $ framing dns                      # the embedded zone framing.test., port 5053
    framing dns: serving framing.test. on 127.0.0.1 port 5053 (UDP and TCP)
    try: dig @127.0.0.1 -p 5053 +tcp www.framing.test

    $ framing dns --zone example.zone --port 0 --loop trio

    $ framing dns --zone a.zone --zone b.zone --host 127.0.0.1 --host ::1 \
          --allow-transfer 127.0.0.2 --notify 127.0.0.2:5300
    $ kill -HUP <pid>                  # reload every zone file; NOTIFY if a serial went up

``register`` adds the subcommand to the ``framing`` parser; ``python -m
protocols.dns.cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from framing.metrics import ServerStatsExporter, refresh_metrics
from framing.workers import worker_index
from protocols.dns.errors import ZoneError
from protocols.dns.message import RecordType
from protocols.dns.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MESSAGE_TIMEOUT,
    DNS_PORT,
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
    proxy_source,
    reserved_port,
    run,
    seconds,
    supervise,
)
from protocols.spec import positive_int

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "load_zone",
    "main",
    "notify_target",
    "register",
    "reload_zones",
    "serve_dns",
]

logger = logging.getLogger("protocols.dns")

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


def reload_zones(paths: Sequence[str], current: Sequence[Zone]) -> list[Zone]:
    """Read every zone file again; a file that cannot be read keeps its old zone.

    Args:
        paths: the zone files, in the order given on the command line.
        current: the zones served now, one per path, in the same order.

    Returns:
        One zone per path: the new one, or the old one (logged with why).
    """
    zones = []
    for path, old in zip(paths, current, strict=True):
        try:
            zone = load_zone(path)
        except CommandError as exc:
            logger.warning("%s: kept the old zone: %s", path, exc.__cause__ or exc)
            zones.append(old)
            continue
        if zone.origin.key != old.origin.key:
            logger.warning(
                "%s: kept the old zone: its origin changed from %s to %s",
                path,
                old.origin,
                zone.origin,
            )
            zones.append(old)
            continue
        zones.append(zone)
    return zones


async def _reload_on_hangup(
    info: DNSServerInfo,
    paths: Sequence[str],
    *,
    task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
) -> None:
    """Reload every zone file at each SIGHUP, for as long as the server runs."""
    with anyio.open_signal_receiver(signal.SIGHUP) as hangups:
        task_status.started()  # from here on a SIGHUP reloads, and no longer kills
        async for _ in hangups:
            if not paths:
                logger.info("SIGHUP: no zone file to reload (the embedded zone is served)")
                continue
            current = info.zones
            zones = await anyio.to_thread.run_sync(reload_zones, paths, current)
            # The new answer index is built off the event loop: queries are
            # answered from the old zones until the swap, which is one assignment.
            prepared = await anyio.to_thread.run_sync(info.prepare, zones)
            changed = info.replace_zones(zones, prepared=prepared)
            logger.info(
                "SIGHUP: reloaded %d zone files, %d with a new serial", len(paths), len(changed)
            )


async def serve_dns(
    *,
    zone: Zone | Sequence[Zone],
    host: str | Sequence[str],
    port: int,
    idle_timeout: float | None,
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT,
    max_connections: int,
    max_connections_per_peer: int | None = None,
    proxy_protocol: Sequence[str] = (),
    zone_files: Sequence[str] = (),
    allow_transfer: Sequence[str] = (),
    notify: Sequence[tuple[str, int]] = (),
    nsid: bytes | None = None,
    reuse_port: bool = False,
    metrics: tuple[str, int] | None = None,
) -> None:
    """Serve until cancelled, printing where and how to query once listening.

    ``zone_files`` are the files ``zone`` was read from, one per zone, in
    order: SIGHUP reads them again (an empty list: SIGHUP is logged, nothing
    else).

    With ``metrics`` (``--metrics``), the TCP server's counters (label
    ``server="dns"``) and the queries by transport, type and rcode are
    exported (:mod:`protocols.dns.stats`) and served there, unless this is a
    worker, whose supervisor serves them.

    Raises:
        CommandError: the address could not be bound.
    """
    zones = (zone,) if isinstance(zone, Zone) else tuple(zone)
    stats = DNSStats() if metrics is not None else None
    if worker_index() not in (None, 0):
        # Every worker reloads on SIGHUP (the supervisor passes it on); one NOTIFY
        # per new serial is enough, so only the first worker sends them.
        notify = ()
    async with metrics_endpoint(metrics, _print), anyio.create_task_group() as tg:
        try:
            info: DNSServerInfo = await tg.start(
                partial(
                    run_dns_server,
                    zones,
                    host=host,
                    port=port,
                    idle_timeout=idle_timeout,
                    message_timeout=message_timeout,
                    max_connections=max_connections,
                    max_connections_per_peer=max_connections_per_peer,
                    proxy_protocol=proxy_protocol,
                    allow_transfer=allow_transfer,
                    notify=notify,
                    nsid=nsid,
                    reuse_port=reuse_port,
                    stats=stats,
                )
            )
        except OSError as exc:
            where = host if isinstance(host, str) else " and ".join(host)
            raise CommandError(f"cannot listen on {where} port {port}: {exc}") from exc
        if hasattr(signal, "SIGHUP"):
            # Before saying we listen: a SIGHUP sent once the line is read reloads.
            await tg.start(_reload_on_hangup, info, zone_files)
        names = ", ".join(str(z.origin) for z in zones)
        addresses = " and ".join(info.hosts)
        print(
            f"{_worker_prefix()}"
            f"framing dns: serving {names} on {addresses} port {info.port} (UDP and TCP)\n"
            f"try: dig @{info.host} -p {info.port} +tcp {_example_name(zones[0])}",
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


def notify_target(text: str) -> tuple[str, int]:
    """An argparse ``type`` for ``--notify``: ``ADDR``, ``ADDR:PORT`` or ``[V6ADDR]:PORT``."""
    host, port = text, DNS_PORT
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            port = -1
        elif rest:
            port = port_number(rest.removeprefix(":")) if rest.startswith(":") else -1
    elif text.count(":") == 1:
        host, _, rest = text.partition(":")
        port = port_number(rest)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        port = -1
    if port <= 0:
        raise argparse.ArgumentTypeError(
            f"not an address with an optional port (ADDR, ADDR:PORT, [V6ADDR]:PORT): {text!r}"
        )
    return host, port


def _nsid(text: str) -> bytes:
    """An argparse ``type`` for ``--nsid``: text of 1 to 512 bytes in UTF-8."""
    data = text.encode()
    if not 0 < len(data) <= 512:
        raise argparse.ArgumentTypeError(f"must be 1 to 512 bytes, not {len(data)}")
    return data


def _show_log() -> None:
    """Send the DNS server's log (reloads, transfers, NOTIFY) to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("framing dns: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _main(args: argparse.Namespace) -> int:
    """Run ``framing dns`` with parsed arguments."""
    paths: list[str] = args.zone or []
    try:
        zones = [load_zone(path) for path in paths] or [load_zone(None)]
    except CommandError as exc:
        print(f"framing: error: {exc}", file=sys.stderr)
        return exc.status
    origins = [z.origin.key for z in zones]
    if len(set(origins)) != len(origins):
        print("framing: error: two --zone files have the same origin", file=sys.stderr)
        return 1
    _show_log()
    hosts = args.host or [DEFAULT_HOST]
    main = partial(
        serve_dns,
        zone=zones,
        host=hosts,
        port=args.port,
        idle_timeout=args.idle_timeout,
        message_timeout=args.message_timeout,
        max_connections=args.max_connections,
        max_connections_per_peer=args.max_connections_per_peer,
        proxy_protocol=args.proxy_protocol,
        zone_files=paths,
        allow_transfer=args.allow_transfer,
        notify=args.notify,
        nsid=args.nsid,
        metrics=args.metrics,
    )
    if args.workers > 1:
        # Each worker binds UDP and TCP with SO_REUSEPORT; port 0 is chosen here, once.
        try:
            # With --port 0 the port is found free on the first address; the
            # workers then bind it on every one.
            with reserved_port(hosts[0], args.port, udp=True) as port:
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
    parser.add_argument(
        "--host",
        action="append",
        metavar="ADDR",
        help=f"an address to listen on; repeatable, all on one port (default: {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="default: %(default)s; 0 picks one"
    )
    parser.add_argument(
        "--zone",
        action="append",
        metavar="FILE",
        help="a master file (RFC 1035 5); repeatable, one zone each, a name answered from "
        "the zone with the longest matching origin; SIGHUP reads them again "
        "(default: the embedded zone)",
    )
    parser.add_argument(
        "--allow-transfer",
        type=proxy_source,
        action="append",
        default=[],
        metavar="ADDR[/PREFIX]",
        help="an address or network allowed zone transfers (AXFR, and IXFR answered as "
        "AXFR) over TCP; repeatable (default: none; everyone else gets REFUSED)",
    )
    parser.add_argument(
        "--notify",
        type=notify_target,
        action="append",
        default=[],
        metavar="ADDR[:PORT]",
        help="a secondary sent NOTIFY (RFC 1996) over UDP when a reload raises a zone's "
        "serial; repeatable (default port 53)",
    )
    parser.add_argument(
        "--nsid",
        type=_nsid,
        metavar="TEXT",
        help="the server's identifier, given to queries that ask for it (NSID, RFC 5001; "
        "dig +nsid); default: none",
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
