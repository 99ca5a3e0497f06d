"""LengthPrefixed properties: whatever the split, the same messages or the same error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framing.errors import FrameTooLarge, IncompleteFrame
from framing.length import ByteOrder, LengthPrefixed, Width, encode_varint
from framing.testing import (
    assert_chunking_invariant,
    check_framer,
    chunkings,
    feed_chunks,
    message_lists,
    split_at,
)
from tests.framing.traces import draw_steps, trace_feeds

# Every test runs on the C accelerator and on the pure-Python code (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("implementation")

MAX = 40  # small, so that messages exactly at max_size are drawn often


def no_check(head: bytes) -> str | None:
    return None


@dataclass(frozen=True)
class Config:
    """A framer configuration, and its messages built by hand from the documented layout."""

    width: Width = 2
    byteorder: ByteOrder = "big"
    offset: int = 0
    adjustment: int = 0
    whole: bool = False  # strip=0: the message is the whole frame
    check: bool = False

    @property
    def min_body(self) -> int:
        return max(self.adjustment, 0)

    def framer(self, max_size: int = MAX, **kwargs: Any) -> LengthPrefixed:
        if self.whole:
            kwargs["strip"] = 0
        if self.check:
            kwargs.update(check=no_check, check_size=5)
        return LengthPrefixed(
            self.width,
            self.byteorder,
            max_size=max_size,
            length_offset=self.offset,
            length_adjustment=self.adjustment,
            **kwargs,
        )

    def message(self, body: bytes, prefix: bytes) -> bytes:
        """The delivered message for a frame with this body (and bytes before the length)."""
        if not self.whole:
            return body
        assert isinstance(self.width, int)
        field = (len(body) - self.adjustment).to_bytes(self.width, self.byteorder)
        return prefix[: self.offset] + field + body


CONFIGS = {
    "1": Config(1),
    "2": Config(2),
    "2 little": Config(2, "little"),
    "3": Config(3),
    "3 little": Config(3, "little"),
    "4": Config(4),
    "4 little": Config(4, "little"),
    "8": Config(8),
    "8 little": Config(8, "little"),
    "varint": Config("varint"),
    "counts itself": Config(2, adjustment=-2),
    "flags after length": Config(2, adjustment=1),
    "whole frame": Config(2, whole=True),
    "prefix, whole frame": Config(4, "little", offset=3, whole=True),
    "prefix, counts whole frame": Config(2, offset=1, adjustment=-3, whole=True),
    "check": Config(2, check=True),
}

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def bodies(draw: st.DrawFn, config: Config) -> list[tuple[bytes, bytes]]:
    """A list of (body, prefix) pairs, always including an empty-as-allowed and a max one."""
    body = st.binary(min_size=config.min_body, max_size=MAX)
    prefix = st.binary(min_size=config.offset, max_size=config.offset)
    pairs = draw(st.lists(st.tuples(body, prefix), max_size=8))
    edge = [(b"\x00" * config.min_body, b"P" * config.offset), (b"M" * MAX, b"Q" * config.offset)]
    return draw(st.permutations(pairs + edge))


@pytest.mark.parametrize("name", sorted(CONFIGS))
@FAST
@given(data=st.data())
def test_roundtrip_any_split(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    framer = config.framer()
    messages = [config.message(b, p) for b, p in data.draw(bodies(config))]
    stream = b"".join(framer.encode(m) for m in messages)
    chunks = data.draw(chunkings(stream))
    assert_chunking_invariant(config.framer, stream, messages, chunks)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@FAST
@given(data=st.data())
def test_oversize_raises_whatever_the_split(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    framer = config.framer()
    before = [config.message(b, p) for b, p in data.draw(bodies(config))]
    big = config.message(b"B" * (MAX + data.draw(st.integers(1, 50))), b"p" * config.offset)
    stream = b"".join(framer.encode(m) for m in before)
    stream += config.framer(max_size=MAX + 50).encode(big) + framer.encode(before[0])
    with pytest.raises(FrameTooLarge) as info:
        feed_chunks(config.framer(), data.draw(chunkings(stream)))
    assert info.value.messages == before
    assert info.value.limit == MAX


@pytest.mark.parametrize("name", sorted(CONFIGS))
@FAST
@given(data=st.data())
def test_skip_gives_exactly_the_other_messages(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    small = config.framer()
    large = config.framer(max_size=MAX + 60)
    items = data.draw(
        st.lists(
            st.tuples(st.booleans(), st.binary(min_size=config.min_body, max_size=MAX)),
            max_size=10,
        )
    )
    stream = b""
    kept: list[bytes] = []
    skipped_bytes = 0
    for oversize, body in items:
        if oversize:
            frame = large.encode(config.message(body + b"x" * (MAX + 1 - len(body)), b"s" * 9))
            skipped_bytes += len(frame)
        else:
            message = config.message(body, b"k" * 9)
            kept.append(message)
            frame = small.encode(message)
        stream += frame
    framer = config.framer(on_oversize="skip")
    assert feed_chunks(framer, data.draw(chunkings(stream))) == kept
    assert framer.skipped_frames == sum(oversize for oversize, _ in items)
    assert framer.skipped_bytes == skipped_bytes
    assert framer.buffered == 0


@pytest.mark.parametrize("name", sorted(CONFIGS))
@FAST
@given(data=st.data())
def test_truncation_raises_incomplete_with_numbers(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    framer = config.framer()
    messages = [config.message(b, p) for b, p in data.draw(bodies(config))]
    frames = [framer.encode(m) for m in messages]
    # A frame of one byte (an empty message after a 1-byte header) cannot be cut.
    which = data.draw(st.sampled_from([i for i, f in enumerate(frames) if len(f) > 1]))
    cut = data.draw(st.integers(1, len(frames[which]) - 1))
    stream = b"".join(frames[:which]) + frames[which][:cut]
    with pytest.raises(IncompleteFrame) as info:
        feed_chunks(config.framer(), data.draw(chunkings(stream)))
    exc = info.value
    assert exc.messages == messages[:which]
    assert exc.held == cut
    assert exc.partial == frames[which][:cut]
    if config.whole:
        assert isinstance(config.width, int)
        header = config.offset + config.width
    else:
        header = len(frames[which]) - len(messages[which])
    if cut >= header:
        assert exc.expected == len(frames[which])
        assert f"stream ended {cut} bytes into a {len(frames[which])}-byte frame" in str(exc)
    else:
        assert exc.expected is None
    assert repr(framer) in str(exc)


@FAST
@given(data=st.data())
def test_switching_framers_any_split(data: st.DataObject) -> None:
    first, second = LengthPrefixed(2), LengthPrefixed(4, "little")
    head = data.draw(st.lists(st.binary(max_size=20), min_size=3, max_size=3))
    tail = data.draw(st.lists(st.binary(max_size=20), max_size=5))
    stream = b"".join(map(first.encode, head)) + b"".join(map(second.encode, tail))
    chunks = data.draw(chunkings(stream))
    got: list[bytes] = []
    rest = iter(chunks)
    for chunk in rest:
        got += first.feed(chunk, limit=3 - len(got))
        if len(got) == 3:
            break
    got += second.feed(first.detach())
    for chunk in rest:
        got += second.feed(chunk)
    got += second.feed_eof()
    assert got == head + tail


@FAST
@given(data=st.data())
def test_limit_one_at_a_time_equals_unlimited(data: st.DataObject) -> None:
    framer = LengthPrefixed("varint", max_size=300)
    messages = data.draw(st.lists(st.binary(max_size=300), max_size=6))
    stream = b"".join(map(framer.encode, messages))
    got: list[bytes] = []
    for chunk in data.draw(chunkings(stream)):
        got += framer.feed(chunk, limit=1)
    while framer.buffered:
        more = framer.feed(b"", limit=1)
        assert len(more) == 1
        got += more
    assert got == messages


@pytest.mark.parametrize("policy", ["raise", "skip"])
@FAST
@given(data=st.data())
def test_buffered_bounded_under_adversarial_stream(policy: str, data: st.DataObject) -> None:
    limit = 1000
    framer = LengthPrefixed(2, max_size=limit, on_oversize=policy)  # type: ignore[arg-type]
    announced = data.draw(st.sampled_from([limit, limit - 1, limit + 1, 65535]))
    stream = announced.to_bytes(2, "big") + bytes(announced) + b"\x03\xe8" + b"t" * 500
    try:
        for chunk in split_at(
            stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
        ):
            framer.feed(chunk)
            assert framer.buffered <= limit + 2
    except FrameTooLarge:
        assert policy == "raise"
        assert announced > limit


@FAST
@given(
    value=st.integers(0, (1 << 64) - 1),
    padding=st.integers(0, 3),
)
def test_varint_non_minimal_header_decodes(value: int, padding: int) -> None:
    minimal = bytearray(encode_varint(value))
    if padding and len(minimal) + padding <= 10:
        minimal[-1] |= 0x80
        minimal += b"\x80" * (padding - 1) + b"\x00"
    body = min(value, 50)
    framer = LengthPrefixed("varint", max_size=50, on_oversize="skip")
    wire = bytes(minimal) + b"b" * value if value <= 50 else bytes(minimal)
    if value <= 50:
        assert framer.feed(wire) == [b"b" * body]
    else:
        assert framer.feed(wire) == []
        assert framer.skipped_frames == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: LengthPrefixed(2, max_size=64),
        lambda: LengthPrefixed(3, "little", max_size=64),
        lambda: LengthPrefixed("varint", max_size=64),
        lambda: LengthPrefixed(2, length_adjustment=-2, max_size=64),
    ],
    ids=["2", "3 little", "varint", "counts itself"],
)
def test_keeps_the_shared_framer_contract(make: Callable[[], LengthPrefixed]) -> None:
    # No overhead bound here: check_framer also applies it after feed(limit=1),
    # where holding the unparsed rest of the chunk is what limit means.
    # test_buffered_bounded_under_adversarial_stream checks the bound instead.
    check_framer(make, message_lists(max_size=64), max_examples=20)


# --- The plain fast path against the general engine ---------------------------------
#
# LengthPrefixed.feed has a fast path for the plain case, fixed-width or varint (no
# offset, adjustment, strip or check, no limit, no skip under way). The same framer
# with an early check that accepts everything takes the general engine for every
# byte, so both must give the same messages, the same held bytes after every feed,
# and the same error with the same numbers, however the stream is cut and limited.


def accept_all(head: bytes) -> str | None:
    return None


PLAIN = [
    # width, byteorder, max_size (None: the default, all the field can say), policy
    (1, "big", None, "raise"),
    (2, "big", None, "raise"),
    (2, "little", None, "raise"),
    (2, "big", 50, "raise"),
    (2, "big", 50, "skip"),
    (4, "big", 300, "raise"),
    (4, "little", 50, "skip"),
    (8, "big", 0, "skip"),
    # varints: one byte (bodies under 128), two (the fast path reads those inline),
    # longer ones and non-minimal ones; max_size under 128 (a one-byte header over
    # it) and between 128 and 16383 (a two-byte header over it).
    ("varint", "big", None, "raise"),
    ("varint", "big", 50, "raise"),
    ("varint", "big", 50, "skip"),
    ("varint", "big", 300, "raise"),
    ("varint", "big", 300, "skip"),
    ("varint", "big", 0, "skip"),
]


def varint_header(value: int, extra: int) -> bytes:
    """A varint for ``value`` padded with ``extra`` more bytes: non-minimal when > 0."""
    field = bytearray(encode_varint(value))
    for _ in range(extra):
        field[-1] |= 0x80
        field.append(0)
    return bytes(field)


@pytest.mark.parametrize(("width", "order", "max_size", "policy"), PLAIN)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_plain_fast_path_matches_general_engine(
    width: Width, order: ByteOrder, max_size: int | None, policy: str, data: st.DataObject
) -> None:
    def make(**kwargs: Any) -> LengthPrefixed:
        return LengthPrefixed(
            width,
            order,
            max_size=max_size,
            on_oversize=policy,  # type: ignore[arg-type]
            **kwargs,
        )

    # Bodies up to 1200 bytes: some over a max_size of 50 (and of 0), some held
    # in a buffer over 512 bytes (the fast path cuts those another way).
    sizes = st.binary(max_size=300) | st.binary(max_size=4) | st.binary(min_size=500, max_size=1200)
    bodies = data.draw(st.lists(sizes, max_size=8), label="bodies")
    trailing = st.binary(max_size=3)
    if width == "varint":
        # Headers of 1 to 12 bytes (non-minimal ones, and some past the 10-byte
        # limit), and streams that end inside a long varint.
        extras = st.lists(st.sampled_from([0, 0, 0, 1, 2, 9]), min_size=len(bodies))
        pads = data.draw(extras, label="extra header bytes")
        stream = b"".join(varint_header(len(b), n) + b for b, n in zip(bodies, pads, strict=False))
        trailing |= st.binary(min_size=1, max_size=12).map(lambda t: bytes(x | 0x80 for x in t))
    else:
        big = LengthPrefixed(width, order, max_size=min(1200, (1 << (8 * int(width))) - 1))
        stream = b"".join(big.encode(b[: big.max_size]) for b in bodies)
    stream += data.draw(trailing, label="trailing bytes")
    steps = draw_steps(data, data.draw(chunkings(stream), label="chunks"))
    assert trace_feeds(make(), steps) == trace_feeds(make(check=accept_all, check_size=1), steps)


def test_plain_fast_path_holds_a_large_frame_chunk_by_chunk() -> None:
    framer = LengthPrefixed(2)
    frame = framer.encode(b"x" * 1000)
    out: list[bytes] = []
    for i in range(0, len(frame), 7):
        out += framer.feed(frame[i : i + 7])
        assert framer.buffered == min(i + 7, len(frame)) % len(frame)
    assert out == [b"x" * 1000]


def test_plain_fast_path_then_limit_resumes_the_remembered_header() -> None:
    framer = LengthPrefixed(2)
    wire = framer.encode(b"hello") + framer.encode(b"world")
    assert framer.feed(wire[:4]) == []  # header read by the fast path, body pending
    assert framer.feed(wire[4:], limit=1) == [b"hello"]
    assert framer.detach() == framer.encode(b"world")


def test_plain_fast_path_oversize_mid_chunk_raises_with_messages() -> None:
    framer = LengthPrefixed(2, max_size=10)
    wire = framer.encode(b"ok") + b"\x00\x0b" + b"y" * 11 + framer.encode(b"no")
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(wire)
    assert info.value.messages == [b"ok"]
    assert (info.value.size, info.value.limit) == (11, 10)
