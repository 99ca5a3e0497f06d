"""The decode peers themselves: the bytes.find line loop decodes what was encoded."""

from __future__ import annotations

import pytest

from benchmarks import decoders
from framing.testing import split_at


@pytest.mark.parametrize("framing", ["lines", "crlf"])
@pytest.mark.parametrize("cuts", [[], [3], [4], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [5, 9, 12]])
def test_find_loop_delivers_every_line_whatever_the_cuts(framing: str, cuts: list[int]) -> None:
    ending = decoders.DELIMITER[framing]
    lines = [b"abc", b"", b"de\rf", b"g"]
    stream = b"".join(line + ending for line in lines)
    frames, _ = decoders.find_loop(framing)(split_at(stream, cuts))
    assert frames == lines


def test_find_loop_strips_the_cr_of_crlf_lines_for_lines() -> None:
    frames, _ = decoders.find_loop("lines")([b"a\r", b"\nb\r\nc\n"])
    assert frames == [b"a", b"b", b"c"]


def test_find_loop_refuses_a_stream_ending_inside_a_line() -> None:
    with pytest.raises(ValueError, match="inside a line"):
        decoders.find_loop("crlf")([b"a\r\nb\r"])
