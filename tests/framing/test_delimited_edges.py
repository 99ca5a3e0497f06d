"""Edges of ``Delimited`` and ``Lines`` that the broader tests leave unpinned.

Each test pins one observable behaviour on a rare path: an error's text or
fields, a boundary of ``max_size`` or ``check_size``, the state that
``detach`` and ``feed_eof`` leave behind, or an ``encode`` refusal with
several delimiters. They were written against the survivors of a mutation run
(see docs/ROBUSTNESS.md), but each states a documented behaviour.
"""

from __future__ import annotations

import re

import pytest

from framing.delimited import Delimited, Lines
from framing.errors import FrameTooLarge, MalformedFrame


def reject_x(head: bytes) -> str | None:
    """An early check that refuses records starting with ``x``."""
    return "starts with x" if head.startswith(b"x") else None


# --- settings errors: the text says which option and which value -------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"max_size": 0}, "max_size must be at least 1, not 0"),
        ({"on_oversize": "drop"}, "on_oversize must be 'raise' or 'skip', not 'drop'"),
        ({"on_eof": "ignore"}, "on_eof must be 'raise' or 'deliver', not 'ignore'"),
        ({"check": reject_x, "check_size": 0}, "check_size must be at least 1 with a check, not 0"),
        ({"check_size": 3}, "check_size was given without a check"),
    ],
)
def test_settings_errors_name_the_option_and_value(kwargs: dict[str, object], text: str) -> None:
    """Each bad option raises ValueError with a message naming it and the value given."""
    exact = f"^{re.escape(text)}$"
    with pytest.raises(ValueError, match=exact):
        Delimited(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=exact):
        Lines(**kwargs)  # type: ignore[arg-type]


# --- encode with several delimiters ------------------------------------------------


def test_encode_refuses_message_holding_another_one_byte_delimiter() -> None:
    """With ``;`` and ``|``, a message holding ``|`` cannot be sent with ``;`` appended."""
    framer = Delimited((b";", b"|"))
    assert framer.encode(b"ab") == b"ab;"
    with pytest.raises(MalformedFrame) as info:
        framer.encode(b"a|b")
    assert info.value.framer == "Delimited((b';', b'|'))"
    assert framer.feed(b"a|b;") == [b"a", b"b"]  # what the peer would have read


def test_encode_refuses_message_holding_a_shorter_delimiter_before_a_longer_one() -> None:
    r"""A ``\n`` in the message ends a record before the ``END`` appended can."""
    framer = Delimited((b"\n", b"END"), encode_delimiter=b"END")
    assert framer.encode(b"ab") == b"abEND"
    with pytest.raises(MalformedFrame, match="would not decode as sent"):
        framer.encode(b"a\nb")


# --- the partial delimiter held is the longest one ---------------------------------


def test_partial_delimiter_is_the_longest_prefix_of_any_delimiter() -> None:
    """``ab`` may begin ``abc`` (two bytes), not only ``bd`` (one): not payload yet."""
    framer = Delimited((b"abc", b"bd"), max_size=3)
    assert framer.feed(b"xxxab") == []  # 3 payload bytes, then a possible "abc"
    assert framer.buffered == 5
    assert framer.feed(b"c") == [b"xxx"]


def test_partial_delimiter_is_sought_only_in_the_current_record() -> None:
    """The delimiter that ended the last record is not the start of the next one.

    ``abca`` ends ``x``; then ``bc`` cannot begin ``abca`` (it would need the
    ``a`` already consumed), so two payload bytes are over ``max_size=1``.
    """
    framer = Delimited(b"abca", max_size=1)
    with pytest.raises(FrameTooLarge) as info:
        framer.feed(b"xabcabc")
    assert (info.value.size, info.value.limit, info.value.messages) == (2, 1, [b"x"])


# --- the early check: exactly when it runs -----------------------------------------


def test_check_runs_when_exactly_check_size_bytes_have_arrived() -> None:
    """The head goes to the check as soon as it is complete, not one byte later."""
    heads: list[bytes] = []
    framer = Delimited(check=heads.append, check_size=3)
    assert framer.feed(b"ab") == []
    assert heads == []
    assert framer.feed(b"c") == []
    assert heads == [b"abc"]
    with pytest.raises(MalformedFrame):
        Delimited(check=reject_x, check_size=3).feed(b"xyz")


def test_check_size_equal_to_max_size_checks_a_whole_oversize_record() -> None:
    """With ``check_size == max_size`` an oversize record is checked before its size."""
    with pytest.raises(MalformedFrame) as info:
        Delimited(max_size=3, check=reject_x, check_size=3).feed(b"ok\nxyzw\n")
    assert info.value.messages == [b"ok"]
    heads: list[bytes] = []
    framer = Delimited(max_size=3, on_oversize="skip", check=heads.append, check_size=3)
    assert framer.feed(b"abcd\nok\n") == [b"ok"]
    assert heads == [b"abc", b"ok"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 4)


# --- skipping oversize records -----------------------------------------------------


