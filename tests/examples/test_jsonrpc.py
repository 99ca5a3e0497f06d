"""examples/jsonrpc.py: JSON-RPC over JSON lines, served by serve_pipelined, called by Requester.

In-process tests run on asyncio and trio; the command line is run as a user
runs it, and socat (a real line client) talks to the server byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest

from examples.jsonrpc import MAX_LINE, RpcError, handle_connection, open_client
from framing import FramedStream, Lines, RequestTimeout, connect, serve
from tests.conftest import require_tool

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running() -> AsyncIterator[int]:
    """Serve the example on a free loopback port; yield the port; stop on leaving."""
    async with anyio.create_task_group() as tg:
        server = await tg.start(
            partial(serve, handle_connection, Lines(max_size=MAX_LINE), host="127.0.0.1", port=0)
        )
        yield server.addresses[0][1]
        tg.cancel_scope.cancel()


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[FramedStream[bytes]]:
    async with await connect("127.0.0.1", port, Lines(max_size=MAX_LINE)) as stream:
        yield stream


def request(method: str, params: Any, request_id: Any) -> bytes:
    message = {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}
    return json.dumps(message).encode()


async def test_concurrent_calls_each_get_their_own_result() -> None:
    results: dict[int, Any] = {}

    async def call(client: Any, i: int) -> None:
        results[i] = await client.call("sleep", (i % 5) / 100, i, timeout=10)

    with anyio.fail_after(20):
        async with running() as port, open_client("127.0.0.1", port) as client:
            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(call, client, i)
            assert await client.call("add", 2, 3.5) == 5.5
            assert await client.call("echo", {"a": [1, "b"]}) == {"a": [1, "b"]}
    assert results == {i: i for i in range(40)}


async def test_a_quick_answer_overtakes_a_slow_one_on_the_wire() -> None:
    """Both requests in one write; the sleep finishes last, so its answer comes second."""
    with anyio.fail_after(20):
        async with running() as port, raw_client(port) as stream:
            await stream.send_many([request("sleep", [0.5, "slow"], 1), request("add", [1, 2], 2)])
            first = json.loads(await stream.receive())
            second = json.loads(await stream.receive())
    assert first == {"jsonrpc": "2.0", "result": 3, "id": 2}
    assert second == {"jsonrpc": "2.0", "result": "slow", "id": 1}


async def test_a_slow_call_out_of_order_through_the_client() -> None:
    finished: list[str] = []

    async def call(client: Any, name: str, seconds: float) -> None:
        await client.call("sleep", seconds, name, timeout=10)
        finished.append(name)

    with anyio.fail_after(20):
        async with (
            running() as port,
            open_client("127.0.0.1", port) as client,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(call, client, "slow", 0.5)
            await anyio.wait_all_tasks_blocked()  # slow is asked first, and waits
            tg.start_soon(call, client, "fast", 0)
    assert finished == ["fast", "slow"]


@pytest.mark.parametrize(
    ("method", "params", "code", "message"),
    [
        ("nope", [], -32601, "Method not found: nope"),
        ("add", [1], -32602, "Invalid params: missing a required argument: 'b'"),
        ("add", ["x", 1], -32602, "Invalid params: a must be a number"),
        ("sleep", [60], -32602, "Invalid params: seconds must be from 0 to 10.0"),
    ],
)
async def test_errors_are_error_objects_raised_as_rpc_error(
    method: str, params: list[Any], code: int, message: str
) -> None:
    with anyio.fail_after(20):
        async with running() as port, open_client("127.0.0.1", port) as client:
            with pytest.raises(RpcError) as caught:
                await client.call(method, *params)
            assert (caught.value.code, caught.value.message) == (code, message)
            assert await client.call("add", 1, 1) == 2  # the connection carries on


async def test_a_malformed_line_gets_a_parse_error_and_the_connection_carries_on() -> None:
    with anyio.fail_after(20):
        async with running() as port, raw_client(port) as stream:
            await stream.send(b'{"jsonrpc": "2.0", "method": "add", "params": [1, 2')
            parse_error = json.loads(await stream.receive())
            await stream.send(b"\xff\xfe not utf-8")
            not_utf8 = json.loads(await stream.receive())
            await stream.send(request("add", [1, 2], "after"))
            after = json.loads(await stream.receive())
    assert parse_error["id"] is None
    assert parse_error["error"]["code"] == -32700
    assert parse_error["error"]["message"].startswith("Parse error: ")
    assert not_utf8["error"]["code"] == -32700
    assert after == {"jsonrpc": "2.0", "result": 3, "id": "after"}


@pytest.mark.parametrize(
    ("line", "request_id"),
    [
        (b"[]", None),
        (b"42", None),
        (b'{"jsonrpc": "2.0", "method": 5, "id": 7}', 7),
        (b'{"jsonrpc": "1.0", "method": "add", "id": 8}', 8),
        (b'{"jsonrpc": "2.0", "method": "add", "params": 3, "id": 9}', 9),
        (b'{"jsonrpc": "2.0", "method": "add", "id": true}', None),
    ],
)
async def test_an_invalid_request_is_answered_invalid_request(line: bytes, request_id: Any) -> None:
    with anyio.fail_after(20):
        async with running() as port, raw_client(port) as stream:
            await stream.send(line)
            reply = json.loads(await stream.receive())
    assert reply["error"]["code"] == -32600
    assert reply["id"] == request_id


async def test_a_notification_gets_no_answer() -> None:
    with anyio.fail_after(20):
        async with running() as port, raw_client(port) as stream:
            await stream.send(b'{"jsonrpc": "2.0", "method": "echo", "params": ["quiet"]}')
            await stream.send(request("echo", ["loud"], 1))
            assert json.loads(await stream.receive())["result"] == "loud"


async def test_a_line_over_the_limit_closes_that_connection_only() -> None:
    with anyio.fail_after(20):
        async with running() as port, open_client("127.0.0.1", port) as bystander:
            async with raw_client(port) as stream:
                await stream.transport_stream.send(b"x" * (MAX_LINE + 10))
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            assert await bystander.call("echo", "still here") == "still here"


async def test_call_timeout_gives_up_that_call_only() -> None:
    with anyio.fail_after(20):
        async with running() as port, open_client("127.0.0.1", port) as client:
            with pytest.raises(RequestTimeout):
                await client.call("sleep", 0.5, timeout=0.05)
            assert await client.call("add", 1, 2) == 3  # the late answer was dropped


async def test_socat_as_a_real_line_client() -> None:
    socat = require_tool("socat")
    lines = request("echo", ["hi"], 1) + b"\n{oops\n"
    with anyio.fail_after(20):
        async with running() as port:
            done = await anyio.run_process(
                [socat, "-t", "5", "-", f"TCP:127.0.0.1:{port}"], input=lines
            )
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert replies[0] == {"jsonrpc": "2.0", "result": "hi", "id": 1}
    assert replies[1]["error"]["code"] == -32700


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_serve_and_call(backend: str) -> None:
    command = [sys.executable, "-m", "examples.jsonrpc", "--backend", backend]
    server = subprocess.Popen([*command, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "listening on 127.0.0.1:PORT"; the process exits if not
        assert line.startswith("listening on 127.0.0.1:"), line
        port = line.rsplit(":", 1)[1].strip()

        def call(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*command, "call", "--port", port, *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        added = call("add", "1", "2")
        assert (added.returncode, added.stdout) == (0, "3\n")
        echoed = call("echo", '{"a": [1, 2]}')
        assert json.loads(echoed.stdout) == {"a": [1, 2]}
        missing = call("nope")
        assert missing.returncode == 1
        assert missing.stderr == "error -32601: Method not found: nope\n"
    finally:
        server.terminate()
        server.wait(timeout=10)
