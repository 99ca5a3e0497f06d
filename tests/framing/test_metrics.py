"""framing/metrics.py: ServerStats in Prometheus' text format, scraped over HTTP.

prometheus_client keeps one registry per process, so each test labels its
server with a name of its own and reads only its own samples.
"""

from __future__ import annotations

import itertools
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest

from framing.length import LengthPrefixed
from framing.metrics import (
    MetricsUnavailable,
    ServerStatsExporter,
    export_server_stats,
    labelled_counter,
    prometheus_client,
    serve_metrics,
)
from framing.server import ServerInfo, ServerStats, serve
from framing.stream import FramedStream, connect
from tests.conftest import require_tool
from tests.framing.transports import until

pytestmark = pytest.mark.anyio

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a scrape, or ``None`` when it is not there."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, _, value = line.rpartition(" ")
        metric, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == want:
            return float(value)
    return None


@asynccontextmanager
async def running(handler: Any, **options: Any) -> AsyncIterator[ServerInfo]:
    async with anyio.create_task_group() as tg:
        info = await tg.start(
            lambda task_status: serve(
                handler, LengthPrefixed(2, max_size=10), task_status=task_status, **options
            )
        )
        yield info
        tg.cancel_scope.cancel()


async def test_known_load_gives_exact_counters_and_promtool_accepts_the_scrape() -> None:
    """N messages, M framing errors and K refused connections read back as N, M and K."""
    promtool = require_tool("promtool")
    n, m, k = 7, 3, 4
    release = anyio.Event()

    async def handler(stream: FramedStream[bytes]) -> None:
        async for message in stream:
            if message == b"hold":
                await release.wait()  # busy: no receive waiting, so not sheddable
            await stream.send(message)

    name = unique("load")
    endpoint = serve_metrics("127.0.0.1", 0)
    try:
        with anyio.fail_after(30):
            async with running(handler, max_connections=1) as info, anyio.create_task_group() as tg:
                tg.start_soon(partial(export_server_stats, info, server=name, interval=0.05))
                port = info.port
                async with await connect("127.0.0.1", port, LengthPrefixed(2)) as client:
                    for i in range(n):
                        await client.send(b"m%d" % i)
                        assert await client.receive() == b"m%d" % i
                for _ in range(m):  # each announces 255 bytes, over max_size=10
                    await until(lambda: info.stats.connections_open == 0)
                    async with await anyio.connect_tcp("127.0.0.1", port) as raw:
                        await raw.send(b"\x00\xff")
                        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                            await raw.receive()
                await until(lambda: info.stats.connections_open == 0)
                holder = await connect("127.0.0.1", port, LengthPrefixed(2))
                await holder.send(b"hold")
                await until(lambda: info.stats.messages_in == n + 1)
                for _ in range(k):
                    async with await anyio.connect_tcp("127.0.0.1", port) as raw:
                        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                            await raw.receive()
                release.set()
                assert await holder.receive() == b"hold"
                await holder.aclose()

                text = ""

                def done() -> bool:
                    return sample(text, "framing_connections_refused_total", server=name) == k

                for _ in range(300):  # bounded: until the export has caught up
                    text = await anyio.to_thread.run_sync(scrape, endpoint.url)
                    if done():
                        break
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
    finally:
        endpoint.close()
    assert sample(text, "framing_messages_received_total", server=name) == n + 1
    assert sample(text, "framing_messages_sent_total", server=name) == n + 1
    assert sample(text, "framing_peer_errors_total", server=name, kind="FrameTooLarge") == m
    assert sample(text, "framing_connections_refused_total", server=name) == k
    assert sample(text, "framing_connections_accepted_total", server=name) == 1 + m + 1
    assert sample(text, "framing_connections_shed_total", server=name) == 0
    assert sample(text, "framing_handler_errors_total", server=name) == 0
    assert (
        sample(text, "framing_received_bytes_total", server=name)
        == sum(2 + len(b"m%d" % i) for i in range(n)) + 2 * m + 6
    )
    checked = await anyio.run_process(
        [promtool, "check", "metrics"], input=text.encode(), check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_exporter_adds_growth_and_sets_gauges() -> None:
    name = unique("growth")
    stats = [ServerStats(messages_in=5, connections_open=2, errors={"IdleTimeout": 1})]
    exporter = ServerStatsExporter(lambda: stats[-1], server=name)
    exporter()
    stats.append(ServerStats(messages_in=8, connections_open=1, errors={"IdleTimeout": 3}))
    exporter()
    exporter()  # no growth: nothing added
    text = prometheus_client().generate_latest().decode()
    assert sample(text, "framing_messages_received_total", server=name) == 8
    assert sample(text, "framing_connections_open", server=name) == 1
    assert sample(text, "framing_peer_errors_total", server=name, kind="IdleTimeout") == 3
    assert sample(text, "framing_timeouts_total", server=name) == 3
    assert sample(text, "framing_connections_refused_total", server=name) == 0


async def test_labelled_counter_adds_what_each_total_gained() -> None:
    name = unique("framing_test_things")
    update = labelled_counter(name, "Things.", ("kind",))
    update({("a",): 2})
    update({("a",): 5, ("b",): 1})
    text = prometheus_client().generate_latest().decode()
    assert sample(text, f"{name}_total", kind="a") == 5
    assert sample(text, f"{name}_total", kind="b") == 1


def test_without_prometheus_client_the_error_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import now fails
    with pytest.raises(MetricsUnavailable, match=r"pip install 'framing\[metrics\]'"):
        serve_metrics("127.0.0.1", 0)
    with pytest.raises(ImportError):  # a MetricsUnavailable is an ImportError
        prometheus_client()
