"""``--workers N``: processes sharing one port under a supervisor (framing/workers.py).

Every test runs real processes: ``framing echo|dns --workers 2`` through the
:class:`Launcher` of test_cli.py, or :func:`framing.workers.run_workers` from
a small program. Workers are told apart by their log lines, which start with
``worker I (pid P):``; the supervisor's own lines go to stderr. Every wait is
bounded; at teardown the Launcher SIGKILLs the supervisor, and the workers,
whose lifeline pipe then reads end of file, stop by themselves.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

from framing.workers import worker_count
from tests.conftest import require_tool
from tests.protocols.test_cli import (  # noqa: F401
    FRAMING,
    ROOT,
    TIMEOUT,
    Launcher,
    Running,
    launcher,
)

LISTENING = r"worker (\d) \(pid (\d+)\): listening on \S+:(\d+) [^\n]*\n"


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited: no /proc entry, or a zombie nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return bool(re.search(r"^State:\s+Z", status, re.MULTILINE))


def wait_until_gone(pids: list[int], timeout: float = TIMEOUT) -> list[int]:
    """Wait (bounded) until every pid has exited; return those still running."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if not gone(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def listening(server: Running, count: int = 2) -> dict[int, int]:
    """Wait until ``count`` workers listen; return {worker index: pid} and check one port."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = re.findall(LISTENING, server.out)
        if len({index for index, _, _ in found}) >= count:
            break
        if server.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"workers did not start\nstdout: {server.out}\nstderr: {server.err}")
        time.sleep(0.02)
    latest = {int(index): int(pid) for index, pid, _ in found}  # a restart's line comes last
    assert len({port for _, _, port in found}) == 1, "the workers listen on different ports"
    return latest


def start_echo_workers(launch: Launcher, *args: str) -> tuple[Running, int, dict[int, int]]:
    server = launch.start("echo", "--port", "0", "--workers", "2", *args)
    pids = listening(server)
    return server, server.port(), pids


def echo_round_trip(port: int, message: bytes) -> int:
    """Echo ``message`` on a new connection; return the connection's local port."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        local = int(sock.getsockname()[1])
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(4096):  # bounded: the server closes after EOF
            data += chunk
    assert data == message
    return local


def connection_pids(server: Running, locals_: list[int]) -> set[int]:
    """The pids of the workers that logged these client ports' connections."""
    deadline = time.monotonic() + TIMEOUT
    while True:  # bounded: until every connection is logged, or the deadline
        logged = dict(
            (int(port), int(pid))
            for pid, port in re.findall(
                r"worker \d \(pid (\d+)\): new connection 127\.0\.0\.1:(\d+)\n", server.out
            )
        )
        if all(p in logged for p in locals_) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert all(p in logged for p in locals_), server.out + server.err
    return {logged[p] for p in locals_}


# -- the option ----------------------------------------------------------------------


def test_worker_count_auto_is_the_usable_cpus() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count("3") == 3
    with pytest.raises(ValueError, match="at least 1"):
        worker_count("0")
    with pytest.raises(ValueError, match="N or auto"):
        worker_count("many")


# -- framing echo --workers 2 --------------------------------------------------------


def test_echo_workers_share_one_port_and_both_serve(launcher: Launcher) -> None:  # noqa: F811
    server, port, pids = start_echo_workers(launcher, "--framing", "raw")
    # 40 connections, each on a new source port: the kernel's SO_REUSEPORT hash
    # puts them all on one worker with a chance of 2 ** -39.
    locals_ = [echo_round_trip(port, b"hello %d" % n) for n in range(40)]
    assert connection_pids(server, locals_) == set(pids.values()), server.out + server.err
    assert server.stop(signal.SIGTERM) == 0


