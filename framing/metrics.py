"""Prometheus metrics for a server: :func:`export_server_stats` and :func:`serve_metrics`.

::

    serve(...) --ServerInfo.stats--> export_server_stats  every `interval` s, the
        (one event loop)             (a task beside serve) counters' growth is added
                                          |               to prometheus_client's
                                          v               Counters and Gauges
    GET /metrics <-- serve_metrics (a thread) <-- the default registry, or, for a
                                                  process group, the files of
                                                  PROMETHEUS_MULTIPROC_DIR

The metrics, each labelled with ``server`` (the name given to
:func:`export_server_stats`, such as ``"echo"``)::

    framing_connections_open               gauge    ServerStats.connections_open
    framing_connections_accepted_total     counter  .connections_accepted
    framing_connections_refused_total      counter  .connections_refused
    framing_connections_shed_total         counter  .connections_shed
    framing_messages_received_total        counter  .messages_in
    framing_messages_sent_total            counter  .messages_out
    framing_received_bytes_total           counter  .bytes_in
    framing_sent_bytes_total               counter  .bytes_out
    framing_messages_dropped_total         counter  .messages_dropped
    framing_peer_errors_total{kind}        counter  .errors: FrameTooLarge, IdleTimeout...
    framing_timeouts_total                 counter  the kinds above that are timeouts
    framing_handler_errors_total           counter  .handler_errors
    framing_peak_buffered_bytes            gauge    .peak_buffered

``prometheus_client`` is an optional dependency (``pip install
'framing[metrics]'``), imported only when a function here is called; without it
they raise :class:`MetricsUnavailable`, which says so.

With the workers of :func:`framing.workers.run_workers`, one scrape shows the
whole group through prometheus_client's multiprocess mode: the supervisor makes
a directory, names it to the workers in ``PROMETHEUS_MULTIPROC_DIR`` (before
they import prometheus_client: its values then live in files there), serves
the endpoint itself with :func:`serve_metrics` ``(multiprocess_dir=...)``, which
sums the files, and calls :func:`mark_process_dead` for each worker that exits.
Counters keep a dead worker's counts, so totals survive restarts; the
connections open count only live workers; the peak is the largest of any.

Counters are brought up to date every ``interval`` seconds (0.5 by default) and
once more when the export stops, so a scrape can be that much behind.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Final, NoReturn

import anyio

from framing.server import ServerInfo, ServerStats

__all__ = [
    "DEFAULT_INTERVAL",
    "MetricsServer",
    "MetricsUnavailable",
    "ServerStatsExporter",
    "export_server_stats",
    "labelled_counter",
    "mark_process_dead",
    "prometheus_client",
    "refresh_metrics",
    "serve_metrics",
]

#: Seconds between two updates of the counters: a scrape every 15 s (Prometheus'
#: usual) sees them at most this late, at a cost of a few microseconds each time.
DEFAULT_INTERVAL: Final = 0.5

_INSTALL = "pip install 'framing[metrics]'"


class MetricsUnavailable(ImportError):
    """``prometheus_client`` is not installed; the message says how to install it."""


def prometheus_client() -> ModuleType:
    """Import and return ``prometheus_client``.

    Raises:
        MetricsUnavailable: it is not installed.
    """
    try:
        return importlib.import_module("prometheus_client")
    except ImportError as exc:
        raise MetricsUnavailable(
            f"metrics need prometheus_client, which is not installed ({_INSTALL})"
        ) from exc


class _CounterSync:
    """Adds to a labelled prometheus Counter what a growing total gained since last time."""

    def __init__(self, counter: Any, labels: tuple[str, ...]) -> None:
        self.counter = counter
        self.labels = labels
        self.last: dict[tuple[str, ...], float] = {}

    def update(self, totals: Mapping[tuple[str, ...], float]) -> None:
        for key, value in totals.items():
            # labels() even at 0, so that a counter that never grew is shown as 0.
            child = self.counter.labels(*self.labels, *key)
            gained = value - self.last.get(key, 0)
            if gained > 0:
                child.inc(gained)
                self.last[key] = value


# One set of metric objects per process: prometheus_client refuses a name twice.
_created: dict[str, Any] = {}
_created_lock = threading.Lock()


def _metric(kind: str, name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
    """The process's metric ``name``, created on first use."""
    with _created_lock:
        metric = _created.get(name)
        if metric is None:
            client = prometheus_client()
            if kind == "counter":
                metric = client.Counter(name, documentation, labelnames)
            elif kind == "gauge_livesum":
                metric = client.Gauge(name, documentation, labelnames, multiprocess_mode="livesum")
            else:
                metric = client.Gauge(name, documentation, labelnames, multiprocess_mode="max")
            _created[name] = metric
        return metric


def labelled_counter(
    name: str, documentation: str, labelnames: tuple[str, ...], *, fixed: tuple[str, ...] = ()
) -> Callable[[Mapping[tuple[str, ...], float]], None]:
    """An updater for the counter ``name``: call it with totals by label values.

    The counter gains, for each key, what its total grew since the last call.
    For applications that keep their own counts (the DNS server's queries by
    type and rcode)::

        update = labelled_counter("dns_queries", "Queries.", ("qtype",))
        update({("A",): 10, ("AAAA",): 2})

    Args:
        name: the metric's name, without ``_total``.
        documentation: its help text.
        labelnames: the names of its labels: ``fixed``'s first, then the keys'.
        fixed: values of the first labels, the same for every key.

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
    """
    sync = _CounterSync(_metric("counter", name, documentation, labelnames), fixed)
    return sync.update


