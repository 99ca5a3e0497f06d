"""Start a ``framing`` server as a subprocess, attack it, and measure it from ``/proc``.

Every attack test follows one shape::

    before = server.snapshot()          # RSS and open fds, once quiet
    ... the attack ...
    server.assert_recovered(before)     # fds back to the baseline, RSS within bound
    good_client(server)                 # a well-behaved client is served, promptly

The bounds are stated here once and repeated in docs/ROBUSTNESS.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: After an attack, the server's open descriptors must come back to exactly the
#: count before it (every attacker's socket closed), within SETTLE_SECONDS.
FD_SLACK = 0
#: After an attack, resident memory may stay at most this far above where it was
#: before: CPython keeps freed arenas, so some growth is not a leak, but a
#: per-connection or per-byte leak over these attacks (megabytes sent, thousands
#: of connections) would exceed it.
RSS_SLACK_KB = 24 * 1024
#: During an attack, resident memory may rise at most this far above the baseline
#: (a client that never reads, megabytes without a delimiter).
RSS_PEAK_KB = 64 * 1024
#: How long the server has to close every attacker's socket after the attack.
SETTLE_SECONDS = 10.0
#: "Promptly": a good client's request is answered within this many seconds.
PROMPT_SECONDS = 5.0
#: How much of a server's output :attr:`Server.log` keeps, in bytes.
LOG_KEPT = 4 * 1024 * 1024

#: The idle timeout the servers under attack run with, in seconds, and their
#: message timeout (a begun message must finish within it: RFC 7766 6.2.3).
IDLE_TIMEOUT = 1.5
#: Their connection limit (the slowloris attack stays under it, so the good
#: client gets a slot; the limit's own behaviour is the server's tests' job).
MAX_CONNECTIONS = 400
#: Those limits, as both servers' command lines take them.
LIMIT_ARGS = (
    "--idle-timeout",
    str(IDLE_TIMEOUT),
    "--message-timeout",
    str(IDLE_TIMEOUT),
    "--max-connections",
    str(MAX_CONNECTIONS),
)

_PORT_LINE = re.compile(rb"(?:listening on \S*?:(\d+))|(?:port (\d+))")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The server's resident memory (KiB) and open file descriptors, at one moment."""

    rss_kb: int
    fds: int


