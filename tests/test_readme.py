"""The README's Python examples run as written."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the README server exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


def test_readme_has_the_four_examples() -> None:
    assert len(python_blocks()) == 4


def test_readme_sans_io_example_runs() -> None:
    exec(compile(python_blocks()[0], "README.md", "exec"), {})


def test_readme_server_and_client_examples_run() -> None:
    _, server_code, client_code = python_blocks()[:3]
    port = int(re.search(r"port=(\d+)", server_code).group(1))  # type: ignore[union-attr]
    server = subprocess.Popen([sys.executable, "-c", server_code], text=True)
    try:
        wait_for_port(port, server)
        client = subprocess.run(
            [sys.executable, "-c", client_code],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert client.stdout == "b'HELLO'\nb'WORLD'\n"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_readme_pipelined_example_runs(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """serve runs a serve_pipelined handler; Requester matches the replies, on both backends."""
    (code,) = [block for block in python_blocks() if "serve_pipelined" in block]
    body, run = code.rstrip().rsplit("\n", 1)
    assert run == "anyio.run(main)"
    namespace: dict[str, Any] = {}
    exec(compile(body, "README.md", "exec"), namespace)

    async def bounded() -> None:
        with anyio.fail_after(30):
            await namespace["main"]()

    anyio.run(bounded, backend=backend)
    assert capsys.readouterr().out == "b'1 2'\n[b'3 7', b'2 7']\n"


def test_readme_haproxy_config_is_the_one_the_tests_run() -> None:
    from tests.protocols.test_haproxy import CONFIG

    blocks = re.findall(r"```haproxy\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks == [CONFIG]


def test_readme_dnsdist_config_is_the_one_the_tests_run() -> None:
    from tests.protocols.dns.test_dnsdist import CONFIG

    blocks = re.findall(r"```lua\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks == [CONFIG.format(port=53, first=5301, second=5302)]
