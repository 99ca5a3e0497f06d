r"""Fuzz targets: each is a function of one ``bytes`` input that raises only on a bug.

The invariant, as h11 states its own: whatever bytes come in, a framer returns
messages or raises a :class:`~framing.FramingError`; ``parse_message`` returns a
message or raises :class:`~protocols.dns.errors.DNSFormatError`; ``parse_zone``
returns a zone or raises :class:`~protocols.dns.errors.ZoneError`. Anything else
escaping a target (another exception, an ``AssertionError`` from a check below)
is a finding; so is a hang (the runner's per-input timeout) or memory over the
runner's RSS limit.

Framer inputs have a fixed layout, so that seeds can be written by hand::

    +-----------+---------+-------------+---------------------------------+
    | options 8 | limit 1 | 7 cut bytes | stream: the bytes fed to framer  |
    +-----------+---------+-------------+---------------------------------+

The option bytes choose the framer and its settings (widths, byte orders,
offsets, delimiters, limits, oversize and end-of-stream policies, early
checks); a setting the constructor refuses ends the input (``ValueError`` for
bad settings is the constructor's documented answer). Each cut byte ``c`` cuts
the stream at ``c * len(stream) // 256``. The framer checks, on every input:

- whole, cut at the fuzzed points, one byte at a time (short inputs) and with
  ``feed(limit=...)``: the same messages and the same error type;
- ``buffered`` never above ``max_size`` plus the framing's overhead (header,
  delimiter) after any ``feed`` without a limit;
- ``feed(stream, limit=k)`` then ``detach()`` into a ``clone()`` carries on
  exactly where the first framer stopped;
- with the C accelerator (:mod:`framing._accel`): the ``length`` and
  ``delimited`` targets run every check above on the C path and on the
  pure-Python path, and the two give the same messages, ``buffered`` after
  every ``feed``, the same error (type, text, ``messages``) and the same
  held bytes (:func:`feed_trace`), whole, cut and with a limit;
- every message delivered encodes to a frame that decodes back to itself.
  ``encode`` may refuse only what the framer's own limits forbid (a message
  over ``max_size``, one containing a delimiter), and only with an
  :class:`~framing.EncodeError`: refusing any other message is a finding, so
  an ``encode`` that refuses everything fails at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from construct import Int8ub, Int16ub, Int16ul, Int32ub, Struct

from framing import _accel
from framing.base import EarlyCheck, EofPolicy, Framer, OversizePolicy
from framing.delimited import Delimited, Lines
from framing.errors import EncodeError, FramingError
from framing.fixed import FixedSize
from framing.length import Frame, LengthPrefixed, StructPrefixed
from framing.netstring import Netstring
from framing.raw import Raw
from framing.testing import Outcome, decode_outcome, split_at
from protocols.dns.errors import DNSFormatError, ZoneError
from protocols.dns.message import build_message, parse_message
from protocols.dns.zone import parse_zone

__all__ = [
    "FRAMER_TARGETS",
    "TARGETS",
    "FramerCase",
    "build_framer",
    "check_framer_input",
    "feed_trace",
]

#: Bytes of options, and of split settings, at the start of a framer input.
OPTION_BYTES: Final = 8
SPLIT_BYTES: Final = 8
HEADER_BYTES: Final = OPTION_BYTES + SPLIT_BYTES

# Inputs up to this long are fed one byte at a time too; longer ones only cut,
# so that a slow quadratic path shows up as a timeout, not as a slow fuzzer.
_BYTEWISE_MAX = 256

# Small limits make "over max_size" reachable by short fuzz inputs.
_SIZES: Final = (0, 1, 2, 3, 5, 8, 16, 100, 255, 300)

_DELIMITER_SETS: Final[tuple[tuple[bytes, ...], ...]] = (
    (b"\n",),
    (b"\r\n",),
    (b"\r\n", b"\n"),
    (b"\n", b"\r\n"),
    (b"\x00",),
    (b"ab", b"b"),
    (b"aba",),
    (b"--", b"-"),
    (b"\n", b"\r\n", b"\r"),
    (b"abc", b"bcd", b"c"),
    (b"xx", b"xxx"),
)

_HEADERS: Final = (
    Struct("kind" / Int8ub, "length" / Int16ub),
    Struct("length" / Int16ul, "flags" / Int8ub),
    Struct("length" / Int32ub),
)


def _reject_ee(head: bytes) -> str | None:
    """An early check: refuse a frame whose head holds ``0xEE``."""
    return "0xEE in the head" if b"\xee" in head else None


@dataclass(frozen=True, slots=True)
class FramerCase:
    """A framer configuration drawn from fuzz bytes.

    Attributes:
        make: returns a new framer with the drawn settings.
        overhead: bytes the framer may hold beyond ``max_size``.
        round_trip: whether a delivered message encodes back to a frame of itself.
        delimiter: for a delimited framing, the delimiter ``encode`` appends;
            ``encode`` may refuse a message that would not decode as sent.
    """

    make: Callable[[], Framer[Any]]
    overhead: int
    round_trip: bool
    delimiter: bytes | None = None

    def may_refuse(self, framer: Framer[Any], message: Any) -> bool:
        r"""Whether ``encode`` may refuse ``message``: only what the framer's limits forbid.

        A message over ``max_size`` (a :class:`~framing.length.Frame`'s payload),
        or, for a delimited framing, one whose frame would not decode as sent:
        it holds a delimiter, or runs into the delimiter appended (``a\r`` under
        ``Lines`` would end ``a\r\n``, read back as ``a``; with ``(b"--",
        b"-")``, an appended ``--`` always ends at its first ``-``).
        """
        payload = message.payload if isinstance(message, Frame) else message
        if len(payload) > framer.max_size:
            return True
        if self.delimiter is None:
            return False
        wire = bytes(payload) + self.delimiter
        got = decode_outcome(self.make(), [wire], eof=False)
        return got.messages != (message,) or got.error is not None


def _pick(seq: tuple[Any, ...], byte: int) -> Any:
    return seq[byte % len(seq)]


def _check_args(o: bytes) -> tuple[EarlyCheck | None, int]:
    """An early check and its size, from one option byte (none half the time)."""
    if o[7] & 1 == 0:
        return None, 0
    return _reject_ee, 1 + (o[7] >> 1) % 6


def _length_case(o: bytes) -> FramerCase:
    width = _pick((1, 2, 3, 4, 8, "varint"), o[1])
    order: Literal["big", "little"] = "little" if o[2] & 1 else "big"
    offset = (o[2] >> 1) % 4 if o[2] & 0x80 else 0
    adjust = ((o[3] % 9) - 4) if o[3] & 0x80 else 0
    strip: int | None = None
    if o[4] & 0x80 and width != "varint":
        strip = (o[4] >> 1) % (offset + 1)
    max_size = _pick(_SIZES, o[5])
    on_oversize: OversizePolicy = "skip" if o[6] & 1 else "raise"
    check, check_size = _check_args(o)

    def make() -> Framer[Any]:
        return LengthPrefixed(
            width,
            order,
            max_size=max_size,
            length_offset=offset,
            length_adjustment=adjust,
            strip=strip,
            on_oversize=on_oversize,
            check=check,
            check_size=check_size,
        )

    make()  # validate once; ValueError ends the input
    head = offset + (10 if width == "varint" else int(width))
    # Bytes before the length field that are stripped on receive cannot be
    # encoded (encode refuses every message): no round trip to check then.
    round_trip = not (offset and strip != 0)
    return FramerCase(make, head + max(check_size, 0), round_trip=round_trip)


def _struct_case(o: bytes) -> FramerCase:
    header = _pick(_HEADERS, o[1])
    adjust = ((o[3] % 9) - 4) if o[3] & 0x80 else 0
    max_size = _pick(_SIZES, o[5])
    on_oversize: OversizePolicy = "skip" if o[6] & 1 else "raise"
    check, check_size = _check_args(o)

    def make() -> Framer[Any]:
        return StructPrefixed(
            header,
            max_size=max_size,
            length_adjustment=adjust,
            on_oversize=on_oversize,
            check=check,
            check_size=check_size,
        )

    make()
    return FramerCase(make, int(header.sizeof()) + check_size, round_trip=True)


def _delimited_case(o: bytes) -> FramerCase:
    max_size = _pick(_SIZES, o[5])
    keep = bool(o[4] & 1)
    on_oversize: OversizePolicy = "skip" if o[6] & 1 else "raise"
    on_eof: EofPolicy = "deliver" if o[6] & 2 else "raise"
    check, check_size = _check_args(o)
    if o[1] & 0x80:
        ending = _pick((None, b"\n", b"\r\n"), o[2])
        strict = bool(o[3] & 1)

        def make() -> Framer[Any]:
            return Lines(
                line_ending=ending,
                strict=strict,
                max_size=max_size,
                keep_delimiter=keep,
                on_oversize=on_oversize,
                on_eof=on_eof,
                check=check,
                check_size=check_size,
            )

        longest = 2
        appended = ending or (b"\r\n" if strict else b"\n")
    else:
        delims = _pick(_DELIMITER_SETS, o[1])
        encode_with = _pick(delims, o[2])

        def make() -> Framer[Any]:
            return Delimited(
                delims,
                max_size=max_size,
                keep_delimiter=keep,
                encode_delimiter=encode_with,
                on_oversize=on_oversize,
                on_eof=on_eof,
                check=check,
                check_size=check_size,
            )

        longest = max(map(len, delims))
        appended = encode_with
    make()
    return FramerCase(make, longest, round_trip=not keep, delimiter=appended)


def _netstring_case(o: bytes) -> FramerCase:
    max_size = 65536 if o[5] & 0x80 else _pick(_SIZES, o[5])
    return FramerCase(lambda: Netstring(max_size=max_size), len(str(max_size)) + 2, True)


def _fixed_case(o: bytes) -> FramerCase:
    size = 1 + o[1] % 20
    return FramerCase(lambda: FixedSize(size), 0, round_trip=True)


def _raw_case(o: bytes) -> FramerCase:
    # Raw's messages are its chunks, so cutting differently changes them: it is
    # held to "no exception, nothing held" only (see check_framer_input).
    max_size = 1 + o[5] % 300
    return FramerCase(lambda: Raw(max_size=max_size), 0, round_trip=False)


_FAMILIES: Final[dict[str, tuple[Callable[[bytes], FramerCase], ...]]] = {
    "length": (_length_case, _struct_case),
    "delimited": (_delimited_case,),
    "netstring": (_netstring_case,),
    "fixed_raw": (_fixed_case, _raw_case),
}


def build_framer(family: str, options: bytes) -> FramerCase | None:
    """The framer case for ``options`` in a target family; ``None`` for refused settings."""
    choices = _FAMILIES[family]
    o = options.ljust(OPTION_BYTES, b"\x00")
    try:
        return _pick(choices, o[0])(o)  # type: ignore[no-any-return]
    except ValueError:
        return None


def _limit(byte: int) -> int:
    return (1, 1, 2, 3, 7)[byte % 5]


def _assert_same(what: str, got: Outcome, want: Outcome) -> None:
    assert got.same_result(want), (
        f"{what}: {got.messages!r} {got.error} != whole: {want.messages!r} {want.error}"
    )


def check_framer_input(family: str, data: bytes) -> None:
    """Run one fuzz input through a framer family; raise on a broken invariant."""
    case = build_framer(family, data[:OPTION_BYTES])
    if case is None:
        return
    split = data[OPTION_BYTES:HEADER_BYTES].ljust(SPLIT_BYTES, b"\x00")
    stream = data[HEADER_BYTES:]
    make = case.make
    bound = make().max_size + case.overhead
    cuts = split_at(stream, [c * len(stream) // 256 for c in split[1:]])

    whole = decode_outcome(make(), [stream], max_buffered=bound)
    if isinstance(make(), Raw):
        # Raw: chunks are messages; only the bytes are invariant.
        pieces = decode_outcome(make(), cuts, max_buffered=bound)
        assert pieces.error is None, f"Raw raised {pieces.error}"
        assert b"".join(pieces.messages) == stream, "Raw lost or changed bytes"
        return

    _assert_same(
        f"cut at {[len(c) for c in cuts]}", decode_outcome(make(), cuts, max_buffered=bound), whole
    )
    if len(stream) <= _BYTEWISE_MAX:
        bytewise = [stream[i : i + 1] for i in range(len(stream))]
        _assert_same("byte at a time", decode_outcome(make(), bytewise, max_buffered=bound), whole)
    limit = _limit(split[0])
    _assert_same(f"limit={limit}", decode_outcome(make(), cuts, limit=limit), whole)
    _check_detach(make, stream, split[0] % 4, whole)
    if case.round_trip:
        _check_round_trip(case, whole)
    if _accel.enabled() and family in _ACCELERATED:
        for chunks, lim in (([stream], None), (cuts, None), (cuts, limit)):
            _check_same_as_python(make, chunks, lim)


# The families whose framers have a C path (framing/_speedups.c).
_ACCELERATED: Final = ("length", "delimited")


def feed_trace(framer: Framer[Any], chunks: list[bytes], limit: int | None = None) -> list[Any]:
    """Everything a caller can see of ``framer`` fed ``chunks``, step by step.

    After each ``feed``, its messages and ``buffered``; then ``feed_eof``'s; an
    error ends the trace with its type, text, attributes and ``buffered``;
    ``detach()`` last. Two implementations of one framer must give equal traces.
    """
    steps: list[Any] = []
    try:
        for chunk in chunks:
            steps.append(("feed", framer.feed(chunk, limit=limit), framer.buffered))
        steps.append(("eof", framer.feed_eof(), framer.buffered))
    except FramingError as exc:
        steps.append(("error", type(exc), str(exc), sorted(vars(exc).items()), framer.buffered))
    steps.append(("detach", framer.detach()))
    return steps


def _check_same_as_python(
    make: Callable[[], Framer[Any]], chunks: list[bytes], limit: int | None
) -> None:
    """The framer built with the C loops and the one built without see the same."""
    fast = make()
    with _accel.extensions(False):
        pure = make()
    got, want = feed_trace(fast, chunks, limit), feed_trace(pure, chunks, limit)
    assert got == want, f"C path {got!r} != pure Python {want!r}"


def _on_both_paths(family: str, data: bytes) -> None:
    """Check one input on the C path (when built) and on the pure-Python path."""
    for on in (True, False) if _accel.available else (False,):
        with _accel.extensions(on):
            check_framer_input(family, data)


def _check_detach(make: Callable[[], Framer[Any]], stream: bytes, k: int, whole: Outcome) -> None:
    """``feed(limit=k)`` then ``detach()`` into a clone: the stream carries on unchanged."""
    first = make()
    try:
        head = first.feed(stream, limit=k)
    except FramingError:
        # Raised before k messages: nothing to hand over; the cut checks cover it.
        return
    assert len(head) <= k, f"feed(limit={k}) returned {len(head)} messages"
    if len(head) < k:
        return  # the whole stream was parsed: no switch point to test
    rest = first.detach()
    assert first.buffered == 0, "buffered is not 0 after detach()"
    twin = first.clone()
    assert twin.buffered == 0, "clone() is not empty"
    tail = decode_outcome(twin, [rest])
    joined = Outcome((*head, *tail.messages), tail.error, 0)
    _assert_same(f"detach after {k}", joined, whole)


def _check_round_trip(case: FramerCase, whole: Outcome) -> None:
    """Each delivered message encodes to a frame that decodes back to itself.

    ``encode`` may refuse only what :meth:`FramerCase.may_refuse` allows, and
    only with an :class:`~framing.EncodeError` (the caller's fault, never the
    peer's): a refusal of anything else is a finding.
    """
    make = case.make
    for message in whole.messages[:16]:
        framer = make()
        refusal: Exception | None = None
        try:
            frame = framer.encode(message)
        except (FramingError, ValueError) as exc:
            refusal = exc
        if refusal is not None:
            assert isinstance(refusal, EncodeError), (
                f"{framer!r}.encode({message!r}) raised {refusal!r}, not an EncodeError"
            )
            assert case.may_refuse(framer, message), (
                f"{framer!r}.encode({message!r}) refused a message its own limits allow: {refusal}"
            )
            continue
        again = decode_outcome(make(), [frame])
        assert again.error is None, f"encode({message!r}) = {frame!r} raised {again.error}"
        assert again.messages == (message,), f"encode({message!r}) = {frame!r} decodes differently"


def fuzz_length(data: bytes) -> None:
    """``LengthPrefixed`` (every width, order, offset, adjustment, strip) and ``StructPrefixed``.

    On both paths, C and pure Python, when the accelerator is built.
    """
    _on_both_paths("length", data)


def fuzz_delimited(data: bytes) -> None:
    """``Delimited`` (one or several delimiters, overlapping ones) and ``Lines``, on both paths."""
    _on_both_paths("delimited", data)


def fuzz_netstring(data: bytes) -> None:
    """``Netstring`` with small and default limits."""
    check_framer_input("netstring", data)


def fuzz_fixed_raw(data: bytes) -> None:
    """``FixedSize`` and ``Raw``."""
    check_framer_input("fixed_raw", data)


def fuzz_dns_message(data: bytes) -> None:
    """``parse_message``: a message or ``DNSFormatError``; a parsed message rebuilds to itself."""
    try:
        message = parse_message(data)
    except DNSFormatError:
        return
    wire = build_message(message)
    again = parse_message(wire)
    assert again == message, f"parse(build(m)) != m for {data!r}"


def fuzz_zone(data: bytes) -> None:
    """``parse_zone``: a zone or ``ZoneError``, with and without an initial origin."""
    origin = "example." if data[:1] == b"\x01" else None
    text = data[1:].decode("utf-8", "replace")
    try:
        parse_zone(text, origin=origin)
    except ZoneError:
        return


#: The framer families, by target name.
FRAMER_TARGETS: Final = ("length", "delimited", "netstring", "fixed_raw")

#: Every target, by name.
TARGETS: Final[dict[str, Callable[[bytes], None]]] = {
    "length": fuzz_length,
    "delimited": fuzz_delimited,
    "netstring": fuzz_netstring,
    "fixed_raw": fuzz_fixed_raw,
    "dns_message": fuzz_dns_message,
    "zone": fuzz_zone,
}
