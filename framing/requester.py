"""Calls over one connection, many in flight: :class:`Requester`, the client side of pipelining.

::

    task A --request(a)--+                          +--> reply a --> task A
    task B --request(b)--+--> a, b, c on the wire --+--> reply c --> task C
    task C --request(c)--+    (one stream)          +--> reply b --> task B
                                                    one reader task matches
                                                    each reply to its call

Replies are matched to calls either by a key that requests and replies both
carry (the DNS message id, a JSON-RPC ``id``), in any order, or, without a key,
in the order the requests went out (Redis, HTTP/1.1 pipelining).

Each call is a slot from the moment its request is registered until its reply
has come (or the stream has failed). A call whose caller gives up (a timeout,
a cancelled scope) leaves its slot behind, marked abandoned: its reply is
discarded when it comes, so it can never be handed to another call. Slots are
what ``max_in_flight`` counts, so an abandoned slot keeps holding its place
until its reply arrives: memory stays bounded even when a peer never answers.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from types import TracebackType
from typing import Generic, NoReturn, Protocol, TypeVar, final

import anyio
from anyio import EndOfStream
from anyio.abc import TaskGroup

from framing.errors import RequestFailed, RequestTimeout, UnexpectedReply
from framing.stream import FramedStream

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "MessageStream", "Requester"]

T = TypeVar("T")

logger = logging.getLogger("framing.requester")

# Calls in flight at once by default: enough for a burst of DNS queries or a
# Redis pipeline to go out in one write, few enough that a peer that stops
# answering cannot make a client hold much.
DEFAULT_MAX_IN_FLIGHT = 100


class MessageStream(Protocol[T]):
    """What :class:`Requester` needs of a stream: whole messages out and in.

    :class:`~framing.FramedStream` is one; so is any :class:`anyio.abc.ObjectStream`.
    """

    async def send(self, item: T, /) -> None:
        """Send one message."""

    async def receive(self) -> T:
        """Return the next message; raise :class:`anyio.EndOfStream` at the end."""


@final
class _Waiter:
    """What one caller waits on: its calls' replies, however many (one event per caller)."""

    __slots__ = ("event", "pending")

    def __init__(self) -> None:
        self.event = anyio.Event()
        # Calls not yet finished, plus one held by the caller while it registers
        # and sends, so that early replies cannot set the event too soon.
        self.pending = 1

    def finish_one(self) -> None:
        self.pending -= 1
        if not self.pending:
            self.event.set()


@final
class _Call(Generic[T]):
    """One slot: a request registered, waiting for its reply."""

    __slots__ = ("abandoned", "done", "error", "key", "reply", "sent", "waiter")

    def __init__(self, key: Hashable, waiter: _Waiter) -> None:
        self.key = key
        self.waiter = waiter
        waiter.pending += 1
        self.done = False
        self.reply: T | None = None
        self.error: RequestFailed | None = None
        # Its request is on the wire, whole.
        self.sent = False
        # The caller gave up after the request went out: the reply, when it
        # comes, is dropped and frees the slot.
        self.abandoned = False

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.waiter.finish_one()


