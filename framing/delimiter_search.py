r"""The resumable search for the first of several delimiters in a growing buffer.

A delimited framer appends each chunk to one ``bytearray`` and asks where the
record that starts at ``pos`` ends. The answer must not depend on how the
stream was split, and no byte may be searched again and again while a long
record arrives in small chunks (that would be quadratic). Both are this
module's job; cutting records, limits and policies are
:mod:`framing.delimited`'s.

The rule, with several delimiters: the match that *ends* earliest wins, and
when two matches end at the same byte the longer one is the delimiter::

    delimiters (b"\r\n", b"\n")
    buffer:    | D | E | F | \r | \n | G |
    offset:      0   1   2   3    4    5
    \n ends at 5, \r\n ends at 5: a tie, \r\n wins: find(buf, 0) == (5, 2)

    delimiters (b"abc", b"b")
    buffer:    | x | a | b | c |
    b ends at 3, before abc ends at 4: find(buf, 0) == (3, 1)

Searching resumes where the last search stopped. After a search from ``pos``
found no ``delim`` in ``buf``, no match starts before
``len(buf) - len(delim) + 1``: a match starting there or later could still be
completed by bytes not yet arrived. With ``\r\n``, after ``abc\r`` (4 bytes)
was searched, the next search starts at 4 - 2 + 1 = 3, and when ``\n``
arrives it finds ``\r\n`` at 3. Each byte is searched about once per
delimiter however the stream is split, so the search is O(n).

Use::

    search = delimiter_search((b"\r\n", b"\n"))
    search.restart(len(buf))          # buf holds no delimiter yet
    buf += chunk
    end, length = search.find(buf, pos)   # (-1, 0): none yet
    del buf[:n]; search.consumed(n)   # keep the remembered offsets right
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DelimiterSearch", "delimiter_search", "first_match"]


def first_match(data: bytes | bytearray, delimiters: Sequence[bytes]) -> tuple[int, int]:
    """Return ``(end, length)`` of the winning match in ``data``, or ``(-1, 0)``.

    A one-shot search over bytes that are all there (``encode`` uses it). The
    winner ends earliest; on a tie the longer delimiter wins. The earliest
    occurrence of one delimiter is also its earliest end (its length is
    fixed), so one ``find`` per delimiter is enough.

    Args:
        data: the bytes to search.
        delimiters: the delimiters, non-empty each.

    Returns:
        The offset just past the winning match and the winner's length.
    """
    best_end, best_len = -1, 0
    for delim in delimiters:
        i = data.find(delim)
        if i >= 0:
            end = i + len(delim)
            if best_end < 0 or end < best_end or (end == best_end and len(delim) > best_len):
                best_end, best_len = end, len(delim)
    return best_end, best_len


class DelimiterSearch:
    """A resumable search for the earliest-ending of several delimiters.

    The state between calls is, per delimiter, an occurrence found but not
    yet reached (``_hits``: so a rare delimiter is not searched for again from
    every short record before it, which would be quadratic in a chunk of
    many records) and where to resume when none was found (``_froms``: every
    start before it was searched).

    Build one with :func:`delimiter_search`, which picks the cheapest search
    for the delimiters given. The owner keeps the buffer; it tells the search
    when the buffer starts afresh (:meth:`restart`) and when bytes are removed
    from its front (:meth:`consumed`).

    Attributes:
        delimiters: the delimiters, in the order given.
        longest: the length of the longest delimiter.
        prefixes: every proper prefix of every delimiter, longest first: the
            bytes that may still become a delimiter at the end of a buffer.
    """

    __slots__ = ("_froms", "_hits", "_lens", "delimiters", "longest", "prefixes")

    def __init__(self, delimiters: Sequence[bytes]) -> None:
        """Prepare a search for ``delimiters`` (non-empty bytes, no duplicates)."""
        self.delimiters = tuple(delimiters)
        self._lens = tuple(len(d) for d in self.delimiters)
        self.longest = max(self._lens)
        prefixes = {d[:k] for d in self.delimiters for k in range(1, len(d))}
        self.prefixes = tuple(sorted(prefixes, key=lambda p: (-len(p), p)))
        self._hits: list[int] = []
        self._froms: list[int] = []
        self.restart(0)

    def restart(self, held: int) -> None:
        """Forget every offset: the buffer's first ``held`` bytes hold no delimiter.

        A match can then only start in the last ``len - 1`` bytes of them or later.
        """
        self._hits = [-1] * len(self._lens)
        self._froms = [max(0, held - n + 1) for n in self._lens]

    def consumed(self, n: int) -> None:
        """Shift the remembered offsets: the owner removed ``buf[:n]``.

        Only bytes before the next search's ``pos`` may be removed.
        """
        self._hits = [h - n if h >= n else -1 for h in self._hits]
        self._froms = [f - n if f > n else 0 for f in self._froms]

    def find(self, buf: bytearray, pos: int) -> tuple[int, int]:
        """Return ``(end, length)`` of the winning match at or after ``pos``, or ``(-1, 0)``.

        Args:
            buf: the buffer; only ever appended to (or cut by :meth:`consumed`)
                since the last call.
            pos: where the current record starts; no earlier than the last
                call's ``pos`` (minus what was consumed).

        Returns:
            The offset just past the winning delimiter and its length.
        """
        best_end, best_len = -1, 0
        hits = self._hits
        froms = self._froms
        for i, delim in enumerate(self.delimiters):
            hit = hits[i]
            if hit < pos:
                start = froms[i]
                hit = buf.find(delim, start if start > pos else pos)
                if hit < 0:
                    hits[i] = -1
                    # No match starts before len(buf) - len(delim) + 1 (see
                    # the module docstring: after abc\r, \r\n resumes at 3).
                    froms[i] = max(pos, len(buf) - len(delim) + 1)
                    continue
                hits[i] = hit
            end = hit + len(delim)
            if best_end < 0 or end < best_end or (end == best_end and len(delim) > best_len):
                best_end, best_len = end, len(delim)
        return best_end, best_len

    def partial_len(self, buf: bytearray, pos: int) -> int:
        """Length of the longest tail of ``buf[pos:]`` that is a proper prefix of a delimiter.

        Those bytes may become a delimiter when the next chunk arrives, so they
        are not yet known to be payload.
        """
        held = len(buf) - pos
        for prefix in self.prefixes:
            if len(prefix) <= held and buf.endswith(prefix):
                return len(prefix)
        return 0


class _OneDelimiter(DelimiterSearch):
    """One delimiter: one ``find``, resumed; the match found is used at once."""

    __slots__ = ("_delim", "_from", "_len")

    def __init__(self, delimiters: Sequence[bytes]) -> None:
        self._delim = delimiters[0]
        self._len = len(self._delim)
        self._from = 0
        super().__init__(delimiters)

    def restart(self, held: int) -> None:
        self._from = max(0, held - self._len + 1)

    def consumed(self, n: int) -> None:
        self._from = self._from - n if self._from > n else 0

    def find(self, buf: bytearray, pos: int) -> tuple[int, int]:
        start = self._from
        hit = buf.find(self._delim, start if start > pos else pos)
        if hit < 0:
            # After abc\r with \r\n: resume at 4 - 2 + 1 = 3 (module docstring).
            self._from = max(pos, len(buf) - self._len + 1)
            return -1, 0
        return hit + self._len, self._len


class _LineEnding(DelimiterSearch):
    r"""``\n`` and ``\r\n``: the first ``\n`` ends the record, and a ``\r`` before it joins it.

    Whichever ``\n`` comes first ends the earliest match; a ``\r`` just before
    it, inside the record, makes the longer ``\r\n`` that ties with it. So one
    search for ``\n``, resumed at ``len(buf)`` (``len(buf) - 1 + 1``).
    """

    __slots__ = ("_from",)

    def __init__(self, delimiters: Sequence[bytes]) -> None:
        self._from = 0
        super().__init__(delimiters)

    def restart(self, held: int) -> None:
        self._from = held

    def consumed(self, n: int) -> None:
        self._from = self._from - n if self._from > n else 0

    def find(self, buf: bytearray, pos: int) -> tuple[int, int]:
        start = self._from
        hit = buf.find(b"\n", start if start > pos else pos)
        if hit < 0:
            self._from = max(pos, len(buf))
            return -1, 0
        if hit > pos and buf[hit - 1] == 0x0D:
            return hit + 1, 2
        return hit + 1, 1


def delimiter_search(delimiters: Sequence[bytes]) -> DelimiterSearch:
    r"""Return a fresh search for ``delimiters``, the cheapest one that fits them.

    One delimiter, or exactly ``\n`` and ``\r\n``, get a search with a single
    ``find`` per call; any other set the general one. All give the same answers.

    Args:
        delimiters: non-empty, distinct delimiters.
    """
    if len(delimiters) == 1:
        return _OneDelimiter(delimiters)
    if set(delimiters) == {b"\n", b"\r\n"}:
        return _LineEnding(delimiters)
    return DelimiterSearch(delimiters)