class ServerStatsExporter:
    """Copies a server's :class:`~framing.ServerStats` into prometheus_client's metrics.

    Each call reads ``source()`` and adds to every counter what it grew since
    the last call; the gauges are set. See the module docstring for the names.

    Args:
        source: returns a fresh snapshot (``lambda: info.stats``).
        server: the ``server`` label's value.

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
    """

    _COUNTERS: Final = (
        ("connections_accepted", "framing_connections_accepted", "Connections accepted."),
        (
            "connections_refused",
            "framing_connections_refused",
            "Connections closed at once, unserved (every one busy at a limit, or no descriptor).",
        ),
        (
            "connections_shed",
            "framing_connections_shed",
            "Connections closed under load to serve a newcomer.",
        ),
        ("messages_in", "framing_messages_received", "Messages received."),
        ("messages_out", "framing_messages_sent", "Messages sent."),
        ("bytes_in", "framing_received_bytes", "Bytes read."),
        ("bytes_out", "framing_sent_bytes", "Bytes written."),
        (
            "messages_dropped",
            "framing_messages_dropped",
            "Responses dropped because the peer had gone.",
        ),
        (
            "handler_errors",
            "framing_handler_errors",
            "Connections whose handler raised (a bug, logged with its traceback).",
        ),
    )

    def __init__(self, source: Callable[[], ServerStats], *, server: str) -> None:
        self.source = source
        labels = ("server",)
        self.counters = [
            (field, _CounterSync(_metric("counter", name, doc, labels), (server,)))
            for field, name, doc in self._COUNTERS
        ]
        self.errors = _CounterSync(
            _metric(
                "counter",
                "framing_peer_errors",
                "Connections ended by the peer's fault, by kind (FrameTooLarge, IdleTimeout...).",
                ("server", "kind"),
            ),
            (server,),
        )
        self.timeouts = _CounterSync(
            _metric(
                "counter",
                "framing_timeouts",
                "Connections closed by a timeout (idle, message, handshake).",
                labels,
            ),
            (server,),
        )
        self.open = _metric(
            "gauge_livesum", "framing_connections_open", "Connections served now.", labels
        ).labels(server)
        self.peak = _metric(
            "gauge_max",
            "framing_peak_buffered_bytes",
            "The most bytes held by all framers together.",
            labels,
        ).labels(server)

    def __call__(self) -> None:
        """Bring the metrics up to date with a new snapshot."""
        stats = self.source()
        for field, sync in self.counters:
            sync.update({(): getattr(stats, field)})
        self.errors.update({(kind,): count for kind, count in stats.errors.items()})
        timeouts = sum(count for kind, count in stats.errors.items() if kind.endswith("Timeout"))
        self.timeouts.update({(): timeouts})
        self.open.set(stats.connections_open)
        self.peak.set(stats.peak_buffered)


async def refresh_metrics(
    *updates: Callable[[], None], interval: float = DEFAULT_INTERVAL
) -> NoReturn:
    """Call every update each ``interval`` seconds until cancelled, and once more then."""
    try:
        while True:
            for update in updates:
                update()
            await anyio.sleep(interval)
    finally:
        for update in updates:  # the counts of the last moments, e.g. a graceful stop's
            update()


async def export_server_stats(
    info: ServerInfo, *, server: str, interval: float = DEFAULT_INTERVAL
) -> NoReturn:
    """Export a running :func:`~framing.serve`'s counters until cancelled.

    Run it beside the server; serve the metrics with :func:`serve_metrics`::

        async with anyio.create_task_group() as tg:
            info = await tg.start(serve, handler, LengthPrefixed(2))
            tg.start_soon(partial(export_server_stats, info, server="myapp"))
            endpoint = serve_metrics("127.0.0.1", 9100)

    Args:
        info: what ``tg.start(serve, ...)`` returned.
        server: the ``server`` label's value.
        interval: seconds between updates.

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
    """
    await refresh_metrics(ServerStatsExporter(lambda: info.stats, server=server), interval=interval)


class MetricsServer:
    """A running metrics endpoint (:func:`serve_metrics`).

    Attributes:
        host: the address it listens on.
        port: its port (the one chosen, when 0 was asked).
    """

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        address = httpd.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop listening and wait for the thread."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def serve_metrics(host: str, port: int, *, multiprocess_dir: str | None = None) -> MetricsServer:
    """Serve ``GET /metrics`` (the Prometheus text format) from a thread of this process.

    Args:
        host: the address to listen on.
        port: the port; 0 picks a free one (:attr:`MetricsServer.port`).
        multiprocess_dir: serve the sum of the processes writing to this
            ``PROMETHEUS_MULTIPROC_DIR`` (a supervisor's workers) instead of this
            process's own metrics.

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
        OSError: the address cannot be listened on.
    """
    client = prometheus_client()
    if multiprocess_dir is None:
        registry = client.REGISTRY
    else:
        registry = client.CollectorRegistry()
        importlib.import_module("prometheus_client.multiprocess").MultiProcessCollector(
            registry, path=multiprocess_dir
        )
    httpd, thread = client.start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread)


def mark_process_dead(pid: int, multiprocess_dir: str) -> None:
    """Forget a dead worker's live gauges (its counters' totals are kept).

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
    """
    prometheus_client()
    module = importlib.import_module("prometheus_client.multiprocess")
    with contextlib.suppress(OSError):
        module.mark_process_dead(pid, multiprocess_dir)
