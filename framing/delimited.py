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
The search that finds the winner, resumed chunk after chunk, is
:mod:`framing.delimiter_search`'s.

``encode`` appends ``encode_delimiter`` (the first delimiter by default). It
may be any bytes, for a protocol whose two directions differ (tokio-util's
``AnyDelimiterCodec``); then only the decode side round-trips::

    Delimited(b",", encode_delimiter=b";--;")
    received:  | a,b | c, |            messages: b"a", b"bc"
    encode(b"hi"):  | hi;--; |         (for a peer that splits on ;--;)

``max_size`` counts payload bytes, the delimiter excluded. A record is known to
be too large as soon as more than ``max_size`` of its bytes have arrived that
cannot be the start of a delimiter, so ``buffered`` never exceeds ``max_size``
plus the longest delimiter, whatever a peer sends.

With the optional C accelerator (:mod:`framing._accel`), one delimiter and
``Lines()``'s have their records cut in C when no early check is set; the code
here decides every limit and error, and is the reference both paths are
tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, final

from framing import _accel
from framing._accel import SplitDelimited
from framing.base import BytesLike, EarlyCheck, EofPolicy, OversizePolicy
from framing.delimiter_search import delimiter_search, first_match
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
    MessageTypeError,
)

__all__ = ["Delimited", "Lines"]