def test_skip_counts_each_record_skipped_as_it_arrives() -> None:
    """Records found oversize before their delimiter arrives are each counted, in full."""
    framer = Delimited(max_size=2, on_oversize="skip")
    assert framer.feed(b"abcd") == []  # over 2: skipped from here on
    assert framer.feed(b"ef\nghij") == []  # ends the first, starts the second
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 6)
    assert framer.feed(b"k\nok\n") == [b"ok"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 11)


# --- feed_eof: errors and counters for the unterminated last record ----------------


def test_feed_eof_oversize_tail_error_carries_framer_numbers_and_messages() -> None:
    r"""An over-long tail delivered at the end raises with its size and earlier records.

    ``abc\r`` fits while the ``\r`` may begin ``\r\n``; at the end it is a
    4-byte record, over 3. The record held back by ``limit=0`` comes first.
    """
    framer = Delimited(b"\r\n", max_size=3, on_eof="deliver")
    assert framer.feed(b"a\r\nabc\r", limit=0) == []
    with pytest.raises(FrameTooLarge) as info:
        framer.feed_eof()
    exc = info.value
    assert exc.framer == "Delimited(b'\\r\\n', max_size=3, on_eof='deliver')"
    assert (exc.size, exc.limit, exc.messages) == (4, 3, [b"a"])
    assert str(exc).startswith(exc.framer + ": frame of 4 bytes")


def test_feed_eof_checks_and_skips_an_oversize_tail_and_counts_it() -> None:
    """At the end, an unchecked tail is checked on its head, then skipped and counted.

    ``aEN`` was never checked while ``EN`` might begin ``END``; at the end it is
    a 3-byte record over ``max_size=2``: checked (``check_size == max_size``),
    then skipped, counted after the record skipped before it.
    """
    heads: list[bytes] = []
    framer = Delimited(
        b"END",
        max_size=2,
        on_oversize="skip",
        on_eof="deliver",
        check=heads.append,
        check_size=2,
    )
    assert framer.feed(b"xxxENDaEN") == []
    assert heads == [b"xx"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (1, 3)
    assert framer.feed_eof() == []
    assert heads == [b"xx", b"aE"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (2, 6)


def test_feed_eof_check_rejecting_the_tail_keeps_earlier_records() -> None:
    """A tail shorter than ``check_size`` is checked at the end; the error keeps earlier records."""
    framer = Delimited(on_eof="deliver", check=reject_x, check_size=5)
    assert framer.feed(b"a\nxy", limit=0) == []
    with pytest.raises(MalformedFrame) as info:
        framer.feed_eof()
    assert info.value.messages == [b"a"]
    assert "starts with x" in str(info.value)


def test_feed_eof_leaves_a_fresh_framer_whose_next_record_is_checked() -> None:
    """After feed_eof checked and delivered a tail, the framer checks the next record again.

    ``ok`` is shorter than ``check_size``: it is checked only at the end.
    """
    framer = Delimited(on_eof="deliver", check=reject_x, check_size=5)
    assert framer.feed(b"ok") == []
    assert framer.feed_eof() == [b"ok"]
    with pytest.raises(MalformedFrame):
        framer.feed(b"xyz\n")


# --- detach: the framer is left as new ---------------------------------------------


def test_detach_resets_the_early_check() -> None:
    """A record whose head was checked, then detached: the next record is checked afresh."""
    framer = Delimited(check=reject_x, check_size=1)
    assert framer.feed(b"ab") == []  # "a" checked and accepted
    assert framer.detach() == b"ab"
    with pytest.raises(MalformedFrame):
        framer.feed(b"xy\n")


def test_detach_inside_a_skip_ends_the_skip() -> None:
    """After detach during a skip, the next record is delivered, not skipped or counted."""
    framer = Delimited(b"\r\n", max_size=2, on_oversize="skip")
    assert framer.feed(b"abcdef\r") == []
    assert framer.detach() == b"\r"
    assert framer.feed(b"ok\r\nno\r\n", limit=1) == [b"ok"]
    assert framer.feed(b"", limit=1) == [b"no"]
    assert (framer.skipped_frames, framer.skipped_bytes) == (0, 0)


# --- Lines -------------------------------------------------------------------------


def test_lines_crlf_chunk_ending_mid_line() -> None:
    r"""A chunk of CRLF lines cut inside a line: the whole lines, the rest held."""
    framer = Lines()
    assert framer.feed(b"XX\r\nXXI") == [b"XX"]
    assert framer.buffered == 3
    assert framer.feed(b"\r\n") == [b"XXI"]


def test_lines_clone_keeps_on_eof() -> None:
    """A clone of ``Lines(on_eof="deliver")`` delivers an unterminated last line too."""
    twin = Lines(on_eof="deliver", max_size=9).clone()
    assert repr(twin) == "Lines(max_size=9, on_eof='deliver')"
    assert twin.feed(b"a\nlast") == [b"a"]
    assert twin.feed_eof() == [b"last"]
