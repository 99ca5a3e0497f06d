"""protocols/connect.py: ``framing connect`` against ``framing echo``, in every framing."""

from __future__ import annotations

import errno
import io
import socket
import subprocess
from functools import partial

import anyio
import pytest

from framing.raw import Raw
from framing.server import serve
from framing.stream import FramedStream
from protocols.connect import _lost_reason, render, talk
from protocols.runner import CommandError
from tests.protocols.test_cli import FRAMING, ROOT, TIMEOUT, Launcher, launcher
from tests.protocols.test_echo import LogLines, start_echo

__all__ = ["launcher"]  # the fixture, imported for this module's tests

LOOPS = ["asyncio", "trio"]
SPECS = ["raw", "length:2", "length:4:little", "varint", "line", "delimiter:00", "netstring"]

# Printable UTF-8 comes back as text, an empty line as an empty line, and a
# line with a tab (not printable) as hex.
LINES = b"hello\nw\xc3\xb6rld\n\ntab\there\n"
PRINTED = b"hello\nw\xc3\xb6rld\n\n74 61 62 09 68 65 72 65\n"


def connect_cli(launcher: Launcher, port: int, *args: str, data: bytes) -> tuple[int, bytes, str]:
    """Run ``framing connect 127.0.0.1 PORT ARGS`` with ``data`` on stdin, to its end."""
    client = launcher.start("connect", "127.0.0.1", str(port), *args, stdin=subprocess.PIPE)
    assert client.proc.stdin is not None
    try:
        client.proc.stdin.write(data)
        client.proc.stdin.close()
    except BrokenPipeError:
        pass  # it exited already; the status says why
    status = client.wait()
    return status, client.out_path.read_bytes(), client.err


# -- render ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (b"hello", b"hello\n"),
        (b"", b"\n"),
        ("grüße".encode(), "grüße\n".encode()),
        (b"\x00\x01\xff", b"00 01 ff\n"),
        (b"a\nb", b"61 0a 62\n"),
        (b"\xc3", b"c3\n"),
    ],
)
def test_render_text_when_printable_else_hex(message: bytes, line: bytes) -> None:
    assert render(message) == line


def test_render_hex_forced() -> None:
    assert render(b"hi", hex_output=True) == b"68 69\n"


# -- against the echo server ------------------------------------------------------------


# Client and server on different loops, swapped from one framing to the next, so
# that each side runs on both without doubling the run time.
@pytest.mark.parametrize(
    ("spec", "server_loop", "client_loop"),
    [(spec, LOOPS[i % 2], LOOPS[(i + 1) % 2]) for i, spec in enumerate(SPECS)],
)
def test_connect_against_echo_in_each_framing(
    launcher: Launcher, spec: str, server_loop: str, client_loop: str
) -> None:
    server, port = launcher.echo("--framing", spec, "--loop", server_loop)
    status, out, err = connect_cli(
        launcher, port, "--framing", spec, "--loop", client_loop, data=LINES
    )
    assert status == 0, err
    # Raw has no messages, only bytes: it behaves as netcat and echoes the input.
    assert out == (LINES if spec == "raw" else PRINTED)
    # End of input half-closed the connection; the server saw it, then closed.
    server.wait_for(r"EOF\.\n\S+ closed")


def test_connect_hex_output(launcher: Launcher) -> None:
    port = launcher.echo("--framing", "netstring")[1]
    status, out, err = connect_cli(launcher, port, "--framing", "netstring", "--hex", data=b"hi\n")
    assert status == 0, err
    assert out == b"68 69\n"


def test_connect_raw_hex_prints_each_chunk_in_hex(launcher: Launcher) -> None:
    port = launcher.echo()[1]
    status, out, err = connect_cli(launcher, port, "--hex", data=b"hi\n")
    assert status == 0, err
    assert out.replace(b"\n", b" ").split() == [b"68", b"69", b"0a"]


def test_connect_many_lines_all_come_back(launcher: Launcher) -> None:
    port = launcher.echo("--framing", "length:2")[1]
    data = b"".join(b"line %d\n" % i for i in range(5000))
    status, out, err = connect_cli(launcher, port, "--framing", "length:2", data=data)
    assert status == 0, err
    assert out == data


def test_connect_exits_when_the_server_closes_first(launcher: Launcher) -> None:
    port = launcher.echo("--framing", "line", "--close-on", "q")[1]
    client = launcher.start(
        "connect", "127.0.0.1", str(port), "--framing", "line", stdin=subprocess.PIPE
    )
    assert client.proc.stdin is not None
    # Standard input stays open: the client must still end, because the server did.
    client.proc.stdin.write(b"a\nq\n")
    client.proc.stdin.flush()
    assert client.wait() == 0, client.err
    assert client.out == "a\nq\n"


