"""The connection load generator: many idle connections, or many short ones.

    python -m benchmarks.connload idle --port PORT --server-pid PID --count N
    python -m benchmarks.connload churn --port PORT --server-pid PID [--clients 16]

``idle`` opens ``--count`` connections to 127.0.0.1:PORT, ``--window`` at a time,
from ``--sources`` source addresses in 127.0.0.0/8 (so that the ephemeral ports of
one address do not run out). Each connection echoes one 64-byte length:2 message,
which proves the server accepted and served it, then stays open and silent. Then:

- the server's resident memory (``VmRSS``) before and after, per connection;
- the open rate: connections opened and echoed once per second;
- one extra connection echoes ``--rounds`` messages one at a time, under that load
  (p50 and p99 of the round trip);
- every idle connection must still be open (none readable: no EOF, no reset);
- all are closed at once, and the server's CPU time is counted until its open
  descriptors are back to what they were before (teardown).

``churn`` runs ``--clients`` loops for ``--warmup`` + ``--duration`` seconds, each:
connect, echo one message, close; it reports connections per second and the
server's CPU time per connection.

Both raise the soft limit on open descriptors to the hard limit, and print one JSON
object. The server's figures come from ``/proc/PID`` (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import socket
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

#: Linux's IP_BIND_ADDRESS_NO_PORT: bind the source address now, pick the port at
#: connect time (with the destination known), so one address serves many servers.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
SIZE = 64
MESSAGE = SIZE.to_bytes(2, "big") + bytes(range(SIZE))


def raise_nofile() -> int:
    """Raise the soft limit on open descriptors to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """The resident set of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def fds_of(pid: int) -> int:
    """How many descriptors process ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def sources(count: int) -> list[str]:
    """``count`` loopback source addresses: 127.0.1.1, 127.0.1.2, ..."""
    return [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(count)]


