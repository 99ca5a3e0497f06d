"""The echo load generator: pipelined, verifying every byte, with latency percentiles.

    python -m benchmarks.loadgen --port PORT [--connections 8] [--depth 32]
        [--size 64] [--warmup 1] [--duration 5] [--server-pid PID]

Opens ``--connections`` TCP connections to 127.0.0.1:PORT and keeps ``--depth``
length:2 messages of ``--size`` bytes in flight on each: every echo that comes
back completes a message and sends a new one. Prints one JSON object.

Built to cost the server's side as little as possible: an ``asyncio.Protocol``
on uvloop (when installed), with work per read rather than per message:

- Messages come from a ring of 1024 distinct frames per connection (the
  connection's number and the message's sequence number in each payload), so
  the bytes due back are a slice of the ring: each read is compared whole with
  that slice. Every byte is verified, in order, and an echo that mixed up,
  dropped or reordered messages fails.
- Send times are kept per write (one timestamp, how many messages); latency is
  the time from the write that sent a message to the read that completed its
  echo, counted in a 1-microsecond histogram.

Counters reset after ``--warmup`` seconds; the rate and the latencies are over
the next ``--duration`` seconds. Then sending stops, every echo still in flight
is awaited and verified, and the connections close.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

RING = 1024
#: Latencies over this many microseconds fall in the last bucket.
HIST_MAX_US = 2_000_000


class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.completed = 0
        self.hist = [0] * (HIST_MAX_US + 1)
        self.errors: list[str] = []


class Client(asyncio.Protocol):
    def __init__(self, index: int, depth: int, size: int, stats: Stats) -> None:
        self.frame = 2 + size
        pad = bytes((index * 7 + i) & 0xFF for i in range(size))
        frames = []
        for seq in range(RING):
            tag = index.to_bytes(2, "big") + seq.to_bytes(4, "big")
            frames.append(size.to_bytes(2, "big") + tag + pad[len(tag) :])
        ring = b"".join(frames)
        self.ring_len = len(ring)
        # Doubled, so that any window up to the ring's length is one slice.
        self.ring2 = ring + ring
        self.depth = depth
        self.stats = stats
        self.sent = 0  # bytes sent
        self.received = 0  # bytes echoed and verified
        self.runs: deque[list[int]] = deque()  # [send time ns, messages] per write
        self.sending = True
        self.transport: Any = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.send(self.depth)

    def send(self, count: int) -> None:
        off = self.sent % self.ring_len
        n = count * self.frame
        self.transport.write(self.ring2[off : off + n])
        self.sent += n
        self.runs.append([time.perf_counter_ns(), count])

    def data_received(self, data: bytes) -> None:
        n = len(data)
        off = self.received % self.ring_len
        if n > self.sent - self.received or self.ring2[off : off + n] != data:
            self.fail(f"echo differs from what was sent at byte {self.received}")
            return
        frame = self.frame
        before = self.received // frame
        self.received += n
        count = self.received // frame - before
        if not count:
            return
        stats = self.stats
        if stats.measuring:
            stats.completed += count
            self.retire(count, stats.hist, time.perf_counter_ns())
        else:
            self.retire(count, None, 0)
        if self.sending:
            self.send(count)
        elif self.received == self.sent and not self.done.done():
            self.done.set_result(None)

    def retire(self, count: int, hist: list[int] | None, now: int) -> None:
        """Take ``count`` echoed messages off the send runs, counting their latencies."""
        runs = self.runs
        while count:
            run = runs[0]
            taken = min(run[1], count)
            if hist is not None:
                hist[min((now - run[0]) // 1000, HIST_MAX_US)] += taken
            count -= taken
            if taken == run[1]:
                runs.popleft()
            else:
                run[1] -= taken

    def fail(self, reason: str) -> None:
        self.stats.errors.append(reason)
        self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.received != self.sent:
            self.stats.errors.append(
                f"connection lost with {self.sent - self.received} bytes not echoed ({exc})"
            )
        if not self.done.done():
            self.done.set_result(None)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(hist: list[int], total: int, q: float) -> float:
    """The q-quantile, in microseconds, of the histogram's latencies."""
    if not total:
        return float("nan")
    rank = q * total
    seen = 0
    for us, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return float(us)
    return float(len(hist) - 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    clients: list[Client] = []
    for i in range(args.connections):
        _, client = await loop.create_connection(
            partial(Client, i, args.depth, args.size, stats), args.host, args.port
        )
        clients.append(client)
    await asyncio.sleep(args.warmup)
    stats.measuring = True
    start = time.perf_counter()
    cpu0, server0 = own_cpu(), cpu_of(args.server_pid) if args.server_pid else float("nan")
    await asyncio.sleep(args.duration)
    stats.measuring = False
    elapsed = time.perf_counter() - start
    cpu1, server1 = own_cpu(), cpu_of(args.server_pid) if args.server_pid else float("nan")
    completed = stats.completed
    for client in clients:
        client.sending = False
        if client.received == client.sent and not client.done.done():
            client.done.set_result(None)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), 10)
    except TimeoutError:
        stats.errors.append("echoes still missing 10 s after sending stopped")
    verified = sum(c.received for c in clients)
    unechoed = sum(c.sent - c.received for c in clients)
    for client in clients:
        client.transport.close()
    return {
        "msgs_per_s": completed / elapsed,
        "messages": completed,
        "seconds": elapsed,
        "p50_us": percentile(stats.hist, completed, 0.50),
        "p99_us": percentile(stats.hist, completed, 0.99),
        "client_cpu": (cpu1 - cpu0) / elapsed,
        "server_cpu": (server1 - server0) / elapsed,
        "bytes_verified": verified,
        "bytes_unechoed": unechoed,
        "errors": stats.errors[:5],
        "client_loop": loop_name(),
    }


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    if not 6 <= args.size <= 65535:
        parser.error("--size must be 6 to 65535 (the payload carries 6 bytes of tags)")
    if not 1 <= args.depth <= RING:
        parser.error(f"--depth must be at most {RING}")
    runner: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    result = runner(run(args))
    print(json.dumps(result), flush=True)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