def test_connect_skips_a_line_the_framing_cannot_carry_and_exits_1(launcher: Launcher) -> None:
    """The other lines are sent and answered; the exit status says one was not (issue 12)."""
    port = launcher.echo("--framing", "length:1")[1]
    data = b"short\n" + b"x" * 300 + b"\nlast\n"
    status, out, err = connect_cli(launcher, port, "--framing", "length:1", data=data)
    assert status == 1, err
    assert out == b"short\nlast\n"
    first, last = err.splitlines()
    assert first == (
        "framing: error: line not sent: LengthPrefixed(width=1): "
        "cannot encode a message of 300 bytes: the limit is 255 bytes"
    )
    assert last == "framing: error: 1 line not sent: the framing cannot carry them"


@pytest.mark.anyio
async def test_connect_exits_1_when_the_replies_break_the_framing() -> None:
    """A reply in lines read as length:2: exit 1, the framer's reason on stderr (issue 12)."""

    async def wrong_framing(stream: FramedStream[bytes]) -> None:
        # Read the client's line and its end first: closing with bytes unread
        # would reset the connection, and the client would see that instead.
        async for _ in stream:
            pass
        await stream.send(b"ERR unknown command\n")

    async with anyio.create_task_group() as tg:
        server = await tg.start(partial(serve, wrong_framing, Raw()))
        with anyio.fail_after(TIMEOUT):
            result = await anyio.run_process(
                [*FRAMING, "connect", "127.0.0.1", str(server.port), "--framing", "length:2"],
                input=b"hello\n",
                cwd=ROOT,
                check=False,
            )
        tg.cancel_scope.cancel()
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == (
        "framing: error: the server broke the framing: LengthPrefixed(width=2): "
        "stream ended 20 bytes into a 17748-byte frame\n"
    )


@pytest.mark.anyio
async def test_talk_a_line_not_sent_is_a_command_error_after_the_others() -> None:
    sink = io.BytesIO()
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, LogLines(), framing="length:1")
        with (
            anyio.fail_after(TIMEOUT),
            pytest.raises(CommandError, match=r"^2 lines not sent: the framing cannot carry them$"),
        ):
            await talk(
                "127.0.0.1",
                port,
                framing="length:1",
                source=io.BytesIO(b"a\n" + b"x" * 256 + b"\nb\n" + b"y" * 300 + b"\n"),
                sink=sink,
            )
        tg.cancel_scope.cancel()
    assert sink.getvalue() == b"a\nb\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_connect_refused_is_a_one_line_error(launcher: Launcher, loop: str) -> None:
    # A bound socket that does not listen: connecting to it is refused, and no
    # other program can take the port meanwhile.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        status, out, err = connect_cli(launcher, port, "--loop", loop, data=b"")
    assert status == 1
    assert out == b""
    assert err == f"framing: error: cannot connect to 127.0.0.1:{port}: connection refused\n"


# -- in-process, on both anyio backends ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("spec", ["length:2", "line"])
async def test_talk_sends_lines_and_writes_messages(spec: str) -> None:
    sink = io.BytesIO()
    async with anyio.create_task_group() as tg:
        port = await start_echo(tg, LogLines(), framing=spec)
        with anyio.fail_after(TIMEOUT):
            await talk("127.0.0.1", port, framing=spec, source=io.BytesIO(LINES), sink=sink)
        tg.cancel_scope.cancel()
    assert sink.getvalue() == PRINTED


@pytest.mark.anyio
async def test_talk_server_broke_the_framing_is_a_command_error() -> None:
    async def garbage(stream: FramedStream[bytes]) -> None:
        await stream.send(b"x:not a netstring,")

    async with anyio.create_task_group() as tg:
        server = await tg.start(partial(serve, garbage, Raw()))
        with anyio.fail_after(TIMEOUT), pytest.raises(CommandError, match="broke the framing"):
            await talk(
                "127.0.0.1",
                server.port,
                framing="netstring",
                source=io.BytesIO(b"x\n"),
                sink=io.BytesIO(),
            )
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_talk_bad_framing_size_is_a_command_error() -> None:
    run = partial(talk, "127.0.0.1", 1, framing="length:1", max_size=1000)
    with pytest.raises(CommandError, match="max_size"):
        await run(source=io.BytesIO(), sink=io.BytesIO())


def test_connection_lost_names_the_socket_error() -> None:
    """anyio's BrokenResourceError has no text: the reason is its cause's (it printed nothing)."""
    broken = anyio.BrokenResourceError()
    broken.__cause__ = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    assert _lost_reason(broken) == "connection reset by peer"
    assert _lost_reason(anyio.BrokenResourceError()) == "BrokenResourceError"