def test_echo_killed_worker_is_restarted_within_2s_and_the_port_stays_served(
    launcher: Launcher,  # noqa: F811
) -> None:
    server, port, pids = start_echo_workers(launcher)
    victim = pids[0]
    # Up for over min_uptime (1 s), so that its death is not taken for a
    # failure to start, which is restarted after a delay.
    time.sleep(1.0)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    # The service stays up: once worker 0 is gone (a handshake racing its
    # socket's close may be reset, as with any listener that dies), worker 1
    # takes every connection until worker 0 is back.
    deadline = time.monotonic() + TIMEOUT
    while "killed by SIGKILL" not in server.err:  # bounded
        assert time.monotonic() < deadline, server.err
        time.sleep(0.01)
    for n in range(10):
        echo_round_trip(port, b"meanwhile %d" % n)
    deadline = time.monotonic() + TIMEOUT
    while True:  # bounded: until a new worker 0 says it listens, or the deadline
        new_pids = {int(p) for p in re.findall(r"worker 0 \(pid (\d+)\): listening on", server.out)}
        new_pids.discard(victim)
        if new_pids:
            break
        assert time.monotonic() < deadline, server.out + server.err
        time.sleep(0.02)
    elapsed = time.monotonic() - killed_at
    # The bound: a worker killed is serving again within 2 s (here,
    # the time until this test has read its new 'listening on' line).
    assert elapsed < 2.0, f"restarted after {elapsed:.2f} s"
    (new,) = new_pids
    assert gone(victim)
    assert re.search(
        rf"framing: worker 0 \(pid {victim}\) killed by SIGKILL after [\d.]+ s; "
        r"restart 1 of this worker, 1 in all; restarting now\n",
        server.err,
    ), server.err
    assert f"framing: worker 0 started (pid {new})\n" in server.err
    # Both serve again.
    locals_ = [echo_round_trip(port, b"after %d" % n) for n in range(40)]
    assert connection_pids(server, locals_) == {new, pids[1]}, server.out + server.err
    assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_echo_workers_stop_gracefully_exit_0_and_leave_no_process(
    launcher: Launcher,  # noqa: F811
    signum: signal.Signals,
) -> None:
    server, port, pids = start_echo_workers(launcher, "--framing", "length:2")
    # A message in flight when the signal comes: its first half is on the wire.
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with sock:
        sock.sendall(b"\x00\x05he")
        owner = connection_pids(server, [sock.getsockname()[1]]).pop()
        local = sock.getsockname()[1]
        server.proc.send_signal(signum)
        deadline = time.monotonic() + TIMEOUT
        while True:  # bounded: until no worker accepts any more
            try:
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, server.err
            time.sleep(0.02)
        assert not gone(owner)  # it waits for the message in flight
        sock.sendall(b"llo")  # the rest: finished and echoed, then the end
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert data == b"\x00\x05hello"
    assert server.wait() == 0, server.err
    assert re.search(
        rf"worker \d \(pid {owner}\): 127\.0\.0\.1:{local} data: b'hello'\n", server.out
    )
    assert wait_until_gone(list(pids.values()), timeout=1.0) == []
    assert f"stopping on {signal.Signals(signum).name}" in server.err


def test_echo_sighup_reaches_every_worker_and_stops_none(launcher: Launcher) -> None:  # noqa: F811
    server, _, pids = start_echo_workers(launcher)
    server.proc.send_signal(signal.SIGHUP)
    for pid in pids.values():
        server.wait_for(rf"worker \d \(pid {pid}\): SIGHUP: the echo server has nothing to reload")
    assert "framing: SIGHUP: passing it on to 2 workers\n" in server.err
    assert "killed" not in server.err
    assert listening(server) == pids  # no restart: the same two processes
    assert server.stop(signal.SIGTERM) == 0


def test_echo_workers_stop_when_the_supervisor_is_killed(launcher: Launcher) -> None:  # noqa: F811
    server, _, pids = start_echo_workers(launcher)
    server.proc.kill()
    server.wait()
    # Their lifeline pipe reads end of file: each stops as on SIGTERM.
    assert wait_until_gone(list(pids.values())) == []


def test_echo_workers_on_a_port_in_use_fail_once_with_one_line(
    launcher: Launcher,  # noqa: F811
) -> None:
    with socket.socket() as taken:  # no SO_REUSEPORT: nobody may share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = launcher.start("echo", "--port", str(port), "--workers", "2")
        assert server.wait() == 1
    assert re.search(
        rf"framing: error: cannot listen on 127\.0\.0\.1:{port}: address already in use\n",
        server.err,
    )
    assert "failed at start (exit status 1); stopping" in server.err
    assert "restart" not in server.err


