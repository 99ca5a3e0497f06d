"""dnsdist in front of two ``framing dns`` backends, with ``useProxyProtocol=true``.

dnsdist puts a PROXY v2 header before each UDP datagram and at the start of
each TCP connection it opens to a backend; the backends trust 127.0.0.1 (where
dnsdist connects from) and read it. dnsdist and both backends are started
with their config in a temporary directory and stopped by pid.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import require_tool
from tests.framing.test_metrics import sample, scrape
from tests.protocols.test_cli import TIMEOUT, Launcher, Running, launcher  # noqa: F401
from tests.protocols.test_metrics import metrics_url

PER_PEER = 2  # --max-connections-per-peer on each backend

#: The configuration the README shows (tests/test_readme.py checks it).
CONFIG = """\
setLocal("127.0.0.1:{port}")
setACL({{"127.0.0.0/8"}})
setSecurityPollSuffix("")
newServer({{address="127.0.0.1:{first}", useProxyProtocol=true}})
newServer({{address="127.0.0.1:{second}", useProxyProtocol=true}})
setServerPolicy(roundrobin)
"""


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(20):  # bounded
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for UDP and TCP")


def start_backend(launch: Launcher) -> tuple[Running, int, str]:
    server = launch.start(
        "dns", "--port", "0", "--proxy-protocol", "127.0.0.1",
        "--max-connections-per-peer", str(PER_PEER), "--metrics", "127.0.0.1:0",
    )  # fmt: skip
    url = metrics_url(server)
    port = int(server.wait_for(r"serving \S+ on \S+ port (\d+)").group(1))
    return server, port, url


def ask(port: int, *, tcp: bool, source: str = "127.0.0.1", timeout: float = 1.0) -> int:
    query = dns.message.make_query("www.framing.test", "A")
    if tcp:
        reply = dns.query.tcp(query, "127.0.0.1", timeout, port, source)
    else:
        reply = dns.query.udp(query, "127.0.0.1", timeout, port, source)
    return reply.rcode()


@pytest.fixture
def dnsdist(launcher: Launcher, tmp_path: Path) -> Iterator[tuple[int, list[str]]]:  # noqa: F811
    """dnsdist's port, and the backends' metrics URLs."""
    binary = require_tool("dnsdist")
    (_, first, first_url), (_, second, second_url) = (
        start_backend(launcher),
        start_backend(launcher),
    )
    port = free_port()
    config = tmp_path / "dnsdist.conf"
    config.write_text(CONFIG.format(port=port, first=first, second=second))
    log = (tmp_path / "dnsdist.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--supervised", "--disable-syslog", "-C", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # bounded: until both backends are up and answer through it
            up = (tmp_path / "dnsdist.log").read_text(errors="replace").count("as 'up'")
            try:
                if up >= 2 and ask(port, tcp=False, timeout=0.5) == dns.rcode.NOERROR:
                    break
            except (OSError, dns.exception.Timeout):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dnsdist did not start: {(tmp_path / 'dnsdist.log').read_text()}")
            time.sleep(0.1)
        yield port, [first_url, second_url]
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        log.close()


def total(urls: list[str], name: str, **labels: str) -> float:
    return sum(sample(scrape(url), name, **labels) or 0.0 for url in urls)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dnsperf_through_dnsdist_loses_nothing(
    dnsdist: tuple[int, list[str]], tmp_path: Path, transport: str
) -> None:
    dnsperf = require_tool("dnsperf")
    port, urls = dnsdist
    queries = tmp_path / "queries"
    queries.write_text("www.framing.test A\nframing.test SOA\nalias.framing.test A\n" * 100)
    done = subprocess.run(
        [dnsperf, "-s", "127.0.0.1", "-p", str(port), "-m", transport, "-d", str(queries),
         "-n", "5", "-c", "4", "-Q", "500", "-t", "5"],
        capture_output=True, text=True, timeout=TIMEOUT * 2, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    completed = re.search(r"Queries completed:\s+(\d+)", done.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    assert completed, done.stdout
    assert lost, done.stdout
    assert (int(completed.group(1)), int(lost.group(1))) == (1500, 0), done.stdout
    # Both backends answered, every query read after its PROXY header (a
    # header left unread would have made the query a FORMERR, or dropped it).
    name = "framing_dns_queries_total"
    deadline = time.monotonic() + TIMEOUT
    while True:  # bounded: until the counters (exported every 0.5 s) show them all
        each = [
            sum(
                sample(scrape(url), name, transport=transport, qtype=qtype, rcode="NOERROR") or 0
                for qtype in ("A", "SOA")
            )
            for url in urls
        ]
        if sum(each) >= 1500 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(each) >= 1500, each  # (plus dnsdist's own checks and the fixture's probe)
    assert all(count > 0 for count in each), each
    assert total(urls, name, transport=transport, qtype="A", rcode="FORMERR") == 0


def test_per_peer_limit_counts_the_client_not_dnsdist(dnsdist: tuple[int, list[str]]) -> None:
    port, urls = dnsdist
    shed = "framing_connections_shed_total"

    def open_connections(sources: list[str]) -> list[socket.socket]:
        socks = []
        for source in sources:
            sock = socket.create_connection(("127.0.0.1", port), TIMEOUT, (source, 0))
            socks.append(sock)
            query = dns.message.make_query("www.framing.test", "A")
            dns.query.send_tcp(sock, query)
            reply, _ = dns.query.receive_tcp(sock, time.time() + TIMEOUT)
            assert reply.rcode() == dns.rcode.NOERROR
        return socks

    def wait_open(count: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while total(urls, "framing_connections_open", server="dns") != count:  # bounded
            assert time.monotonic() < deadline, "the backends never saw the connections"
            time.sleep(0.1)

    # Six clients, one connection each: dnsdist opens six backend connections,
    # each starting with a PROXY header naming its client: under the per-peer
    # limit of 2 for each client, though all come from dnsdist's 127.0.0.1.
    many = open_connections([f"127.0.0.{n}" for n in range(3, 9)])
    try:
        wait_open(6)
        assert total(urls, shed, server="dns") == 0
    finally:
        for sock in many:
            sock.close()
    wait_open(0)
    # One client, six connections: over its limit on the backends, which shed
    # its oldest idle connections there (at least 6 - 2 * 2 = 2 in all).
    mine = open_connections(["127.0.0.2"] * 6)
    try:
        deadline = time.monotonic() + TIMEOUT
        while total(urls, shed, server="dns") < 2:  # bounded
            assert time.monotonic() < deadline, "no connection of the client was shed"
            time.sleep(0.1)
    finally:
        for sock in mine:
            sock.close()