def rss_kb(pid: int) -> int:
    """``VmRSS`` of a process, in KiB, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors a process has open, from ``/proc/PID/fd``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Server:
    """A ``framing`` server running in a subprocess on a free loopback port.

    Attributes:
        argv: the command line after ``python -m``.
        kind: ``"echo"`` or ``"dns"``.
        spec: the echo server's ``--framing`` (``""`` for DNS).
        nofile: the soft ``RLIMIT_NOFILE`` to start it with; ``None`` inherits ours.
        port: the port it printed on start.
        peak_rss_kb: the largest RSS seen by :meth:`sample` since the last snapshot.
    """

    argv: list[str]
    kind: str
    spec: str
    nofile: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    peak_rss_kb: int = 0
    output: list[bytes] = field(default_factory=list)
    #: Everything it printed since it started (the last LOG_KEPT bytes of it),
    #: and how many bytes before those were dropped: see :meth:`log_since`.
    log: bytearray = field(default_factory=bytearray)
    log_dropped: int = 0

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the process and wait (bounded) for the line with its port."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self.argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if self.nofile is not None:
            # Lowered from outside at once: the interpreter is still starting and
            # has opened a handful of descriptors; the limit binds every later one.
            _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(self.proc.pid, resource.RLIMIT_NOFILE, (self.nofile, hard))
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + 20
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                sel.select(0.2)
                chunk = self.proc.stdout.read() or b""
                buf += chunk
                found = _PORT_LINE.search(buf)
                if found:
                    self.port = int(found.group(1) or found.group(2))
                    self.output.append(buf)
                    return
                if self.proc.poll() is not None:
                    break
        self.stop()
        raise AssertionError(f"server {self.argv} did not print its port: {buf!r}")

    def drain_output(self) -> bytes:
        """Read whatever the server printed since the last call (keeps its pipe from filling)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        data = b""
        with contextlib.suppress(BlockingIOError, ValueError):
            while chunk := self.proc.stdout.read(1 << 20):
                data += chunk
        self.output.append(data)
        del self.output[:-4]
        self.log += data
        if len(self.log) > LOG_KEPT:
            drop = len(self.log) - LOG_KEPT
            del self.log[:drop]
            self.log_dropped += drop
        return data

    def log_mark(self) -> int:
        """A position in the server's output: everything printed up to now."""
        self.drain_output()
        return self.log_dropped + len(self.log)

    def log_since(self, mark: int) -> list[str]:
        """The lines the server printed after ``mark`` (a :meth:`log_mark`), up to now."""
        self.drain_output()
        text = bytes(self.log[max(0, mark - self.log_dropped) :])
        return text.decode(errors="replace").splitlines()

    def stop(self) -> None:
        """SIGTERM, then wait (bounded); SIGKILL if it will not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def assert_alive(self) -> None:
        """The server process has not exited."""
        assert self.proc is not None
        code = self.proc.poll()
        assert code is None, f"server exited with {code}: {b''.join(self.output)[-2000:]!r}"

    def sample(self) -> int:
        """Measure RSS now, keep the peak; return it."""
        self.drain_output()
        now = rss_kb(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, now)
        return now

    def snapshot(self) -> Snapshot:
        """The baseline before an attack: fds once quiet, RSS now."""
        self.assert_alive()
        self.drain_output()
        snap = Snapshot(rss_kb(self.pid), open_fds(self.pid))
        self.peak_rss_kb = snap.rss_kb
        return snap

    def assert_recovered(self, before: Snapshot) -> Snapshot:
        """Wait (bounded) for fds to return to ``before``; check RSS bounds; return the after."""
        self.assert_alive()
        deadline = time.monotonic() + SETTLE_SECONDS
        fds = open_fds(self.pid)
        while fds > before.fds + FD_SLACK and time.monotonic() < deadline:
            time.sleep(0.05)
            self.drain_output()
            fds = open_fds(self.pid)
        after = Snapshot(self.sample(), fds)
        assert fds <= before.fds + FD_SLACK, (
            f"fd leak: {before.fds} open before the attack, {fds} after {SETTLE_SECONDS} s"
        )
        assert after.rss_kb <= before.rss_kb + RSS_SLACK_KB, (
            f"RSS grew from {before.rss_kb} KiB to {after.rss_kb} KiB (bound +{RSS_SLACK_KB})"
        )
        assert self.peak_rss_kb <= before.rss_kb + RSS_PEAK_KB, (
            f"RSS peaked at {self.peak_rss_kb} KiB from {before.rss_kb} (bound +{RSS_PEAK_KB})"
        )
        return after


def echo_server(spec: str, loop: str, *extra: str, limits: Sequence[str] = LIMIT_ARGS) -> Server:
    """``framing echo --framing SPEC`` on a free port, quiet, with ``limits`` (the attack limits).

    ``limits`` replaces the timeout and connection flags; ``()`` leaves the echo
    server's own defaults (no timeout at all).
    """
    argv = [
        "protocols.cli",
        "echo",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--framing",
        spec,
        *limits,
        "--loop",
        loop,
        "--quiet",
        *extra,
    ]
    return Server(argv, "echo", spec)


def dns_server(loop: str, *, limits: Sequence[str] = LIMIT_ARGS) -> Server:
    """``framing dns`` on a free port (UDP and TCP), with ``limits`` (the attack limits).

    ``limits=()`` runs it with its own defaults (150 connections, 5 s timeouts).
    """
    argv = [
        "protocols.cli",
        "dns",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *limits,
        "--loop",
        loop,
    ]
    return Server(argv, "dns", "")


# --- clients -----------------------------------------------------------------------


def connect(port: int, *, timeout: float = PROMPT_SECONDS) -> socket.socket:
    """A TCP connection to the server, with a timeout on every call."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_exactly(sock: socket.socket, size: int, *, timeout: float = PROMPT_SECONDS) -> bytes:
    """Read exactly ``size`` bytes within ``timeout`` seconds in all, or fail."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < size:
        left = deadline - time.monotonic()
        assert left > 0, f"got {len(buf)} of {size} bytes in {timeout} s"
        sock.settimeout(left)
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        assert chunk, f"connection closed after {len(buf)} of {size} bytes"
        buf += chunk
    return bytes(buf)


def wait_closed(sock: socket.socket, *, timeout: float) -> bytes:
    """Read until the server ends the connection (FIN or RST) within ``timeout``."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the server did not close the connection within {timeout} s"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data)
        except TimeoutError:
            raise AssertionError(
                f"the server did not close the connection within {timeout} s"
            ) from None
        if not chunk:
            return bytes(data)
        data += chunk


def frame(spec: str, message: bytes) -> bytes:
    """``message`` as the echo server's framing puts it on the wire."""
    if spec == "raw":
        return message
    if spec == "length:2":
        return struct.pack(">H", len(message)) + message
    if spec == "line":
        return message + b"\n"
    raise ValueError(spec)


