"""Servers under attack: one process per (server, event loop), shared by a module's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.attacks.harness import Server, dns_server, echo_server

LOOPS = ["asyncio", "trio"]


def _run(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=LOOPS)
def loop(request: pytest.FixtureRequest) -> str:
    """The server's ``--loop``: every attack runs against both backends."""
    return str(request.param)


@pytest.fixture(scope="module")
def echo_raw(loop: str) -> Iterator[Server]:
    """``framing echo --framing raw``."""
    yield from _run(echo_server("raw", loop))


@pytest.fixture(scope="module")
def echo_length(loop: str) -> Iterator[Server]:
    """``framing echo --framing length:2 --max-size 1024``: a header can announce too much."""
    yield from _run(echo_server("length:2", loop, "--max-size", "1024"))


@pytest.fixture(scope="module")
def echo_line(loop: str) -> Iterator[Server]:
    """``framing echo --framing line`` (64 KiB lines by default)."""
    yield from _run(echo_server("line", loop))


@pytest.fixture(scope="module")
def dns(loop: str) -> Iterator[Server]:
    """``framing dns`` on its embedded zone, UDP and TCP."""
    yield from _run(dns_server(loop))


_GENERIC: dict[str, Callable[[str], Server]] = {
    "echo_raw": lambda loop: echo_server("raw", loop),
    "echo_length": lambda loop: echo_server("length:2", loop, "--max-size", "1024"),
    "dns": dns_server,
}


@pytest.fixture(scope="module", params=[f"{name}-{loop}" for name in _GENERIC for loop in LOOPS])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Each server the generic attacks run against, on each loop."""
    name, loop = str(request.param).split("-")
    yield from _run(_GENERIC[name](loop))
