r"""JSON-RPC 2.0 over JSON lines: a server on serve_pipelined, a client on Requester.

One JSON object per line (``Lines()``: ``\n``, or ``\r\n``). The client may send
many calls before the first answer; the server answers each as it completes,
so answers come back in any order, and the client matches them by ``id``::

    --> {"jsonrpc":"2.0","method":"sleep","params":[0.5,"slow"],"id":1}
    --> {"jsonrpc":"2.0","method":"add","params":[1,2],"id":2}
    <-- {"jsonrpc":"2.0","result":3,"id":2}
    <-- {"jsonrpc":"2.0","result":"slow","id":1}
    --> {not json
    <-- {"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error: ..."},"id":null}

Methods: ``add(a, b)``, ``echo(value)``, ``sleep(seconds, value=None)``. Errors
are error objects with the specification's codes; a line that is not JSON gets
a parse error, and the connection carries on. A line over 64 KiB is a framing
error: the server logs it and closes that connection only.

Run it::

    python -m examples.jsonrpc serve --port 7001            # --backend trio, --host
    python -m examples.jsonrpc call --port 7001 add 1 2     # prints 3
    python -m examples.jsonrpc call --port 7001 echo '{"a": [1, 2]}'
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any

import anyio

from framing import (
    FramedStream,
    Lines,
    Requester,
    RequestFailed,
    connect,
    serve,
    serve_pipelined,
)

__all__ = [
    "MAX_LINE",
    "METHODS",
    "JsonRpcClient",
    "RpcError",
    "handle_connection",
    "main",
    "open_client",
    "respond",
]

logger = logging.getLogger("examples.jsonrpc")

# The longest request line: far more than any call here needs, and the most
# bytes one connection can make the server hold.
MAX_LINE = 64 * 1024
# The specification's error codes (JSON-RPC 2.0, section 5.1).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# sleep's limit: the longest a request may keep its slot.
MAX_SLEEP = 10.0


class RpcError(Exception):
    """A JSON-RPC error object: raised by a method on the server, and by a call on the client.

    Attributes:
        code: the error code (``-32601`` for a method not found...).
        message: the error's message.
        data: the error's ``data`` member, or ``None``.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


# -- the methods -----------------------------------------------------------------


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RpcError(INVALID_PARAMS, f"Invalid params: {name} must be a number")
    return value


async def add(a: Any, b: Any) -> float:
    """Return ``a + b``."""
    return _number(a, "a") + _number(b, "b")


async def echo(value: Any) -> Any:
    """Return ``value`` as it came."""
    return value


async def sleep(seconds: Any, value: Any = None) -> Any:
    """Wait ``seconds`` (at most 10), then return ``value``: an answer that takes its time."""
    if not 0 <= _number(seconds, "seconds") <= MAX_SLEEP:
        raise RpcError(INVALID_PARAMS, f"Invalid params: seconds must be from 0 to {MAX_SLEEP}")
    await anyio.sleep(seconds)
    return value


METHODS: dict[str, Callable[..., Awaitable[Any]]] = {"add": add, "echo": echo, "sleep": sleep}


# -- the server ------------------------------------------------------------------


def _dump(message: dict[str, Any]) -> bytes:
    # json.dumps escapes every newline inside strings: the line stays one line.
    return json.dumps(message, separators=(",", ":")).encode()


def _error(request_id: Any, code: int, message: str) -> bytes:
    error = {"code": code, "message": message}
    return _dump({"jsonrpc": "2.0", "error": error, "id": request_id})


class _Refused(Exception):
    """A request answered with an error object before any method runs."""

    def __init__(self, request_id: Any, code: int, message: str) -> None:
        super().__init__(message)
        self.reply = _error(request_id, code, message)


_Parsed = tuple[tuple[bool, Any], Callable[..., Awaitable[Any]], list[Any], dict[str, Any]]


def _parse(line: bytes) -> _Parsed:
    """Check one request line: ((answered, id), method, args, kwargs), or raise :class:`_Refused`.

    ``answered`` is False for a notification (no ``id`` member at all).
    """
    try:
        request = json.loads(line)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError alike
        raise _Refused(None, PARSE_ERROR, f"Parse error: {exc}") from None
    if not isinstance(request, dict):
        raise _Refused(None, INVALID_REQUEST, "Invalid Request: not an object (no batches here)")
    request_id = request.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
        raise _Refused(None, INVALID_REQUEST, "Invalid Request: id must be a string or integer")
    name = request.get("method")
    params = request.get("params", [])
    if request.get("jsonrpc") != "2.0" or not isinstance(name, str):
        raise _Refused(request_id, INVALID_REQUEST, "Invalid Request")
    if not isinstance(params, list | dict):
        raise _Refused(request_id, INVALID_REQUEST, "Invalid Request: bad params")
    method = METHODS.get(name)
    if method is None:
        raise _Refused(request_id, METHOD_NOT_FOUND, f"Method not found: {name}")
    args, kwargs = (params, {}) if isinstance(params, list) else ([], params)
    try:
        inspect.signature(method).bind(*args, **kwargs)
    except TypeError as exc:
        raise _Refused(request_id, INVALID_PARAMS, f"Invalid params: {exc}") from None
    return ("id" in request, request_id), method, args, kwargs


