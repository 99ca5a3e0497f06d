"""Run a server in several processes on one port: :func:`run_workers`.

::

    supervisor (this process: no event loop, no socket)
        |  starts N workers; restarts one that dies (at once, or after a
        |  doubling delay when it died right after starting); forwards SIGHUP;
        |  on SIGTERM/SIGINT sends SIGTERM to each and waits for them all
        v
    worker 0 .. N-1   a fresh Python process each, with its own event loop,
                      running ``main(*args)``; each binds the same port with
                      ``SO_REUSEPORT`` (``serve(..., reuse_port=True)``) and the
                      kernel spreads connections and datagrams over them

Each worker is started as a new interpreter (``sys.executable``), not forked:
nothing of the supervisor's state (threads, locks, an event loop) leaks into
it. ``main`` and ``args`` travel to it pickled, so ``main`` must be a
module-level async function (or a :func:`functools.partial` of one) and the
arguments picklable, as with :mod:`multiprocessing`'s ``spawn``. The worker
runs ``main`` with :func:`anyio.run` on the backend given, and:

- **SIGTERM or SIGINT** cancels ``main``, which cleans up as any cancelled
  anyio task does (:func:`framing.serve` stops accepting, lets the messages in
  flight finish within its ``grace_period``, closes every connection); the
  worker then exits with status 0 (or ``main``'s return value, when an int);
- **SIGHUP** is ignored unless ``main`` handles it itself (with
  :func:`anyio.open_signal_receiver`): the supervisor passes every SIGHUP it
  gets on to each worker, for the workers to reload what they serve;
- **the supervisor's death** (even by SIGKILL) is noticed through a pipe the
  supervisor holds open: its end reads as end of file, and the worker stops as
  on SIGTERM, so no worker outlives its supervisor;
- ``FRAMING_WORKER`` in its environment is its index, 0 to N-1
  (:func:`worker_index`), for log lines and file names.

A library user's program::

    async def main() -> None:
        await serve(handler, LengthPrefixed(2), host="0.0.0.0", port=1234, reuse_port=True)

    if __name__ == "__main__":
        sys.exit(run_workers(main, workers="auto"))

The supervisor logs on the ``framing.workers`` logger: each start (INFO), each
unexpected exit with its status or signal, its uptime and the restart counts
(WARNING). A worker that fails (exits with a non-zero status, not killed by
a signal) within ``min_uptime`` of its first start is a configuration error,
not bad luck (a port in use, a missing file): the supervisor stops the others
and returns that status, instead of restarting it forever.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_MIN_UPTIME",
    "DEFAULT_STOP_TIMEOUT",
    "WORKER_ENV",
    "run_workers",
    "worker_count",
    "worker_index",
]

logger = logging.getLogger("framing.workers")

#: The environment variable that holds a worker's index (0 to N-1).
WORKER_ENV = "FRAMING_WORKER"

# Defaults, and why these numbers:
# - a worker that lived under 1 s died of its start (a bad config, a port in
#   use), not of a request: restarting it at once would only spin.
DEFAULT_MIN_UPTIME = 1.0
# - the first delay after such a death, doubled at each one in a row: 0.5, 1,
#   2, 4 s... up to 30 s, so a worker that cannot start costs a few starts a
#   minute, and one that recovers (a port freed) is back within 30 s.
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
# - after SIGTERM, 30 s for every worker to finish: above framing.serve's 5 s
#   grace period, so a worker is only killed when it is stuck.
DEFAULT_STOP_TIMEOUT = 30.0

# The worker's first lines: find the supervisor's modules, then read the rest.
_BOOTSTRAP = (
    "import sys; sys.path[:0] = sys.argv[2:]; "
    "from framing.workers import _worker_main; sys.exit(_worker_main(int(sys.argv[1])))"
)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_count(text: str | int) -> int:
    """The number of workers for ``text``: a whole number of at least 1, or ``"auto"``.

    ``"auto"`` is the number of CPUs this process may run on
    (``os.sched_getaffinity``, which honours ``taskset`` and container
    limits), or ``os.cpu_count()`` where that is not available.

    Raises:
        ValueError: ``text`` is neither.
    """
    if text == "auto":
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"not a number of workers (N or auto): {text!r}") from None
    if count < 1:
        raise ValueError(f"the number of workers must be at least 1, not {count}")
    return count


def worker_index() -> int | None:
    """This process's index among the workers of :func:`run_workers`, or ``None`` outside one."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