# The default limit on a record's payload. 64 KiB is asyncio's StreamReader
# limit (``asyncio.streams._DEFAULT_LIMIT = 2**16``) for readline/readuntil:
# ample for any line-oriented protocol (SMTP allows 1000-byte lines, HTTP
# servers commonly refuse header lines over 8 KiB), and small enough that a
# peer who never sends a delimiter costs at most 64 KiB per connection. It is
# also Raw's default, so no default framer delivers more than 64 KiB at once.
DEFAULT_MAX_SIZE: Final = 65536


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
        "_csplit",
        "_delims",
        "_encode_delim",
        "_encode_set",
        "_feed",
        "_keep",
        "_last",
        "_max_size",
        "_on_eof",
        "_on_oversize",
        "_search",
        "_skip_len",
        "_skipped_bytes",
        "_skipped_frames",
        "_skipping",
        "_split",
        "_strict",
    )

    # The feed strategy and the split shortcut, chosen once in __init__ (see
    # there). Stored as plain functions and called as ``self._feed(self, ...)``:
    # a bound method stored on the instance would be a reference cycle, and
    # every framer would wait for the garbage collector to be freed.
    _feed: Callable[[_DelimiterEngine, BytesLike, int | None], list[bytes]]
    _split: Callable[[_DelimiterEngine, bytes], list[bytes] | None]

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
        self._search = delimiter_search(delimiters)
        self._encode_delim = encode_delimiter
        # What encode must not let the frame end early on: every delimiter a
        # reader may split on (see encode).
        self._encode_set = delimiters + (
            (encode_delimiter,) if encode_delimiter not in delimiters else ()
        )
        self._max_size = max_size
        self._keep = keep_delimiter
        self._on_oversize = on_oversize
        self._on_eof = on_eof
        self._check = check
        self._check_size = check_size
        self._strict = strict
        # The byte every delimiter ends with (\n for Lines), when they all end
        # with the same one and there is no check: a chunk without it completes no record,
        # so it can be held at once (see _feed_split). An int, not bytes: ``10
        # in chunk`` is one memchr, while CPython runs ``b"\n" in chunk`` by
        # first trying the needle as an int, raising and clearing a TypeError:
        # that costs about four times a memchr over a whole 2 KiB chunk.
        ends = {d[-1] for d in delimiters}
        # The feed strategy, chosen once for these settings:
        # - an early check must see each record's head as it arrives, and
        #   delimiters that end in different bytes give no cheap test for "this
        #   chunk ends no record": the general engine, every time;
        # - otherwise _feed_split: hold a chunk that ends no record, split the
        #   others in C with the shortcut that fits the delimiters (Lines, one
        #   delimiter; several with one last byte have none), falling back to
        #   the general engine whenever the shortcut cannot prove its result.
        # - with the C accelerator (framing/_accel.py), one delimiter and
        #   Lines' are split by its loop, in ``feed``: _feed_split's steps, in
        #   fewer; _feed_split takes what it leaves (a limit, a skip).
        self._csplit: SplitDelimited | None = None
        if check is not None or len(ends) != 1:
            self._last = -1  # unused: no byte ends every delimiter
            self._feed = _DelimiterEngine._feed_general
            self._split = _DelimiterEngine._split_none
        else:
            self._last = ends.pop()
            self._feed = _DelimiterEngine._feed_split
            lines = set(delimiters) == {b"\n", b"\r\n"}
            if len(delimiters) == 1 or lines:
                self._csplit = _accel.split_delimited()
            if len(delimiters) == 1:
                self._split = _DelimiterEngine._split_single
            elif lines:
                self._split = _DelimiterEngine._split_lines
            else:
                self._split = _DelimiterEngine._split_none
        self._buf = bytearray()
        # _clean: _buf holds only an unterminated record, already searched in
        # full, and no record is being skipped. _feed_split needs that; the
        # general engine then rebuilds its search state from len(_buf).
        self._clean = True
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
        csplit = self._csplit
        if csplit is None or limit is not None or not self._clean:
            # The pure-Python strategy chosen in __init__; with the C loop, also
            # records held back by a limit, a skip under way, or a limit now.
            return self._feed(self, data, limit)
        # The C loop (one delimiter, or Lines'), in line: a call less per chunk
        # (measured: a third of the time with 16 KiB lines in 2 KiB chunks).
        # _feed_split's steps: a chunk that ends no record is held; otherwise
        # the C loop (framing/_speedups.c) cuts every record of the held bytes
        # and the chunk together and says where the unterminated rest begins,
        # or returns None having changed nothing (a record over max_size, a
        # bare \n for strict Lines), and the general engine judges the chunk.
        chunk = data if type(data) is bytes else bytes(data)
        buf = self._buf
        held = len(buf)
        if self._last not in chunk:
            if held + len(chunk) <= self._max_size:
                buf += chunk
                return []
            return self._feed_general(chunk, None)
        delim = self._delims[0]
        lines = len(self._delims) == 2
        src: bytes | bytearray = chunk
        start = 0
        if held:
            # The held bytes may end with the start of a delimiter that the
            # chunk ends (b"ab\r" then b"\ncd"): cut the two as one buffer.
            # They hold no whole delimiter (_clean), so the search starts
            # where one could: after b"abc\r" with b"\r\n", at 4 - 2 + 1 = 3;
            # for Lines at 4, the first byte a \n can be (the \r before it is
            # looked at from there). Searching them again would be quadratic
            # in a record that spans many chunks.
            buf += chunk
            src = buf
            start = held if lines else max(held - len(delim) + 1, 0)
        result = csplit(src, start, delim, self._max_size, lines, self._keep, self._strict)
        if result is None:
            del buf[held:]  # as it was
            return self._feed_general(chunk, None)
        records, pos = result
        if held:
            rest = len(buf) - pos
            if 2 * rest >= len(buf):
                del buf[:pos]  # O(1) at a bytearray's front when most of it stays
            else:
                # Most of it was cut: keep the block and refill it with the
                # rest. ``del`` would move the rest to a new block, small, and
                # the next long line would regrow it by copies (measured: 30%
                # of the time with 16 KiB lines in 1-4096 byte chunks).
                tail = buf[pos:]
                buf.clear()
                buf += tail
        elif pos < len(chunk):
            # Hold the unterminated rest (through a view when long: one copy).
            buf += chunk[pos:] if len(chunk) - pos < 4096 else memoryview(chunk)[pos:]
        return records

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
            MessageTooLarge: the message is over ``max_size``.
            EncodeError: the message is not bytes, or a reader would end it
                early: it contains a delimiter (one split on, or the encoding
                delimiter), or its last bytes and the delimiter appended form
                one that ends earlier or is longer (``b"a\r"`` for ``Lines()``,
                whose ``\r\n`` would swallow the ``\r``). The text names the
                delimiter and its offset.
        """
        if not isinstance(message, bytes | bytearray | memoryview):
            raise MessageTypeError(repr(self), type(message).__name__)
        msg = bytes(message)
        if len(msg) > self._max_size:
            raise MessageTooLarge(repr(self), len(msg), self._max_size)
        delim = self._encode_delim
        frame = msg + delim
        # A reader splitting on any delimiter of ours, or on the one appended,
        # must find this frame's end where the appended delimiter ends, and no
        # earlier: then it reads back exactly msg.
        end, dlen = first_match(frame, self._encode_set)
        if end != len(frame) or dlen != len(delim):
            at = end - dlen
            found = frame[at:end]
            if end <= len(msg):
                where = f"it contains the delimiter {found!r} at offset {at}"
            else:
                where = (
                    f"its last {len(msg) - at} byte(s) and the {delim!r} appended "
                    f"form the delimiter {found!r} at offset {at}"
                )
            raise EncodeError(
                repr(self),
                f"cannot encode a message of {len(msg)} bytes: {where}, "
                "so it would not decode as sent",
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

    # --- the split strategy -------------------------------------------------------

    # _feed_split is the feed of a framer without an early check whose
    # delimiters all end with the same byte (_last). A chunk without that byte
    # completes no record: it is held at once, one memchr and one copy. A
    # chunk with it is cut by the split shortcut chosen in __init__, which
    # splits in C with ``bytes.split``. A shortcut changes nothing and returns
    # ``None`` whenever it cannot prove the result on its own: a record that
    # may be over ``max_size`` (the general engine then judges it to the
    # byte), a bare ``\n`` for strict ``Lines``, a chunk with no whole
    # delimiter. So every limit and policy is exact here too: the shortcuts
    # only decide the common, unambiguous case, and leave the state as the
    # general engine would (records delivered, the unterminated rest held,
    # _clean). Each is straight-line: at small records a few dozen bytecodes
    # per chunk are measurable.

    def _feed_split(self, data: BytesLike, limit: int | None) -> list[bytes]:
        """Feed strategy: hold or split whole chunks, else the general engine."""
        if not self._clean:
            # Records held back by a limit, or a skip under way.
            return self._feed_general(data, limit)
        chunk = data if type(data) is bytes else bytes(data)
        if self._last not in chunk:
            # Records longer than the chunks: no delimiter can end in this
            # chunk (the held bytes hold none either: _clean), so no record
            # completes and, whatever ``limit``, the chunk is held. Unless that
            # may make the record too large, which the general engine judges.
            buf = self._buf
            if len(buf) + len(chunk) <= self._max_size:
                buf += chunk
                return []
        elif limit is None:
            out = self._split(self, chunk)
            if out is not None:
                return out
        return self._feed_general(chunk, limit)

    def _take(
        self, parts: list[bytes], size: int, first: bytes | None = None
    ) -> list[bytes] | None:
        """Finish a split of ``size`` new bytes into ``parts``; the records, or ``None``.

        The held bytes are joined to the first part (unless ``first``, already
        joined, is given) and the last part, unterminated, is held. Returns
        ``None`` and changes nothing when a record may be over ``max_size``.
        """
        buf = self._buf
        if first is None:
            first = b"".join((buf, parts[0])) if buf else parts[0]
        mx = self._max_size
        if len(buf) + size > mx and (len(first) > mx or max(map(len, parts)) > mx):
            # A record (the first, joined to the held bytes, or any other, the
            # tail included) may be over max_size. No record is longer than the
            # held bytes and data together, so when those fit, every one does.
            return None
        tail = parts[-1]
        parts[0] = first
        del parts[-1]
        buf.clear()
        if tail:
            buf += tail
        return parts

    def _split_lines(self, data: bytes) -> list[bytes] | None:
        r"""Split shortcut of ``\n`` or ``\r\n`` (``Lines``); see above."""
        if 13 not in data:  # no b"\r": memchr (see _last)
            # LF text, the common case: split on \n. Only the first line,
            # joined to the held bytes, can end with a \r (a \r\n cut between
            # chunks). Strict Lines refuse a bare \n: the general engine raises.
            if self._strict:
                return None
            lines = self._take(data.split(b"\n"), len(data))
            if lines is not None:
                if self._keep:
                    # A line that ends with \r ended with \r\n: both kept.
                    lines = [p + b"\n" for p in lines]
                elif lines[0][-1:] == b"\r":
                    lines[0] = lines[0][:-1]
            return lines
        # Probably CRLF text: split on \r\n, and keep that split when each \n
        # of the chunk ended a part (no bare \n): nothing to strip. (A \n first
        # in the chunk whose \r ended the held bytes counts as bare here: it
        # goes the mixed way below.) Measured: split on \r\n plus a count of \n
        # beats a split on \n plus a per-line strip.
        parts = data.split(b"\r\n")
        if data.count(b"\n") == len(parts) - 1:
            lines = self._take(parts, len(data))
            if lines is not None and self._keep:
                lines = [p + b"\r\n" for p in lines]
            return lines
        # Mixed: split on \n; every line whose last byte is \r ended with \r\n
        # and loses it. Strict Lines: the general engine knows whether a \r
        # ended the held bytes, and raises if not.
        if self._strict:
            return None
        lines = self._take(data.split(b"\n"), len(data))
        if lines is not None:
            if self._keep:
                lines = [p + b"\n" for p in lines]
            else:
                lines = [p[:-1] if p[-1:] == b"\r" else p for p in lines]
        return lines

    def _split_single(self, data: bytes) -> list[bytes] | None:
        r"""Split shortcut of one delimiter (``Delimited(b"\r\n")``...); see above."""
        buf = self._buf
        delim = self._delims[0]
        prefixes = self._search.prefixes
        if prefixes and buf.endswith(prefixes):
            # The held bytes end with the start of a delimiter (b"\r" for
            # b"\r\n"), which may end in data: split the two joined, as the
            # careful decoder always does. Rare, so the copy is too.
            parts = b"".join((buf, data)).split(delim)
            records = self._take(parts, len(data), parts[0])
        else:
            parts = data.split(delim)
            if len(parts) == 1:
                return None  # no whole delimiter after all (a lone \n for b"\r\n")
            records = self._take(parts, len(data))
        if records is None or not self._keep:
            return records
        return [p + delim for p in records]

    def _split_none(self, data: bytes) -> list[bytes] | None:
        """Split shortcut of several delimiters other than Lines': none, the general engine."""
        return None

    # --- the general engine ------------------------------------------------------

    def _feed_general(self, data: BytesLike, limit: int | None) -> list[bytes]:
        """Cut records one by one with ``bytearray.find``, every option honoured."""
        buf = self._buf
        search = self._search
        if self._clean:
            # The split strategy does not keep the search's offsets: the held
            # bytes contain no delimiter, which is all the search needs.
            search.restart(len(buf))
        find = search.find
        buf += data
        out: list[bytes] = []
        pos = 0  # start of the current record in buf
        stopped = False
        mx = self._max_size
        while True:
            if limit is not None and len(out) >= limit:
                stopped = True
                break
            end, dlen = find(buf, pos)
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
            search.consumed(pos)
        self._clean = not stopped and not self._skipping
        return out

    def _unterminated(self, buf: bytearray, pos: int, out: list[bytes]) -> int:
        """Handle the record at ``pos`` that has no delimiter yet; return the new ``pos``."""
        held = len(buf) - pos
        if self._skipping:
            # Discard all but what may be the start of the delimiter.
            keep = min(self._search.longest - 1, held)
            self._skip_len += held - keep
            return len(buf) - keep
        mx = self._max_size
        cs = self._check_size
        check_due = self._check is not None and not self._checked and cs <= mx and held >= cs
        if held <= mx and not check_due:
            return pos
        # Bytes that may be the start of a delimiter are not yet payload.
        definite = held - self._search.partial_len(buf, pos)
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
        keep = min(self._search.longest - 1, held)
        self._skip_len = held - keep
        return len(buf) - keep

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