class Requester(Generic[T]):
    """Send requests on one stream from many tasks; hand each reply to its caller.

    Use as an async context manager, which runs the one task that reads
    replies::

        async with Requester(stream, key=lambda m: m[:2]) as calls:
            reply = await calls.request(query, timeout=5)

    Matching:

    - With ``key``, ``key(message)`` gives the correlation id carried by a
      request and by its reply; replies may come in any order. Two calls in
      flight with the same key are refused (:class:`ValueError`).
    - Without ``key``, replies answer requests in the order the requests were
      sent. Requests from several tasks go out one after the other, never
      interleaved, each registered in the order it is written.

    Failures:

    - A caller that gives up (a timeout, a cancelled scope) affects no other
      call: its reply is discarded when it comes (in order, the slot keeps its
      place in the line). Only when it gives up in the middle of writing its
      request (a peer that does not read makes sends wait) is the stream past
      trusting: part of the request may be on the wire, so every call fails.
    - A reply that matches no call in flight (or whose key cannot be read) is
      a protocol error: every call in flight, and every later one, fails with
      :class:`~framing.UnexpectedReply`. The stream is left open; the caller
      closes it.
    - The end of the stream, or an error from receiving (a
      :class:`~framing.FramingError`, a reset), fails every call in flight and
      every later one with :class:`~framing.RequestFailed`, whose
      ``__cause__`` is what receiving raised.
    - Leaving the ``async with`` block stops the reader and fails what is
      still in flight the same way.

    Args:
        stream: the connection: a :class:`~framing.FramedStream` or any object
            stream with ``send`` and ``receive``; several tasks may call
            :meth:`request` at once (sends are taken in turn here). Not closed
            here.
        key: gives a message's correlation id (hashable), or ``None`` to
            match replies in order. A ``key`` that raises on a reply makes it
            an unexpected reply.
        max_in_flight: calls in flight at once; one more waits for a slot
            (backpressure). A slot is freed when its reply comes, even for an
            abandoned call.

    Raises:
        ValueError: ``max_in_flight`` is less than 1.
    """

    def __init__(
        self,
        stream: MessageStream[T],
        *,
        key: Callable[[T], Hashable] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.stream = stream
        self.key = key
        self.max_in_flight = max_in_flight
        self._slots = anyio.Semaphore(max_in_flight)
        # Registering a call and writing its request happen under this lock,
        # so that in order, the line of calls is the order on the wire.
        self._send_lock = anyio.Lock()
        self._by_key: dict[Hashable, _Call[T]] = {}
        self._in_order: deque[_Call[T]] = deque()
        self._task_group: TaskGroup | None = None
        # Set once, by the first failure or by leaving the block: every later call raises.
        self._failure: RequestFailed | None = None

    @property
    def in_flight(self) -> int:
        """Calls whose reply has not come yet, abandoned ones included."""
        return len(self._by_key) + len(self._in_order)

    async def __aenter__(self) -> Requester[T]:
        if self._task_group is not None or self._failure is not None:
            raise RuntimeError("a Requester can be entered only once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._read, name=f"{self!r} reader")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._fail(RequestFailed("the Requester was closed with calls in flight"))
        task_group = self._task_group
        assert task_group is not None
        task_group.cancel_scope.cancel()
        # The reader never raises: exiting the group without the block's own
        # exception keeps that exception as it is (not wrapped in a group).
        await task_group.__aexit__(None, None, None)

    def __repr__(self) -> str:
        how = "in order" if self.key is None else f"by {getattr(self.key, '__name__', self.key)}"
        return f"Requester({self.stream!r}, {how}, max_in_flight={self.max_in_flight})"

    # -- calling -------------------------------------------------------------

    # A timeout parameter (ASYNC109): the call's own timeout raises RequestTimeout
    # and abandons only this call, which a caller's fail_after cannot say.
    async def request(self, message: T, *, timeout: float | None = None) -> T:  # noqa: ASYNC109
        """Send ``message`` and return its reply.

        Args:
            message: the request.
            timeout: seconds for the whole call (waiting for a slot, sending,
                and the reply), or ``None`` for no limit.

        Raises:
            RequestTimeout: no reply within ``timeout`` (the reply, if it
                comes, is discarded; the other calls carry on).
            RequestFailed: the stream ended or broke, or the Requester was
                closed, before the reply came; :class:`~framing.UnexpectedReply`
                when the peer sent a reply to no call.
            ValueError: a call with the same key is in flight.
            EncodeError: the stream's framer cannot carry the message (from
                :meth:`~framing.FramedStream.send`); nothing was sent.
        """
        if timeout is None:
            return (await self._call([message]))[0]
        with anyio.move_on_after(timeout) as scope:
            return (await self._call([message]))[0]
        assert scope.cancelled_caught
        raise RequestTimeout(f"{self!r}: no reply within {timeout} s", timeout=timeout)

    async def request_many(
        self,
        messages: Iterable[T],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[T]:
        """Send several requests together; return their replies in the same order.

        As many as there are free slots go out in one write (on a stream with
        ``send_many``, such as :class:`~framing.FramedStream`); the rest follow
        as slots free up. Raises as :meth:`request` does; a duplicate key among
        ``messages`` is refused before anything is sent.
        """
        batch = list(messages)
        if self.key is not None:
            keys = [self.key(message) for message in batch]
            if len(set(keys)) != len(keys):
                raise ValueError(f"{self!r}: two requests in one batch have the same key")
        if timeout is None:
            return await self._call(batch)
        with anyio.move_on_after(timeout) as scope:
            return await self._call(batch)
        assert scope.cancelled_caught
        raise RequestTimeout(
            f"{self!r}: {len(batch)} requests not all answered within {timeout} s",
            timeout=timeout,
        )

    async def _call(self, messages: list[T]) -> list[T]:
        self._check_usable()
        waiter = _Waiter()
        calls: list[_Call[T]] = []
        slots = self._slots
        try:
            async with self._send_lock:
                chunk: list[T] = []
                for message in messages:
                    try:
                        slots.acquire_nowait()  # the send to come is the checkpoint
                    except anyio.WouldBlock:
                        if chunk:
                            # No slot free: send what holds slots, then wait for one.
                            await self._send(chunk, calls[-len(chunk) :])
                            chunk = []
                        await slots.acquire()
                    try:
                        calls.append(self._register(message, waiter))
                    except BaseException:
                        slots.release()
                        raise
                    chunk.append(message)
                if chunk:
                    await self._send(chunk, calls[-len(chunk) :])
            waiter.finish_one()  # the caller's own hold: every request is out
            if waiter.pending:
                await waiter.event.wait()
        except BaseException:
            self._give_up(calls)
            raise
        replies: list[T] = []
        for call in calls:
            if call.error is not None:
                _raise_again(call.error)
            replies.append(call.reply)  # type: ignore[arg-type]
        return replies

    def _check_usable(self) -> None:
        if self._failure is not None:
            _raise_again(self._failure)
        if self._task_group is None:
            raise RuntimeError(f"{self!r} is used outside its 'async with' block")

    def _register(self, message: T, waiter: _Waiter) -> _Call[T]:
        """Put a call in the line (in order) or under its key; refuse a duplicate key."""
        self._check_usable()
        if self.key is None:
            call: _Call[T] = _Call(None, waiter)
            self._in_order.append(call)
            return call
        key = self.key(message)
        if key in self._by_key:
            raise ValueError(f"{self!r}: a request with key {key!r} is already in flight")
        call = _Call(key, waiter)
        self._by_key[key] = call
        return call

    async def _send(self, chunk: list[T], calls: list[_Call[T]]) -> None:
        """Write the chunk's requests; if that fails, take their calls off the books.

        An error (an EncodeError before any byte, a broken stream) means the
        requests are not to be answered. A cancellation part way is worse: the
        stream may hold part of a request, and whether its reply will come is
        unknown, so replies can no longer be matched with certainty and every
        call fails. (Only a send that waits, because the peer does not read,
        can be cut off so.)
        """
        stream = self.stream
        try:
            if len(chunk) > 1 and isinstance(stream, FramedStream):
                await stream.send_many(chunk)
            else:
                for message in chunk:
                    await stream.send(message)
        except anyio.get_cancelled_exc_class():
            self._fail(
                RequestFailed(
                    "a request was cut off while being written (its caller gave up): "
                    "the stream may hold part of it"
                )
            )
            raise
        except BaseException:
            for call in calls:
                self._unregister(call)
            raise
        for call in calls:
            call.sent = True

    def _unregister(self, call: _Call[T]) -> None:
        """Take a call that never went out off the books, and free its slot."""
        if self.key is None:
            if call in self._in_order:
                self._in_order.remove(call)
            else:
                return  # already failed and freed
        elif self._by_key.get(call.key) is call:
            del self._by_key[call.key]
        else:
            return
        call.finish()
        self._slots.release()

    def _give_up(self, calls: list[_Call[T]]) -> None:
        """The caller stopped waiting: leave sent calls abandoned, take back the others."""
        for call in calls:
            if call.done:
                continue
            if call.sent:
                call.abandoned = True
            else:
                self._unregister(call)

    # -- the reader ----------------------------------------------------------

    async def _read(self) -> None:
        stream = self.stream
        try:
            while True:
                if isinstance(stream, FramedStream):
                    replies = await stream.receive_many()
                else:
                    replies = [await stream.receive()]
                for reply in replies:
                    if not self._deliver(reply):
                        return
        except EndOfStream as exc:
            self._fail(RequestFailed("the peer ended the stream"), cause=exc)
        except Exception as exc:
            self._fail(RequestFailed(f"receiving failed: {type(exc).__name__}: {exc}"), cause=exc)

    def _deliver(self, reply: T) -> bool:
        """Hand ``reply`` to its call; on an unexpected reply fail everything: False."""
        if self.key is None:
            call = self._in_order.popleft() if self._in_order else None
            if call is None:
                self._fail(UnexpectedReply("a reply came with no call in flight", reply=reply))
                return False
        else:
            try:
                key = self.key(reply)
            except Exception as exc:
                self._fail(UnexpectedReply(f"a reply's key cannot be read: {exc!r}", reply=reply))
                return False
            call = self._by_key.pop(key, None)
            if call is None:
                self._fail(
                    UnexpectedReply(f"a reply with key {key!r} matches no call", reply=reply)
                )
                return False
        if call.abandoned:
            logger.debug("%r: dropped the reply to an abandoned call", self)
        call.reply = reply
        call.finish()
        self._slots.release()
        return True

    def _fail(self, failure: RequestFailed, *, cause: BaseException | None = None) -> None:
        """Fail every call in flight and every later one (the first failure wins)."""
        if self._failure is not None:
            return
        failure.__cause__ = cause
        self._failure = failure
        calls = [*self._in_order, *self._by_key.values()]
        self._in_order.clear()
        self._by_key.clear()
        waiting = 0
        for call in calls:
            call.error = failure
            call.finish()
            self._slots.release()
            waiting += not call.abandoned
        if calls or isinstance(failure, UnexpectedReply):
            logger.info("%r: %s; calls failed: %d", self, failure.reason, waiting)


def _raise_again(failure: RequestFailed) -> NoReturn:
    """Raise a fresh copy of a failure shared by many calls, with the same cause.

    Each caller gets its own exception object, so that tracebacks do not pile
    up on one shared instance.
    """
    fresh = (
        UnexpectedReply(failure.reason, reply=failure.reply)
        if isinstance(failure, UnexpectedReply)
        else RequestFailed(failure.reason)
    )
    raise fresh from failure.__cause__
