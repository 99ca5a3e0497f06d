"""protocols/runner.py: the loop choice, exit statuses, one-line errors, signals."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
import sniffio

from protocols.runner import (
    CommandError,
    add_loop_argument,
    os_error_reason,
    port_number,
    run,
)

LOOPS = ["asyncio", "trio"]


@pytest.mark.parametrize("loop", LOOPS)
def test_run_returns_main_status(loop: str) -> None:
    async def main() -> int:
        await anyio.lowlevel.checkpoint()
        return 3

    assert run(main, loop=loop) == 3


@pytest.mark.parametrize("loop", LOOPS)
def test_run_uses_the_chosen_backend(loop: str) -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(sniffio.current_async_library())

    assert run(main, loop=loop) == 0
    assert seen == [loop]


@pytest.mark.parametrize("loop", LOOPS)
def test_run_non_int_result_is_status_zero(loop: str) -> None:
    async def main() -> object:
        return "done"

    assert run(main, loop=loop) == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_run_command_error_prints_one_line(loop: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        raise CommandError("the port is taken", status=4)

    assert run(main, loop=loop) == 4
    err = capsys.readouterr().err
    assert err == "framing: error: the port is taken\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_run_command_error_from_a_child_task_is_unwrapped(
    loop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fail() -> None:
        raise CommandError("child failed")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fail)
            await anyio.sleep(10)

    assert run(main, loop=loop) == 1
    assert capsys.readouterr().err == "framing: error: child failed\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_run_other_errors_propagate(loop: str) -> None:
    async def main() -> None:
        raise ZeroDivisionError

    raised = False
    try:
        run(main, loop=loop)
    except* ZeroDivisionError:
        raised = True
    assert raised


def test_run_uvloop_runs_or_says_it_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    async def main() -> None:
        import asyncio

        seen.append(type(asyncio.get_running_loop()).__module__)

    status = run(main, loop="uvloop")
    if importlib.util.find_spec("uvloop") is None:
        assert status == 1
        assert seen == []
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "uvloop" in err
        assert "not installed" in err
    else:
        assert status == 0
        assert seen[0].startswith("uvloop")


def test_run_unknown_loop_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        raise AssertionError("must not run")

    assert run(main, loop="tokio") == 1
    assert "unknown event loop 'tokio'" in capsys.readouterr().err


def test_os_error_reason_uses_the_system_words() -> None:
    # asyncio and trio word a refused connection differently; errno does not.
    assert os_error_reason(OSError(errno.ECONNREFUSED, "Connect call failed")) == (
        "connection refused"
    )
    assert os_error_reason(OSError("no errno here")) == "no errno here"


@pytest.mark.parametrize(("text", "port"), [("0", 0), ("53", 53), ("65535", 65535)])
def test_port_number_accepts_ports(text: str, port: int) -> None:
    assert port_number(text) == port


@pytest.mark.parametrize("text", ["65536", "-1", "http", "", "1e3"])
def test_port_number_rejects_others(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a port number"):
        port_number(text)


def test_add_loop_argument_defaults_to_asyncio() -> None:
    parser = argparse.ArgumentParser()
    add_loop_argument(parser)
    assert parser.parse_args([]).loop == "asyncio"
    assert parser.parse_args(["--loop", "trio"]).loop == "trio"
    with pytest.raises(SystemExit):
        parser.parse_args(["--loop", "curio"])


# A program that waits forever after saying so, and says when it cleans up.
_WAITER = textwrap.dedent(
    """
    import sys
    import anyio
    from protocols.runner import run

    async def main():
        try:
            print("ready", flush=True)
            await anyio.sleep_forever()
        finally:
            print("cleaned up", flush=True)

    sys.exit(run(main, loop=sys.argv[1]))
    """
)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_main_and_exits_zero(
    loop: str, signum: signal.Signals, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    err = tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", _WAITER, loop], stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while out.read_text() != "ready\n":
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the program never said it was ready"
            time.sleep(0.02)
        proc.send_signal(signum)
        status = proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert status == 0, err.read_text()
    assert out.read_text() == "ready\ncleaned up\n"
    assert f"stopping on {signum.name}" in err.read_text()
