r"""A memcached server (a subset of the text protocol) built on framing.

The memcached text protocol mixes two framings on one connection. Commands are
lines ending in ``\r\n``; a ``set`` or ``add`` line announces how many bytes of
data follow, and those bytes (plus a closing ``\r\n``) are a block of fixed
size, which may itself contain ``\r\n``::

    client: | set k 0 0 7\r\n | ab\r\ncd\r\n | get k\r\n |
              a command line    a data block  a command line
                                (7 + 2 bytes)
    server: | STORED\r\n | VALUE k 0 7\r\nab\r\ncd\r\nEND\r\n |

So the connection reads lines with :class:`~framing.Lines`, switches to
:class:`~framing.FixedSize` for each data block
(:meth:`~framing.FramedStream.switch_framer` moves the bytes already read, so
nothing is lost), and switches back. ``VALUE`` replies are written with
:meth:`~framing.FramedStream.send_bytes`, already in wire form: they contain
data blocks, which the line framer would refuse to encode.

Commands: ``get`` and ``gets`` (several keys), ``set``, ``add``, ``delete``
(``noreply`` on the last three), ``version`` and ``quit``. Anything else is
answered ``ERROR``. Replies, errors included, are byte for byte those of
memcached 1.6: ``tests/examples/test_memcached.py`` runs both on the same
command scripts.

Limits, as memcached has them:

- a value over 1 MiB is refused with ``SERVER_ERROR object too large for
  cache`` and its block is read and discarded in 64 KiB pieces, never held
  whole (memcached counts its item header in that 1 MiB too, so its own
  largest value is some 50 bytes smaller);
- a key over 250 bytes gets ``CLIENT_ERROR bad command line format``;
- a command line over 2048 bytes closes the connection unless it is a ``get``
  or ``gets`` (those may name many keys, up to 64 KiB here);
- the store holds 64 MiB of keys and values; past that, the least recently
  used items are evicted;
- a command line or data block begun must be finished within 30 s
  (``message_timeout``), or the connection closes.

Where it departs from memcached, on purpose or for brevity: a value of
exactly 1 MiB is stored; a long non-``get`` line is refused however it was
split (memcached answers it when it arrives in one read); numbers must be
plain decimals in range (memcached's ``strtol`` also takes a trailing tab and
wraps big flags); replies to earlier pipelined commands are kept when a
``get`` names a key over 250 bytes (memcached drops the unsent ones).

Run it with ``python -m examples.memcached --port 11211``, or from a task
group: ``server = await tg.start(serve_memcached)`` listens on a free port,
``server.port``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

import anyio
from anyio import TASK_STATUS_IGNORED, EndOfStream
from anyio.abc import TaskStatus

from framing import FixedSize, FramedStream, Framer, Lines, ServerInfo, serve

__all__ = ["Item", "Store", "command_lines", "handle_connection", "main", "serve_memcached"]

MAX_KEY: Final = 250  # memcached's KEY_MAX_LENGTH
MAX_VALUE: Final = 1024 * 1024  # memcached's default item size limit (-I 1m)
MAX_LINE: Final = 2048  # memcached closes a longer line unless it is a get
MAX_GET_LINE: Final = 65536  # our cap on a get line (memcached has none)
SWALLOW_PIECE: Final = 65536  # an oversize block is discarded this much at a time
MAX_STORE: Final = 64 * 1024 * 1024  # memcached's default memory limit (-m 64)
MESSAGE_TIMEOUT: Final = 30.0  # seconds for a begun line or block (a stalled client)
RELATIVE_LIMIT: Final = 30 * 24 * 3600  # a larger exptime is a Unix time, not seconds

# The memcached release whose replies these copy. Some clients (libmemcached)
# read the version as numbers to choose what to send, so it looks like one.
VERSION: Final = b"1.6.18"

# A number as memcached's strtol accepts it, minus the oddities (spaces, tabs).
_NUMBER = re.compile(rb"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Item:
    r"""One stored value.

    Attributes:
        value: the data block, without its closing ``\r\n``.
        flags: the client's 32-bit flags, returned as given.
        expires: the Unix time at which the item is gone, or ``None`` for never.
        cas: the unique number ``gets`` reports (new on every store).
    """

    value: bytes
    flags: int
    expires: float | None
    cas: int


class Store:
    """The items, by key: expiry on read, least recently used evicted first.

    Args:
        max_bytes: keys and values held at most, together.
        clock: the current Unix time (``time.time``; tests pass their own).
    """

    def __init__(
        self, *, max_bytes: int = MAX_STORE, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.held = 0
        self._items: OrderedDict[bytes, Item] = OrderedDict()  # oldest use first
        self._cas = 0

    def get(self, key: bytes) -> Item | None:
        """Return the live item of ``key`` (and mark it used), or ``None``."""
        item = self._items.get(key)
        if item is not None and item.expires is not None and item.expires <= self.clock():
            self.delete(key)
            return None
        if item is not None:
            self._items.move_to_end(key)
        return item

    def set(self, key: bytes, value: bytes, flags: int, exptime: int) -> None:
        """Store ``value`` under ``key``, replacing any item.

        ``exptime`` is memcached's: 0 never expires, up to 30 days is seconds
        from now, more is a Unix time, and a negative one has already passed.
        """
        self.delete(key)
        if exptime == 0:
            expires = None
        elif 0 < exptime <= RELATIVE_LIMIT:
            expires = self.clock() + exptime
        else:
            expires = float(exptime)  # a Unix time (or, if negative, the past)
        self._cas += 1
        self._items[key] = Item(value, flags, expires, self._cas)
        self.held += len(key) + len(value)
        while self.held > self.max_bytes:
            oldest = next(iter(self._items))
            self.delete(oldest)

    def add(self, key: bytes, value: bytes, flags: int, exptime: int) -> bool:
        """Store ``value`` only if ``key`` has no live item; return whether it did."""
        if self.get(key) is not None:
            return False
        self.set(key, value, flags, exptime)
        return True

    def delete(self, key: bytes) -> bool:
        """Remove the item of ``key``; return whether there was one (expired or not)."""
        item = self._items.pop(key, None)
        if item is None:
            return False
        self.held -= len(key) + len(item.value)
        return True


def _long_line(head: bytes) -> str | None:
    """The line framer's early check: memcached's rule for a line that has not ended.

    Called with the first ``MAX_LINE + 1`` bytes of each line (all of a shorter
    one), as soon as they have arrived; a reason refuses the line.
    """
    if len(head) <= MAX_LINE or head.lstrip(b" ").startswith((b"get ", b"gets ")):
        return None
    return f"a command line over {MAX_LINE} bytes that is not a get"


def command_lines() -> Lines:
    r"""The framer of command lines: ``\r\n`` (or ``\n``) ends them; replies end in ``\r\n``."""
    return Lines(
        line_ending=b"\r\n", max_size=MAX_GET_LINE, check=_long_line, check_size=MAX_LINE + 1
    )


def _number(token: bytes, low: int, high: int) -> int | None:
    """The integer ``token`` spells, if it does and lies in ``[low, high]``; else ``None``."""
    if _NUMBER.fullmatch(token) is None:
        return None
    value = int(token)
    return value if low <= value <= high else None


async def _send_values(
    stream: FramedStream[bytes], store: Store, keys: Sequence[bytes], *, cas: bool
) -> None:
    r"""Reply to ``get``/``gets``: a ``VALUE`` line and its block per key found, then ``END``.

    Each hit goes out as soon as it is found, so one value at a time is held
    however many keys the line names (``get k k k ...`` cannot make us build a
    reply of gigabytes). It is written in wire form with ``send_bytes``: the
    block may contain ``\r\n``, which the line framer would refuse to encode.
    """
    for key in keys:
        item = store.get(key)
        if item is not None:
            header = b"VALUE %s %d %d" % (key, item.flags, len(item.value))
            if cas:
                header += b" %d" % item.cas
            await stream.send_bytes(b"%s\r\n%s\r\n" % (header, item.value))
    await stream.send(b"END")


async def handle_connection(stream: FramedStream[bytes], store: Store) -> None:
    """Answer one client's commands until it quits or goes away.

    ``stream`` must be framed by :func:`command_lines` (``serve`` gives each
    connection a copy). The peer's framing faults (a line too long, the stream
    ending inside a block, a timeout) raise out of here: ``serve`` logs the
    reason and closes this connection only.
    """
    lines = stream.framer
    with contextlib.suppress(EndOfStream):  # the client went away between commands
        while True:
            tokens = [t for t in (await stream.receive()).split(b" ") if t]
            name, args = (tokens[0], tokens[1:]) if tokens else (b"", [])
            if name in (b"get", b"gets") and args:
                if any(len(key) > MAX_KEY for key in args):
                    await stream.send(b"CLIENT_ERROR bad command line format")
                else:
                    await _send_values(stream, store, args, cas=name == b"gets")
            elif name in (b"set", b"add") and len(args) in (4, 5):
                await _store_command(stream, lines, store, name, args)
            elif name == b"delete" and 1 <= len(args) <= 3:
                await _delete(stream, store, args)
            elif name == b"version":
                await stream.send(b"VERSION " + VERSION)
            elif name == b"quit":
                return
            else:
                await stream.send(b"ERROR")  # unknown, or the wrong number of words


async def _store_command(
    stream: FramedStream[bytes],
    lines: Framer[bytes],
    store: Store,
    name: bytes,
    args: list[bytes],
) -> None:
    """``set``/``add <key> <flags> <exptime> <bytes> [noreply]``, then its data block."""
    noreply = args[-1] == b"noreply"  # memcached's test: the last word, whatever the count

    async def reply(text: bytes) -> None:
        if not noreply:
            await stream.send(text)  # while the line framer is in place: it adds \r\n

    key = args[0]
    flags = _number(args[1], 0, 2**32 - 1)
    exptime = _number(args[2], -(2**31), 2**31 - 1)
    size = _number(args[3], 0, 2**31 - 1)
    if len(key) > MAX_KEY or flags is None or exptime is None or size is None:
        # No block is read: what the client sends next is taken as a command.
        await reply(b"CLIENT_ERROR bad command line format")
        return
    if size > MAX_VALUE:
        await reply(b"SERVER_ERROR object too large for cache")
        if name == b"set":
            store.delete(key)  # as memcached does: no stale value survives a failed set
        # Discard the block (and its \r\n) a piece at a time, holding at most one piece.
        left = size + 2
        while left:
            piece = min(left, SWALLOW_PIECE)
            stream.switch_framer(FixedSize(piece))
            await stream.receive()
            left -= piece
        stream.switch_framer(lines)
        return
    # The block: exactly size + 2 bytes, whatever they contain.
    stream.switch_framer(FixedSize(size + 2))
    block = await stream.receive()
    stream.switch_framer(lines)
    if block[-2:] != b"\r\n":
        await reply(b"CLIENT_ERROR bad data chunk")
    elif name == b"set":
        store.set(key, block[:-2], flags, exptime)
        await reply(b"STORED")
    elif store.add(key, block[:-2], flags, exptime):
        await reply(b"STORED")
    else:
        await reply(b"NOT_STORED")


async def _delete(stream: FramedStream[bytes], store: Store, args: list[bytes]) -> None:
    """``delete <key> [0] [noreply]`` (the ``0`` is a relic memcached still accepts)."""
    key, rest = args[0], args[1:]
    noreply = bool(rest) and args[-1] == b"noreply"  # "delete noreply" names a key
    if rest and rest not in ([b"0"], [b"noreply"], [b"0", b"noreply"]):
        text = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
    elif len(key) > MAX_KEY:
        text = b"CLIENT_ERROR bad command line format"
    else:
        text = b"DELETED" if store.delete(key) else b"NOT_FOUND"
    if not noreply:
        await stream.send(text)


async def serve_memcached(
    *,
    host: str = "127.0.0.1",
    port: int = 11211,
    store: Store | None = None,
    idle_timeout: float | None = None,
    message_timeout: float | None = MESSAGE_TIMEOUT,
    task_status: TaskStatus[ServerInfo] = TASK_STATUS_IGNORED,
) -> None:
    """Serve the memcached subset until cancelled.

    Args:
        host: the address to listen on.
        port: the port; 0 picks a free one (``tg.start`` returns the
            :class:`~framing.ServerInfo` that says which).
        store: the items; a new, empty :class:`Store` by default.
        idle_timeout: close a connection silent between commands for this many
            seconds (``None``, as memcached: clients keep connections in pools).
        message_timeout: close a connection that leaves a command line or a
            data block unfinished for this many seconds (``None``: never).
        task_status: set by ``tg.start`` once the server listens.
    """
    handler = partial(handle_connection, store=store if store is not None else Store())
    await serve(
        handler,
        command_lines(),
        host=host,
        port=port,
        idle_timeout=idle_timeout,
        message_timeout=message_timeout,
        task_status=task_status,
    )


async def _run(host: str, port: int, idle: float | None, message: float | None) -> None:
    serving = partial(
        serve_memcached, host=host, port=port, idle_timeout=idle, message_timeout=message
    )
    async with anyio.create_task_group() as tg:
        server = await tg.start(serving)
        print(f"listening on {host}:{server.port}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server from the command line (``--help`` lists the options)."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.memcached",
        description="A memcached text-protocol subset server (get, gets, set, add, delete).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=11211, help="port (0: a free one)")
    parser.add_argument(
        "--idle-timeout", type=float, default=None, help="seconds a client may sit silent"
    )
    parser.add_argument(
        "--message-timeout",
        type=float,
        default=MESSAGE_TIMEOUT,
        help=f"seconds to finish a begun line or data block (default {MESSAGE_TIMEOUT:g})",
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(
            _run,
            args.host,
            args.port,
            args.idle_timeout,
            args.message_timeout,
            backend=args.backend,
        )


if __name__ == "__main__":
    main()
