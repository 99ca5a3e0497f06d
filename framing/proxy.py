r"""The PROXY protocol (HAProxy's ``proxy-protocol.txt``, versions 1 and 2), parsed sans-IO.

A proxy that relays TCP connections (HAProxy, dnsdist, Envoy, a cloud load
balancer) can put one header before the client's first byte to tell the server
who the client is. Version 1 is one line of US-ASCII, at most 107 bytes with
its CRLF::

    | PROXY TCP4 192.0.2.7 198.51.100.1 56324 53\r\n | the client's bytes ...
      family  source     destination  ports

Version 2 is binary: a 12-byte signature, then version and command, family and
protocol, and the big-endian length of what follows (addresses, then TLVs)::

    | \r\n\r\n\x00\r\nQUIT\n | \x21 | \x11 | \x00\x0c | src dst sport dport | TLVs | data...
      signature (12 bytes)    v2     TCP    12 bytes   4 + 4 + 2 + 2
                              PROXY  IPv4   follow

:class:`ProxyHeaderParser` is fed the stream's first chunks, cut anywhere, and
returns ``None`` until the header is complete; then it returns the header and
every byte after it, untouched (``(header, rest)``), and is done. Like the
framers it does no I/O, holds at most the header's own bytes while it waits
(107 bytes for version 1, ``max_size`` for version 2), and its result does not
depend on how the stream was split. Whatever it is fed, it returns or raises
:class:`~framing.errors.ProxyHeaderError` (the peer's fault).

Only the header is parsed here. Whom to trust with one is the server's
business (:func:`framing.serve`'s ``proxy_protocol``): a header from a peer
that is not a trusted proxy must never be believed, since any client can send
one.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import final

from framing.base import BytesLike
from framing.errors import ProxyHeaderError

__all__ = [
    "DEFAULT_MAX_V2_SIZE",
    "PP2_TYPE_ALPN",
    "PP2_TYPE_AUTHORITY",
    "PP2_TYPE_CRC32C",
    "PP2_TYPE_NETNS",
    "PP2_TYPE_NOOP",
    "PP2_TYPE_SSL",
    "PP2_TYPE_UNIQUE_ID",
    "V1_MAX_SIZE",
    "V2_SIGNATURE",
    "ProxyCommand",
    "ProxyHeader",
    "ProxyHeaderParser",
    "crc32c",
]

#: The version 2 signature: built to be rejected by HTTP, TLS, SMTP... servers.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
#: The longest version 1 line, CRLF included: ``PROXY UNKNOWN`` with two full
#: IPv6 addresses and two 5-digit ports (the specification's worst case).
V1_MAX_SIZE = 107
#: The largest version 2 header accepted by default, signature included. The
#: wire allows 16 + 65535 bytes; addresses take at most 216 and the TLVs HAProxy
#: sends (ALPN, SNI, a unique id, TLS details with a client certificate of a
#: KiB or two) fit well within 8 KiB, which bounds what a connection holds
#: before its first message.
DEFAULT_MAX_V2_SIZE = 8192
_V2_FIXED = 16  # signature, version and command, family and protocol, length

# TLV types registered by the specification (2.2).
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_TYPE_NETNS = 0x30

_FAMILIES = {
    0x0: socket.AF_UNSPEC,
    0x1: socket.AF_INET,
    0x2: socket.AF_INET6,
    0x3: socket.AF_UNIX,
}
_PROTOCOLS = {0x0: None, 0x1: socket.SOCK_STREAM, 0x2: socket.SOCK_DGRAM}
# Bytes of the address block for each family: two addresses, then (IP) two ports.
_ADDRESS_SIZES = {socket.AF_INET: 12, socket.AF_INET6: 36, socket.AF_UNIX: 216}
_V1_FAMILIES = {b"TCP4": socket.AF_INET, b"TCP6": socket.AF_INET6}
# What a canonical address may contain on a version 1 line. ``ipaddress``
# alone would also take an IPv6 scope ("fe80::1%eth0") or an IPv4 tail.
_V1_ADDRESS_CHARS = {
    socket.AF_INET: frozenset(b"0123456789."),
    socket.AF_INET6: frozenset(b"0123456789abcdefABCDEF:"),
}


class ProxyCommand(enum.Enum):
    """What the proxy says of the connection (the low nibble of version 2's 13th byte)."""

    #: The proxy opened the connection itself (a health check): use the real
    #: endpoints, ignore any address in the header.
    LOCAL = 0x0
    #: The proxy relays a client: the header's source is the client.
    PROXY = 0x1


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed PROXY header.

    Attributes:
        version: 1 (text) or 2 (binary).
        command: :attr:`ProxyCommand.PROXY`, or :attr:`ProxyCommand.LOCAL` (version 2 only).
        family: ``socket.AF_INET``, ``AF_INET6``, ``AF_UNIX``, or ``AF_UNSPEC``
            (version 1's ``UNKNOWN``, version 2's UNSPEC: no usable address).
        protocol: ``socket.SOCK_STREAM`` or ``SOCK_DGRAM``; ``None`` when unspecified.
        source_address: the client's address (an IP address in its compressed
            form, or a Unix path), or ``None`` when the header carries none.
        source_port: the client's port (``None`` for Unix and UNSPEC).
        destination_address: the address the client connected to.
        destination_port: the port the client connected to.
        tlvs: version 2's type-length-value fields after the addresses, as
            ``(type, value)`` pairs in wire order (``PP2_TYPE_*``).
        size: the header's length on the wire, in bytes.
    """

    version: int
    command: ProxyCommand
    family: socket.AddressFamily
    protocol: socket.SocketKind | None
    source_address: str | None
    source_port: int | None
    destination_address: str | None
    destination_port: int | None
    tlvs: tuple[tuple[int, bytes], ...]
    size: int

    @property
    def client_address(self) -> str | None:
        """The relayed client's IP address, or ``None``: use the connection's own endpoints.

        ``None`` for ``LOCAL`` (a health check), for an unspecified family
        (``UNKNOWN``, UNSPEC) and for Unix sockets, as the specification asks.
        """
        if self.command is ProxyCommand.LOCAL or self.family not in _V1_ADDRESS_CHARS:
            return None
        return self.source_address

    def tlv(self, kind: int) -> bytes | None:
        """Return the value of the first TLV of type ``kind``, or ``None``."""
        for tlv_type, value in self.tlvs:
            if tlv_type == kind:
                return value
        return None

    def to_bytes(self) -> bytes:
        """Return this header as a sender puts it on the wire (``size`` is not consulted).

        What a client or a test needs to speak for a proxy. Version 1 writes
        ``UNKNOWN`` for any family but IPv4 and IPv6; version 2 writes the
        TLVs in order (a CRC32C TLV is filled in, whatever its value).

        Raises:
            ValueError: a field cannot be written (an address of another
                family, a port out of range, a TLV over 65535 bytes).
        """
        if self.version == 1:
            return self._v1_bytes()
        if self.version == 2:
            return self._v2_bytes()
        raise ValueError(f"no PROXY protocol version {self.version}")

    def _v1_bytes(self) -> bytes:
        names = {family: name for name, family in _V1_FAMILIES.items()}
        name = names.get(self.family)
        if name is None or self.command is not ProxyCommand.PROXY:
            return b"PROXY UNKNOWN\r\n"
        fields = [
            str(ipaddress.ip_address(self.source_address or "")),
            str(ipaddress.ip_address(self.destination_address or "")),
            str(_port(self.source_port)),
            str(_port(self.destination_port)),
        ]
        return b"PROXY " + name + b" " + " ".join(fields).encode() + b"\r\n"

    def _v2_bytes(self) -> bytes:
        families = {family: code for code, family in _FAMILIES.items()}
        protocols = {protocol: code for code, protocol in _PROTOCOLS.items()}
        family = families[self.family]
        protocol = protocols[self.protocol]
        addresses = b""
        if self.family in (socket.AF_INET, socket.AF_INET6) and protocol:
            kind = ipaddress.IPv4Address if self.family == socket.AF_INET else ipaddress.IPv6Address
            addresses = (
                kind(self.source_address or "").packed
                + kind(self.destination_address or "").packed
                + _port(self.source_port).to_bytes(2, "big")
                + _port(self.destination_port).to_bytes(2, "big")
            )
        elif self.family == socket.AF_UNIX and protocol:
            for path in (self.source_address or "", self.destination_address or ""):
                raw = os.fsencode(path)
                if len(raw) > 108:
                    raise ValueError(f"a Unix path of {len(raw)} bytes is over 108")
                addresses += raw.ljust(108, b"\x00")
        tlvs = b""
        crc_at = -1
        for kind_, given in self.tlvs if addresses else ():
            value = given
            if len(value) > 0xFFFF:
                raise ValueError(f"a TLV of {len(value)} bytes is over 65535")
            if kind_ == PP2_TYPE_CRC32C and crc_at < 0:
                value = b"\x00\x00\x00\x00"
                crc_at = _V2_FIXED + len(addresses) + len(tlvs) + 3
            tlvs += bytes([kind_]) + len(value).to_bytes(2, "big") + value
        body = addresses + tlvs
        if len(body) > 0xFFFF:
            raise ValueError(f"a version 2 header body of {len(body)} bytes is over 65535")
        data = (
            V2_SIGNATURE
            + bytes([0x20 | self.command.value, family << 4 | protocol])
            + len(body).to_bytes(2, "big")
            + body
        )
        if crc_at >= 0:
            data = data[:crc_at] + crc32c(data).to_bytes(4, "big") + data[crc_at + 4 :]
        return data


@final
class ProxyHeaderParser:
    r"""Parses the PROXY header at the start of a stream, fed chunks cut anywhere.

    ::

        parser = ProxyHeaderParser()
        parser.feed(b"PROXY TCP4 192.0.2.7 ")               # -> None (need more)
        parser.feed(b"198.51.100.1 56324 53\r\nhello")      # -> (header, b"hello")

    The stream's kind is known from its first byte and decided as soon as
    the bytes stop matching a signature: ``PROXY `` for version 1,
    :data:`V2_SIGNATURE` for version 2. A stream that begins otherwise raises
    :class:`~framing.errors.ProxyHeaderError`, or, when ``optional``, ends the
    parse at once with ``(None, every byte fed)``.

    Args:
        optional: a stream without a header is fine (``(None, data)``), as
            opposed to an error. A stream that begins like a header must still
            be a valid one.
        max_size: the largest version 2 header accepted, in bytes (16 to
            16 + 65535; default :data:`DEFAULT_MAX_V2_SIZE`). One announcing
            more raises before its bytes are held.

    Attributes:
        optional: as given.
        max_size: as given.
    """

    __slots__ = ("_buffer", "_done", "_scan", "_version", "max_size", "optional")

    def __init__(self, *, optional: bool = False, max_size: int = DEFAULT_MAX_V2_SIZE) -> None:
        if not _V2_FIXED <= max_size <= _V2_FIXED + 0xFFFF:
            raise ValueError(f"max_size must be from 16 to 65551, not {max_size}")
        self.optional = optional
        self.max_size = max_size
        self._buffer = bytearray()
        self._version = 0  # 0 while undecided, then 1 or 2
        self._scan = 0  # where the search for version 1's LF resumes
        self._done = False

    def __repr__(self) -> str:
        return f"ProxyHeaderParser(optional={self.optional}, max_size={self.max_size})"

    @property
    def buffered(self) -> int:
        """How many bytes are held, waiting for the header to complete."""
        return len(self._buffer)

    def feed(self, data: BytesLike = b"") -> tuple[ProxyHeader | None, bytes] | None:
        """Append a chunk; return ``(header, rest)`` once the header is complete.

        Args:
            data: the next bytes of the stream; may be empty.

        Returns:
            ``None`` while more bytes are needed. Then ``(header, rest)``:
            ``rest`` is every byte fed after the header, which belongs to
            whatever follows (a framer, a TLS handshake). ``header`` is
            ``None`` only when ``optional`` and the stream does not begin with
            one; ``rest`` is then everything fed.

        Raises:
            ProxyHeaderError: not a PROXY header (and not ``optional``), or a
                malformed, unknown or over-long one.
            RuntimeError: the parse was already over (the caller's mistake).
        """
        if self._done:
            raise RuntimeError("the PROXY header was already parsed")
        buffer = self._buffer
        buffer += data
        if not self._version:
            self._version = self._detect()
            if self._version < 0:
                return self._finish(None, 0)
            if not self._version:
                return None
        if self._version == 1:
            return self._feed_v1()
        return self._feed_v2()

    def feed_eof(self) -> tuple[ProxyHeader | None, bytes]:
        """Say the stream has ended before the header was complete.

        Returns:
            ``(None, every byte fed)`` when ``optional`` and the bytes fed (none,
            or the start of a signature, such as ``b"PROX"``) are no header.

        Raises:
            ProxyHeaderError: the stream ended inside a header, or (not
                ``optional``) before one.
            RuntimeError: the parse was already over.
        """
        if self._done:
            raise RuntimeError("the PROXY header was already parsed")
        held = len(self._buffer)
        if not held and self.optional:
            return self._finish(None, 0)
        if not held:
            raise self._error("the stream ended before a PROXY header")
        if not self._version and self.optional:
            # "PROX" and the end: a prefix of a signature, not a header at all.
            return self._finish(None, 0)
        raise self._error(f"the stream ended {held} bytes into a PROXY header")

    # -- the states --------------------------------------------------------------

    def _detect(self) -> int:
        """Return 1 or 2 once a signature matched, 0 while undecided, -1 for no header."""
        buffer = self._buffer
        matched = 0
        for version, signature in ((1, _V1_PREFIX), (2, V2_SIGNATURE)):
            seen = min(len(buffer), len(signature))
            if buffer[:seen] == signature[:seen]:
                return version if seen == len(signature) else 0
            matched = max(matched, _common_prefix(buffer, signature))
        if self.optional:
            return -1
        # Quote up to the first byte that matches no signature: however the
        # stream was split, those are the same bytes.
        shown = bytes(buffer[: matched + 1])
        raise self._error(f"not a PROXY header: the stream begins {shown!r}")

    def _feed_v1(self) -> tuple[ProxyHeader | None, bytes] | None:
        buffer = self._buffer
        # The line ends at the first LF, which must follow a CR. The search
        # resumes where the last one stopped: after b"PROXY TCP4 1" was fed, no
        # byte of it is an LF, so the next chunk is searched from offset 12.
        end = buffer.find(b"\n", self._scan)
        if end < 0 and len(buffer) < V1_MAX_SIZE:
            self._scan = len(buffer)
            return None
        if end < 0 or end + 1 > V1_MAX_SIZE:
            # The same words whether the LF came late or not yet: split-invariant.
            raise self._error(f"no CRLF in the first {V1_MAX_SIZE} bytes of a version 1 header")
        if buffer[end - 1] != 0x0D:
            raise self._error("a version 1 header ends with LF alone, not CRLF")
        header = self._parse_v1(bytes(buffer[: end - 1]), end + 1)
        return self._finish(header, end + 1)

    def _feed_v2(self) -> tuple[ProxyHeader | None, bytes] | None:
        buffer = self._buffer
        if len(buffer) > 12 and buffer[12] >> 4 != 2:
            raise self._error(
                f"unknown PROXY version {buffer[12] >> 4} (only 2 follows the signature)"
            )
        if len(buffer) < _V2_FIXED:
            return None
        size = _V2_FIXED + int.from_bytes(buffer[14:16], "big")
        if size > self.max_size:
            raise self._error(
                f"a version 2 header of {size} bytes is over the limit of {self.max_size}"
            )
        if len(buffer) < size:
            return None
        header = self._parse_v2(bytes(buffer[:size]))
        return self._finish(header, size)

    def _finish(self, header: ProxyHeader | None, size: int) -> tuple[ProxyHeader | None, bytes]:
        rest = bytes(self._buffer[size:])
        self._buffer = bytearray()
        self._done = True
        return header, rest

    def _error(self, reason: str) -> ProxyHeaderError:
        return ProxyHeaderError(repr(self), reason)

    # -- the two formats ---------------------------------------------------------

    def _parse_v1(self, line: bytes, size: int) -> ProxyHeader:
        parts = line.split(b" ")
        kind = parts[1] if len(parts) > 1 else b""
        if kind == b"UNKNOWN":
            # The sender could not say; whatever follows up to the CRLF is ignored.
            return ProxyHeader(
                1, ProxyCommand.PROXY, socket.AF_UNSPEC, None, None, None, None, None, (), size
            )
        family = _V1_FAMILIES.get(kind)
        if family is None:
            raise self._error(f"unknown version 1 protocol {kind!r} (TCP4, TCP6 or UNKNOWN)")
        if len(parts) != 6:
            raise self._error(
                f"a version 1 {kind.decode()} line has {len(parts)} space-separated fields, not 6"
            )
        source = self._v1_address(parts[2], family)
        destination = self._v1_address(parts[3], family)
        return ProxyHeader(
            1,
            ProxyCommand.PROXY,
            family,
            socket.SOCK_STREAM,
            source,
            self._v1_port(parts[4]),
            destination,
            self._v1_port(parts[5]),
            (),
            size,
        )

    def _v1_address(self, text: bytes, family: socket.AddressFamily) -> str:
        allowed = _V1_ADDRESS_CHARS[family]
        try:
            if not text or not allowed.issuperset(text):
                raise ValueError
            if family == socket.AF_INET:
                return str(ipaddress.IPv4Address(text.decode()))
            return str(ipaddress.IPv6Address(text.decode()))
        except ValueError:
            name = "IPv4" if family == socket.AF_INET else "IPv6"
            raise self._error(f"{text!r} is not a canonical {name} address") from None

    def _v1_port(self, text: bytes) -> int:
        # Decimal, no sign, no leading zero (octal confusion), 0 to 65535.
        if text.isdigit() and text.isascii() and (text == b"0" or text[:1] != b"0"):
            port = int(text)
            if port <= 0xFFFF:
                return port
        raise self._error(f"{text!r} is not a port (0 to 65535, no leading zero)")

    def _parse_v2(self, data: bytes) -> ProxyHeader:
        version_command, family_protocol = data[12], data[13]
        try:
            command = ProxyCommand(version_command & 0xF)
        except ValueError:
            raise self._error(
                f"unknown version 2 command 0x{version_command & 0xF:x} (0 LOCAL, 1 PROXY)"
            ) from None
        family = _FAMILIES.get(family_protocol >> 4)
        if family is None:
            raise self._error(f"unknown version 2 address family 0x{family_protocol >> 4:x}")
        if (family_protocol & 0xF) not in _PROTOCOLS:
            raise self._error(f"unknown version 2 transport protocol 0x{family_protocol & 0xF:x}")
        protocol = _PROTOCOLS[family_protocol & 0xF]
        if family == socket.AF_UNSPEC or protocol is None:
            # Unspecified: the address block's layout is unknown, so it and
            # anything after it are skipped, as the specification allows.
            return ProxyHeader(
                2, command, socket.AF_UNSPEC, protocol, None, None, None, None, (), len(data)
            )
        needed = _ADDRESS_SIZES[family]
        body = len(data) - _V2_FIXED
        if body < needed:
            raise self._error(
                f"an address block of {body} bytes is shorter than the {needed} "
                f"bytes of family 0x{family_protocol >> 4:x}"
            )
        addresses = data[_V2_FIXED : _V2_FIXED + needed]
        source_port = destination_port = None
        if family == socket.AF_UNIX:
            source: str = _unix_path(addresses[:108])
            destination: str = _unix_path(addresses[108:])
        else:
            half = (needed - 4) // 2
            kind = ipaddress.IPv4Address if family == socket.AF_INET else ipaddress.IPv6Address
            source = str(kind(addresses[:half]))
            destination = str(kind(addresses[half : 2 * half]))
            source_port = int.from_bytes(addresses[-4:-2], "big")
            destination_port = int.from_bytes(addresses[-2:], "big")
        tlvs = self._parse_tlvs(data, _V2_FIXED + needed)
        return ProxyHeader(
            2,
            command,
            family,
            protocol,
            source,
            source_port,
            destination,
            destination_port,
            tlvs,
            len(data),
        )

    def _parse_tlvs(self, data: bytes, offset: int) -> tuple[tuple[int, bytes], ...]:
        tlvs: list[tuple[int, bytes]] = []
        end = len(data)
        while offset < end:
            if end - offset < 3:
                raise self._error(
                    f"{end - offset} bytes at offset {offset} cannot hold a TLV (3 at least)"
                )
            kind = data[offset]
            length = int.from_bytes(data[offset + 1 : offset + 3], "big")
            start = offset + 3
            if start + length > end:
                raise self._error(
                    f"TLV 0x{kind:02x} at offset {offset} announces {length} bytes, "
                    f"but the header has {end - start} left"
                )
            value = data[start : start + length]
            if kind == PP2_TYPE_CRC32C:
                self._check_crc32c(data, start, value)
            tlvs.append((kind, value))
            offset = start + length
        return tuple(tlvs)

    def _check_crc32c(self, data: bytes, start: int, value: bytes) -> None:
        # The checksum covers the whole header with its own 4 bytes zeroed (2.2.3).
        if len(value) != 4:
            raise self._error(f"a CRC32C TLV of {len(value)} bytes, not 4")
        zeroed = data[:start] + b"\x00\x00\x00\x00" + data[start + 4 :]
        expected = crc32c(zeroed)
        if int.from_bytes(value, "big") != expected:
            raise self._error(
                f"CRC32C 0x{int.from_bytes(value, 'big'):08x} does not match the "
                f"header's 0x{expected:08x}"
            )


def _common_prefix(data: bytearray, signature: bytes) -> int:
    count = 0
    for have, want in zip(data, signature, strict=False):
        if have != want:
            break
        count += 1
    return count


def _port(port: int | None) -> int:
    if port is None or not 0 <= port <= 0xFFFF:
        raise ValueError(f"{port!r} is not a port (0 to 65535)")
    return port


def _unix_path(raw: bytes) -> str:
    # A path ends at its first NUL; an abstract name (Linux) begins with one.
    name = raw.rstrip(b"\x00") if raw[:1] == b"\x00" else raw.split(b"\x00", 1)[0]
    return os.fsdecode(name)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, RFC 4960 appendix B), as version 2's checksum TLV uses."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