# -- run_workers from a program: the backoff ---------------------------------------------


async def quick_death_main(record: str) -> int:
    """Serve (sleep) at the first start; at every later start, fail at once."""
    path = Path(record)
    first = not await anyio.Path(path).exists()
    async with await anyio.open_file(path, "a") as file:
        await file.write(f"{os.getpid()}\n")
    if not first:
        return 3
    await anyio.sleep(TIMEOUT * 4)
    return 0


PROGRAM = """\
import logging, sys
from framing.workers import run_workers
from tests.protocols.test_workers import quick_death_main
logging.basicConfig(level=logging.INFO, format="%(message)s")
sys.exit(run_workers(quick_death_main, sys.argv[1], workers=1, backend=sys.argv[2],
                     min_uptime=3.0, backoff=0.1, max_backoff=0.4))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_workers_backs_off_a_worker_that_dies_at_start(tmp_path: Path, backend: str) -> None:
    record = tmp_path / "starts"
    err = (tmp_path / "err").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(record), backend], cwd=ROOT, stderr=err
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not record.exists() or not record.read_text():  # bounded: the first start
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.02)
        time.sleep(3.2)  # past min_uptime: its death is not a failure at start
        os.kill(int(record.read_text().split()[0]), signal.SIGKILL)
        log = ""
        while "restarting in 0.4 s" not in log or log.count("restarting in 0.4 s") < 2:
            assert time.monotonic() < deadline, log  # bounded
            time.sleep(0.05)
            log = (tmp_path / "err").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        err.close()
    log = (tmp_path / "err").read_text()
    delays = re.findall(
        r"exit status 3 after [\d.]+ s; restart \d+ of this worker, \d+ in all; "
        r"restarting in ([\d.]+) s",
        log,
    )
    # Each quick death in a row doubles the delay, up to max_backoff.
    assert delays[:4] == ["0.1", "0.2", "0.4", "0.4"], log
    assert "killed by SIGKILL after" in log
    assert "restarting now" in log  # the first death, after a while: at once
    starts = record.read_text().split()
    assert wait_until_gone([int(pid) for pid in starts]) == []


async def stuck_main(record: str) -> None:
    """Write this pid, then refuse to stop: cancellation is shielded."""
    async with await anyio.open_file(record, "a") as file:
        await file.write(f"{os.getpid()}\n")
    with anyio.CancelScope(shield=True):
        await anyio.sleep(TIMEOUT * 4)


STUCK = """\
import logging, sys
from framing.workers import run_workers
from tests.protocols.test_workers import stuck_main
logging.basicConfig(level=logging.INFO, format="%(message)s")
sys.exit(run_workers(stuck_main, sys.argv[1], workers=2, stop_timeout=1.0))
"""


def test_run_workers_kills_a_worker_that_does_not_stop_and_exits_1(tmp_path: Path) -> None:
    record = tmp_path / "pids"
    with (tmp_path / "err").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", STUCK, str(record)], cwd=ROOT, stderr=err)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not record.exists() or len(record.read_text().split()) < 2:  # bounded
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    log = (tmp_path / "err").read_text()
    pids = [int(pid) for pid in record.read_text().split()]
    for index in (0, 1):
        assert re.search(rf"worker {index} \(pid \d+\) killed: it did not stop\n", log), log
    assert wait_until_gone(pids) == []


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_ctrl_c_to_the_whole_group_exits_0_with_no_process_left(tmp_path: Path, loop: str) -> None:
    """A terminal's Ctrl-C: SIGINT to every process of the group, then the supervisor's SIGTERM."""
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*FRAMING, "echo", "--port", "0", "--workers", "2", "--loop", loop],
            cwd=ROOT, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a group of its own, as a terminal's job has
        )  # fmt: skip
    server = Running(proc, out, err)
    try:
        pids = listening(server)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0, server.err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
    assert wait_until_gone(list(pids.values())) == []
    assert "stopping on SIGINT" in server.err
    assert "stopped with" not in server.err  # every worker exited 0


# -- framing dns --workers 2 -------------------------------------------------------------


@pytest.fixture
def dns_workers(launcher: Launcher) -> Iterator[tuple[Running, int]]:  # noqa: F811
    server = launcher.start("dns", "--port", "0", "--workers", "2")
    pattern = r"worker \d \(pid \d+\): framing dns: serving \S+ on \S+ port (\d+)"
    deadline = time.monotonic() + TIMEOUT
    while len(found := re.findall(pattern, server.out)) < 2:  # bounded
        if server.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"dns workers did not start\n{server.out}\n{server.err}")
        time.sleep(0.02)
    assert found[0] == found[1]
    yield server, int(found[0])
    assert server.stop(signal.SIGTERM) == 0


def test_dns_workers_answer_over_udp_and_tcp(dns_workers: tuple[Running, int]) -> None:
    _, port = dns_workers
    for n in range(50):
        query = dns.message.make_query("www.framing.test", "A", id=n)
        for answer in (
            dns.query.udp(query, "127.0.0.1", port=port, timeout=5),
            dns.query.tcp(query, "127.0.0.1", port=port, timeout=5),
        ):
            assert answer.rcode() == dns.rcode.NOERROR
            assert answer.answer


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dns_workers_dnsperf_loses_nothing(
    dns_workers: tuple[Running, int], tmp_path: Path, transport: str
) -> None:
    dnsperf = require_tool("dnsperf")
    _, port = dns_workers
    queries = tmp_path / "queries"
    queries.write_text("www.framing.test A\nframing.test SOA\nalias.framing.test A\n" * 100)
    # 3,000 queries at most 500 a second, 4 clients (4 source ports, so both
    # workers get some over UDP too): a short, bounded run, not a benchmark.
    done = subprocess.run(
        [
            dnsperf,
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            transport,
            "-d",
            str(queries),
            "-n",
            "10",
            "-c",
            "4",
            "-Q",
            "500",
            "-t",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sent = re.search(r"Queries sent:\s+(\d+)", done.stdout)
    completed = re.search(r"Queries completed:\s+(\d+)", done.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    assert sent, done.stdout
    assert completed, done.stdout
    assert lost, done.stdout
    assert int(sent.group(1)) == 3000
    assert (int(completed.group(1)), int(lost.group(1))) == (3000, 0), done.stdout


ZONE = """$ORIGIN framing.test.
$TTL 300
@    SOA  ns1 hostmaster {serial} 3600 600 86400 300
@    NS   ns1
ns1  A    127.0.0.1
www  A    127.0.0.1
"""


def test_dns_workers_send_one_notify_per_new_serial(
    launcher: Launcher,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Each worker reloads on SIGHUP, but a secondary hears of a new serial once."""
    zone = tmp_path / "framing.test.zone"
    zone.write_text(ZONE.format(serial=1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as secondary:
        secondary.bind(("127.0.0.1", 0))
        secondary.settimeout(0.2)
        target = f"127.0.0.1:{secondary.getsockname()[1]}"
        server = launcher.start(
            "dns", "--port", "0", "--workers", "2", "--zone", str(zone), "--notify", target
        )
        pattern = r"worker \d \(pid \d+\): framing dns: serving"
        deadline = time.monotonic() + TIMEOUT
        while len(re.findall(pattern, server.out)) < 2:  # bounded
            if server.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dns workers did not start\n{server.out}\n{server.err}")
            time.sleep(0.02)
        zone.write_text(ZONE.format(serial=2))
        server.proc.send_signal(signal.SIGHUP)
        notifies: list[tuple[str, int]] = []
        end = time.monotonic() + 3.0  # NOTIFY_TIMEOUT is 1 s: a second sender would show
        while time.monotonic() < end:  # bounded
            try:
                data, peer = secondary.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            assert query.opcode() == dns.opcode.NOTIFY
            notifies.append(peer)
            secondary.sendto(dns.message.make_response(query).to_wire(), peer)
        assert len(notifies) == 1, notifies
    assert server.stop(signal.SIGTERM) == 0
