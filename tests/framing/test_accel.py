"""The C accelerator (framing/_speedups.c): present on CI, switchable, and identical to Python.

Every framer test runs on both paths already (the ``implementation`` fixture);
here the two paths are run side by side on random streams, random chunkings
and random limits, and must show a caller exactly the same thing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framing import _accel
from framing.base import Framer
from framing.delimited import Delimited, Lines
from framing.errors import FrameTooLarge
from framing.length import LengthPrefixed
from framing.testing import split_at
from fuzz.targets import feed_trace
from tests.conftest import on_ci

needs_c = pytest.mark.skipif(not _accel.available, reason="the C accelerator is not built")

DIFF = settings(max_examples=300, deadline=None)


def same_on_both_paths(make: Callable[[], Framer[Any]], chunks: list[bytes], limit: int | None):
    with _accel.extensions(True):
        fast = make()
    with _accel.extensions(False):
        pure = make()
    got, want = feed_trace(fast, chunks, limit), feed_trace(pure, chunks, limit)
    assert got == want
    return got


# -- presence and the switch -------------------------------------------------------


def test_extension_is_built_on_ci() -> None:
    """CI must never run the pure-Python path alone without noticing."""
    if not on_ci():
        pytest.skip("only CI (FRAMING_REQUIRE_TOOLS=1 or CI set) promises a C compiler")
    assert _accel.available, "framing._speedups was not built: pip install -e . needs gcc"


def _enabled_in_child(**env: str) -> str:
    code = "import framing._accel as a; print(a.available, a.enabled())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_env_variable_forces_pure_python() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FRAMING_NO_EXTENSIONS"}
    assert _enabled_in_child(**env, FRAMING_NO_EXTENSIONS="1") == f"{_accel.available} False"


@needs_c
def test_extension_is_on_by_default_when_built() -> None:
    assert _enabled_in_child(FRAMING_NO_EXTENSIONS="") == "True True"


@needs_c
def test_framers_built_inside_extensions_false_keep_the_pure_path() -> None:
    with _accel.extensions(False):
        framers = [LengthPrefixed(2), Delimited(b"\r\n"), Lines()]
        assert not _accel.enabled()
    with _accel.extensions(True):
        assert _accel.enabled()
        fast = [LengthPrefixed(2), Delimited(b"\r\n"), Lines()]
    assert all(f._csplit is None for f in framers)
    assert all(f._csplit is not None for f in fast)


# -- the C functions' own edges ---------------------------------------------------


@needs_c
def test_split_length_refuses_a_width_out_of_range() -> None:
    from framing._speedups import split_length

    with pytest.raises(ValueError, match="width or pos"):
        split_length(b"\x00\x01a", 0, 9, 0, 10, -1)
    with pytest.raises(ValueError, match="width or pos"):
        split_length(b"\x00\x01a", 4, 2, 0, 10, -1)
    with pytest.raises(TypeError, match="takes 6 arguments"):
        split_length(b"\x00\x01a", 0)  # type: ignore[call-arg]


@needs_c
def test_split_delimited_refuses_bad_arguments() -> None:
    from framing._speedups import split_delimited

    with pytest.raises(TypeError, match="must be bytes"):
        split_delimited(b"a\n", 0, "\n", 10, False, False, False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty delimiter"):
        split_delimited(b"a\n", 0, b"", 10, False, False, False)
    with pytest.raises(TypeError):
        split_delimited(b"a\n", 0, b"\n", "10", False, False, False)  # type: ignore[arg-type]


@needs_c
def test_split_accepts_bytearray_and_memoryview() -> None:
    from framing._speedups import split_delimited, split_length

    wire = b"\x00\x01a\x00\x02bc\x00"
    for data in (wire, bytearray(wire), memoryview(wire)):
        assert split_length(data, 0, 2, 0, 10, -1) == ([b"a", b"bc"], 7, -1)
        assert split_delimited(data, 0, b"\x00", 10, False, False, False) == (
            [b"", b"\x01a", b"\x02bc"],
            8,
        )


@needs_c
def test_split_delimited_searches_from_start_but_cuts_from_0() -> None:
    """The caller's held bytes hold no delimiter: the search skips them, the record keeps them."""
    from framing._speedups import split_delimited

    assert split_delimited(b"abcd\r\nef\r\n", 3, b"\r\n", 10, False, False, False) == (
        [b"abcd", b"ef"],
        10,
    )
    assert split_delimited(b"a\nb\r\nc", 2, b"", 10, True, False, False) == ([b"a\nb"], 5)
    with pytest.raises(ValueError, match="start out of range"):
        split_delimited(b"ab", 3, b"\n", 10, False, False, False)