def dns_query(name: str, qid: int) -> bytes:
    """A minimal A query for ``name`` (RD clear), as bytes."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\x00\x01\x00\x01"


def example_name() -> str:
    """A name the embedded zone answers for."""
    from protocols.dns.zone import example_zone

    return example_zone().origin.to_text()


def good_client(server: Server) -> None:
    """A well-behaved client is served correctly within PROMPT_SECONDS."""
    server.assert_alive()
    if server.kind == "echo":
        messages = [b"ping", b"hello, world", bytes(range(10)).replace(b"\n", b"")]
        with connect(server.port) as sock:
            wire = b"".join(frame(server.spec, m) for m in messages)
            sock.sendall(wire)
            assert recv_exactly(sock, len(wire)) == wire
        return
    with connect(server.port) as sock:
        query = dns_query(example_name(), 0x4242)
        sock.sendall(struct.pack(">H", len(query)) + query)
        (size,) = struct.unpack(">H", recv_exactly(sock, 2))
        reply = recv_exactly(sock, size)
        assert reply[:2] == b"\x42\x42"
        assert reply[2] & 0x80, "not a response"
        assert reply[3] & 0x0F == 0, f"rcode {reply[3] & 0x0F} for a name in the zone"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(PROMPT_SECONDS)
        udp.sendto(dns_query(example_name(), 0x4343), ("127.0.0.1", server.port))
        reply, _ = udp.recvfrom(65535)
        assert reply[:2] == b"\x43\x43"


@contextlib.contextmanager
def many(count: int) -> Iterator[list[socket.socket]]:
    """Open ``count`` connections to nothing yet; close them all on exit."""
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


def send_all_nonblocking(sock: socket.socket, data: bytes, *, seconds: float) -> int:
    """Send as much of ``data`` as the peer takes within ``seconds``; return how much."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        while sent < len(data) and time.monotonic() < deadline:
            if not sel.select(0.05):
                continue
            try:
                sent += sock.send(data[sent : sent + (1 << 20)])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    return sent


def spin(seconds: float, servers: Sequence[Server]) -> None:
    """Sleep ``seconds`` while sampling each server's RSS."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in servers:
            s.sample()
        time.sleep(0.05)


# --- many clients, each watched ---------------------------------------------------


@dataclass
class Peer:
    """One client connection of an attack, as the client sees it.

    Attributes:
        index: its place in the order the connections were opened.
        sock: the socket.
        sent: when (``time.monotonic()``) its first bytes were sent.
        data: what the server sent it so far.
        ended: when the client saw the server end it (EOF or reset); ``None`` while open.
        how: ``"EOF"``, ``"RST"`` or, for a connect that failed, the error.
    """

    index: int
    sock: socket.socket
    sent: float
    data: bytearray = field(default_factory=bytearray)
    ended: float | None = None
    how: str = ""

    def end(self, how: str) -> None:
        """Record that the server ended this connection, now."""
        if self.ended is None:
            self.ended = time.monotonic()
            self.how = how


@contextlib.contextmanager
def peers() -> Iterator[list[Peer]]:
    """A list to open clients into (:func:`open_peers`); every socket closed on exit."""
    out: list[Peer] = []
    try:
        yield out
    finally:
        for peer in out:
            with contextlib.suppress(OSError):
                peer.sock.close()


def open_peers(into: list[Peer], port: int, count: int, first: bytes) -> list[Peer]:
    """Open ``count`` connections, each sending ``first`` at once; append them to ``into``.

    A connection the server resets before ``first`` is sent is recorded as ended.
    Returns the new ones.
    """
    new = []
    for _ in range(count):
        sock = connect(port)
        peer = Peer(len(into), sock, time.monotonic())
        into.append(peer)
        new.append(peer)
        try:
            sock.sendall(first)
        except (ConnectionResetError, BrokenPipeError):
            peer.end("RST")
        peer.sent = time.monotonic()
    return new


def _is_ended(peer: Peer) -> bool:
    return peer.ended is not None


def watch(
    group: Sequence[Peer],
    *,
    until: float,
    done: Callable[[Peer], bool] = _is_ended,
    tick: Callable[[], object] | None = None,
) -> None:
    """Read from each of ``group`` until it is ``done`` (default: ended), or until ``until``.

    Records what each receives and when and how the server ends it. ``tick`` is
    called about every 50 ms (to sample the server, say).
    """
    with selectors.DefaultSelector() as sel:
        for peer in group:
            if peer.ended is None and not done(peer):
                peer.sock.setblocking(False)
                sel.register(peer.sock, selectors.EVENT_READ, peer)
        while sel.get_map() and (left := until - time.monotonic()) > 0:
            if tick is not None:
                tick()
            for key, _ in sel.select(min(left, 0.05)):
                peer = key.data
                try:
                    chunk = peer.sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    peer.end("RST")
                else:
                    if chunk:
                        peer.data += chunk
                    else:
                        peer.end("EOF")
                if peer.ended is not None or done(peer):
                    sel.unregister(peer.sock)


def spans(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``"0-2, 5, 7-8"`` (``"none"`` when empty): for messages."""
    out: list[str] = []
    ordered = sorted(indices)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(out) or "none"
