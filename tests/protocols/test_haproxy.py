"""HAProxy in TCP mode, sending PROXY headers, in front of two ``framing echo`` backends.

Each run (v2 with ``send-proxy-v2``, v1 with ``send-proxy``) makes the issue's
1,000 connections (``CONNECTIONS``), 16 at a time, from eight source addresses
in 127.0.0.0/8; on this 2-core machine a run takes about 2 s. One backend runs
on asyncio, the other on trio. HAProxy and both backends are started with
their configs in a temporary directory and stopped by pid.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.protocols.test_cli import TIMEOUT, Launcher, Running, launcher  # noqa: F401

CONNECTIONS = 1000
CLIENTS = [f"127.0.0.{n}" for n in range(2, 10)]  # eight "different clients"
PROBE = "127.0.0.10"  # the address that checks whether HAProxy listens yet
PER_PEER = 4  # --max-connections-per-peer on each backend

CONFIG = """\
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend clients
    bind 127.0.0.1:{port}
    default_backend echoes

backend echoes
    balance roundrobin
    server echo1 127.0.0.1:{first} {send_proxy}
    server echo2 127.0.0.1:{second} {send_proxy}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def is_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0)
    )


def echo_once(port: int, source: str, seed: int) -> tuple[str, bool]:
    """One connection from ``source``: a few random messages, each echoed byte-exact."""
    rng = random.Random(seed)
    messages = [rng.randbytes(rng.randint(0, 2000)) for _ in range(rng.randint(1, 4))]
    wire = b"".join(frame(m) for m in messages)
    with connect(port, source) as sock:
        sock.sendall(wire)
        echoed = recv_exactly(sock, len(wire))
        sock.shutdown(socket.SHUT_WR)
        return source, echoed == wire and is_closed(sock)


@pytest.fixture
def haproxy_for(tmp_path: Path) -> Iterator[Callable[[int, int, str], int]]:
    """Start HAProxy in front of two backends; stop it by pid at the end."""
    binary = require_tool("haproxy")
    started: list[subprocess.Popen[bytes]] = []

    def start(first: int, second: int, send_proxy: str) -> int:
        port = free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            CONFIG.format(port=port, first=first, second=second, send_proxy=send_proxy)
        )
        log = (tmp_path / "haproxy.log").open("wb")
        proc = subprocess.Popen(
            [binary, "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT
        )
        started.append(proc)
        deadline = time.monotonic() + TIMEOUT
        while True:  # bounded: until HAProxy listens, or the deadline
            try:
                socket.create_connection(("127.0.0.1", port), 1, (PROBE, 0)).close()
                return port
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"haproxy did not start: {(tmp_path / 'haproxy.log').read_text()}")
                time.sleep(0.05)

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TIMEOUT)


def backends(launch: Launcher) -> list[tuple[Running, int]]:
    options = ["--framing", "length:2", "--proxy-protocol", "127.0.0.1"]
    options += ["--max-connections-per-peer", str(PER_PEER)]
    return [
        launch.echo(*options, "--loop", "asyncio"),
        launch.echo(*options, "--loop", "trio"),
    ]


@pytest.mark.parametrize("send_proxy", ["send-proxy-v2", "send-proxy"])
def test_haproxy_relays_clients_and_backends_see_their_addresses(
    launcher: Launcher,  # noqa: F811
    haproxy_for: Callable[[int, int, str], int],
    send_proxy: str,
) -> None:
    (first, first_port), (second, second_port) = backends(launcher)
    port = haproxy_for(first_port, second_port, send_proxy)

    # CONNECTIONS connections, 16 at a time: two per client address, so that no
    # client ever has more than PER_PEER open on a backend, while HAProxy (one
    # address) has up to 16: a limit counted against HAProxy would shed them.
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(lambda n: echo_once(port, CLIENTS[n % len(CLIENTS)], n), range(CONNECTIONS))
        )
    elapsed = time.monotonic() - started
    assert [ok for _, ok in results] == [True] * CONNECTIONS, f"{elapsed:.1f} s"

    closed = r"127\.0\.0\.[2-9]:\d+ closed\n"  # the clients', not the probe's
    deadline = time.monotonic() + TIMEOUT
    while True:  # bounded: until both backends logged every close, or the deadline
        logs = first.out + second.out
        if len(re.findall(closed, logs)) >= CONNECTIONS or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(re.findall(closed, logs)) == CONNECTIONS
    seen = set(re.findall(r"new connection (127\.0\.0\.\d+):\d+", logs))
    # HAProxy connects from 127.0.0.1: the backends never name it.
    assert seen == {*CLIENTS, PROBE}, "the backends saw HAProxy, not the clients"
    assert "shed" not in logs
    assert "refused" not in logs
    assert "ProxyHeaderError" not in logs

    # The per-peer limit applies to the client: PER_PEER + 2 idle connections
    # from one client, round robin over both backends, shed one on each; another
    # client's connection, opened first, is untouched.
    other = connect(port, CLIENTS[1])
    try:
        other.sendall(frame(b"other"))
        assert recv_exactly(other, 7) == frame(b"other")
        mine = []
        for n in range(2 * PER_PEER + 2):
            sock = connect(port, CLIENTS[0])
            mine.append(sock)
            sock.sendall(frame(b"%d" % n))
            assert recv_exactly(sock, 3) == frame(b"%d" % n)
        for server in (first, second):
            server.wait_for(
                rf"shed {re.escape(CLIENTS[0])}:\d+ \(via 127\.0\.0\.1:\d+\) .*"
                rf"{PER_PEER} connections open from {re.escape(CLIENTS[0])}, the limit"
            )
        assert [is_closed(sock) for sock in mine[:2]] == [True, True]
        other.sendall(frame(b"still"))
        assert recv_exactly(other, 7) == frame(b"still")
    finally:
        other.close()
        for sock in mine:
            sock.close()


def test_forged_header_straight_to_a_backend_is_refused(launcher: Launcher) -> None:  # noqa: F811
    """A client that is not the trusted proxy cannot claim another address: its header
    is refused, logged, and its connection closed; the backend serves on."""
    server, port = launcher.echo("--framing", "length:2", "--proxy-protocol", "127.0.0.1")
    forged = b"PROXY TCP4 6.6.6.6 127.0.0.1 666 53\r\n"
    with connect(port, CLIENTS[3]) as sock:
        sock.sendall(forged + frame(b"hi"))
        assert is_closed(sock)
        client = f"{CLIENTS[3]}:{sock.getsockname()[1]}"
    server.wait_for(
        rf"{re.escape(client)} closing: PROXY protocol: a version 1 header "
        r"from a peer that is not a trusted proxy\n"
    )
    assert not re.search(r"6\.6\.6\.6", server.out)
    with connect(port, CLIENTS[3]) as sock:
        sock.sendall(frame(b"PROXY inside a frame is data"))
        assert recv_exactly(sock, 30) == frame(b"PROXY inside a frame is data")