def test_width_8_length_too_large_to_count_waits_as_in_python() -> None:
    """A header announcing 2**64 - 1 bytes, allowed by max_size: both paths wait for it."""
    trace = same_on_both_paths(
        lambda: LengthPrefixed(8, max_size=(1 << 64) - 1), [b"\xff" * 8 + b"abc"], None
    )
    assert trace[0] == ("feed", [], 11)


def test_oversize_after_frames_raises_with_the_frames_on_both_paths() -> None:
    trace = same_on_both_paths(
        lambda: LengthPrefixed(2, max_size=3), [b"\x00\x01a\x00\x02bc\x00\x04abcd"], None
    )
    kind, error, _text, attrs, _held = trace[0]
    assert (kind, error) == ("error", FrameTooLarge)
    assert dict(attrs)["messages"] == [b"a", b"bc"]


def test_long_line_after_lines_raises_with_the_lines_on_both_paths() -> None:
    trace = same_on_both_paths(lambda: Lines(max_size=3), [b"ab\r\ncd\nabcd\n"], None)
    assert trace[0][:2] == ("error", FrameTooLarge)
    assert dict(trace[0][3])["messages"] == [b"ab", b"cd"]


# -- differential: random streams, chunkings and limits ------------------------------

length_configs = st.builds(
    lambda width, order, max_size, skip: (
        lambda: LengthPrefixed(
            width, order, max_size=max_size, on_oversize="skip" if skip else "raise"
        )
    ),
    st.sampled_from([1, 2, 3, 4, 8]),
    st.sampled_from(["big", "little"]),
    st.integers(0, 40),
    st.booleans(),
)