def new_socket(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def echo_once(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Send one message and read its echo whole; fail on anything else."""
    await loop.sock_sendall(sock, MESSAGE)
    got = b""
    while len(got) < len(MESSAGE):
        chunk = await loop.sock_recv(sock, len(MESSAGE) - len(got))
        if not chunk:
            raise ConnectionError(f"EOF after {len(got)} of {len(MESSAGE)} bytes echoed")
        got += chunk
    if got != MESSAGE:
        raise ConnectionError("the echo differs from the message sent")


class OneEcho(asyncio.Protocol):
    """Send one message, read its echo, close: ``done`` ends when the connection does."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.got = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.write(MESSAGE)

    def data_received(self, data: bytes) -> None:
        self.got += data
        if len(self.got) >= len(MESSAGE):
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.got != MESSAGE:
            error = ConnectionError(f"echoed {len(self.got)} bytes, not the message sent")
            self.done.set_exception(exc or error)
        else:
            self.done.set_result(None)


async def wait_until(check: Any) -> None:
    # Polling: the condition is another process's state in /proc, nothing to await.
    while not check():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def echo_latencies(
    loop: asyncio.AbstractEventLoop, addr: tuple[str, int], source: str, rounds: int
) -> list[int]:
    """Sorted round trips (ns) of ``rounds`` echoes, one at a time, on a new connection."""
    extra = new_socket(source)
    try:
        await loop.sock_connect(extra, addr)
        latencies: list[int] = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            await echo_once(loop, extra)
            latencies.append(time.perf_counter_ns() - t0)
    finally:
        extra.close()
    return sorted(latencies)


def readable(socks: list[socket.socket]) -> int:
    """How many of ``socks`` have something to read, an EOF or an error."""
    if not socks:
        return 0
    poller = select.epoll(sizehint=len(socks))
    try:
        for sock in socks:
            poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        return len(poller.poll(0, maxevents=len(socks)))
    finally:
        poller.close()


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    pid = args.server_pid
    addr = ("127.0.0.1", args.port)
    srcs = sources(args.sources)
    # One connection first, so that everything the server sets up lazily is set up.
    warm = new_socket(srcs[0])
    await loop.sock_connect(warm, addr)
    await echo_once(loop, warm)
    warm.close()
    await asyncio.sleep(0.3)
    base_fds = fds_of(pid)
    base_rss = rss_kib(pid)
    cpu0 = cpu_of(pid)
    socks: list[socket.socket] = []
    failures: list[str] = []

    async def opener(start: int) -> None:
        for i in range(start, args.count, args.window):
            sock = new_socket(srcs[i % len(srcs)])
            try:
                await loop.sock_connect(sock, addr)
                await echo_once(loop, sock)
            except OSError as exc:
                sock.close()
                failures.append(f"connection {i}: {exc!r}")
                if len(failures) > 10:
                    raise
                continue
            socks.append(sock)

    started = time.perf_counter()
    openers = asyncio.gather(*(opener(k) for k in range(min(args.window, args.count))))
    await asyncio.wait_for(openers, args.timeout)
    open_s = time.perf_counter() - started
    open_cpu = cpu_of(pid) - cpu0
    await asyncio.sleep(args.settle)
    rss = rss_kib(pid)
    held = fds_of(pid) - base_fds

    # One more connection, echoing one message at a time under that load.
    latencies = await echo_latencies(loop, addr, srcs[0], args.rounds)
    # Every idle connection is still open: nothing to read, no EOF, no reset.
    ready = readable(socks)
    if ready:
        failures.append(f"{ready} idle connections were closed or sent data")

    cpu1 = cpu_of(pid)
    t0 = time.perf_counter()
    for sock in socks:
        sock.close()
    async with asyncio.timeout(args.timeout):
        await wait_until(lambda: fds_of(pid) <= base_fds)
    teardown_s = time.perf_counter() - t0
    teardown_cpu = cpu_of(pid) - cpu1
    n = len(socks)
    return {
        "count": n,
        "wanted": args.count,
        "open_s": open_s,
        "open_per_s": n / open_s if open_s else float("nan"),
        "open_cpu_us": open_cpu / n * 1e6 if n else float("nan"),
        "rss_base_kib": base_rss,
        "rss_kib": rss,
        "kib_per_conn": (rss - base_rss) / n if n else float("nan"),
        "server_fds_held": held,
        "p50_us": latencies[len(latencies) // 2] / 1e3,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e3,
        "teardown_s": teardown_s,
        "teardown_cpu_s": teardown_cpu,
        "errors": failures,
    }


async def run_churn(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    pid = args.server_pid
    addr = ("127.0.0.1", args.port)
    srcs = sources(args.sources)
    counted = [0]
    measuring = [False]
    stop = [False]
    failures: list[str] = []

    async def client(k: int) -> None:
        i = k
        while not stop[0]:
            done: asyncio.Future[None] = loop.create_future()
            try:
                await loop.create_connection(
                    partial(OneEcho, done), *addr, local_addr=(srcs[i % len(srcs)], 0)
                )
                await done
            except OSError as exc:
                failures.append(repr(exc))
                if len(failures) > 10:
                    raise
            i += args.clients
            if measuring[0]:
                counted[0] += 1

    tasks = [asyncio.ensure_future(client(k)) for k in range(args.clients)]
    try:
        await asyncio.sleep(args.warmup)
        measuring[0] = True
        cpu0, t0 = cpu_of(pid), time.perf_counter()
        await asyncio.sleep(args.duration)
        measuring[0] = False
        cpu1, t1 = cpu_of(pid), time.perf_counter()
        stop[0] = True
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    finally:
        for task in tasks:
            task.cancel()
    n = counted[0]
    return {
        "clients": args.clients,
        "connections": n,
        "conns_per_s": n / (t1 - t0),
        "server_cpu_us_per_conn": (cpu1 - cpu0) / n * 1e6 if n else float("nan"),
        "server_cpu": (cpu1 - cpu0) / (t1 - t0),
        "errors": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=["idle", "churn"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000, help="idle: connections to open")
    parser.add_argument("--window", type=int, default=64, help="idle: opened at a time")
    parser.add_argument("--rounds", type=int, default=500, help="idle: extra echoes")
    parser.add_argument("--settle", type=float, default=0.5, help="idle: before memory")
    parser.add_argument("--clients", type=int, default=16, help="churn: concurrent loops")
    parser.add_argument("--warmup", type=float, default=0.5, help="churn")
    parser.add_argument("--duration", type=float, default=3.0, help="churn")
    parser.add_argument("--sources", type=int, default=16, help="source addresses")
    parser.add_argument("--timeout", type=float, default=120.0, help="for each step")
    args = parser.parse_args(argv)
    raise_nofile()
    run = run_idle if args.mode == "idle" else run_churn
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
