r"""Domain names: their text form, and their wire form with compression.

On the wire (RFC 1035 3.1, 4.1.4) a name is a run of length-prefixed labels
ending in the zero-length root label, or in a 2-byte pointer to an earlier
place in the same message where the rest of the name is written::

    offset 12:  | 03 w w w | 07 f r a m i n g | 04 t e s t | 00 |
    offset 40:  | 04 m a i l | C0 10 |        "mail" + the name at offset 16
                                               (0xC000 | 16): mail.framing.test.

A length byte is ``00LLLLLL`` (a label of up to 63 bytes) or ``11PPPPPP`` (with
the next byte, a 14-bit pointer); ``01`` and ``10`` are reserved (RFC 6891 retired
the extended label types). A whole name is at most 255 bytes on the wire.

Decoding defends against hostile messages: every pointer must point strictly
before the run of labels that contains it, so offsets strictly decrease and a
loop (or a forward pointer) is impossible; a pointer out of the message, a
reserved label type and an overlong name are errors. Encoding compresses
against every name suffix already written in the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.dns.errors import DNSFormatError

__all__ = ["ROOT", "CompressionTable", "Name", "decode_name", "encode_name"]

#: Longest label and longest whole name on the wire (RFC 1035 2.3.4).
MAX_LABEL = 63
MAX_NAME = 255

#: Pointers have 14 bits: a name written past this offset cannot be pointed to.
_MAX_POINTER = 0x3FFF

#: Suffixes already written in a message, mapped to their offsets. Keys are the
#: labels as written (case kept): compressing ``WWW.x`` against ``www.x`` would
#: be legal DNS, but the decoded name would then change case.
CompressionTable = dict[tuple[bytes, ...], int]

# Bytes that text form writes as "\X": the master-file specials (RFC 1035 5.1).
_ESCAPED = frozenset(b'."\\();@$ ')


@dataclass(frozen=True, slots=True)
class Name:
    """An absolute domain name, as its labels (bytes, case kept, root excluded).

    Equality is exact (case-sensitive), as the bytes are; compare ``key`` to
    match names the DNS way, ignoring ASCII case.

    Attributes:
        labels: the labels from leftmost to the top-level domain; ``()`` is the root.
    """

    labels: tuple[bytes, ...]

    def __post_init__(self) -> None:
        size = 1
        for label in self.labels:
            if not 1 <= len(label) <= MAX_LABEL:
                raise ValueError(f"label of {len(label)} bytes (1 to {MAX_LABEL} allowed)")
            size += 1 + len(label)
        if size > MAX_NAME:
            raise ValueError(f"name of {size} bytes on the wire (at most {MAX_NAME})")

    @classmethod
    def from_text(cls, text: str, *, origin: Name | None = None) -> Name:
        r"""Parse a name in master-file form: ``www.framing.test.``, ``www``, ``@``.

        Escapes ``\X`` (the character itself) and ``\DDD`` (a decimal byte) are
        understood. A name without a final dot is relative to ``origin`` (the
        root when none is given); ``@`` is the origin itself.

        Raises:
            ValueError: an empty label, a bad escape, or a label or name too long.
        """
        if text == "@":
            return origin if origin is not None else ROOT
        if text == ".":
            return ROOT
        labels: list[bytes] = []
        current = bytearray()
        absolute = False
        i = 0
        raw = text.encode("utf-8")
        while i < len(raw):
            byte = raw[i]
            if byte == 0x5C:  # backslash
                if i + 4 <= len(raw) and raw[i + 1 : i + 4].isdigit():
                    value = int(raw[i + 1 : i + 4])
                    if value > 255:
                        raise ValueError(f"escape \\{value} is not a byte in {text!r}")
                    current.append(value)
                    i += 4
                    continue
                if i + 1 >= len(raw):
                    raise ValueError(f"name {text!r} ends in a lone backslash")
                current.append(raw[i + 1])
                i += 2
                continue
            if byte == 0x2E:  # dot
                if not current:
                    raise ValueError(f"empty label in {text!r}")
                labels.append(bytes(current))
                current.clear()
                if i == len(raw) - 1:
                    absolute = True
                i += 1
                continue
            current.append(byte)
            i += 1
        if current:
            labels.append(bytes(current))
        if not absolute and origin is not None:
            return cls(tuple(labels) + origin.labels)
        return cls(tuple(labels))

    def to_text(self) -> str:
        r"""Return the master-file form, absolute (final dot), specials escaped."""
        if not self.labels:
            return "."
        parts = []
        for label in self.labels:
            out = []
            for byte in label:
                if byte in _ESCAPED:
                    out.append("\\" + chr(byte))
                elif 0x21 <= byte <= 0x7E:
                    out.append(chr(byte))
                else:
                    out.append(f"\\{byte:03d}")
            parts.append("".join(out))
        return ".".join(parts) + "."

    def __str__(self) -> str:
        return self.to_text()

    @property
    def key(self) -> tuple[bytes, ...]:
        """The labels in ASCII lower case: equal for names DNS considers equal."""
        return tuple(label.lower() for label in self.labels)

    def is_subdomain_of(self, other: Name) -> bool:
        """Return whether this name is ``other`` or below it (ignoring ASCII case)."""
        depth = len(other.labels)
        if depth > len(self.labels):
            return False
        return depth == 0 or self.key[-depth:] == other.key

    def to_wire(self) -> bytes:
        """Return the uncompressed wire form."""
        out = bytearray()
        encode_name(self, out, None)
        return bytes(out)


ROOT = Name(())


def decode_name(data: bytes, offset: int) -> tuple[Name, int]:
    """Read the name at ``offset`` of a whole message, following pointers.

    Args:
        data: the whole message (pointers are offsets into it).
        offset: where the name starts.

    Returns:
        The name, and the offset just after it where it was written (after its
        first pointer, if it has one).

    Raises:
        DNSFormatError: truncated name, reserved label type, pointer not
            strictly backwards (a loop or a forward pointer), name over 255 bytes.
    """
    labels: list[bytes] = []
    size = 1
    pos = offset
    # Start of the run of labels being read: every pointer must point before it.
    run_start = offset
    end = -1
    length = len(data)
    while True:
        if pos >= length:
            raise DNSFormatError("name runs past the end of the message", offset=pos)
        byte = data[pos]
        if byte == 0:
            return Name(tuple(labels)), (pos + 1 if end < 0 else end)
        kind = byte & 0xC0
        if kind == 0xC0:
            if pos + 1 >= length:
                raise DNSFormatError("compression pointer cut short", offset=pos)
            target = ((byte & 0x3F) << 8) | data[pos + 1]
            if target >= run_start:
                raise DNSFormatError(
                    f"compression pointer to {target} does not point backwards", offset=pos
                )
            if end < 0:
                end = pos + 2
            pos = run_start = target
            continue
        if kind:
            raise DNSFormatError(f"reserved label type 0x{byte:02x}", offset=pos)
        size += 1 + byte
        if size > MAX_NAME:
            raise DNSFormatError(f"name longer than {MAX_NAME} bytes", offset=pos)
        if pos + 1 + byte > length:
            raise DNSFormatError("label runs past the end of the message", offset=pos)
        labels.append(data[pos + 1 : pos + 1 + byte])
        pos += 1 + byte


def encode_name(name: Name, out: bytearray, table: CompressionTable | None) -> None:
    """Append ``name`` to the message being built, compressed against ``table``.

    Args:
        name: the name to write.
        out: the message so far; the name is appended.
        table: suffixes already written and their offsets, updated with the new
            ones; ``None`` writes the name uncompressed (SRV targets, RFC 2782;
            types unknown to RFC 3597 readers).
    """
    labels = name.labels
    for i in range(len(labels)):
        if table is not None:
            suffix = labels[i:]
            pointer = table.get(suffix)
            if pointer is not None:
                out += (0xC000 | pointer).to_bytes(2, "big")
                return
            if len(out) <= _MAX_POINTER:
                table[suffix] = len(out)
        label = labels[i]
        out.append(len(label))
        out += label
    out.append(0)
