"""``--metrics HOST:PORT`` on ``framing echo`` and ``framing dns``, alone and with workers.

Each test runs the command as a subprocess (the :class:`Launcher` of
test_cli.py), makes a known load, then scrapes until the counters (exported
every 0.5 s) show it, within a bound, and checks them and ``promtool check
metrics``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from protocols.cli import main
from tests.conftest import require_tool
from tests.framing.test_metrics import sample, scrape
from tests.protocols.test_cli import TIMEOUT, Launcher, Running, launcher  # noqa: F401
from tests.protocols.test_workers import connection_pids, listening


def metrics_url(server: Running, *, stderr: bool = False) -> str:
    deadline = time.monotonic() + TIMEOUT
    while True:  # bounded
        found = re.search(
            r"metrics (?:of all workers )?on (http://\S+)\n", server.err if stderr else server.out
        )
        if found:
            return found.group(1)
        if server.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no metrics line\nstdout: {server.out}\nstderr: {server.err}")
        time.sleep(0.02)


def scrape_until(url: str, done: Callable[[str], bool]) -> str:
    """Scrape until ``done(text)``, or fail after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        text = scrape(url)
        if done(text):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"the counters never showed the load:\n{text}")
        time.sleep(0.1)


def promtool_accepts(text: str) -> None:
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:  # bounded by the socket's timeout
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def closed_unserved(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_bad_metrics_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["echo", "--metrics", "9100"])
    assert info.value.code == 2
    assert "--metrics: not HOST:PORT" in capsys.readouterr().err


def test_echo_metrics_count_a_known_load(launcher: Launcher) -> None:  # noqa: F811
    """N messages, M framing errors, K refused connections: the scrape says N, M, K."""
    n, m, k = 25, 3, 4
    server = launcher.start(
        "echo", "--port", "0", "--framing", "length:2", "--max-size", "1000",
        "--max-connections-per-peer", "1", "--metrics", "127.0.0.1:0",
    )  # fmt: skip
    url = metrics_url(server)
    port = server.port()
    with socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.3", 0)) as sock:
        wire = b"".join(frame(b"message %d" % i) for i in range(n))
        sock.sendall(wire)
        assert recv_exactly(sock, len(wire)) == wire
    for i in range(m):  # each from its own address: the per-peer limit stays out of it
        source = (f"127.0.0.{10 + i}", 0)
        with socket.create_connection(("127.0.0.1", port), TIMEOUT, source) as sock:
            sock.sendall(b"\x07\xd0")  # announces 2000 bytes, over --max-size 1000
            assert closed_unserved(sock)

    def counted(text: str) -> bool:
        return sample(text, "framing_peer_errors_total", server="echo", kind="FrameTooLarge") == m

    text = scrape_until(url, counted)
    assert sample(text, "framing_messages_received_total", server="echo") == n
    assert sample(text, "framing_messages_sent_total", server="echo") == n
    assert sample(text, "framing_connections_accepted_total", server="echo") == 1 + m
    assert sample(text, "framing_connections_refused_total", server="echo") == 0
    promtool_accepts(text)

    # K refused: 127.0.0.2's one connection is busy (the server is blocked
    # writing echoes this client does not read), so its newcomers cannot shed it.
    busy = socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0))
    try:
        busy.settimeout(2.0)
        with pytest.raises(TimeoutError):  # every buffer on the way is full
            busy.sendall(frame(b"x" * 1000) * 64 * 1024)
        for _ in range(k):
            with socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0)) as sock:
                assert closed_unserved(sock)

        def refused(text: str) -> bool:
            return sample(text, "framing_connections_refused_total", server="echo") == k

        text = scrape_until(url, refused)
    finally:
        busy.close()
    assert sample(text, "framing_connections_shed_total", server="echo") == 0
    assert sample(text, "framing_connections_accepted_total", server="echo") == 1 + m + 1
    assert sample(text, "framing_handler_errors_total", server="echo") == 0
    promtool_accepts(text)
    assert server.stop() == 0


def test_echo_workers_metrics_are_the_sum_of_both(launcher: Launcher) -> None:  # noqa: F811
    server = launcher.start(
        "echo", "--port", "0", "--workers", "2", "--framing", "length:2",
        "--metrics", "127.0.0.1:0",
    )  # fmt: skip
    url = metrics_url(server, stderr=True)
    pids = listening(server)
    port = server.port()
    connections, per_connection = 40, 5
    locals_ = []
    for c in range(connections):
        with socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock:
            locals_.append(sock.getsockname()[1])
            wire = b"".join(frame(b"%d.%d" % (c, i)) for i in range(per_connection))
            sock.sendall(wire)
            assert recv_exactly(sock, len(wire)) == wire
    assert connection_pids(server, locals_) == set(pids.values()), server.out + server.err

    def counted(text: str) -> bool:
        total = sample(text, "framing_messages_received_total", server="echo")
        return total == connections * per_connection

    text = scrape_until(url, counted)
    assert sample(text, "framing_connections_accepted_total", server="echo") == connections
    assert sample(text, "framing_messages_sent_total", server="echo") == (
        connections * per_connection
    )
    promtool_accepts(text)
    assert server.stop() == 0


def test_dns_metrics_count_queries_by_transport_type_and_rcode(
    launcher: Launcher,  # noqa: F811
) -> None:
    server = launcher.start("dns", "--port", "0", "--metrics", "127.0.0.1:0")
    url = metrics_url(server)
    port = int(server.wait_for(r"serving \S+ on \S+ port (\d+)").group(1))
    for _ in range(5):
        reply = dns.query.udp(dns.message.make_query("www.framing.test", "A"), "127.0.0.1", 5, port)
        assert reply.rcode() == dns.rcode.NOERROR
    for _ in range(3):
        query = dns.message.make_query("www.framing.test", "AAAA")
        assert dns.query.tcp(query, "127.0.0.1", 5, port).rcode() == dns.rcode.NOERROR
    for _ in range(2):
        query = dns.message.make_query("nowhere.framing.test", "A")
        assert dns.query.udp(query, "127.0.0.1", 5, port).rcode() == dns.rcode.NXDOMAIN
    big = dns.message.make_query("big.framing.test", "TXT", use_edns=False)
    assert dns.query.udp(big, "127.0.0.1", 5, port, ignore_trailing=True).flags & dns.flags.TC

    def counted(text: str) -> bool:
        return sample(text, "framing_dns_truncated_total", transport="udp") == 1

    text = scrape_until(url, counted)
    queries = "framing_dns_queries_total"
    assert sample(text, queries, transport="udp", qtype="A", rcode="NOERROR") == 5
    assert sample(text, queries, transport="tcp", qtype="AAAA", rcode="NOERROR") == 3
    assert sample(text, queries, transport="udp", qtype="A", rcode="NXDOMAIN") == 2
    assert sample(text, queries, transport="udp", qtype="TXT", rcode="NOERROR") == 1
    assert sample(text, "framing_dns_truncated_total", transport="tcp") == 0
    assert sample(text, "framing_messages_received_total", server="dns") == 3
    assert sample(text, "framing_connections_accepted_total", server="dns") == 3
    promtool_accepts(text)
    assert server.stop() == 0