def _as_encode_delimiter(ending: object, delims: tuple[bytes, ...]) -> bytes:
    if not isinstance(ending, bytes | bytearray):
        raise TypeError(f"encode_delimiter is bytes, not {type(ending).__name__}")
    if not ending:
        raise ValueError("encode_delimiter cannot be empty")
    ending = bytes(ending)
    # A delimiter that ends inside the encode delimiter would cut every frame.
    end, dlen = first_match(ending, (*delims, ending))
    if end != len(ending) or dlen != len(ending):
        raise ValueError(
            f"encode_delimiter {ending!r} contains the delimiter {ending[end - dlen : end]!r} "
            f"at offset {end - dlen}: every frame would decode as two records"
        )
    return ending


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
        encode_delimiter: the delimiter ``encode`` appends; by default the
            first delimiter. It may be any bytes, as tokio-util's
            ``AnyDelimiterCodec`` writes ``;--;`` while splitting on ``,``:
            for a protocol whose two directions end messages differently.
            Then the round trip holds only for the decode side: a stream made
            with the split delimiters decodes to its messages, but what
            ``encode`` writes is for a peer that splits on
            ``encode_delimiter``, and this framer would not read it back.
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
        ValueError: an empty delimiter or ``encode_delimiter``, an
            ``encode_delimiter`` in which a delimiter ends before its own end
            (every frame would decode as two records), or an option out of range.
        TypeError: a delimiter or ``encode_delimiter`` that is not bytes.

    ``encode`` refuses, with :class:`~framing.EncodeError` (a ``ValueError``:
    the caller's fault, not the peer's), a message that a reader could end
    early: one that contains any of the delimiters or ``encode_delimiter``, or
    whose last bytes run into the delimiter appended. Refusing the split
    delimiters too, when ``encode_delimiter`` is none of them, is a choice:
    a peer that reads what we write often splits on the same set we do (as
    tokio-util's codec, built from one set), and a message that would be cut
    there is better refused at the sender. A message over ``max_size`` raises
    :class:`~framing.MessageTooLarge`.
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
        ending = (
            delims[0]
            if encode_delimiter is None
            else _as_encode_delimiter(encode_delimiter, delims)
        )
        super().__init__(
            delims,
            max_size=max_size,
            keep_delimiter=keep_delimiter,
            encode_delimiter=ending,
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
