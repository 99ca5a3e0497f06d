"""The optional C accelerator: whether it is here, and the switch to go without it.

``framing/_speedups.c`` holds the framers' hot loops (cutting whole
length-prefixed frames, and delimited records, out of a buffer). It is built by
``pip install`` when a C compiler is present, and is optional: without it, or
with the environment variable ``FRAMING_NO_EXTENSIONS=1`` set when framing is
first imported, every framer runs its pure-Python code, which is the
reference. The C code decides only the unambiguous case (a whole, valid frame)
and hands everything else back to that code, so both give the same messages,
``buffered``, held bytes and errors (the test suite runs every framer test on
both).

A framer picks its implementation when it is built. ``use_extensions(False)``
(a test hook) makes the framers built after it pure Python, in the same
process::

    from framing import _accel

    with _accel.extensions(False):
        framer = LengthPrefixed(2)  # the pure-Python path, for its whole life

A framer keeps its choice; ``clone()`` chooses again, by the switch of the moment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

__all__ = [
    "available",
    "enabled",
    "extensions",
    "split_delimited",
    "split_length",
    "use_extensions",
]

from framing.base import BytesLike

SplitLength = Callable[[BytesLike, int, int, int, int, int], tuple[list[bytes], int, int]]
SplitDelimited = Callable[
    [BytesLike, int, bytes, int, bool, bool, bool], tuple[list[bytes], int] | None
]

try:
    from framing._speedups import split_delimited as _c_delimited
    from framing._speedups import split_length as _c_length

    #: Whether the C extension was built and imported (whatever the switch says).
    available = True
except ImportError:  # not built: no compiler at install time
    available = False

_enabled = available and os.environ.get("FRAMING_NO_EXTENSIONS", "") != "1"


def enabled() -> bool:
    """Whether framers built now use the C loops (built, and not switched off)."""
    return _enabled


def use_extensions(on: bool) -> bool:
    """Switch the C loops on or off for framers built from now on; return the old setting.

    Switching on when the extension is not built leaves it off. For tests, to run
    both implementations in one process; ``FRAMING_NO_EXTENSIONS=1`` is the
    switch for a whole program.
    """
    global _enabled  # noqa: PLW0603 (the one process-wide switch)
    previous = _enabled
    _enabled = bool(on) and available
    return previous


@contextlib.contextmanager
def extensions(on: bool) -> Iterator[None]:
    """Within the block, framers are built with the C loops (``on``) or without them."""
    previous = use_extensions(on)
    try:
        yield
    finally:
        use_extensions(previous)


def split_length() -> SplitLength | None:
    """The C cutter of length-prefixed frames, or None for the pure-Python path."""
    return _c_length if _enabled else None


def split_delimited() -> SplitDelimited | None:
    """The C cutter of delimited records, or None for the pure-Python path."""
    return _c_delimited if _enabled else None