def describe_status(returncode: int) -> str:
    """``"exit status 1"`` or ``"killed by SIGKILL"`` for a ``Popen.returncode``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


# -- the supervisor -------------------------------------------------------------


@dataclass
class _Slot:
    """One worker's place: the process in it now, and its history."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    lifeline: int | None = None  # our end of the pipe whose end of file stops the worker
    started_at: float = 0.0
    restarts: int = 0
    quick_deaths: int = 0  # deaths within min_uptime in a row, for the backoff
    restart_at: float | None = None
    statuses: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Payload:
    """What a worker needs, pickled over its lifeline pipe."""

    main: Callable[..., Awaitable[object]]
    args: tuple[Any, ...]
    backend: str
    backend_options: dict[str, Any] | None


def run_workers(
    main: Callable[..., Awaitable[object]],
    *args: Any,
    workers: int | str,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
    min_uptime: float = DEFAULT_MIN_UPTIME,
    backoff: float = DEFAULT_BACKOFF,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    env: dict[str, str] | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> int:
    """Run ``main(*args)`` in ``workers`` processes under this one until SIGTERM or SIGINT.

    Blocks; call it from the main thread of a program (it installs handlers for
    SIGTERM, SIGINT, SIGHUP and SIGCHLD, and restores the old ones when it
    returns). See the module docstring for what each worker does.

    Args:
        main: a module-level async function, run in each worker with
            :func:`anyio.run`; it should serve with ``reuse_port=True``.
        *args: its positional arguments (picklable).
        workers: how many processes, or ``"auto"`` (:func:`worker_count`).
        backend: the anyio backend of each worker: ``"asyncio"`` or ``"trio"``.
        backend_options: passed on to :func:`anyio.run` (``{"use_uvloop": True}``).
        min_uptime: a worker that exits sooner after its start is restarted
            only after a delay; one that fails (a non-zero exit status) that
            soon after its first start stops the group.
        backoff: the first such delay, in seconds; each quick death in a row doubles it.
        max_backoff: the longest delay.
        stop_timeout: after SIGTERM, seconds each worker has to exit before it is killed.
        env: variables to add to each worker's environment.
        on_exit: called with a worker's pid when it has exited (and been reaped).

    Returns:
        The exit status for the program: 0 after a stop on SIGTERM or SIGINT in
        which every worker exited with 0; 1 if one had to be killed or exited
        otherwise; a worker's own status when it failed at the first start.

    Raises:
        ValueError: ``workers`` is not a number of at least 1 or ``"auto"``.
    """
    count = worker_count(workers)
    payload = pickle.dumps(_Payload(main, args, backend, backend_options))
    supervisor = _Supervisor(
        count,
        payload,
        min_uptime=min_uptime,
        backoff=backoff,
        max_backoff=max_backoff,
        stop_timeout=stop_timeout,
        env=env or {},
        on_exit=on_exit,
    )
    return supervisor.run()


class _Supervisor:
    """The state of one :func:`run_workers` call."""

    def __init__(
        self,
        count: int,
        payload: bytes,
        *,
        min_uptime: float,
        backoff: float,
        max_backoff: float,
        stop_timeout: float,
        env: dict[str, str],
        on_exit: Callable[[int], None] | None,
    ) -> None:
        self.slots = [_Slot(index) for index in range(count)]
        self.payload = payload
        self.min_uptime = min_uptime
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_timeout = stop_timeout
        self.env = env
        self.on_exit = on_exit
        self.first_start = 0.0
        self.restarts = 0
        self.stopping_since: float | None = None
        self.status = 0

    def run(self) -> int:
        """Start the workers and supervise them until they have all stopped."""
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        watched = (*_STOP_SIGNALS, signal.SIGHUP, signal.SIGCHLD)
        # The handlers do nothing: the wakeup fd carries each signal's number to
        # the loop below, which handles them in order, outside any handler.
        previous = {signum: signal.signal(signum, _ignore) for signum in watched}
        previous_fd = signal.set_wakeup_fd(wakeup_write)
        try:
            self.first_start = time.monotonic()
            for slot in self.slots:
                self.start(slot)
            return self.loop(wakeup_read)
        finally:
            self.kill_all()
            signal.set_wakeup_fd(previous_fd)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(wakeup_read)
            os.close(wakeup_write)

    def loop(self, wakeup: int) -> int:
        """Wait for signals, deaths and due restarts; return once every worker has stopped."""
        while True:
            now = time.monotonic()
            deadlines = [s.restart_at for s in self.slots if s.restart_at is not None]
            if self.stopping_since is not None:
                deadlines.append(self.stopping_since + self.stop_timeout)
            # A signal wakes the wait at once; the 1 s bound only guards against a
            # SIGCHLD lost to a full wakeup pipe.
            timeout = min([1.0, *(max(0.0, d - now) for d in deadlines)])
            with contextlib.suppress(InterruptedError):
                select.select([wakeup], [], [], timeout)
            for signum in _read_signals(wakeup):
                self.on_signal(signum)
            self.reap()
            if self.stopping_since is not None:
                if not any(s.proc for s in self.slots):
                    return self.status
                if time.monotonic() > self.stopping_since + self.stop_timeout:
                    self.kill_all()
                continue
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    slot.restart_at = None
                    self.start(slot)

    def on_signal(self, signum: int) -> None:
        """SIGTERM/SIGINT: stop every worker; SIGHUP: pass it on to each."""
        if signum == signal.SIGHUP:
            live = [s.proc for s in self.slots if s.proc is not None]
            logger.info("SIGHUP: passing it on to %d workers", len(live))
            for proc in live:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGHUP)
        elif signum in _STOP_SIGNALS and self.stopping_since is None:
            self.stop(f"stopping on {signal.Signals(signum).name}")

    def stop(self, reason: str) -> None:
        """Send SIGTERM to every worker; cancel the restarts still due."""
        self.stopping_since = time.monotonic()
        live = [s for s in self.slots if s.proc is not None]
        logger.info("%s: sending SIGTERM to %d workers", reason, len(live))
        for slot in self.slots:
            slot.restart_at = None
            if slot.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(signal.SIGTERM)

    def start(self, slot: _Slot) -> None:
        """Start a worker in ``slot``, its payload written to its lifeline pipe."""
        theirs, ours = os.pipe()
        env = {**os.environ, **self.env, WORKER_ENV: str(slot.index)}
        path = [entry or os.getcwd() for entry in sys.path]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(theirs), *path],
                pass_fds=(theirs,),
                env=env,
            )
        except BaseException:
            os.close(ours)
            raise
        finally:
            os.close(theirs)
        # The payload is small (a pickled function and its arguments): it fits
        # the pipe's buffer, and a worker that died at once makes this fail.
        with contextlib.suppress(BrokenPipeError):
            _write_all(ours, len(self.payload).to_bytes(8, "big") + self.payload)
        slot.proc, slot.lifeline, slot.started_at = proc, ours, time.monotonic()
        logger.info("worker %d started (pid %d)", slot.index, proc.pid)

    def reap(self) -> None:
        """Collect every worker that has exited; schedule its restart, or stop the group."""
        for slot in self.slots:
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            status = proc.returncode
            slot.proc = None
            if slot.lifeline is not None:
                os.close(slot.lifeline)
                slot.lifeline = None
            slot.statuses.append(status)
            if self.on_exit is not None:
                self.on_exit(proc.pid)
            uptime = time.monotonic() - slot.started_at
            if self.stopping_since is not None:
                if status != 0:
                    self.status = 1
                    logger.warning(
                        "worker %d (pid %d) stopped with %s",
                        slot.index,
                        proc.pid,
                        describe_status(status),
                    )
                continue
            self.died(slot, proc.pid, status, uptime)

    def died(self, slot: _Slot, pid: int, status: int, uptime: float) -> None:
        """A worker exited unasked: restart it, now or after the backoff."""
        how = describe_status(status)
        if status > 0 and slot.restarts == 0 and uptime < self.min_uptime:
            # It never got going and said so (a signal is someone else's doing):
            # a configuration error, which restarts would only repeat.
            logger.error("worker %d (pid %d) failed at start (%s); stopping", slot.index, pid, how)
            self.status = status if status > 0 else 1
            self.stop("a worker failed at start")
            return
        slot.restarts += 1
        self.restarts += 1
        if uptime < self.min_uptime:
            slot.quick_deaths += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (slot.quick_deaths - 1))
        else:
            slot.quick_deaths = 0
            delay = 0.0
        logger.warning(
            "worker %d (pid %d) %s after %.1f s; restart %d of this worker, %d in all; %s",
            slot.index,
            pid,
            how,
            uptime,
            slot.restarts,
            self.restarts,
            f"restarting in {delay:g} s" if delay else "restarting now",
        )
        slot.restart_at = time.monotonic() + delay

    def kill_all(self) -> None:
        """SIGKILL every worker still running (stuck past ``stop_timeout``), and reap it."""
        for slot in self.slots:
            proc = slot.proc
            if proc is None:
                continue
            logger.warning("worker %d (pid %d) killed: it did not stop", slot.index, proc.pid)
            self.status = 1
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            if slot.lifeline is not None:
                os.close(slot.lifeline)
                slot.lifeline = None
            slot.proc = None
            if self.on_exit is not None:
                self.on_exit(proc.pid)


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: the wakeup fd tells the loop."""


def _read_signals(fd: int) -> list[int]:
    """The signal numbers written to the wakeup pipe since the last read."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 512)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return list(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -- the worker -------------------------------------------------------------------


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the supervisor closed the pipe before sending the payload")
        data += chunk
    return data


