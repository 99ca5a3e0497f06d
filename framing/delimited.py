r"""Delimited framing: each message ends with a delimiter.

The delimiter is stripped from the message delivered (unless asked to keep it)
and appended by ``encode``::

    Delimited(b"\n")
    wire:      | hello\nwor | ld\nbye | \n |
    messages:  b"hello", b"world", b"bye"

    Delimited(b"\r\n")                 a delimiter split across two chunks is found
    wire:      | OK\r | \nEND\r\n |
    messages:  b"OK", b"END"

    Lines()                            \n or \r\n; the whole line ending is stripped
    wire:      | GET / HTTP/1.1\r\n | Host: a\n | \r\n |
    messages:  b"GET / HTTP/1.1", b"Host: a", b""

Several delimiters: the match that *ends* earliest wins (asyncio's
``readuntil`` rule since Python 3.13), and when two matches end at the same
byte the longer delimiter is the one stripped (Netty's ``DelimiterBasedFrameDecoder``
gives the same "shortest frame")::

    Delimited((b"\r\n", b"\n"))
    wire:      | DEF\r\n | GHI\n |
    messages:  b"DEF", b"GHI"          (\r\n and \n both end at byte 5: \r\n wins)

    Delimited((b"abc", b"b"))
    wire:      | xabc |
    messages:  b"xa"                   (b ends at byte 3, before abc ends at byte 4)

The result depends only on the bytes, never on how the stream was split.

``max_size`` counts payload bytes, the delimiter excluded. A record is known to
be too large as soon as more than ``max_size`` of its bytes have arrived that
cannot be the start of a delimiter, so ``buffered`` never exceeds ``max_size``
plus the longest delimiter, whatever a peer sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, final

from framing.base import BytesLike, EarlyCheck, EofPolicy, OversizePolicy
from framing.errors import FrameTooLarge, IncompleteFrame, MalformedFrame

__all__ = ["Delimited", "Lines"]

# The default limit on a record's payload. 64 KiB is asyncio's StreamReader
# limit (``asyncio.streams._DEFAULT_LIMIT = 2**16``) for readline/readuntil:
# ample for any line-oriented protocol (SMTP allows 1000-byte lines, HTTP
# servers commonly refuse header lines over 8 KiB), and small enough that a
# peer who never sends a delimiter costs at most 64 KiB per connection. It is
# also Raw's default, so no default framer delivers more than 64 KiB at once.
DEFAULT_MAX_SIZE: Final = 65536

# Delimiter sets with a shortcut (see _DelimiterEngine._feed_lines, _feed_single, _find).
_MULTI: Final = 0  # several delimiters: one search per delimiter, no fast path
_SINGLE: Final = 1  # one delimiter: bytes.split on it
_CRLF: Final = 2  # exactly \n and \r\n (Lines): split on \n or \r\n, strip a \r

# Which lines of a fast-path split lose a trailing \r (the \r of a \r\n).
_STRIP_NONE: Final = 0
_STRIP_FIRST: Final = 1
_STRIP_ALL: Final = 2


def _first_match(data: bytes, delimiters: Sequence[bytes]) -> tuple[int, int]:
    """Return ``(end, length)`` of the winning match in ``data``, or ``(-1, 0)``.

    The winner ends earliest; on a tie the longer delimiter wins. The earliest
    occurrence of one delimiter is also its earliest end (its length is fixed),
    so one ``find`` per delimiter is enough.
    """
    best_end, best_len = -1, 0
    for delim in delimiters:
        i = data.find(delim)
        if i >= 0:
            end = i + len(delim)
            if best_end < 0 or end < best_end or (end == best_end and len(delim) > best_len):
                best_end, best_len = end, len(delim)
    return best_end, best_len


def _check_name(check: EarlyCheck) -> str:
    return getattr(check, "__qualname__", None) or repr(check)


class _DelimiterEngine:
    """The engine shared by :class:`Delimited` and :class:`Lines` (not public).

    State between calls: ``_buf`` holds the bytes of the record being received,
    starting at its first byte (after a ``limit`` stop it also holds whole
    unparsed records after it). While an oversize record is skipped, ``_buf``
    holds only its last ``longest delimiter - 1`` bytes, which may be the start
    of the delimiter that ends it.
    """

    __slots__ = (
        "_buf",
        "_check",
        "_check_size",
        "_checked",
        "_clean",
        "_delims",
        "_encode_delim",
        "_fast",
        "_froms",
        "_hits",
        "_keep",
        "_kind",
        "_last",
        "_lens",
        "_max_size",
        "_maxlen",
        "_on_eof",
        "_on_oversize",
        "_prefixes",
        "_skip_len",
        "_skipped_bytes",
        "_skipped_frames",
        "_skipping",
        "_strict",
    )

    def __init__(
        self,
        delimiters: tuple[bytes, ...],
        *,
        max_size: int,
        keep_delimiter: bool,
        encode_delimiter: bytes,
        on_oversize: OversizePolicy,
        on_eof: EofPolicy,
        check: EarlyCheck | None,
        check_size: int,
        strict: bool = False,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        if on_oversize not in ("raise", "skip"):
            raise ValueError(f"on_oversize must be 'raise' or 'skip', not {on_oversize!r}")
        if on_eof not in ("raise", "deliver"):
            raise ValueError(f"on_eof must be 'raise' or 'deliver', not {on_eof!r}")
        if check is not None and check_size < 1:
            raise ValueError(f"check_size must be at least 1 with a check, not {check_size}")
        if check is None and check_size != 0:
            raise ValueError("check_size was given without a check")
        self._delims = delimiters
        self._lens = tuple(len(d) for d in delimiters)
        self._maxlen = max(self._lens)
        # Every proper prefix of every delimiter, longest first: the bytes at the
        # end of the buffer that may still become a delimiter (see _partial_len).
        prefixes = {d[:k] for d in delimiters for k in range(1, len(d))}
        self._prefixes = tuple(sorted(prefixes, key=len, reverse=True))
        self._encode_delim = encode_delimiter
        self._max_size = max_size
        self._keep = keep_delimiter
        self._on_oversize = on_oversize
        self._on_eof = on_eof
        self._check = check
        self._check_size = check_size
        self._strict = strict
        if len(delimiters) == 1:
            self._kind = _SINGLE
        elif set(delimiters) == {b"\n", b"\r\n"}:
            self._kind = _CRLF
        else:
            self._kind = _MULTI
        # The fast path splits whole chunks, so it cannot call an early check
        # as each record's head arrives: with a check, every record takes the
        # general engine (_fast is falsy).
        self._fast = _MULTI if check is not None else self._kind
        # The byte every delimiter ends with (\n for Lines), or None when they
        # differ or there is a check: a chunk without it completes no record,
        # so feed can hold it at once (see feed). An int, not bytes: ``10 in
        # chunk`` is one memchr, while CPython runs ``b"\n" in chunk`` by first
        # trying the needle as an int, raising and clearing a TypeError: that
        # costs about four times a memchr over a whole 2 KiB chunk.
        ends = {d[-1] for d in delimiters}
        self._last = ends.pop() if len(ends) == 1 and check is None else None
        self._buf = bytearray()
        # _clean: _buf holds only an unterminated record, already searched in
        # full, and no record is being skipped. The fast path needs that; the
        # general engine then rebuilds its search state from len(_buf).
        self._clean = True
        self._hits: list[int] = []
        self._froms: list[int] = []
        self._checked = False
        self._skipping = False
        self._skip_len = 0
        self._skipped_frames = 0
        self._skipped_bytes = 0

    # --- public surface (documented on the concrete classes) ------------------------

    @property
    def max_size(self) -> int:
        """The largest record payload accepted, in bytes (the delimiter excluded)."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes held: the record being received (at most ``max_size`` + longest delimiter)."""
        return len(self._buf)

    @property
    def delimiters(self) -> tuple[bytes, ...]:
        """The delimiters recognised on receive, in the order given."""
        return self._delims

    @property
    def skipped_frames(self) -> int:
        """How many oversize records were skipped (``on_oversize="skip"``)."""
        return self._skipped_frames

    @property
    def skipped_bytes(self) -> int:
        """How many payload bytes the skipped records had, delimiters excluded."""
        return self._skipped_bytes

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:
        r"""Append a chunk and return every record it completes, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many records and parse no further; the
                bytes after the last one stay held, for ``detach``.

        Returns:
            The completed records; ``[]`` when more bytes are needed.

        Raises:
            FrameTooLarge: a record's payload is over ``max_size`` (``on_oversize="raise"``).
            MalformedFrame: the early check rejected a record, or (strict
                ``Lines``) a line ended with a bare ``\n``.
        """
        if not self._clean or self._last is None:
            return self._feed_general(data, limit)
        chunk = data if type(data) is bytes else bytes(data)
        if self._last not in chunk:
            # Fast path, records longer than the chunks: no delimiter can end
            # in this chunk (the held bytes hold none either: _clean), so no
            # record completes and, whatever ``limit``, the chunk is held: one
            # C scan and one copy. Unless that may make the record too large,
            # which the general engine judges to the byte.
            buf = self._buf
            if len(buf) + len(chunk) <= self._max_size:
                buf += chunk
                return []
        elif limit is None and self._fast:
            out = self._feed_lines(chunk) if self._fast == _CRLF else self._feed_single(chunk)
            if out is not None:
                return out
        return self._feed_general(chunk, limit)

    def feed_eof(self) -> list[bytes]:
        """Say the stream has ended; return the last records.

        Records held back by a ``limit`` are returned first. Then an
        unterminated last record is either an error (``on_eof="raise"``) or
        delivered as a message if it is not empty (``on_eof="deliver"``).

        Raises:
            IncompleteFrame: an unterminated record is held and ``on_eof`` is
                ``"raise"``; ``exc.partial`` holds its bytes. When the stream
                ends inside a skipped oversize record, that record is counted
                in ``skipped_frames`` and ``partial`` holds only what was kept
                of it (at most a partial delimiter).
            FrameTooLarge: the record delivered at the end is over ``max_size``
                (``on_eof="deliver"``, ``on_oversize="raise"``).
            MalformedFrame: the early check rejected the record delivered at the end.
        """
        out = self.feed()
        record = bytes(self._buf)
        skipping = self._skipping
        checked = self._checked
        skip_len = self._skip_len
        self.detach()
        if skipping:
            self._skipped_frames += 1
            self._skipped_bytes += skip_len + len(record)
            if self._on_eof == "raise":
                raise IncompleteFrame(repr(self), len(record), partial=record, messages=out)
            return out
        if not record:
            return out
        if self._on_eof == "raise":
            raise IncompleteFrame(repr(self), len(record), partial=record, messages=out)
        size = len(record)
        cs = self._check_size
        if (
            not checked
            and self._check is not None
            and (size <= self._max_size or cs <= self._max_size)
        ):
            self._run_check(record[:cs], out)
            self._checked = False
        if size > self._max_size:
            if self._on_oversize == "raise":
                raise FrameTooLarge(repr(self), size, self._max_size, messages=out)
            self._skipped_frames += 1
            self._skipped_bytes += size
            return out
        out.append(record)
        return out

    def encode(self, message: BytesLike) -> bytes:
        r"""Return the message followed by the encoding delimiter.

        Raises:
            FrameTooLarge: the message is over ``max_size``.
            MalformedFrame: the message would not decode as itself: it contains
                a delimiter, or its last bytes and the delimiter appended would
                form a delimiter that ends earlier or is longer (``b"a\r"`` for
                ``Lines()``, whose ``\r\n`` would swallow the ``\r``).
        """
        msg = bytes(message)
        if len(msg) > self._max_size:
            raise FrameTooLarge(
                repr(self),
                len(msg),
                self._max_size,
                detail=(
                    f"cannot encode a message of {len(msg)} bytes: "
                    f"over the limit of {self._max_size} bytes"
                ),
            )
        delim = self._encode_delim
        frame = msg + delim
        # The round trip must hold: decoding frame gives back exactly msg.
        if self._kind == _CRLF:
            bad = b"\n" in msg or (delim == b"\n" and msg[-1:] == b"\r")
        elif len(self._delims) == 1 and len(delim) == 1:
            bad = delim in msg
        else:
            end, dlen = _first_match(frame, self._delims)
            bad = end != len(frame) or dlen != len(delim)
        if bad:
            raise MalformedFrame(
                repr(self),
                f"cannot encode a message of {len(msg)} bytes: it contains a delimiter "
                f"or would run into the {delim!r} appended, so it would not decode as sent",
            )
        return frame

    def detach(self) -> bytes:
        """Remove and return every byte held that no record has consumed yet.

        The framer is left empty. While an oversize record is being skipped,
        what is returned is the little of it still held (a possible partial
        delimiter), and the skip ends.
        """
        held = bytes(self._buf)
        self._buf.clear()
        self._clean = True
        self._checked = False
        self._skipping = False
        self._skip_len = 0
        return held

    # --- the fast path -----------------------------------------------------------

    # Both fast paths split ``data`` with ``bytes.split`` in C. They are taken
    # when there is no limit and no early check, ``_buf`` holds only an
    # unterminated record with no delimiter in it, and ``data`` holds the last
    # byte of the delimiter. They change nothing and return ``None`` whenever
    # they cannot prove the result on their own: a record that may be over
    # ``max_size`` (the general engine then judges it to the byte), a bare
    # ``\n`` for strict ``Lines``, a chunk with no whole delimiter. So every
    # limit and policy is exact here too; they only decide the common,
    # unambiguous case. One per delimiter set, each straight-line: at small
    # records a few dozen bytecodes per chunk are measurable.

    def _feed_lines(self, data: bytes) -> list[bytes] | None:
        r"""The fast path of ``Lines`` (``\n`` or ``\r\n``); see above."""
        if 13 not in data:  # no b"\r": memchr (see _last)
            # LF text, the common case: split on \n. Only the first line,
            # joined to the held bytes, can end with a \r (a \r\n cut between
            # chunks). Strict Lines refuse a bare \n: the general engine raises.
            if self._strict:
                return None
            parts = data.split(b"\n")
            strip = _STRIP_FIRST
        else:
            # Probably CRLF text: split on \r\n, and keep that split when each
            # \n of the chunk ended a part (no bare \n): nothing to strip. (A
            # \n first in the chunk whose \r ended the held bytes counts as
            # bare here: it goes the mixed way below.) Measured: split on \r\n
            # plus a count of \n beats a split on \n plus a per-line strip.
            parts = data.split(b"\r\n")
            strip = _STRIP_NONE
            if data.count(b"\n") != len(parts) - 1:
                # Mixed: split on \n; every line whose last byte is \r ended
                # with \r\n and loses it. Strict Lines: the general engine
                # knows whether a \r ended the held bytes, and raises if not.
                if self._strict:
                    return None
                parts = data.split(b"\n")
                strip = _STRIP_ALL
        buf = self._buf
        tail = parts[-1]
        first = b"".join((buf, parts[0])) if buf else parts[0]
        mx = self._max_size
        if len(buf) + len(data) > mx and (len(first) > mx or max(map(len, parts)) > mx):
            # A record (the first, joined to the held bytes, or any other, the
            # tail included) may be over max_size. No record is longer than the
            # held bytes and data together, so when those fit, every one does.
            return None
        parts[0] = first
        del parts[-1]
        buf.clear()
        if tail:
            buf += tail
        if self._keep:
            # A line split on \n that ends with \r ended with \r\n: both kept.
            ending = b"\r\n" if strip == _STRIP_NONE else b"\n"
            parts = [p + ending for p in parts]
        elif strip == _STRIP_FIRST:
            if first[-1:] == b"\r":
                parts[0] = first[:-1]
        elif strip == _STRIP_ALL:
            parts = [p[:-1] if p[-1:] == b"\r" else p for p in parts]
        return parts

    def _feed_single(self, data: bytes) -> list[bytes] | None:
        r"""The fast path of one delimiter (``Delimited(b"\r\n")``...); see above."""
        buf = self._buf
        delim = self._delims[0]
        if self._prefixes and buf.endswith(self._prefixes):
            # The held bytes end with the start of a delimiter (b"\r" for
            # b"\r\n"), which may end in data: split the two joined, as the
            # careful decoder always does. Rare, so the copy is too.
            parts = b"".join((buf, data)).split(delim)
            first = parts[0]
        else:
            parts = data.split(delim)
            if len(parts) == 1:
                return None  # no whole delimiter after all (a lone \n for b"\r\n")
            first = b"".join((buf, parts[0])) if buf else parts[0]
        tail = parts[-1]
        mx = self._max_size
        if len(buf) + len(data) > mx and (len(first) > mx or max(map(len, parts)) > mx):
            return None  # a record may be over max_size (as in _feed_lines)
        parts[0] = first
        del parts[-1]
        buf.clear()
        if tail:
            buf += tail
        if self._keep:
            parts = [p + delim for p in parts]
        return parts

    # --- the general engine ------------------------------------------------------

    def _feed_general(self, data: BytesLike, limit: int | None) -> list[bytes]:
        """Cut records one by one with ``bytearray.find``, every option honoured."""
        buf = self._buf
        if self._clean:
            # Rebuild the search state: the held bytes contain no delimiter, so a
            # match can only start in their last len-1 bytes or later.
            held = len(buf)
            self._hits = [-1] * len(self._delims)
            self._froms = [max(0, held - n + 1) for n in self._lens]
        buf += data
        out: list[bytes] = []
        pos = 0  # start of the current record in buf
        stopped = False
        mx = self._max_size
        while True:
            if limit is not None and len(out) >= limit:
                stopped = True
                break
            end, dlen = self._find(buf, pos)
            if end < 0:
                pos = self._unterminated(buf, pos, out)
                break
            size = end - dlen - pos
            if self._skipping:
                self._skipped_frames += 1
                self._skipped_bytes += self._skip_len + size
                self._skip_len = 0
                self._skipping = False
                pos = end
                continue
            if self._check is not None and not self._checked:
                # Checked before the size, as when the record arrives in pieces:
                # an oversize record is checked too when its head fits max_size.
                cs = self._check_size
                if size <= mx or cs <= mx:
                    self._run_check(bytes(buf[pos : pos + min(cs, size)]), out)
            self._checked = False
            if size > mx:
                if self._on_oversize == "raise":
                    raise FrameTooLarge(repr(self), size, mx, messages=out)
                self._skipped_frames += 1
                self._skipped_bytes += size
                pos = end
                continue
            if self._strict and dlen == 1:
                raise MalformedFrame(
                    repr(self),
                    f"line of {size} bytes ends with a bare \\n, not \\r\\n (strict)",
                    messages=out,
                )
            out.append(bytes(buf[pos : end if self._keep else pos + size]))
            pos = end
        if pos:
            del buf[:pos]
            self._hits = [h - pos if h >= pos else -1 for h in self._hits]
            self._froms = [f - pos if f > pos else 0 for f in self._froms]
        self._clean = not stopped and not self._skipping
        return out

    def _find(self, buf: bytearray, pos: int) -> tuple[int, int]:
        r"""Return ``(end, length)`` of the winning delimiter at or after ``pos``, or ``(-1, 0)``.

        Per delimiter, ``_hits`` remembers an occurrence found but not yet
        reached (so a rare delimiter is not searched for again from every
        record: that would be quadratic in a chunk of many short records), and
        ``_froms`` where to resume when none was found: the search already
        covered every start before it. A match can still start in the last
        ``len(delim) - 1`` bytes, so that is where it resumes: with ``\r\n``,
        after ``abc\r`` was searched ``_froms`` is 3, and when ``\n`` arrives
        the search from 3 finds ``\r\n`` at 3. Each byte is searched about once
        however the stream is split, so the engine is O(n).
        """
        froms = self._froms
        if self._kind == _SINGLE:
            # The match found is used at once: no hit to remember.
            delim = self._delims[0]
            start = froms[0]
            hit = buf.find(delim, start if start > pos else pos)
            if hit < 0:
                froms[0] = max(pos, len(buf) - len(delim) + 1)
                return -1, 0
            return hit + len(delim), len(delim)
        if self._kind == _CRLF:
            # The first \n ends the record; a \r just before it, inside the
            # record, makes the ending \r\n. One search, resumed where it
            # stopped (froms[0] is only ever lower than needed).
            start = froms[0]
            hit = buf.find(b"\n", start if start > pos else pos)
            if hit < 0:
                froms[0] = max(pos, len(buf))
                return -1, 0
            if hit > pos and buf[hit - 1] == 0x0D:
                return hit + 1, 2
            return hit + 1, 1
        best_end, best_len = -1, 0
        hits = self._hits
        for i, delim in enumerate(self._delims):
            hit = hits[i]
            if hit < pos:
                start = froms[i]
                hit = buf.find(delim, start if start > pos else pos)
                if hit < 0:
                    hits[i] = -1
                    froms[i] = max(pos, len(buf) - len(delim) + 1)
                    continue
                hits[i] = hit
            end = hit + len(delim)
            if best_end < 0 or end < best_end or (end == best_end and len(delim) > best_len):
                best_end, best_len = end, len(delim)
        return best_end, best_len

    def _unterminated(self, buf: bytearray, pos: int, out: list[bytes]) -> int:
        """Handle the record at ``pos`` that has no delimiter yet; return the new ``pos``."""
        held = len(buf) - pos
        if self._skipping:
            # Discard all but what may be the start of the delimiter.
            keep = min(self._maxlen - 1, held)
            self._skip_len += held - keep
            return len(buf) - keep
        mx = self._max_size
        cs = self._check_size
        check_due = self._check is not None and not self._checked and cs <= mx and held >= cs
        if held <= mx and not check_due:
            return pos
        # Bytes that may be the start of a delimiter are not yet payload.
        definite = held - self._partial_len(buf, pos)
        if check_due and definite >= cs:
            self._run_check(bytes(buf[pos : pos + cs]), out)
        if definite <= mx:
            return pos
        if self._on_oversize == "raise":
            raise FrameTooLarge(
                repr(self),
                definite,
                mx,
                detail=(
                    f"no delimiter in the first {definite} bytes of a record: "
                    f"over the limit of {mx} bytes"
                ),
                messages=out,
            )
        self._skipping = True
        self._checked = False
        keep = min(self._maxlen - 1, held)
        self._skip_len = held - keep
        return len(buf) - keep

    def _partial_len(self, buf: bytearray, pos: int) -> int:
        """Length of the longest tail of the record that is a proper prefix of a delimiter."""
        held = len(buf) - pos
        for prefix in self._prefixes:
            if len(prefix) <= held and buf.endswith(prefix):
                return len(prefix)
        return 0

    def _run_check(self, head: bytes, out: list[bytes]) -> None:
        self._checked = True
        assert self._check is not None
        reason = self._check(head)
        if reason is not None:
            raise MalformedFrame(repr(self), f"record rejected by check: {reason}", messages=out)

    def _option_reprs(self) -> list[str]:
        parts = []
        if self._max_size != DEFAULT_MAX_SIZE:
            parts.append(f"max_size={self._max_size}")
        if self._keep:
            parts.append("keep_delimiter=True")
        if self._on_oversize != "raise":
            parts.append(f"on_oversize={self._on_oversize!r}")
        if self._on_eof != "raise":
            parts.append(f"on_eof={self._on_eof!r}")
        if self._check is not None:
            parts.append(f"check={_check_name(self._check)}, check_size={self._check_size}")
        return parts


