r"""Length-prefixed framing: a header says how many bytes follow.

DNS over TCP (RFC 1035 4.2.2, RFC 7766) puts a 2-byte big-endian length before
each message; so do most binary protocols, with other widths and byte orders::

    LengthPrefixed(2)                     LengthPrefixed(4, "little")
    +----------+-------------+            +------------------+-------+
    | \x00\x0B | hello world |            | \x05\x00\x00\x00 | hello |
    +----------+-------------+            +------------------+-------+
      length     11 bytes                   length             5 bytes

    LengthPrefixed("varint")              (protobuf's delimited streams)
    +------+-------------+                +----------+-----------------+
    | \x0B | hello world |                | \xAC\x02 | 300 bytes ...   |
    +------+-------------+                +----------+-----------------+

The general frame, as Netty's ``LengthFieldBasedFrameDecoder`` and tokio-util's
``LengthDelimitedCodec`` describe it, has a length field somewhere in a header::

    |<- length_offset ->|<- width ->|<------ value + length_adjustment ------>|
    +-------------------+-----------+-----------------------------------------+
    | bytes before      | length    | body: every byte after the length field |
    +-------------------+-----------+-----------------------------------------+
    |<------------ header --------->|<----- at most max_size bytes ---------->|
    |<- strip ->|  delivered message: the frame without its first strip bytes |

- ``length_offset``: bytes before the length field (a type, a version...).
- ``length_adjustment``: added to the field's value to get the number of bytes
  that follow the length field. ``0`` when the length counts exactly those bytes;
  ``-(length_offset + width)`` when it counts the whole frame, header included;
  positive when it leaves out fields that sit between it and the payload.
- ``strip``: how many bytes of the frame's start are removed from what is
  delivered: by default the whole header, so the message is the body; ``0``
  delivers the whole frame; any value up to ``length_offset`` keeps the length
  field and the bytes after the cut; a value past the header also removes the
  body's first bytes (a flags byte after the length, say). A frame shorter than
  ``strip`` cannot be valid and raises :class:`~framing.MalformedFrame`.
- ``max_size`` always bounds the body: the bytes after the length field.

These mean what Netty's ``lengthFieldOffset``, ``lengthFieldLength``,
``lengthAdjustment`` and ``initialBytesToStrip`` mean: a frame is
``length_offset + width + value + length_adjustment`` bytes long. Unlike Netty,
``strip`` may not cut into the length field, and ``max_size`` bounds the body
rather than the field's value. tokio-util's ``length_field_offset`` and
``length_field_length`` are ours; its ``num_skip`` is ``strip``, but its
``length_adjustment`` counts from the end of the skipped bytes, not from the
end of the length field: tokio's ``(adjustment a, num_skip s)`` is our
``(length_adjustment=a + s - length_offset - width, strip=s)``.

Worked examples (values in hex)::

    A length that counts itself: LengthPrefixed(2, length_adjustment=-2)
        wire:    00 07 | 68 65 6C 6C 6F        7 = 2 (header) + 5 (body)
        message: b"hello"

    A type byte before the length, whole frame delivered:
    LengthPrefixed(2, length_offset=1, strip=0)
        wire:    01 | 00 05 | 68 65 6C 6C 6F   header is 3 bytes, body 5
        message: b"\x01\x00\x05hello"

    A flags byte between the length and the payload, counted separately:
    LengthPrefixed(2, length_adjustment=1)
        wire:    00 05 | 80 | 68 65 6C 6C 6F   body is 5 + 1 = 6 bytes
        message: b"\x80hello"                  (the flags byte is part of the body)

    The same flags byte stripped with the header (tokio-util's num_skip(4)
    over a 3-byte length): LengthPrefixed(3, length_adjustment=1, strip=4)
        wire:    00 00 0B | FF | 48 65 6C 6C 6F 20 77 6F 72 6C 64
        message: b"Hello world"

What ``encode`` does, so that ``feed(encode(m)) == [m]``:

- the header is stripped (the default): ``m`` is the body. The length field is
  written before it.
- ``strip=0``: ``m`` is a whole frame. ``encode`` keeps its bytes before the
  length field and its body, and writes the right length into the field (the
  caller may leave zeros there). The round trip holds for every message that
  ``feed`` delivers.
- any other ``strip`` (bytes before the length field, or bytes after it): the
  stripped bytes are not in ``m``, so ``encode`` cannot know them and raises
  :class:`~framing.EncodeError`.

One engine decodes every header this module and :mod:`framing.structured`
offer: :class:`_Prefixed` (see its docstring for the states). Headers that the
options above do not cover are declared with ``construct`` and framed by
:class:`~framing.structured.StructPrefixed`, which delivers
:class:`~framing.structured.Frame` values; both, and the varint codec of
:mod:`framing.varint`, are importable from here too.

With the optional C accelerator (:mod:`framing._accel`), a plain fixed-width
header (no offset, adjustment, strip other than the header, or early check)
has its whole frames cut in C; the code here decides everything else, and is
the reference both paths are tested against.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, cast, final

from framing import _accel
from framing._accel import SplitLength
from framing.base import BytesLike, EarlyCheck, OversizePolicy
from framing.errors import (
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    MalformedFrame,
    MessageTooLarge,
    MessageTypeError,
)
from framing.varint import MAX_VARINT_BYTES, decode_varint, encode_varint, read_varint

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ByteOrder",
    "Frame",
    "LengthPrefixed",
    "StructPrefixed",
    "Width",
    "decode_varint",
    "encode_varint",
]

T = TypeVar("T")

#: The size of a length field in bytes, or ``"varint"`` (unsigned LEB128).
Width = Literal[1, 2, 3, 4, 8, "varint"]
#: The byte order of a fixed-width length field.
ByteOrder = Literal["big", "little"]

# The default limit for headers that can announce more than 64 KiB (widths 3, 4,
# 8 and varints could announce up to 16 MiB, 4 GiB, 16 EiB). A peer can make a
# server hold up to this much per connection before a frame is complete, so the
# default is what tokio-util chose: 8 MiB, room for bulk messages while one
# connection cannot claim gigabytes. Protocols that need more say so explicitly.
DEFAULT_MAX_SIZE = 8 * 1024 * 1024

_STRUCT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class _Prefixed(Generic[T]):
    """The one decoding engine of the length-prefixed framers (not public).

    A state machine after tokio's ``DecodeState::{Head, Data(n)}``:

    - **Head** (``_need == -1``): the next bytes are a header. Once all of it
      is here it is read, once: the body's size is checked against
      ``max_size`` (raise, or start a skip) and the frame's size on the wire is
      remembered in ``_need``.
    - **Data(n)** (``_need == n``): waiting for the rest of an ``n``-byte
      frame. The early check, if any, runs as soon as its first bytes are here;
      the message is cut once all ``n`` are.
    - **Skip** (``_skip > 0``): discarding the rest of an oversize frame as it
      arrives; nothing is held.

    The header is read by one of three readers chosen at construction: a
    ``struct`` field (widths 1, 2, 4, 8), a varint, or the subclass's
    ``_read_head`` (width 3, a ``construct`` header). A message is the frame
    less its first ``strip`` bytes (``-1``: less its header, whatever its
    size), passed through ``_wrap`` when the subclass delivers something else
    than bytes.

    Frames are parsed straight from each chunk. One way holds a frame that
    spans chunks: ``_buf`` keeps it from its first byte (so ``detach`` hands it
    over untouched), gaining exactly the bytes that move the state on (the
    header, the early check's bytes, the rest of the body) and no more; after
    a limited feed it also keeps the unparsed rest of the stream, parsed from
    there on the next call.

    Subclasses set the configuration through ``_init_engine``; ``LengthPrefixed``
    adds the one shortcut through the same states (its ``feed``, when ``_fast``).
    """

    __slots__ = (
        "_adjust",
        "_buf",
        "_check",
        "_check_size",
        "_checked",
        "_csplit",
        "_fast",
        "_head_len",
        "_head_min",
        "_little",
        "_max_size",
        "_min_body",
        "_need",
        "_offset",
        "_on_oversize",
        "_skip",
        "_skip_frame",
        "_skipped_bytes",
        "_skipped_frames",
        "_strip",
        "_unpack",
        "_varint",
        "_wrap",
    )

    def _init_engine(
        self,
        *,
        max_size: int,
        head_min: int,
        offset: int,
        adjust: int,
        strip: int,
        unpack: Callable[[BytesLike, int], tuple[Any, ...]] | None,
        varint: bool,
        wrap: Callable[[BytesLike], T] | None,
        on_oversize: OversizePolicy,
        check: EarlyCheck | None,
        check_size: int,
    ) -> None:
        if on_oversize not in ("raise", "skip"):
            raise ValueError(f"on_oversize must be 'raise' or 'skip', not {on_oversize!r}")
        if check is not None and check_size < 1:
            raise ValueError(f"check_size must be at least 1 with a check, not {check_size}")
        if check is None and check_size != 0:
            raise ValueError("check_size was given without a check")
        self._max_size = max_size
        self._head_min = head_min
        self._offset = offset
        self._adjust = adjust
        self._strip = strip
        # A frame must hold the bytes strip removes: a body shorter than this
        # cannot be valid (only a strip past the header makes it more than 0).
        self._min_body = max(strip - head_min, 0) if strip >= 0 else 0
        self._unpack = unpack
        self._varint = varint
        self._wrap = wrap
        self._on_oversize: OversizePolicy = on_oversize
        self._check = check
        self._check_size = check_size
        self._fast = False
        # The C loop over whole frames (framing/_accel.py), set by LengthPrefixed
        # for a plain fixed-width header; None: the pure-Python loops below.
        self._csplit: SplitLength | None = None
        self._little = 0
        self._buf = bytearray()
        self._need = -1
        self._head_len = 0
        self._checked = False
        self._skip = 0
        self._skip_frame = 0
        self._skipped_frames = 0
        self._skipped_bytes = 0

    # --- hooks -----------------------------------------------------------------

    def _read_head(self, src: BytesLike, pos: int, done: list[T]) -> tuple[int, int]:
        """Read the whole header at ``src[pos:]``: ``(length field's value, header size)``."""
        raise NotImplementedError

    # --- public surface ----------------------------------------------------------

    @property
    def max_size(self) -> int:
        """The largest body accepted: bytes after the length field, header excluded."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes held: the frame being received, header included (skipped bytes are not held)."""
        return len(self._buf)

    @property
    def skipped_frames(self) -> int:
        """How many oversize frames ``on_oversize="skip"`` has discarded (or is discarding)."""
        return self._skipped_frames

    @property
    def skipped_bytes(self) -> int:
        """How many bytes of skipped frames were announced, headers included."""
        return self._skipped_bytes

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[T]:
        """Append a chunk and return every message it completes, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many messages and parse no further, so the
                bytes after the last one returned stay unparsed (see ``detach``).

        Returns:
            The completed messages; ``[]`` when more bytes are needed.

        Raises:
            FrameTooLarge: a header announced a body over ``max_size`` (with
                ``on_oversize="raise"``).
            MalformedFrame: a header that cannot be valid, or the early check
                rejected a frame.
        """
        # One copy of a bytearray/memoryview chunk up front lets every message be
        # a plain slice of ``bytes`` (one copy each).
        chunk = data if type(data) is bytes else bytes(data)
        buf = self._buf
        out: list[T] = []
        start = 0
        if buf:
            take = self._need - len(buf)  # > 0 in Data(n): what the frame held lacks
            spanning = take > 0 and (self._checked or self._check is None)
            if spanning and take > len(chunk):
                # Data(n) with the check passed, and this chunk does not finish
                # the body (frames larger than chunks): hold it, one copy, no
                # parsing. Bounded: ``_need`` passed the max_size check.
                buf += chunk
                return out
            if limit is not None:
                buf += chunk
                self._parse_held(out, limit)
                return out
            if spanning:
                # This chunk finishes the frame held (_resume's first step, in
                # line: the common case of frames that span chunks). Deliver it,
                # then parse the rest of the chunk in place below.
                # A slice copies; a view does not, but costs more below 4 KiB.
                rest = chunk[:take] if take < 4096 else memoryview(chunk)[:take]
                out.append(self._cut_held(rest))
                self._need = -1
                self._checked = False
                start = take
            else:
                start = self._resume(chunk, out)
                if buf:
                    return out  # the chunk did not finish the frame held
        pos = self._parse(chunk, start, out, limit)
        end = len(chunk)
        if pos < end:
            # Hold the start of a frame that has not all arrived (or, after a
            # limit, the unparsed rest): copy the tail only (through a view
            # when it is long: a slice would copy it twice).
            buf += chunk[pos:] if end - pos < 4096 else memoryview(chunk)[pos:]
        return out

    def feed_eof(self) -> list[T]:
        """Say the stream has ended; return any messages a limited ``feed`` left.

        Raises:
            IncompleteFrame: the stream ended inside a frame; the error says how
                many bytes were held and, when the header was read, how many the
                frame needed.
        """
        out = self.feed()
        if self._skip:
            held = self._skip_frame - self._skip
            raise IncompleteFrame(repr(self), held, expected=self._skip_frame, messages=out)
        if self._buf:
            expected = self._need if self._need >= 0 else None
            raise IncompleteFrame(
                repr(self),
                len(self._buf),
                expected=expected,
                partial=bytes(self._buf),
                messages=out,
            )
        return out

    def detach(self) -> bytes:
        """Remove and return every byte held that no message has consumed yet.

        This includes a partly received header or frame, byte for byte as it
        arrived. The framer is left empty; a skip in progress is abandoned, so the
        rest of a skipped frame reaches whoever reads the stream next.
        """
        held = bytes(self._buf)
        self._buf.clear()
        self._need = -1
        self._checked = False
        self._skip = 0
        return held

    # --- the engine ----------------------------------------------------------------

    def _resume(self, chunk: bytes, out: list[T]) -> int:
        """Move the frame held in ``_buf`` on with the chunk's first bytes.

        Returns how many bytes of ``chunk`` were used. ``_buf`` is empty on
        return (the frame was delivered, or a skip began) unless the chunk ran
        out first. Each step adds only the bytes the state needs next, so the
        buffer never holds a byte of the following frame: a header (for a
        varint, a byte at a time, since its size is unknown until it ends),
        then the early check's bytes, then the rest of the frame.
        """
        buf = self._buf
        view = memoryview(chunk)
        end = len(chunk)
        start = 0
        while buf:
            need = self._need
            ready = self._checked or self._check is None
            if need > len(buf) and ready:
                # Data(n), the check passed: the rest of the frame, or all the
                # chunk has when that is less.
                take = need - len(buf)
                if take > end - start:
                    buf += view[start:]
                    return end
                out.append(self._cut_held(view[start : start + take]))
                self._need = -1
                self._checked = False
                return start + take
            if need < 0 and len(buf) >= self._head_min:
                # A whole header is held: a limited feed left unparsed frames,
                # or a varint has not ended. Parse what is held first, then
                # (when that moved nothing) take one more byte of the varint.
                held = len(buf)
                self._parse_held(out, None)
                if len(buf) != held or self._need >= 0:
                    continue
                want = held + 1
            elif need < 0:
                want = self._head_min  # the fewest bytes that can complete the header
            elif not ready:
                want = min(self._check_size, need)
            else:
                want = 0  # the frame is whole in the buffer (a limited feed left it)
            if want > len(buf):
                if start == end:
                    break
                piece = view[start : start + want - len(buf)]
                buf += piece
                start += len(piece)
            self._parse_held(out, None)
        return start

    def _cut_held(self, rest: bytes | memoryview) -> T:
        """The message of the frame held in ``_buf`` that ``rest`` completes; one copy."""
        buf = self._buf
        strip = self._strip
        cut = self._head_len if strip < 0 else strip
        if cut >= len(buf):
            # strip reaches past what is held (a flags byte after the length).
            message = bytes(rest[cut - len(buf) :])
        elif len(buf) <= 512:
            del buf[:cut]  # O(1) at a bytearray's front
            message = b"".join((buf, rest))
        else:
            # Cut through a view, not with del: clear() on a bytearray cut at the
            # front moves it to a new block instead of shrinking its block in
            # place, so the next large frame regrows from scratch (measured:
            # 15% slower at 16 KiB frames in 2 KiB chunks). Small buffers live
            # in pymalloc's blocks (512 bytes at most), where del is cheaper.
            with memoryview(buf) as held:
                message = b"".join((held[cut:], rest))
        buf.clear()
        wrap = self._wrap
        return message if wrap is None else wrap(message)  # type: ignore[return-value]

    def _parse_held(self, out: list[T], limit: int | None) -> None:
        """Run the engine over ``_buf`` and drop what it consumed; messages as bytes."""
        first = len(out)
        try:
            pos = self._parse(self._buf, 0, out, limit)
        finally:
            if self._wrap is None and len(out) > first:
                # Slices of the bytearray are bytearrays: deliver bytes, also in
                # an error's ``messages`` (the same list).
                out[first:] = cast("list[T]", [bytes(cast("bytes", m)) for m in out[first:]])
        if pos:
            del self._buf[:pos]

    def _parse(  # noqa: PLR0912, PLR0915 (one loop on purpose: a call per frame costs)
        self, src: BytesLike, pos: int, out: list[T], limit: int | None
    ) -> int:
        """Parse frames from ``src[pos:]`` into ``out``; return where parsing stopped.

        Every frame goes Head -> (oversize: skip or raise) -> early check -> Data,
        in that order whatever the chunking, so the same stream always gives the
        same messages or the same error. Locals, not attributes, in the loop: it
        runs once per frame.
        """
        end = len(src)
        if self._skip:
            # Discard the oversize frame's bytes as they arrive; never hold them.
            gone = min(self._skip, end - pos)
            pos += gone
            self._skip -= gone
            if self._skip:
                return pos
        head_min = self._head_min
        offset = self._offset
        adjust = self._adjust
        max_size = self._max_size
        min_body = self._min_body
        unpack = self._unpack
        varint = self._varint
        strip = self._strip
        wrap = self._wrap
        check = self._check
        append = out.append
        need = self._need
        head = self._head_len
        if need >= 0:
            # Data(n), resumed: the header was read by an earlier call.
            if check is not None and not self._run_check(src, pos, end, need, out):
                return pos
            stop = pos + need
            if stop > end:
                return pos
            cut = pos + (head if strip < 0 else strip)
            append(src[cut:stop] if wrap is None else wrap(src[cut:stop]))  # type: ignore[arg-type]
            pos = stop
            self._need = -1
            self._checked = False
        if limit is not None and len(out) >= limit:
            return pos
        csplit = self._csplit
        if csplit is not None:
            # The C loop (plain fixed-width headers): every whole frame from
            # here, the limit honoured. It stops at Data(n), which it reports,
            # and before a header it leaves to the loop below (over max_size).
            frames, pos, need = csplit(
                src,
                pos,
                head_min,
                self._little,
                max_size,
                -1 if limit is None else limit - len(out),
            )
            out += cast("list[T]", frames)  # only LengthPrefixed (bytes) sets _csplit
            if need >= 0 or (limit is not None and len(out) >= limit):
                if need >= 0:
                    self._need = need  # Data(n), as below
                    self._head_len = head_min
                return pos
        # Head, frame after frame: read the header once, then check the size,
        # then the early check, then cut the message.
        cut = strip
        while end - pos >= head_min:
            at = pos + offset
            if unpack is not None:
                value = unpack(src, at)[0]
                head = head_min
            elif varint:
                value = src[at]
                if value < 0x80:  # most lengths are under 128: one byte
                    head = offset + 1
                else:
                    value, size, _ = read_varint(src, at, end)
                    if size <= 0:
                        self._varint_unfinished(value, size, out)
                        break
                    head = offset + size
                cut = head  # a varint header is always stripped, whatever its size
            else:
                value, head = self._read_head(src, pos, out)
            body = value + adjust
            if body > max_size or body < min_body:
                self._refuse(value, body, head, out)
                # A skip began: discard what is here of the frame.
                pos += head
                gone = min(body, end - pos)
                pos += gone
                self._skip = body - gone
                if self._skip:
                    break
                continue
            stop = pos + head + body
            if check is not None:
                if not self._run_check(src, pos, end, head + body, out):
                    self._need = head + body
                    break
                self._checked = stop > end  # passed: True while the frame is held
            if stop > end:
                self._need = head + body  # Data(n): remember the header
                break
            if wrap is None:
                append(src[pos + cut : stop])  # type: ignore[arg-type]
            else:
                append(wrap(src[pos + cut : stop]))
            pos = stop
            if limit is not None and len(out) >= limit:
                break
        self._head_len = head
        return pos

    def _run_check(self, src: BytesLike, pos: int, end: int, need: int, out: list[T]) -> bool:
        """Run the early check once its bytes are here; False while they are not.

        Once per frame: a frame that passed is marked so until it is delivered.
        """
        if self._checked:
            return True
        assert self._check is not None
        size = min(self._check_size, need)
        if end - pos < size:
            return False
        reason = self._check(bytes(src[pos : pos + size]))
        if reason is not None:
            raise self._rejected(reason, out)
        self._checked = True
        return True

    def _varint_unfinished(self, value: int, size: int, out: list[T]) -> None:
        """A varint header that has not ended (``size`` 0) or runs too long (-1).

        The bytes so far may already prove the frame too large (later bytes
        only add bits): raise that now rather than wait. Checked before "too
        long" so that the same stream gives the same error whether it came
        whole or a byte at a time. A skip needs the exact length, so it waits.
        """
        partial = value + self._adjust
        if self._on_oversize == "raise" and partial > self._max_size:
            raise FrameTooLarge(
                repr(self),
                partial,
                self._max_size,
                detail=(
                    f"frame of at least {partial} bytes (header still arriving) "
                    f"is over the limit of {self._max_size} bytes"
                ),
                messages=out,
            )
        if size < 0:
            reason = f"varint length longer than {MAX_VARINT_BYTES} bytes"
            raise MalformedFrame(repr(self), reason, messages=out)

    def _refuse(self, value: int, body: int, head: int, out: list[T]) -> None:
        """A header whose body is over ``max_size`` or too short: raise, or start a skip."""
        if body < 0:
            raise MalformedFrame(repr(self), self._negative_text(value, body), messages=out)
        if body < self._min_body:
            raise MalformedFrame(
                repr(self),
                f"a frame of {head + body} bytes is shorter than the {self._strip} bytes "
                f"that strip removes",
                messages=out,
            )
        if self._on_oversize == "raise":
            raise FrameTooLarge(repr(self), body, self._max_size, messages=out)
        self._skipped_frames += 1
        self._skipped_bytes += head + body
        self._skip_frame = head + body

    def _negative_text(self, value: int, body: int) -> str:
        return (
            f"length field says {value}, which with adjustment {self._adjust} "
            f"leaves {body} bytes after it"
        )

    def _rejected(self, reason: str, out: list[T]) -> MalformedFrame:
        return MalformedFrame(repr(self), f"early check failed: {reason}", messages=out)

    def _not_bytes(self, message: object) -> MessageTypeError:
        return MessageTypeError(repr(self), type(message).__name__)


@functools.cache
def _struct(fmt: str) -> struct.Struct:
    """One ``struct.Struct`` per header format, shared by every framer and clone using it.

    A Struct is immutable, and a server makes a clone per connection: building two
    new ones each time cost about 500 bytes per idle connection.
    """
    return struct.Struct(fmt)


@final
class LengthPrefixed(_Prefixed[bytes]):
    """Messages preceded by an unsigned length field (DNS over TCP, protobuf streams...).

    The module docstring draws the frame layout and what each option does.

    Args:
        width: the length field's size in bytes (1, 2, 3, 4 or 8), or
            ``"varint"`` for an unsigned LEB128 field (at most 10 bytes; non-minimal
            encodings accepted, minimal ones written).
        byteorder: ``"big"`` (network order, the default) or ``"little"``;
            ignored for varints.
        max_size: the largest body accepted or encoded: bytes after the length
            field. Defaults to what the field can express for widths 1 and 2
            (255 and 65535, plus the adjustment), else 8 MiB (``DEFAULT_MAX_SIZE``).
            Larger than the field can express is a ``ValueError``.
        length_offset: bytes in the header before the length field.
        length_adjustment: added to the field's value to get the number of bytes
            after the length field.
        strip: bytes removed from the start of each frame before it is delivered:
            ``None`` (the default) for the whole header, else 0 to
            ``length_offset``, or the header's size or more (the body's first
            bytes go too); never part of the length field (varint: only ``None``).
        on_oversize: ``"raise"`` :class:`~framing.FrameTooLarge` for a header over
            ``max_size``, or ``"skip"`` that frame's bytes as they arrive.
        check: an early check (see :data:`~framing.base.EarlyCheck`), called once
            per frame with its first ``check_size`` bytes, header included.
        check_size: how many bytes ``check`` wants (required with ``check``).

    Raises:
        ValueError: an option out of range, or options that contradict each other.
    """

    __slots__ = (
        "_byteorder",
        "_field_max",
        "_head_size",
        "_pack",
        "_plain",
        "_small",
        "_strip_given",
        "_width",
    )

    def __init__(
        self,
        width: Width = 2,
        byteorder: ByteOrder = "big",
        *,
        max_size: int | None = None,
        length_offset: int = 0,
        length_adjustment: int = 0,
        strip: int | None = None,
        on_oversize: OversizePolicy = "raise",
        check: EarlyCheck | None = None,
        check_size: int = 0,
    ) -> None:
        if width != "varint" and (type(width) is not int or width not in (1, 2, 3, 4, 8)):
            raise ValueError(f"width must be 1, 2, 3, 4, 8 or 'varint', not {width!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
        if length_offset < 0:
            raise ValueError(f"length_offset must be 0 or more, not {length_offset}")
        self._width: Width = width
        self._byteorder: ByteOrder = byteorder
        self._strip_given = strip
        if width == "varint":
            self._field_max = (1 << 64) - 1
            head_min = length_offset + 1
            if strip is not None:
                raise ValueError(
                    "a varint header is always stripped (strip=None): its size varies, "
                    "so no fixed strip can keep or cut it"
                )
            self._head_size = -1
            cut = -1
        else:
            self._field_max = (1 << (8 * width)) - 1
            head_min = self._head_size = length_offset + width
            if strip is None:
                strip = self._head_size
            elif strip < 0 or length_offset < strip < self._head_size:
                raise ValueError(
                    f"strip must be 0 to length_offset ({length_offset}), or the header's "
                    f"size ({self._head_size}) or more, not {strip}: it would cut "
                    + ("into the length field" if strip > 0 else "before the frame")
                )
            cut = strip
        largest = self._field_max + length_adjustment
        if largest < 0:
            raise ValueError(
                f"length_adjustment {length_adjustment} leaves no valid frame: "
                f"the field holds at most {self._field_max}"
            )
        if max_size is None:
            max_size = self._default_max_size(length_adjustment)
        elif not 0 <= max_size <= largest:
            raise ValueError(
                f"max_size must be 0 to {largest} (what a {width!r} length field with "
                f"adjustment {length_adjustment} can express), not {max_size}"
            )
        fmt = _STRUCT_FORMATS.get(width) if isinstance(width, int) else None
        order = ">" if byteorder == "big" else "<"
        self._init_engine(
            max_size=max_size,
            head_min=head_min,
            offset=length_offset,
            adjust=length_adjustment,
            strip=cut,
            unpack=_struct(order + fmt).unpack_from if fmt else None,
            varint=width == "varint",
            wrap=None,
            on_oversize=on_oversize,
            check=check,
            check_size=check_size,
        )
        self._pack = _struct(order + fmt).pack if fmt else None
        # The plain case (a struct-readable field, no offset, no adjustment,
        # header stripped) is what DNS and most protocols use: encode has a
        # short path for it. feed has one for it and for the plain varint
        # (protobuf streams), when there is no early check either (_fast: the
        # engine's one shortcut, in ``feed``).
        self._plain = (
            fmt is not None and length_offset == 0 and length_adjustment == 0 and cut == head_min
        )
        plain_varint = width == "varint" and length_offset == 0 and length_adjustment == 0
        if (
            width != "varint"
            and length_offset == 0
            and length_adjustment == 0
            and cut == head_min
            and check is None
        ):
            # Plain and fixed-width: whole frames are cut in C when the
            # accelerator is here and on (framing/_accel.py), in feed's shortcut
            # and in the engine's ``_parse`` (width 3, and limited feeds).
            self._csplit = _accel.split_length()
            self._little = int(byteorder == "little")
        self._fast = (self._plain or plain_varint) and check is None
        # The largest value the first header bytes hold whole (for feed's shortcut):
        # a varint byte under 0x80 is the last (a body under 128 bytes); anything
        # larger is oversize, or a longer varint.
        self._small = min(self._max_size, 0x7F) if self._varint else self._max_size

    def __repr__(self) -> str:
        parts = [f"width={self._width!r}"]
        if self._byteorder != "big" and self._width != "varint":
            parts.append(f"byteorder={self._byteorder!r}")
        if self._max_size != self._default_max_size(self._adjust):
            parts.append(f"max_size={self._max_size}")
        if self._offset:
            parts.append(f"length_offset={self._offset}")
        if self._adjust:
            parts.append(f"length_adjustment={self._adjust}")
        if self._strip_given is not None and self._strip_given != self._head_size:
            parts.append(f"strip={self._strip_given}")
        if self._on_oversize != "raise":
            parts.append(f"on_oversize={self._on_oversize!r}")
        if self._check is not None:
            name = getattr(self._check, "__qualname__", None) or repr(self._check)
            parts.append(f"check={name}, check_size={self._check_size}")
        return f"LengthPrefixed({', '.join(parts)})"

    def _default_max_size(self, adjust: int) -> int:
        # Widths 1 and 2 default to everything they can say (a 65535-byte DNS
        # message must pass); wider headers default to 8 MiB (see DEFAULT_MAX_SIZE).
        largest = self._field_max + adjust
        return largest if self._width in (1, 2) else min(largest, DEFAULT_MAX_SIZE)

    def clone(self) -> LengthPrefixed:
        """Return a new, empty framer with the same settings."""
        return LengthPrefixed(
            self._width,
            self._byteorder,
            max_size=self._max_size,
            length_offset=self._offset,
            length_adjustment=self._adjust,
            strip=self._strip_given,
            on_oversize=self._on_oversize,
            check=self._check,
            check_size=self._check_size,
        )

    # --- decoding ----------------------------------------------------------------

    def _read_head(self, src: BytesLike, pos: int, done: list[bytes]) -> tuple[int, int]:
        # Width 3 only: the one width ``struct`` cannot read.
        at = pos + self._offset
        return int.from_bytes(src[at : at + self._head_size - self._offset], self._byteorder), (
            self._head_size
        )

    def feed(self, data: BytesLike = b"", *, limit: int | None = None) -> list[bytes]:  # noqa: PLR0912, PLR0915 (one loop, in line: a call per chunk costs)
        """Append a chunk and return every message it completes, in order.

        Args:
            data: the next bytes of the stream; may be empty.
            limit: return at most this many messages and parse no further, so the
                bytes after the last one returned stay unparsed (see ``detach``).

        Returns:
            The completed messages; ``[]`` when more bytes are needed.

        Raises:
            FrameTooLarge: a header announced a body over ``max_size`` (with
                ``on_oversize="raise"``).
            MalformedFrame: a header that cannot be valid, or the early check
                rejected a frame.
        """
        if limit is not None or self._skip or not self._fast:
            return _Prefixed.feed(self, data, limit=limit)
        # The engine's one shortcut, all in this call (a call less per chunk:
        # measured 10% at 512 B frames in random 1-4096 byte chunks): plain
        # frames, ``| length | body |`` with a fixed-width or varint length and
        # no offset, adjustment, strip, early check, limit or skip under way
        # (DNS, protobuf streams and most protocols). The same states as
        # ``_parse`` (it leaves Data(n) remembered at the chunk's end), in fewer
        # steps per frame: a header read, a slice and an append. An oversize
        # header, and an unfinished or too long varint, go to ``_parse`` from
        # the frame's first byte, which raises, skips or waits exactly as it
        # would have. The property tests run every width, and varints, through
        # both.
        chunk = data if type(data) is bytes else bytes(data)
        buf = self._buf
        take = self._need - len(buf)  # > 0 in Data(n): what the frame held lacks
        if buf and take > len(chunk):
            # This chunk does not finish the body (frames larger than chunks):
            # hold it, one copy, no parsing: the common call when frames are
            # large. Bounded: ``_need`` passed the max_size check.
            buf += chunk
            return []
        out: list[bytes] = []
        pos = 0
        if buf:
            if take > 0:
                # This chunk finishes the frame held: deliver it (a slice
                # copies; a view does not, but costs more below 4 KiB), then
                # parse the rest of the chunk in place below.
                # (``_cut_held`` in line, for a header that is always cut.)
                rest = chunk[:take] if take < 4096 else memoryview(chunk)[:take]
                if len(buf) <= 512:
                    del buf[: self._head_len]
                    out.append(b"".join((buf, rest)))
                else:
                    with memoryview(buf) as held:
                        out.append(b"".join((held[self._head_len :], rest)))
                buf.clear()
                self._need = -1
                pos = take
            elif self._varint:
                # A varint begun in the last chunk: read a byte at a time, so an
                # oversize one is refused at the first byte that proves it, with
                # that lower bound as its size, whatever the chunking.
                pos = self._resume(chunk, out)
                if buf:
                    return out
                if self._skip:
                    # It began to skip an oversize frame: the engine goes on.
                    pos = self._parse(chunk, pos, out, None)
                    buf += chunk[pos:]
                    return out
            else:
                # A fixed-width header begun in the last chunk (or whole frames
                # a limited feed left): parse the two joined, as if they had
                # arrived together. A copy of the chunk, but it saves _resume's
                # steps, measured 25% of the time at 512 B frames in random
                # 1-4096 byte chunks.
                chunk = b"".join((buf, chunk))
                buf.clear()
                self._need = -1
        csplit = self._csplit
        if csplit is not None:
            # The C loop cuts every whole frame (framing/_accel.py); what it
            # leaves is what the loop below leaves: Data(n), a partial header,
            # or a header over max_size, which ``_parse`` refuses or skips.
            frames, pos, need = csplit(chunk, pos, self._head_min, self._little, self._max_size, -1)
            if out:
                out += frames
            else:
                out = frames
            if need >= 0:
                self._need = need
                self._head_len = self._head_min
            elif need == -2:
                pos = self._parse(chunk, pos, out, None)
            if pos < len(chunk):
                buf += chunk[pos:] if len(chunk) - pos < 4096 else memoryview(chunk)[pos:]
            return out
        # The header is read by the reader a test of a local picks: ``struct``
        # for a fixed width; for a varint, its first byte by index, its second
        # too when the body is 128 bytes to 16 KiB, and ``read_varint`` beyond.
        unpack: Callable[[bytes, int], tuple[int, ...]] = self._unpack  # type: ignore[assignment]
        varint = self._varint
        head = self._head_min  # a varint's fewest bytes: 1
        max_size = self._max_size
        small = self._small
        end = len(chunk)
        append = out.append
        start = pos + head  # the first body byte of the frame being read
        # A frame that ends ``head`` bytes or more before the chunk does is whole,
        # and so is the header after it (at least its first byte, for a varint):
        # one comparison (with ``last``) per frame. The frame that ends after
        # ``last`` is finished below the loop.
        last = end - head
        if start > end:
            pos = start - head  # not even a whole header
        else:
            while True:  # one test per frame less than ``while start <= end``
                # A test of a local per frame, paid back by unpacking the 1-tuple
                # instead of indexing it (measured: as fast as the loop without
                # it). A varint's first byte is read by index: half the cost of
                # a one-byte ``struct`` read (measured).
                if varint:
                    body = chunk[start - 1]
                else:
                    (body,) = unpack(chunk, start - head)
                if body > small:
                    pos = start - head
                    if not varint or body < 0x80:
                        pos = self._parse(chunk, pos, out, None)  # oversize
                        break
                    if start < end and chunk[start] < 0x80:
                        # Two bytes (a body of 128 bytes to 16 KiB): read here, a
                        # call less per frame (measured: half the time at 512 B).
                        body = (body & 0x7F) | chunk[start] << 7
                        size = 2
                    else:
                        body, size, _ = read_varint(chunk, pos, end)
                    if size <= 0 or body > max_size:
                        pos = self._parse(chunk, pos, out, None)
                        break
                    stop = pos + size + body
                    if stop > end:
                        self._need = size + body  # Data(n), as below
                        self._head_len = size
                        break
                    append(chunk[stop - body : stop])
                    pos = stop
                    start = stop + 1
                    if start > end:
                        break
                    continue
                stop = start + body
                if stop > last:
                    pos = start - head
                    if stop <= end:
                        # The chunk's last whole frame; fewer than ``head`` bytes follow.
                        append(chunk[start:stop])
                        pos = stop
                    else:
                        # Remember the header while the body arrives (tokio's Data(n)).
                        self._need = stop - pos
                        self._head_len = head
                    break
                append(chunk[start:stop])
                start = stop + head
        if pos < end:
            # Hold the start of a frame that has not all arrived: copy the tail
            # only (through a view when it is long: a slice would copy it twice).
            buf += chunk[pos:] if end - pos < 4096 else memoryview(chunk)[pos:]
        return out

    # --- encoding ----------------------------------------------------------------

    def encode(self, message: BytesLike) -> bytes:
        """Return the frame that carries ``message`` (see the module docstring).

        Raises:
            MessageTooLarge: the body is over ``max_size`` (which is never more
                than the length field can express).
            EncodeError: ``message`` is not bytes-like; the configuration strips
                bytes that encode cannot know (before or after the length
                field); the message is shorter than the header it must contain
                (``strip=0``), or shorter than a positive ``length_adjustment``.
        """
        if self._plain:
            try:
                size = len(message)
                if size > self._max_size:
                    raise MessageTooLarge(repr(self), size, self._max_size)
                pack = self._pack
                assert pack is not None  # a plain framer has a struct format
                return pack(size) + message
            except TypeError:  # a str, say: no cost on the way that succeeds
                raise self._not_bytes(message) from None
        if not isinstance(message, bytes | bytearray | memoryview):
            raise self._not_bytes(message)
        strip = self._strip
        if strip == 0:
            if len(message) < self._head_size:
                raise EncodeError(
                    repr(self),
                    f"a whole-frame message must hold the {self._head_size}-byte "
                    f"header, this one has {len(message)} bytes",
                )
            body = memoryview(message)[self._head_size :]
            return bytes(message[: self._offset]) + self._field(len(body)) + body
        if self._offset or strip > self._head_size:
            where = "before" if self._offset else "after"
            raise EncodeError(
                repr(self),
                f"cannot encode: messages lack the header bytes {where} the length "
                f"field (they are stripped on receive), so encode cannot know them; "
                f"use strip=0 to encode whole frames",
            )
        return self._field(len(message)) + bytes(message)

    def _field(self, body: int) -> bytes:
        """Return the length field for a body of ``body`` bytes."""
        if body > self._max_size:
            raise MessageTooLarge(repr(self), body, self._max_size)
        value = body - self._adjust
        if value < 0:
            raise EncodeError(
                repr(self),
                f"a body of {body} bytes is shorter than length_adjustment "
                f"{self._adjust}, so no length field can describe it",
            )
        if self._width == "varint":
            return encode_varint(value)
        return value.to_bytes(self._width, self._byteorder)


# Re-exported from here, where they were first defined. Imported last: the
# construct-declared header is served by the engine above (framing/__init__.py
# imports this module first, so framing.structured always finds it complete).
from framing.structured import Frame, StructPrefixed  # noqa: E402
