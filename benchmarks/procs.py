"""Start a server process, learn its port from its output, stop it afterwards."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import ROOT, log


class ServerFailed(RuntimeError):
    """The server did not start (its output says why)."""


def framing_command(*args: str) -> list[str]:
    """The ``framing`` console script of this interpreter's environment, with ``args``."""
    script = Path(sys.executable).parent / "framing"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "protocols.cli", *args]


@contextmanager
def server(
    argv: Sequence[str], *, port_pattern: str, startup: float = 20.0
) -> Iterator[tuple[int, int]]:
    """Run ``argv`` until the block ends; yield (port, pid) once its output shows the port.

    ``port_pattern`` is a regular expression whose first group is the port.
    """
    with server_matching(argv, pattern=port_pattern, startup=startup) as (match, pid):
        yield int(match.group(1)), pid


@contextmanager
def server_matching(
    argv: Sequence[str], *, pattern: str, startup: float = 20.0
) -> Iterator[tuple[re.Match[str], int]]:
    """Run ``argv`` until the block ends; yield (match, pid) once ``pattern`` is in its output.

    Output goes to a temporary file (never a pipe nobody reads, which would
    stall a chatty server). The process gets SIGTERM at the end, then SIGKILL
    if it has not ended 5 s later.
    """
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield _wait_for(proc, out, re.compile(pattern), startup), proc.pid
        finally:
            stop(proc)


def _wait_for(
    proc: subprocess.Popen[bytes], out: object, pattern: re.Pattern[str], startup: float
) -> re.Match[str]:
    deadline = time.monotonic() + startup
    text = ""
    while time.monotonic() < deadline:
        out.seek(0)  # type: ignore[attr-defined]
        text = out.read()  # type: ignore[attr-defined]
        match = pattern.search(text)
        if match:
            return match
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise ServerFailed(
        f"not ready (no {pattern.pattern!r}) in the server's output: {text[-500:]!r}"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            log(f"server {proc.pid} ignored SIGTERM; killing it")
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP right now (for servers that need one)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise OSError("no free port found")