def _as_delimiters(delimiter: bytes | Sequence[bytes]) -> tuple[bytes, ...]:
    if isinstance(delimiter, bytes | bytearray):
        items: list[object] = [delimiter]
    elif isinstance(delimiter, str):
        raise TypeError("a delimiter is bytes, not str: write b'...'")
    else:
        items = list(delimiter)
    delims: list[bytes] = []
    for item in items:
        if not isinstance(item, bytes | bytearray):
            raise TypeError(f"a delimiter is bytes, not {type(item).__name__}")
        if not item:
            raise ValueError("a delimiter cannot be empty")
        if bytes(item) not in delims:
            delims.append(bytes(item))
    if not delims:
        raise ValueError("at least one delimiter is needed")
    return tuple(delims)


@final
class Delimited(_DelimiterEngine):
    r"""Messages end with a delimiter, or with any one of several.

    ``Delimited()`` splits on ``\n``; ``Delimited(b"\r\n")`` on CRLF;
    ``Delimited((b"\r\n", b"\n"))`` on either (the earliest-ending match wins,
    the longer on a tie, so ``b"DEF\r\n"`` gives ``b"DEF"``). A delimiter split
    across two chunks is found. ``Lines`` is the ready-made line framer.

    Args:
        delimiter: one delimiter, or a sequence of them (non-empty bytes each).
        max_size: the largest payload of a record, delimiter excluded. A record
            is refused as soon as more than this many of its bytes have arrived
            that cannot be the start of a delimiter, before they are held. The
            default, 64 KiB, is asyncio's ``StreamReader`` limit.
        keep_delimiter: deliver each record with the delimiter that ended it.
            ``encode`` still appends the delimiter to the message it is given.
        encode_delimiter: the delimiter ``encode`` appends: one of the
            delimiters; by default the first.
        on_oversize: ``"raise"`` :class:`~framing.FrameTooLarge` for a record over
            ``max_size``, or ``"skip"`` it: its bytes are discarded as they
            arrive, up to and including its delimiter, counted in
            ``skipped_frames`` and ``skipped_bytes``, and the next record is read.
        on_eof: at the end of the stream, an unterminated last record is an
            error (``"raise"``, :class:`~framing.IncompleteFrame`) or is
            delivered as a message if not empty (``"deliver"``).
        check: an early check, called once per record with its first
            ``check_size`` payload bytes (or the whole payload when the record
            is shorter) as soon as they have arrived; a returned reason raises
            :class:`~framing.MalformedFrame`. A record whose head is over
            ``max_size`` (``check_size > max_size``) is refused for its size
            without being checked.
        check_size: how many bytes ``check`` wants (at least 1, required with ``check``).

    Raises:
        ValueError: an empty delimiter, an ``encode_delimiter`` that is not one
            of the delimiters, or an option out of range.
        TypeError: a delimiter that is not bytes.

    ``encode`` raises :class:`~framing.MalformedFrame` for a message that would
    not decode as itself (it contains a delimiter), rather than ``ValueError``:
    like :class:`~framing.FrameTooLarge` for a message over ``max_size``, it is
    a message this framing cannot carry, and both are caught as
    :class:`~framing.FramingError`.
    """

    __slots__ = ()

    def __init__(
        self,
        delimiter: bytes | Sequence[bytes] = b"\n",
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        keep_delimiter: bool = False,
        encode_delimiter: bytes | None = None,
        on_oversize: OversizePolicy = "raise",
        on_eof: EofPolicy = "raise",
        check: EarlyCheck | None = None,
        check_size: int = 0,
    ) -> None:
        delims = _as_delimiters(delimiter)
        if encode_delimiter is None:
            encode_delimiter = delims[0]
        elif bytes(encode_delimiter) not in delims:
            raise ValueError(
                f"encode_delimiter {encode_delimiter!r} is not one of the delimiters {delims!r}"
            )
        super().__init__(
            delims,
            max_size=max_size,
            keep_delimiter=keep_delimiter,
            encode_delimiter=bytes(encode_delimiter),
            on_oversize=on_oversize,
            on_eof=on_eof,
            check=check,
            check_size=check_size,
        )

    def __repr__(self) -> str:
        parts = []
        if self._delims != (b"\n",):
            parts.append(repr(self._delims[0] if len(self._delims) == 1 else self._delims))
        parts.extend(self._option_reprs())
        if self._encode_delim != self._delims[0]:
            parts.append(f"encode_delimiter={self._encode_delim!r}")
        return f"Delimited({', '.join(parts)})"

    def clone(self) -> Delimited:
        """Return a new, empty framer with the same settings."""
        return Delimited(
            self._delims,
            max_size=self._max_size,
            keep_delimiter=self._keep,
            encode_delimiter=self._encode_delim,
            on_oversize=self._on_oversize,
            on_eof=self._on_eof,
            check=self._check,
            check_size=self._check_size,
        )


