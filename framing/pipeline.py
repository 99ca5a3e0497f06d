"""Answering pipelined requests on one connection: :func:`serve_pipelined`.

::

    peer --requests--> FramedStream.receive_many() --> respond(request) --> answers
         <--answers--- one write per batch (send_bytes / send_many) <-------+

Many protocols let a client send several requests before the first answer
(DNS over TCP, RFC 7766 6.2.1.1; Redis; HTTP/1.1 pipelining). Answering them
one at a time wastes the connection; answering them all at once without a
bound lets one peer pin unbounded work. :func:`serve_pipelined` does neither.
Plug it into :func:`framing.serve` as the handler::

    async def handler(stream: FramedStream[bytes]) -> None:
        await serve_pipelined(stream, answer)

    await serve(handler, LengthPrefixed(2), port=5053)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast, overload

import anyio
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import TaskGroup

from framing.errors import FramingError, ReceiveTimeout
from framing.stream import FramedStream

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "INLINE_FLUSH_SIZE", "serve_pipelined"]

T = TypeVar("T")

# Requests in flight per pipelined connection: enough to keep a resolver's
# pipeline full (unbound sends a few dozen), small enough that one peer's
# requests cannot pin much work.
DEFAULT_MAX_IN_FLIGHT = 32
# Inline: answers held before they are written, in bytes.
INLINE_FLUSH_SIZE = 64 * 1024


# What serve_pipelined accepts: a coroutine function, or a plain one.
_Respond = Callable[[T], Awaitable[T | None]] | Callable[[T], T | None]


@overload
async def serve_pipelined(
    stream: FramedStream[T],
    respond: Callable[[T], Awaitable[T | None]],
    *,
    max_in_flight: int = ...,
    inline: Literal[False] | None = ...,
) -> None: ...


@overload
async def serve_pipelined(
    stream: FramedStream[T],
    respond: Callable[[T], T | None],
    *,
    max_in_flight: int = ...,
    inline: Literal[True] | None = ...,
) -> None: ...


async def serve_pipelined(
    stream: FramedStream[T],
    respond: _Respond[T],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    inline: bool | None = None,
) -> None:
    """Answer pipelined requests on one connection until the peer is done.

    Two ways to answer, chosen once, from ``respond``:

    - **Concurrently**, when ``respond`` is a coroutine function (``async
      def``): for answers that wait (a database, an upstream server). Requests
      are read as they come (:meth:`~framing.stream.FramedStream.receive_many`)
      and each runs ``await respond(request)`` in its own task, at most
      ``max_in_flight`` at once (reading waits while that many are running).
      Responses are written in the order they complete, not the order asked
      (RFC 7766 6.2.1.1), by one writer that sends together, in one write,
      every response ready at that moment.
    - **Inline**, when ``respond`` is a plain function: for answers that never
      wait (a cache, an authoritative zone), where a task per request would
      cost more than the answer. Every request one read brought is answered in
      arrival order, and the answers are written together in one
      :meth:`~framing.stream.FramedStream.send_many` before the next read: no
      task, one system call per batch each way. ``max_in_flight`` does not
      apply; what is held at once is one read's requests (at most the stream's
      ``receive_size`` bytes of them) and at most ``INLINE_FLUSH_SIZE`` (64 KiB)
      of answers plus one: a batch of large answers is written in parts.

    The choice is :func:`inspect.iscoroutinefunction` (which sees through
    bound methods and :func:`functools.partial`), also applied to a callable
    object's ``__call__``. A plain callable that returns an awaitable (a
    ``lambda`` around a coroutine function) is not recognised: pass
    ``inline=False`` for it (``inline=True`` forces the inline way). Left
    unrecognised, its first answer raises :class:`TypeError` rather than being
    written.

    ``respond`` returning ``None`` means no reply. Ends, either way:

    - At the peer's clean end of stream: returns once every request read has
      been answered and written (the peer may have half-closed).
    - When the peer has gone (a reset; a failed write): in-flight requests are
      cancelled and pending responses dropped (RFC 7766 6.2.4), counted in
      ``stream.stats.messages_dropped``; returns normally.
    - On an error from receiving (a :class:`~framing.FramingError`, a
      :class:`~framing.stream.MessageTimeout`): answers and writes what was read
      before it, then raises it. While requests are in flight the stream is busy,
      not idle (``stream.work_in_flight``): its ``idle_timeout`` does not fire.
    - An exception from ``respond`` propagates as it was raised, the same way
      both ways (concurrently, not wrapped in an :class:`ExceptionGroup`:
      ``except KeyError`` catches it); responses not yet written are
      abandoned (concurrently, the other requests in flight are cancelled;
      when several fail at once, their failures come together in an
      :class:`ExceptionGroup`).
      Inline, ``respond`` may raise a :class:`~framing.FramingError` (say
      :class:`~framing.MalformedFrame`) for a request that breaks the protocol
      in a way the framer cannot see: it is treated as one from receiving
      (counted in ``stream.stats.errors``; the answers to the requests before
      it are written, then it is raised, and :func:`serve` logs one line).

    Args:
        stream: the connection; not closed here.
        respond: turns a request into its response, or ``None``.
        max_in_flight: requests handled at once on this connection
            (concurrent way only).
        inline: ``None`` to choose from ``respond`` as above; ``True`` or
            ``False`` to say which.

    Raises:
        ValueError: ``max_in_flight`` is less than 1.
        TypeError: ``respond``, answering inline, returned an awaitable.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
    if inline is None:
        inline = not _is_coroutine_function(respond)
    if inline:
        await _answer_inline(stream, cast("Callable[[T], T | None]", respond))
    else:
        pipe = _Pipeline(stream, cast("Callable[[T], Awaitable[T | None]]", respond), max_in_flight)
        await pipe.run()


