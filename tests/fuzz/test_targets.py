"""The fuzz targets, uninstrumented: the committed corpus passes, and a planted bug is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from framing.delimited import Lines
from framing.errors import FrameTooLarge, MessageTooLarge
from framing.netstring import Netstring
from framing.raw import Raw
from fuzz import targets
from fuzz.targets import FRAMER_TARGETS, HEADER_BYTES, TARGETS, FramerCase, check_framer_input

CORPUS = Path(targets.__file__).resolve().parent / "corpus"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_passes_its_target(target: str) -> None:
    seeds = sorted((CORPUS / target).iterdir())
    assert len(seeds) >= 5
    for seed in seeds:
        TARGETS[target](seed.read_bytes())


@pytest.mark.parametrize("target", FRAMER_TARGETS)
def test_framer_target_survives_garbage(target: str) -> None:
    for data in (b"", b"\xff" * 40, bytes(range(256)) * 3, b"\x00" * 17 + b"9:abc\r\n" * 30):
        TARGETS[target](data)


def test_dns_target_rejects_garbage_quietly() -> None:
    TARGETS["dns_message"](b"\x00" * 11)
    TARGETS["zone"](b"\x01$ORIGIN\n")


class _SplitSensitive:
    """A planted bug: a Raw that drops every chunk after the first."""

    def __init__(self) -> None:
        self.inner = Raw()
        self.seen = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def feed(self, data: bytes = b"", *, limit: int | None = None) -> list[bytes]:
        if self.seen:
            return []
        self.seen = bool(data)
        return self.inner.feed(data, limit=limit)

    def feed_eof(self) -> list[bytes]:
        return []


def test_framer_target_finds_a_planted_split_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    case = FramerCase(_SplitSensitive, 0, round_trip=False)  # type: ignore[arg-type]
    monkeypatch.setitem(targets._FAMILIES, "planted", (lambda o: case,))
    data = bytes(8) + b"\x00" + bytes([128] * 7) + b"abcdef"
    with pytest.raises(AssertionError, match="cut at"):
        check_framer_input("planted", data)


def test_framer_target_finds_a_planted_memory_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from framing.length import LengthPrefixed

    # Claim no overhead: the 2-byte header held beyond max_size breaks the bound.
    case = FramerCase(lambda: LengthPrefixed(2, max_size=5), -2, round_trip=True)
    monkeypatch.setitem(targets._FAMILIES, "planted", (lambda o: case,))
    with pytest.raises(AssertionError, match="over the bound"):
        check_framer_input("planted", bytes(HEADER_BYTES) + b"\x00\x05abcd")


class _RefusesEverything:
    """A planted bug: a Netstring whose encode refuses every message, as if too large."""

    def __init__(self) -> None:
        self.inner = Netstring(max_size=100)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def encode(self, message: bytes) -> bytes:
        raise MessageTooLarge(repr(self.inner), len(message), 0)


class _RefusesWithAFramingError(_RefusesEverything):
    """A planted bug: encode blames the peer (FrameTooLarge) for the caller's message."""

    def encode(self, message: bytes) -> bytes:
        raise FrameTooLarge(repr(self.inner), len(message), 0)


def _plant(monkeypatch: pytest.MonkeyPatch, case: FramerCase) -> None:
    monkeypatch.setitem(targets._FAMILIES, "planted", (lambda o: case,))


def test_framer_target_finds_an_encode_that_refuses_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before, every refusal was skipped, so this encode passed every input.
    _plant(monkeypatch, FramerCase(_RefusesEverything, 5, round_trip=True))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="refused a message its own limits allow"):
        check_framer_input("planted", bytes(HEADER_BYTES) + b"3:abc,")


def test_framer_target_lets_encode_refuse_only_what_limits_forbid() -> None:
    # An oversize message, and messages that would not decode as sent.
    case = FramerCase(lambda: Netstring(max_size=3), 3, round_trip=True)
    assert case.may_refuse(Netstring(max_size=3), b"abcd")
    assert not case.may_refuse(Netstring(max_size=3), b"abc")
    lines = FramerCase(Lines, 2, round_trip=True, delimiter=b"\n")
    assert lines.may_refuse(Lines(), b"a\nb")
    assert lines.may_refuse(Lines(), b"a\r")  # a\r\n would read back as a
    assert not lines.may_refuse(Lines(), b"a\rb")


def test_framer_target_finds_an_encode_that_raises_a_framing_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _plant(monkeypatch, FramerCase(_RefusesWithAFramingError, 5, round_trip=True))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="not an EncodeError"):
        check_framer_input("planted", bytes(HEADER_BYTES) + b"3:abc,")
