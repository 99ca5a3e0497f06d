"""protocols/cli.py: the ``framing`` command line, in-process and as a subprocess.

Also home of :class:`Launcher`, which test_echo.py and test_connect.py use to run
``framing`` subprocesses: output goes to files (a pipe nobody reads would block
a chatty server), every wait is bounded, and every process is killed at teardown.
"""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import framing
from protocols.cli import main

ROOT = Path(__file__).resolve().parents[2]
FRAMING = [sys.executable, "-m", "protocols.cli"]
# Generous: CI machines are slow and shared; a healthy run takes a fraction.
TIMEOUT = 30.0


class Running:
    """One ``framing`` subprocess, its output captured in files."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.proc = proc
        self.out_path = out
        self.err_path = err

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for(self, pattern: str, *, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait until standard output matches ``pattern``; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.out)
            if found:
                return found
            if self.proc.poll() is not None:
                pytest.fail(
                    f"exited with {self.proc.returncode} before printing {pattern!r}\n"
                    f"stdout: {self.out}\nstderr: {self.err}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} within {timeout} s\nstdout: {self.out}")
            time.sleep(0.02)

    def port(self) -> int:
        """The port from the server's ``listening on HOST:PORT`` line."""
        return int(self.wait_for(r"listening on \S+:(\d+) [^\n]*\n").group(1))  # the whole line

    def wait(self, *, timeout: float = TIMEOUT) -> int:
        """Wait for the process to exit; return its status."""
        return self.proc.wait(timeout=timeout)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit status."""
        self.proc.send_signal(signum)
        return self.wait()


class Launcher:
    """Starts ``framing`` subprocesses; :meth:`close` kills any still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.running: list[Running] = []

    def start(self, *args: str, stdin: int | None = subprocess.DEVNULL) -> Running:
        n = len(self.running)
        out, err = self.tmp_path / f"out{n}", self.tmp_path / f"err{n}"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [*FRAMING, *args], cwd=ROOT, stdin=stdin, stdout=stdout, stderr=stderr
            )
        running = Running(proc, out, err)
        self.running.append(running)
        return running

    def echo(self, *args: str) -> tuple[Running, int]:
        """Start ``framing echo --port 0 ARGS``; return it and the port it bound."""
        server = self.start("echo", "--port", "0", *args)
        return server, server.port()

    def close(self) -> None:
        for running in self.running:
            if running.proc.poll() is None:
                running.proc.kill()
            running.proc.wait(timeout=TIMEOUT)
            for pipe in (running.proc.stdin, running.proc.stdout):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launch = Launcher(tmp_path)
    try:
        yield launch
    finally:
        launch.close()


def run_tool(argv: Sequence[str], data: bytes = b"", *, timeout: float = TIMEOUT) -> bytes:
    """Run a client to completion with ``data`` on its stdin; return its stdout."""
    done = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


# -- the command line in-process --------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"framing {framing.__version__}\n"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: framing" in err
    assert "echo" in err
    assert "connect" in err


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "echo",
            [
                "--host",
                "--port",
                "--framing",
                "--max-size",
                "--idle-timeout",
                "--max-connections",
                "--proxy-protocol",
                "--close-on",
                "--workers",
                "--metrics",
                "--loop",
            ],
        ),
        ("connect", ["--framing", "--max-size", "--hex", "--loop"]),
    ],
)
def test_command_help_lists_options(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["echo", "--framing", "length:5"], "--framing: bad framing 'length:5'"),
        (["echo", "--framing", "yaml"], "--framing: unknown framing 'yaml'"),
        (["echo", "--port", "70000"], "--port: not a port number"),
        (["echo", "--close-on", "qq"], "--close-on: must be a single byte"),
        (["echo", "--max-size", "0"], "--max-size: must be at least 1"),
        (["echo", "--idle-timeout", "-1"], "--idle-timeout: must be more than 0"),
        (["echo", "--loop", "curio"], "--loop: invalid choice: 'curio'"),
        (["echo", "--proxy-protocol", "lb.example"], "--proxy-protocol: not an IP address"),
        (["echo", "--proxy-protocol", "10.0.0.0/33"], "--proxy-protocol: not an IP address"),
        (["echo", "--workers", "0"], "--workers: the number of workers must be at least 1"),
        (["echo", "--workers", "many"], "--workers: not a number of workers (N or auto)"),
        (["dns", "--workers", "0"], "--workers: the number of workers must be at least 1"),
        (["dns", "--metrics", "localhost"], "--metrics: not HOST:PORT"),
        (["connect", "localhost"], "required: port"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_max_size_too_large_for_the_header_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Valid alone, but a 1-byte length cannot carry 1000 bytes: the framer says
    # so, before anything listens.
    assert main(["echo", "--port", "0", "--framing", "length:1", "--max-size", "1000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("framing: error: ")
    assert err.count("\n") == 1


# -- the command line as a program ------------------------------------------------


def test_module_entry_point_runs(launcher: Launcher) -> None:
    proc = launcher.start("--version")
    assert proc.wait() == 0
    assert proc.out == f"framing {framing.__version__}\n"


def test_console_script_is_installed() -> None:
    # The venv's `framing` script, as pyproject's [project.scripts] declares it.
    script = Path(sys.executable).with_name("framing")
    out = run_tool([str(script), "--version"])
    assert out == f"framing {framing.__version__}\n".encode()


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_echo_subcommand_serves_and_stops(launcher: Launcher, loop: str) -> None:
    server, port = launcher.echo("--loop", loop)
    assert server.out.startswith(f"listening on 127.0.0.1:{port} (Raw())\n")
    assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "trio"])
def test_a_second_stop_signal_does_not_turn_a_clean_stop_into_a_death(
    launcher: Launcher, loop: str
) -> None:
    """Ctrl-C reaches every process of the terminal's group, and a service manager may
    send SIGTERM as well: the second signal, queued while the first stop runs, must
    not kill the process by signal once the stop is done (it did, on trio)."""
    for _ in range(3):  # a race: a few tries
        server, _ = launcher.echo("--loop", loop)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.send_signal(signal.SIGINT)
        assert server.wait() == 0, server.err


def test_echo_uvloop_serves_or_says_it_is_missing(launcher: Launcher) -> None:
    server = launcher.start("echo", "--port", "0", "--loop", "uvloop")
    if importlib.util.find_spec("uvloop") is None:
        assert server.wait() == 1
        assert server.err == (
            "framing: error: --loop uvloop needs uvloop, which is not installed "
            "(pip install uvloop)\n"
        )
    else:
        server.port()
        assert server.stop(signal.SIGTERM) == 0