def _is_coroutine_function(function: Callable[..., object]) -> bool:
    """Whether calling ``function`` makes a coroutine: functions, methods, partials, objects."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    )


def _refuse_awaitable(
    respond: Callable[..., object],
    answer: object,
    remedy: str = "pass inline=False to serve_pipelined to have it awaited",
) -> None:
    """Raise if ``respond``, called inline, turned out to return an awaitable.

    Checked on a connection's first answer only: a function that returns a
    coroutine does so every time, and checking once costs nothing per request.
    ``remedy``: what the caller can do instead (the error's second half).
    """
    if inspect.isawaitable(answer):
        if inspect.iscoroutine(answer):
            answer.close()  # never to be awaited: say so now, not in a warning
        raise TypeError(
            f"{respond!r} returned an awaitable, but is not a coroutine function: {remedy}"
        )


async def _answer_inline(stream: FramedStream[T], respond: Callable[[T], T | None]) -> None:
    """The inline way of :func:`serve_pipelined`: one read, answers in order, written together.

    Answers are encoded as they are made and written once the read's requests
    are all answered, or sooner, as soon as ``INLINE_FLUSH_SIZE`` bytes of them
    are ready: what is held never grows with the answers' sizes.
    """
    receive_many = stream.receive_many
    checked = False
    while True:
        # Everything read before has been answered and written, so nothing is
        # pending here: errors from receiving need no flush, only to be raised
        # (IdleTimeout, FramingError, MessageTimeout) or to end the loop.
        try:
            requests = await receive_many()
        except EndOfStream:
            return
        except (BrokenResourceError, ClosedResourceError):
            return  # the peer has gone, with every answer already written
        encode = stream.framer.encode
        parts: list[bytes] = []
        held = 0
        for index, request in enumerate(requests):
            try:
                answer = respond(request)
            except FramingError as exc:
                # The request broke the protocol's framing, as bytes from the peer
                # can: like an error from receiving, answer what came before, then raise.
                stream.stats.count_error(exc)
                if parts:
                    await _write(stream, parts)
                raise
            if answer is None:
                continue
            if not checked:
                checked = True
                _refuse_awaitable(respond, answer)
            part = encode(answer)
            parts.append(part)
            held += len(part)
            if held >= INLINE_FLUSH_SIZE:
                if not await _write(stream, parts):
                    # The requests not yet answered are dropped with it.
                    stream.stats.messages_dropped += len(requests) - index - 1
                    return
                parts = []
                held = 0
        if parts and not await _write(stream, parts):
            return


async def _write(stream: FramedStream[T], parts: list[bytes]) -> bool:
    """Write encoded answers in one write; if the peer has gone, count them dropped: False."""
    try:
        await stream.send_bytes(b"".join(parts), messages=len(parts))
    except (BrokenResourceError, ClosedResourceError):
        stream.stats.messages_dropped += len(parts)
        return False
    return True


class _Pipeline:
    """The state shared by the reader, the request tasks and the writer.

    A request holds one of ``max_in_flight`` slots from the moment it is read
    until its response is written (or it turned out to need none), so that a
    peer that sends but does not read stalls the reader instead of piling up
    responses: nothing grows without bound.
    """

    def __init__(
        self,
        stream: FramedStream[Any],
        respond: Callable[[Any], Awaitable[Any]],
        max_in_flight: int,
    ) -> None:
        self.stream = stream
        self.respond = respond
        self.slots = anyio.Semaphore(max_in_flight)
        self.outbox: list[Any] = []
        self.wake = anyio.Event()
        self.reading = True

    async def run(self) -> None:
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.write, tg)
                try:
                    await self.read(tg)
                except (BrokenResourceError, ClosedResourceError):
                    self.peer_gone(tg)
                except (FramingError, ReceiveTimeout) as exc:
                    error = exc
                finally:
                    self.reading = False
                    self.wake.set()
        except BaseExceptionGroup as group:
            # The task group wraps a failure of respond (or of encoding its
            # answer) in a group; inline, the same failure comes bare. One
            # failure is unwrapped, so that `except KeyError` catches it both
            # ways; several at once stay a group, for none may be lost.
            if len(group.exceptions) != 1:
                raise
            error = group.exceptions[0]
        finally:
            # Whatever was dropped when the peer went is no longer in flight.
            self.stream.work_in_flight = 0
        if error is not None:
            # Raised outside the except block: the error keeps its own
            # traceback (down to where respond raised) and its own context,
            # without the group chained to it.
            raise error

    async def read(self, tg: TaskGroup) -> None:
        stream = self.stream
        slots = self.slots
        while True:
            try:
                requests = await stream.receive_many()
            except EndOfStream:
                return
            for request in requests:
                await slots.acquire()
                # Read, and not yet answered on the wire or found answerless:
                # the stream is busy, not idle (its idle_timeout waits on).
                stream.work_in_flight += 1
                tg.start_soon(self.handle, request)

    async def handle(self, request: Any) -> None:
        queued = False
        try:
            response = await self.respond(request)
            if response is not None:
                self.outbox.append(response)
                queued = True
        finally:
            if not queued:
                self.done(1)
        self.wake.set()

    def done(self, count: int) -> None:
        self.stream.work_in_flight -= count
        for _ in range(count):
            self.slots.release()

    async def write(self, tg: TaskGroup) -> None:
        stream = self.stream
        while True:
            while not self.outbox:
                if not self.reading and not stream.work_in_flight:
                    return
                await self.wake.wait()
                self.wake = anyio.Event()
            batch, self.outbox = self.outbox, []
            try:
                await stream.send_many(batch)
            except (BrokenResourceError, ClosedResourceError):
                self.outbox[:0] = batch
                self.peer_gone(tg)
                return
            self.done(len(batch))

    def peer_gone(self, tg: TaskGroup) -> None:
        """Drop pending responses and cancel the requests still being handled."""
        self.stream.stats.messages_dropped += self.stream.work_in_flight
        self.outbox.clear()
        self.reading = False
        tg.cancel_scope.cancel()