async def respond(line: bytes) -> bytes | None:
    """Answer one request line: a result, an error object, or ``None`` for a notification.

    Never raises for anything a peer sends: bad JSON, a bad request, an
    unknown method or bad params are each answered with an error object.
    """
    try:
        (answered, request_id), method, args, kwargs = _parse(line)
    except _Refused as refused:
        return refused.reply
    try:
        answer = _dump(
            {"jsonrpc": "2.0", "result": await method(*args, **kwargs), "id": request_id}
        )
    except RpcError as exc:
        answer = _error(request_id, exc.code, exc.message)
    except Exception:
        logger.exception("method %s failed", method.__name__)
        answer = _error(request_id, INTERNAL_ERROR, "Internal error")
    return answer if answered else None


async def handle_connection(stream: FramedStream[bytes]) -> None:
    """One connection: requests answered concurrently, each as soon as it is ready."""
    await serve_pipelined(stream, respond, max_in_flight=32)


# -- the client ------------------------------------------------------------------


class _JsonLines:
    """Messages as JSON objects over a framed stream of lines: what Requester sends and reads."""

    def __init__(self, stream: FramedStream[bytes]) -> None:
        self.stream = stream

    async def send(self, item: dict[str, Any], /) -> None:
        await self.stream.send(_dump(item))

    async def receive(self) -> dict[str, Any]:
        reply = json.loads(await self.stream.receive())
        if not isinstance(reply, dict):
            raise ValueError(f"a reply that is not a JSON object: {reply!r}")
        return reply


def _message_id(message: dict[str, Any]) -> Any:
    """The correlation key: the ``id`` that a request and its answer both carry."""
    return message["id"]


class JsonRpcClient:
    """Calls over one connection, many at once, each answer matched by ``id``.

    Use inside ``async with`` (see :func:`open_client`); several tasks may call at once.

    Args:
        stream: a connected stream of ``Lines()``.
        max_in_flight: calls in flight at once; the next waits for an answer.
    """

    def __init__(self, stream: FramedStream[bytes], *, max_in_flight: int = 32) -> None:
        self.stream = stream
        self._calls: Requester[dict[str, Any]] = Requester(
            _JsonLines(stream), key=_message_id, max_in_flight=max_in_flight
        )
        self._next_id = 1

    async def __aenter__(self) -> JsonRpcClient:
        await self._calls.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._calls.__aexit__(exc_type, exc, tb)

    async def call(
        self,
        method: str,
        *params: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (Requester's own, abandoning one call)
    ) -> Any:
        """Call ``method`` with positional ``params``; return its result.

        Raises:
            RpcError: the server answered with an error object.
            framing.RequestTimeout: no answer within ``timeout`` seconds.
            framing.RequestFailed: the connection ended or broke first.
        """
        request_id, self._next_id = self._next_id, self._next_id + 1
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": request_id}
        reply = await self._calls.request(request, timeout=timeout)
        if "error" in reply:
            error = reply["error"]
            raise RpcError(error.get("code", INTERNAL_ERROR), error.get("message", ""))
        return reply.get("result")


@asynccontextmanager
async def open_client(host: str, port: int) -> AsyncIterator[JsonRpcClient]:
    """Connect to a JSON-lines RPC server; close the connection on leaving."""
    async with (
        await connect(host, port, Lines(max_size=MAX_LINE)) as stream,
        JsonRpcClient(stream) as client,
    ):
        yield client


# -- the command line ----------------------------------------------------------------


def _param(text: str) -> Any:
    """A command-line parameter: JSON when it parses (1, "x", [1]), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _serve(host: str, port: int) -> None:
    async with anyio.create_task_group() as tg:
        server = await tg.start(
            partial(serve, handle_connection, Lines(max_size=MAX_LINE), host=host, port=port)
        )
        bound_host, bound_port = server.addresses[0]
        print(f"listening on {bound_host}:{bound_port}", flush=True)


async def _call(host: str, port: int, method: str, params: list[Any], seconds: float) -> None:
    async with open_client(host, port) as client:
        print(json.dumps(await client.call(method, *params, timeout=seconds)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` or ``call`` from the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m examples.jsonrpc", description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve JSON-RPC over JSON lines")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=7001, help="0 for any free port")
    calling = commands.add_parser("call", help="call one method; print its result as JSON")
    calling.add_argument("--host", default="127.0.0.1")
    calling.add_argument("--port", type=int, default=7001)
    calling.add_argument("--timeout", type=float, default=10.0)
    calling.add_argument("method")
    calling.add_argument("params", nargs="*", type=_param, help="each parsed as JSON if it can")
    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(_serve, args.host, args.port, backend=args.backend)
        return 0
    try:
        anyio.run(
            _call,
            args.host,
            args.port,
            args.method,
            args.params,
            args.timeout,
            backend=args.backend,
        )
    except RpcError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, RequestFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