@final
class Lines(_DelimiterEngine):
    r"""Lines of text: each message ends with ``\n`` or ``\r\n``, stripped whole.

    ``b"GET / HTTP/1.1\r\nHost: a\n"`` gives ``b"GET / HTTP/1.1"`` and
    ``b"Host: a"``: a ``\r`` just before the ``\n`` belongs to the line ending;
    any other ``\r`` is part of the line. ``encode`` appends ``line_ending``.

    Args:
        line_ending: what ``encode`` appends, ``b"\n"`` or ``b"\r\n"``; by default
            ``\n``, or ``\r\n`` when ``strict``.
        strict: require ``\r\n`` (as strict SMTP and HTTP parsers do): a line
            ending with a bare ``\n`` raises :class:`~framing.MalformedFrame`.
        max_size: the longest line accepted, line ending excluded (64 KiB by
            default, asyncio's ``StreamReader`` limit).
        keep_delimiter: deliver each line with the ending it arrived with.
        on_oversize: ``"raise"`` or ``"skip"`` a line over ``max_size``, as for
            :class:`Delimited`.
        on_eof: ``"raise"`` for an unterminated last line, or ``"deliver"`` it.
        check: an early check on each line's first ``check_size`` bytes, as
            for :class:`Delimited`.
        check_size: how many bytes ``check`` wants (required with ``check``).

    Raises:
        ValueError: a ``line_ending`` other than ``\n`` or ``\r\n``, ``\n``
            with ``strict``, or an option out of range.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        line_ending: bytes | None = None,
        strict: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
        keep_delimiter: bool = False,
        on_oversize: OversizePolicy = "raise",
        on_eof: EofPolicy = "raise",
        check: EarlyCheck | None = None,
        check_size: int = 0,
    ) -> None:
        if line_ending is None:
            line_ending = b"\r\n" if strict else b"\n"
        if line_ending not in (b"\n", b"\r\n"):
            raise ValueError(f"line_ending must be b'\\n' or b'\\r\\n', not {line_ending!r}")
        if strict and line_ending != b"\r\n":
            raise ValueError("strict Lines end every line with \\r\\n: line_ending must be too")
        super().__init__(
            (b"\r\n", b"\n"),
            max_size=max_size,
            keep_delimiter=keep_delimiter,
            encode_delimiter=bytes(line_ending),
            on_oversize=on_oversize,
            on_eof=on_eof,
            check=check,
            check_size=check_size,
            strict=strict,
        )

    @property
    def strict(self) -> bool:
        r"""Whether a bare ``\n`` is refused."""
        return self._strict

    def __repr__(self) -> str:
        parts = []
        if self._strict:
            parts.append("strict=True")
        elif self._encode_delim != b"\n":
            parts.append(f"line_ending={self._encode_delim!r}")
        parts.extend(self._option_reprs())
        return f"Lines({', '.join(parts)})"

    def clone(self) -> Lines:
        """Return a new, empty framer with the same settings."""
        return Lines(
            line_ending=self._encode_delim,
            strict=self._strict,
            max_size=self._max_size,
            keep_delimiter=self._keep,
            on_oversize=self._on_oversize,
            on_eof=self._on_eof,
            check=self._check,
            check_size=self._check_size,
        )