def _worker_main(lifeline: int) -> int:
    """A worker's life: read the payload, run ``main``, return the exit status."""
    size = int.from_bytes(_read_exactly(lifeline, 8), "big")
    payload: _Payload = pickle.loads(_read_exactly(lifeline, size))
    # Ignored until main handles it: a reload signal must not kill a server
    # that has nothing to reload.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    threading.Thread(target=_watch_supervisor, args=(lifeline,), daemon=True).start()
    status = anyio.run(
        _until_signalled,
        payload.main,
        payload.args,
        backend=payload.backend,
        backend_options=payload.backend_options,
    )
    return status


def _watch_supervisor(lifeline: int) -> None:
    """Block until the supervisor's end of the pipe closes, then stop as on SIGTERM."""
    while True:
        try:
            if not os.read(lifeline, 1):
                break
        except OSError as exc:
            if exc.errno != errno.EINTR:
                break
    os.kill(os.getpid(), signal.SIGTERM)


def ignore_stop_signals() -> None:
    """Ignore SIGTERM and SIGINT (in the main thread; elsewhere nothing can be set).

    For a process whose stop has begun, or is about to be watched by a signal
    receiver: a second stop signal then neither kills it by signal once the
    receiver has closed nor interrupts its clean stop (see ``_until_signalled``).
    """
    if threading.current_thread() is threading.main_thread():
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


async def _until_signalled(main: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> int:
    """Run ``main`` until it returns or SIGTERM/SIGINT cancels it; return the exit status."""
    # A second stop signal is common (Ctrl-C reaches every process of the
    # terminal's group, and the supervisor sends SIGTERM as well) and must not
    # turn a clean exit into a death by signal. Trio gives the receiver's
    # signals their previous handlers back when it closes, then delivers again
    # those still queued: make that previous handler "ignore". asyncio gives
    # them their default action back: ignore them again once it has (below).
    # Either way with no await in between, so no signal slips through.
    ignore_stop_signals()
    with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
        status: object = None
        async with anyio.create_task_group() as tg:

            async def cancel_on_signal() -> None:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

            tg.start_soon(cancel_on_signal)
            status = await main(*args)
            tg.cancel_scope.cancel()
    ignore_stop_signals()
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