delimited_configs = st.one_of(
    st.builds(
        lambda delim, max_size, keep, skip, deliver: (
            lambda: Delimited(
                delim,
                max_size=max_size,
                keep_delimiter=keep,
                on_oversize="skip" if skip else "raise",
                on_eof="deliver" if deliver else "raise",
            )
        ),
        st.sampled_from([b"\n", b"\r\n", b"\x00", b"aba", b"--"]),
        st.integers(1, 40),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(
        lambda strict, max_size, keep, skip, deliver: (
            lambda: Lines(
                strict=strict,
                max_size=max_size,
                keep_delimiter=keep,
                on_oversize="skip" if skip else "raise",
                on_eof="deliver" if deliver else "raise",
            )
        ),
        st.booleans(),
        st.integers(1, 40),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
)


@st.composite
def length_streams(draw: st.DrawFn) -> bytes:
    """Mostly valid frames of every width's layout, with the odd stray byte or huge header."""
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            parts.append(draw(st.binary(max_size=9)))  # anything at all
        else:
            body = draw(st.binary(max_size=48))
            width = draw(st.sampled_from([1, 2, 3, 4, 8]))
            order = draw(st.sampled_from(["big", "little"]))
            parts.append(len(body).to_bytes(width, order) + body)
    return b"".join(parts)


@st.composite
def delimited_streams(draw: st.DrawFn) -> bytes:
    """Records of a small alphabet rich in delimiters, prefixes of them and line endings."""
    alphabet = st.sampled_from([b"a", b"b", b"-", b"\r", b"\n", b"\r\n", b"\x00", b"aba", b"x"])
    return b"".join(draw(st.lists(alphabet, max_size=80)))


@st.composite
def chunkings_of(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    return split_at(stream, sorted(cuts))


@DIFF
@given(data=st.data(), make=length_configs, stream=length_streams())
def test_length_prefixed_c_and_python_paths_agree(data: st.DataObject, make: Any, stream: bytes):
    chunks = data.draw(chunkings_of(stream))
    limit = data.draw(st.none() | st.integers(1, 3))
    same_on_both_paths(make, chunks, limit)
    same_on_both_paths(make, [stream[i : i + 1] for i in range(len(stream))], None)


@DIFF
@given(data=st.data(), make=delimited_configs, stream=delimited_streams())
def test_delimited_c_and_python_paths_agree(data: st.DataObject, make: Any, stream: bytes):
    chunks = data.draw(chunkings_of(stream))
    limit = data.draw(st.none() | st.integers(1, 3))
    same_on_both_paths(make, chunks, limit)
    same_on_both_paths(make, [stream], None)


# Long records and frames: the held-buffer paths for records over 4 KiB (views, and
# the held block refilled or cut at its front), with max_size near their sizes.


@st.composite
def long_record_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    sizes = draw(st.lists(st.integers(0, 9000), min_size=1, max_size=5))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    stream = b"".join(b"x" * n + ending for n in sizes) + b"y" * draw(st.integers(0, 5000))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    return stream, cuts


@settings(max_examples=60, deadline=None)
@given(
    case=long_record_streams(),
    max_size=st.sampled_from([4000, 8000, 9000, 65536]),
    kind=st.sampled_from(["lines", "lf", "crlf"]),
    skip=st.booleans(),
)
def test_long_records_agree_on_both_paths(
    case: tuple[bytes, list[int]], max_size: int, kind: str, skip: bool
) -> None:
    stream, cuts = case
    policy = "skip" if skip else "raise"

    def make() -> Framer[Any]:
        if kind == "lines":
            return Lines(max_size=max_size, on_oversize=policy)
        return Delimited(b"\n" if kind == "lf" else b"\r\n", max_size=max_size, on_oversize=policy)

    same_on_both_paths(make, split_at(stream, cuts), None)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 20000), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 110000), max_size=12),
    max_size=st.sampled_from([5000, 16384, 65535]),
    width=st.sampled_from([2, 3, 4]),
)
def test_long_frames_agree_on_both_paths(
    sizes: list[int], cuts: list[int], max_size: int, width: int
) -> None:
    stream = b"".join(n.to_bytes(width, "big") + b"z" * n for n in sizes)
    same_on_both_paths(
        lambda: LengthPrefixed(width, max_size=max_size),  # type: ignore[arg-type]
        split_at(stream, cuts),
        None,
    )


class _Reusing:
    """Feeds a framer views of one reused buffer, filled just before each feed."""

    def __init__(self, chunks: list[bytes]) -> None:
        size = max((len(c) for c in chunks), default=0)
        self.shared = bytearray(size)

    def view(self, chunk: bytes) -> memoryview:
        self.shared[: len(chunk)] = chunk
        return memoryview(self.shared)[: len(chunk)]


@DIFF
@given(data=st.data(), make=length_configs, stream=length_streams())
def test_length_prefixed_fed_views_of_a_reused_buffer_gives_what_bytes_give(
    data: st.DataObject, make: Any, stream: bytes
) -> None:
    chunks = data.draw(chunkings_of(stream))
    reuse = _Reusing(chunks)
    for on in (True, False):
        with _accel.extensions(on):
            by_view, by_bytes = make(), make()
        for chunk in chunks:
            got: list[Any] = []
            want: list[Any] = []
            for framer, piece, out in ((by_view, reuse.view(chunk), got), (by_bytes, chunk, want)):
                try:
                    out.append(framer.feed(piece))
                except FrameTooLarge as exc:
                    out.append(("FrameTooLarge", str(exc), exc.messages))
            assert got == want
            assert all(type(m) is bytes for batch in got if isinstance(batch, list) for m in batch)
            assert by_view.buffered == by_bytes.buffered
            if isinstance(want[0], tuple):
                break
