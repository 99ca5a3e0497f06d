r"""The unsigned LEB128 varint (protobuf's), the length field of ``LengthPrefixed("varint")``.

Seven bits of the value per byte, least significant group first; the high bit
of each byte says that another byte follows::

    value 5                 value 300 = 0b10_0101100
    +------+                +----------+----------+
    | 0x05 |                | 0xAC     | 0x02     |
    +------+                +----------+----------+
     0 000 0101              1 0101100  0 0000010
     last byte               more        last byte: 0000010 then 0101100

A 64-bit value takes at most 10 bytes; a longer varint is refused rather than
read without end. Non-minimal encodings (``80 00`` for zero) decode, as protobuf
decodes them; :func:`encode_varint` writes the minimal one.
"""

from __future__ import annotations

from framing.base import BytesLike

__all__ = ["MAX_VARINT_BYTES", "decode_varint", "encode_varint", "read_varint"]

# A varint longer than this cannot hold a 64-bit value (10 x 7 = 70 bits):
# protobuf rejects it, and so do we, instead of reading an endless header.
MAX_VARINT_BYTES = 10


def encode_varint(value: int) -> bytes:
    """Return the minimal unsigned LEB128 encoding of ``value`` (protobuf's varint).

    Raises:
        ValueError: ``value`` is negative or does not fit in 64 bits.
    """
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"a varint holds 0 to 2**64 - 1, not {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: BytesLike, pos: int = 0) -> tuple[int, int]:
    """Read an unsigned LEB128 varint at ``data[pos:]``.

    Non-minimal encodings (``80 00`` for zero) are accepted, as protobuf accepts them.

    Returns:
        ``(value, size)``: the value and how many bytes it took; ``size`` is 0
        when ``data`` ends before the varint does.

    Raises:
        ValueError: the varint runs longer than 10 bytes.
    """
    value, size, _ = read_varint(data, pos, len(data))
    if size < 0:
        raise ValueError(f"varint longer than {MAX_VARINT_BYTES} bytes")
    return value, size


def read_varint(data: BytesLike, pos: int, end: int) -> tuple[int, int, int]:
    """Read the varint at ``data[pos:end]`` without raising, for a framer's header loop.

    Returns:
        ``(value, size, 0)`` for a whole varint of ``size`` bytes;
        ``(partial, 0, n)`` when ``data`` ends after ``n`` bytes of it;
        ``(partial, -1, 0)`` for a varint over ``MAX_VARINT_BYTES``.
        ``partial`` is the value of the bytes read so far: a lower bound of the
        final value, since further bytes can only add bits (``00`` adds none),
        which lets a caller reject a length that is already too large before the
        varint ends.
    """
    value = 0
    shift = 0
    i = pos
    stop = min(pos + MAX_VARINT_BYTES, end)
    while i < stop:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i - pos, 0
        shift += 7
    if i - pos >= MAX_VARINT_BYTES:
        return value, -1, 0
    return value, 0, i - pos
