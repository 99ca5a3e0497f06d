"""The resumable multi-delimiter search, on its own: the rule, resumption, the offsets kept."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framing.delimiter_search import DelimiterSearch, delimiter_search, first_match

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(data: bytes, pos: int, delims: Sequence[bytes]) -> tuple[int, int]:
    """The rule, plainly: the first end position at which some delimiter ends, the longest there."""
    for end in range(pos + 1, len(data) + 1):
        found = [len(d) for d in delims if end - len(d) >= pos and data[end - len(d) : end] == d]
        if found:
            return end, max(found)
    return -1, 0


def test_first_match_earliest_end_wins() -> None:
    assert first_match(b"xabc", (b"abc", b"b")) == (3, 1)


def test_first_match_tie_takes_the_longer() -> None:
    assert first_match(b"DEF\r\n", (b"\n", b"\r\n")) == (5, 2)
    assert first_match(b"DEF\r\n", (b"\r\n", b"\n")) == (5, 2)


def test_first_match_none_found() -> None:
    assert first_match(b"abc", (b"\n",)) == (-1, 0)


@pytest.mark.parametrize(
    ("delims", "kind"),
    [
        ((b"\r\n",), "_OneDelimiter"),
        ((b"\n", b"\r\n"), "_LineEnding"),
        ((b"\r\n", b"\n"), "_LineEnding"),
        ((b";", b"|"), "DelimiterSearch"),
    ],
)
def test_delimiter_search_picks_the_search_for_the_delimiters(
    delims: tuple[bytes, ...], kind: str
) -> None:
    search = delimiter_search(delims)
    assert type(search).__name__ == kind
    assert isinstance(search, DelimiterSearch)
    assert search.delimiters == delims


def test_find_resumes_at_a_delimiter_split_across_chunks() -> None:
    r"""After ``abc\r`` was searched, ``\r\n`` is found when ``\n`` arrives (it starts at 3)."""
    for delims in [(b"\r\n",), (b"\r\n", b"\n"), (b"\r\n", b";")]:
        search = delimiter_search(delims)
        buf = bytearray(b"abc\r")
        assert search.find(buf, 0) == (-1, 0)
        buf += b"\nz"
        assert search.find(buf, 0) == (5, 2)


def test_find_tie_takes_the_longer_after_a_split() -> None:
    search = delimiter_search((b"\n", b"\r\n", b"x"))
    buf = bytearray(b"DEF\r")
    assert search.find(buf, 0) == (-1, 0)
    buf += b"\n"
    assert search.find(buf, 0) == (5, 2)


def test_find_remembers_a_later_match_of_a_rare_delimiter() -> None:
    """Records end with ``;`` one after another; the ``|`` far ahead is found once and kept."""
    search = delimiter_search((b";", b"|"))
    buf = bytearray(b"a;b;c|")
    assert search.find(buf, 0) == (2, 1)
    assert search.find(buf, 2) == (4, 1)
    assert search.find(buf, 4) == (6, 1)
    assert search.find(buf, 6) == (-1, 0)


def test_consumed_shifts_the_offsets() -> None:
    for delims in [(b"ab",), (b"\n", b"\r\n"), (b"ab", b"b", b"abc")]:
        search = delimiter_search(delims)
        buf = bytearray(b"xx\nyya")
        first = search.find(buf, 0)
        assert first == reference(bytes(buf), 0, delims)
        pos = first[0] if first[0] >= 0 else 0
        assert search.find(buf, pos) == reference(bytes(buf), pos, delims)
        del buf[:pos]
        search.consumed(pos)
        buf += b"b\nabc"
        assert search.find(buf, 0) == reference(bytes(buf), 0, delims)


def test_restart_resumes_in_the_last_bytes_held() -> None:
    """``restart(held)``: the held bytes hold no delimiter, but may end with the start of one."""
    search = delimiter_search((b"--END--",))
    buf = bytearray(b"abc--EN")
    search.restart(len(buf))
    buf += b"D--"
    assert search.find(buf, 0) == (10, 7)


def test_partial_len_is_the_longest_prefix_of_any_delimiter() -> None:
    search = delimiter_search((b"abc", b"bd"))
    assert search.partial_len(bytearray(b"xxab"), 0) == 2
    assert search.partial_len(bytearray(b"xxb"), 0) == 1
    assert search.partial_len(bytearray(b"xxab"), 3) == 1  # only b"b" is in the record
    assert search.partial_len(bytearray(b"xx"), 0) == 0
    assert search.longest == 3
    assert search.prefixes == (b"ab", b"a", b"b")


small_delims = st.lists(
    st.binary(min_size=1, max_size=3).map(lambda b: bytes(98 + x % 3 for x in b)),
    min_size=1,
    max_size=3,
    unique=True,
)
delim_sets = st.one_of(small_delims, st.just([b"\n", b"\r\n"]), st.just([b"\r\n"]))
streams = st.lists(st.sampled_from([b"a", b"b", b"c", b"d", b"\r", b"\n"]), max_size=40).map(
    b"".join
)


@FAST
@given(delims=delim_sets, stream=streams, data=st.data())
def test_find_matches_the_rule_however_the_buffer_grows(
    delims: list[bytes], stream: bytes, data: st.DataObject
) -> None:
    """Fed in random pieces, records consumed as found: the same ends as the plain rule."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    search = delimiter_search(delims)
    buf = bytearray()
    pos = 0
    consumed = 0
    got: list[tuple[int, int]] = []
    for piece in pieces:
        buf += piece
        while True:
            end, length = search.find(buf, pos)
            if end < 0:
                break
            got.append((consumed + end, length))
            pos = end
        if data.draw(st.booleans(), label="consume"):
            del buf[:pos]
            search.consumed(pos)
            consumed += pos
            pos = 0
    expected: list[tuple[int, int]] = []
    start = 0
    while True:
        end, length = reference(stream, start, delims)
        if end < 0:
            break
        expected.append((end, length))
        start = end
    assert got == expected


class RecordingBuffer(bytearray):
    """A buffer that records every search made in it: ``(delimiter, start)``."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(data)
        self.searches: list[tuple[bytes, int]] = []

    def find(self, sub: object, start: object = None, *args: object) -> int:
        assert isinstance(sub, bytes)
        assert isinstance(start, int)
        self.searches.append((sub, start))
        return super().find(sub, start)


@pytest.mark.parametrize(
    ("delims", "expected"),
    [
        # abc\r searched from 0; then \r\n resumes at 4 - 2 + 1 = 3, ; at 4 - 1 + 1 = 4.
        ((b"\r\n",), [(b"\r\n", 0), (b"\r\n", 3)]),
        ((b"\r\n", b";"), [(b"\r\n", 0), (b";", 0), (b"\r\n", 3), (b";", 4)]),
        ((b"\n", b"\r\n"), [(b"\n", 0), (b"\n", 4)]),
    ],
)
def test_find_resumes_where_the_last_search_stopped(
    delims: tuple[bytes, ...], expected: list[tuple[bytes, int]]
) -> None:
    """Each byte is searched about once per delimiter: a search resumes, it does not restart.

    Found by mutants that resumed earlier (quadratic on a record fed byte by byte).
    """
    search = delimiter_search(delims)
    buf = RecordingBuffer(b"abc\r")
    assert search.find(buf, 0) == (-1, 0)
    buf += b"\n"
    assert search.find(buf, 0) == (5, 2)
    assert buf.searches == expected


@pytest.mark.parametrize(
    ("delims", "expected"),
    [
        ((b"--END--",), [(b"--END--", 1)]),  # 7 held - 7 + 1
        ((b"--END--", b";"), [(b"--END--", 1), (b";", 7)]),
    ],
)
def test_restart_resumes_exactly_at_the_last_bytes_held(
    delims: tuple[bytes, ...], expected: list[tuple[bytes, int]]
) -> None:
    """After ``restart(7)``, ``--END--`` can only start at 1 or later, ``;`` at 7."""
    search = delimiter_search(delims)
    buf = RecordingBuffer(b"abc--EN")
    search.restart(len(buf))
    buf += b"D--"
    assert search.find(buf, 0) == (10, 7)
    assert buf.searches == expected


@pytest.mark.parametrize(
    ("delims", "expected"),
    [
        # b"ab\ncd" searched: the next search resumes at 5 - len + 1, then 3 bytes go.
        ((b"\n",), [(b"\n", 0), (b"\n", 3), (b"\n", 2)]),
        ((b"\n", b"\r\n"), [(b"\n", 0), (b"\n", 3), (b"\n", 2)]),
        (
            (b"\n", b";"),
            [(b"\n", 0), (b";", 0), (b"\n", 3), (b";", 5), (b"\n", 2), (b";", 2)],
        ),
    ],
)
def test_consumed_keeps_the_resume_point(
    delims: tuple[bytes, ...], expected: list[tuple[bytes, int]]
) -> None:
    r"""The owner removes a delivered record: the search resumes where it stopped, shifted.

    ``ab\n`` is a record, ``cd`` searched in full; after ``consumed(3)`` the
    next search starts at 2 (``cd``'s end), not at 0 and not past the ``\n``
    that arrives next.
    """
    search = delimiter_search(delims)
    buf = RecordingBuffer(b"ab\ncd")
    assert search.find(buf, 0) == (3, 1)
    assert search.find(buf, 3) == (-1, 0)
    del buf[:3]
    search.consumed(3)
    buf += b"\n"
    assert search.find(buf, 0) == (3, 1)
    assert buf.searches == expected


def test_consumed_after_a_skip_finds_the_next_delimiter() -> None:
    r"""The owner may drop bytes of the record it is reading (a skip): the next ``\n`` is found."""
    for delims in [(b"\n",), (b"\n", b"\r\n"), (b"\n", b";")]:
        search = delimiter_search(delims)
        buf = bytearray(b"abcd")
        assert search.find(buf, 0) == (-1, 0)
        del buf[:2]
        search.consumed(2)
        buf += b"\n"
        assert search.find(buf, 0) == (3, 1), delims


def test_a_remembered_match_is_not_searched_for_again() -> None:
    """``|`` found while ``;`` ended the first record is kept, across ``consumed``, once searched.

    Found by mutants that forgot the match (``consumed``) or searched again for
    one that starts exactly where the record starts.
    """
    search = delimiter_search((b";", b"|"))
    buf = RecordingBuffer(b"a;|x")
    assert search.find(buf, 0) == (2, 1)
    del buf[:2]
    search.consumed(2)
    assert search.find(buf, 0) == (1, 1)  # the | now at 0, where the record starts
    assert buf.searches.count((b"|", 0)) == 1
    assert [s for s in buf.searches if s[0] == b"|"] == [(b"|", 0)]
