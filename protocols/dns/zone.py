r"""Zones in the master-file format of RFC 1035 section 5, and the embedded example zone.

A master file is a list of entries, one per line unless parentheses carry it on::

    $ORIGIN framing.test.          ; relative names below end in framing.test.
    $TTL 3600                      ; the TTL of entries that give none (RFC 2308)
    @    IN SOA ns1 hostmaster (   ; "@" is the origin; "(" continues the entry
             2024060101 7200 3600 1209600 300 )
         IN NS  ns1                ; a blank first column repeats the last owner
    www  300 IN A 192.0.2.80       ; TTL and class, in either order, both optional
    txt  TXT "quoted; not a comment" "tab\009escaped" unquoted
    x    TYPE65280 \# 2 abcd       ; any type in the generic form of RFC 3597

Understood: ``$ORIGIN``, ``$TTL``, ``@``, relative and absolute names, ``;``
comments, parentheses across lines, quoted strings with ``\X`` and ``\DDD``
escapes, TTLs with units (``1h30m``), class IN (optional), the types A, AAAA,
NS, CNAME, PTR, MX, SOA, TXT, SRV, DNAME, CAA, DS, DNSKEY, TLSA, SSHFP, NAPTR,
SVCB and HTTPS (with the SvcParams of RFC 9460 7), and ``TYPEnnn``/``\#`` for
the rest. DNSSEC algorithms are read as numbers or mnemonics (``13``,
``ECDSAP256SHA256``). Not
understood: ``$INCLUDE`` and ``$GENERATE`` (an error, never silently skipped),
classes other than IN.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocols.dns.errors import DNSFormatError, ZoneError
from protocols.dns.message import (
    AAAA,
    CAA,
    CNAME,
    DNAME,
    DNSKEY,
    DS,
    HTTPS,
    MX,
    NAPTR,
    NS,
    PTR,
    SOA,
    SRV,
    SSHFP,
    SVCB,
    TLSA,
    TXT,
    A,
    RData,
    RecordType,
    ResourceRecord,
    decode_rdata,
)
from protocols.dns.names import Name

__all__ = ["EXAMPLE_ORIGIN", "EXAMPLE_ZONE_TEXT", "Zone", "example_zone", "parse_zone"]

#: Record type mnemonics understood in master files.
TYPE_NAMES: dict[str, int] = {
    "A": RecordType.A,
    "NS": RecordType.NS,
    "CNAME": RecordType.CNAME,
    "SOA": RecordType.SOA,
    "PTR": RecordType.PTR,
    "MX": RecordType.MX,
    "TXT": RecordType.TXT,
    "AAAA": RecordType.AAAA,
    "SRV": RecordType.SRV,
    "NAPTR": RecordType.NAPTR,
    "DNAME": RecordType.DNAME,
    "DS": RecordType.DS,
    "SSHFP": RecordType.SSHFP,
    "DNSKEY": RecordType.DNSKEY,
    "TLSA": RecordType.TLSA,
    "SVCB": RecordType.SVCB,
    "HTTPS": RecordType.HTTPS,
    "CAA": RecordType.CAA,
}

# RFC 2181 8: a TTL is an unsigned 31-bit number.
_MAX_TTL = 2**31 - 1
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Digits, then any number of unit-digits pairs, then an optional unit: "3600",
# "1h30m", "1h30". Written so that no string can be matched two ways: the
# looser (?:\d+[smhdw]?)+ backtracks exponentially on "7777...7A".
_TTL_RE = re.compile(r"^\d+(?:[smhdw]\d+)*[smhdw]?$", re.IGNORECASE | re.ASCII)
_TYPE_RE = re.compile(r"^TYPE(\d+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Zone:
    """An authoritative zone: its apex (origin) and every record in it.

    Attributes:
        origin: the apex, the owner of the SOA record.
        records: the records in master-file order.
    """

    origin: Name
    records: tuple[ResourceRecord, ...]

    @property
    def soa(self) -> ResourceRecord:
        """The zone's SOA record."""
        return next(r for r in self.records if r.rtype == RecordType.SOA)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    quoted: bool


def _entries(text: str) -> Iterator[tuple[int, bool, list[_Token]]]:  # noqa: PLR0912, PLR0915
    """Yield (line, owner omitted, tokens) for each entry, across parentheses."""
    # One pass over the characters, a small state machine: the state (depth of
    # parentheses, a token in progress, the column) is what RFC 1035 5.1 makes
    # significant, and splitting it across functions would only hide it.
    tokens: list[_Token] = []
    current: list[str] = []
    in_token = False
    depth = 0
    line = entry_line = 1
    column = 0
    blank_start = False
    i = 0
    n = len(text)

    def end_token() -> None:
        nonlocal in_token
        if in_token:
            tokens.append(_Token("".join(current), False))
            current.clear()
            in_token = False

    def begin() -> None:
        nonlocal entry_line, blank_start
        if not tokens and not in_token:
            entry_line = line
            blank_start = column > 0

    while i < n:
        ch = text[i]
        if ch == "\n":
            end_token()
            if depth == 0 and tokens:
                yield entry_line, blank_start, tokens
                tokens = []
            line += 1
            column = 0
            i += 1
            continue
        if ch == ";":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in " \t\r":
            end_token()
        elif ch == "(":
            begin()
            end_token()
            depth += 1
        elif ch == ")":
            end_token()
            depth -= 1
            if depth < 0:
                raise ZoneError("')' without '('", line=line)
        elif ch == '"':
            begin()
            end_token()
            j = i + 1
            chars = []
            while j < n and text[j] != '"':
                if text[j] == "\n":
                    raise ZoneError("newline inside a quoted string", line=line)
                if text[j] == "\\" and j + 1 < n:
                    chars.append(text[j : j + 2])
                    j += 2
                    continue
                chars.append(text[j])
                j += 1
            if j >= n:
                raise ZoneError("unterminated quoted string", line=line)
            tokens.append(_Token("".join(chars), True))
            column += j + 1 - i
            i = j + 1
            continue
        else:
            begin()
            in_token = True
            if ch == "\\" and i + 1 < n and text[i + 1] != "\n":
                current.append(text[i : i + 2])
                i += 2
                column += 2
                continue
            current.append(ch)
        i += 1
        column += 1
    end_token()
    if depth:
        raise ZoneError("'(' never closed", line=entry_line)
    if tokens:
        yield entry_line, blank_start, tokens


def _ttl(text: str, line: int) -> int:
    if not _TTL_RE.match(text):
        raise ZoneError(f"bad TTL {text!r}", line=line)
    total = 0
    for number, unit in re.findall(r"(\d+)([smhdw]?)", text, re.IGNORECASE | re.ASCII):
        total += int(number) * _TTL_UNITS[unit.lower() or "s"]
    if total > _MAX_TTL:
        raise ZoneError(f"TTL {text} is over 2**31 - 1", line=line)
    return total


def _is_ttl(token: _Token) -> bool:
    return not token.quoted and bool(token.text) and token.text[0].isdigit()


def _unescape(text: str) -> bytes:
    r"""Turn a character-string's ``\X`` and ``\DDD`` escapes into bytes."""
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x5C and i + 1 < len(raw):
            digits = raw[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit():
                value = int(digits)
                if value > 255:
                    raise ValueError(f"escape \\{value} is not a byte")
                out.append(value)
                i += 4
            else:
                out.append(raw[i + 1])
                i += 2
            continue
        out.append(byte)
        i += 1
    return bytes(out)


def _uint(text: str, bits: int) -> int:
    if not text.isdigit() or int(text) >= 1 << bits:
        raise ValueError(f"{text!r} is not a {bits}-bit unsigned number")
    return int(text)


def _generic(rtype: int, texts: list[str]) -> RData:
    r"""Read the RFC 3597 generic form: ``\# <length> <hex>...``."""
    if len(texts) < 2 or not texts[1].isdigit():
        raise ValueError("generic data needs a length after \\#")
    data = bytes.fromhex("".join(texts[2:]))
    if len(data) != int(texts[1]):
        raise ValueError(f"generic data of {len(data)} bytes, announced {texts[1]}")
    try:
        return decode_rdata(rtype, data)
    except DNSFormatError as exc:
        raise ValueError(exc.detail) from exc


def _txt(texts: list[str]) -> TXT:
    if not texts:
        raise ValueError("TXT needs at least one string")
    strings = tuple(_unescape(t) for t in texts)
    if any(len(s) > 255 for s in strings):
        raise ValueError("a TXT string is over 255 bytes")
    return TXT(strings)


def _soa(texts: list[str], name: Callable[[str], Name], line: int) -> SOA:
    refresh, retry, expire, minimum = (_ttl(t, line) for t in texts[3:])
    return SOA(name(texts[0]), name(texts[1]), _uint(texts[2], 32), refresh, retry, expire, minimum)


# --- the newer types ------------------------------------------------------

#: DNSSEC algorithm mnemonics (IANA "DNS Security Algorithm Numbers").
_ALGORITHMS = {
    "RSAMD5": 1,
    "DH": 2,
    "DSA": 3,
    "RSASHA1": 5,
    "DSA-NSEC3-SHA1": 6,
    "RSASHA1-NSEC3-SHA1": 7,
    "RSASHA256": 8,
    "RSASHA512": 10,
    "ECC-GOST": 12,
    "ECDSAP256SHA256": 13,
    "ECDSAP384SHA384": 14,
    "ED25519": 15,
    "ED448": 16,
    "INDIRECT": 252,
    "PRIVATEDNS": 253,
    "PRIVATEOID": 254,
}

#: SvcParamKey names (RFC 9460 14.3.2); any other key is written ``keyNNNNN``.
_SVC_KEYS = {
    "mandatory": 0,
    "alpn": 1,
    "no-default-alpn": 2,
    "port": 3,
    "ipv4hint": 4,
    "ech": 5,
    "ipv6hint": 6,
}
_SVC_KEY_RE = re.compile(r"^key(\d{1,5})$")


#: The length of each hash the DS, TLSA and SSHFP types name (as dnspython and
#: Knot check): SHA-1 20 bytes, SHA-256 32, SHA-384 48, SHA-512 64.
_DIGEST_SIZES = {"digest type": {1: 20, 2: 32, 4: 48}, "matching type": {1: 32, 2: 64}}
_DIGEST_SIZES["fingerprint type"] = {1: 20, 2: 32}


def _digest(kind: str, number: int, data: bytes) -> bytes:
    size = _DIGEST_SIZES[kind].get(number)
    if size is not None and len(data) != size:
        raise ValueError(f"{kind} {number} is {size} bytes, not {len(data)}")
    return data


def _string(text: str) -> bytes:
    """A character-string: at most 255 bytes once unescaped."""
    data = _unescape(text)
    if len(data) > 255:
        raise ValueError("a character-string is over 255 bytes")
    return data


def _algorithm(text: str) -> int:
    if text.isdigit():
        return _uint(text, 8)
    if text.upper() not in _ALGORITHMS:
        raise ValueError(f"unknown DNSSEC algorithm {text!r}")
    return _ALGORITHMS[text.upper()]


def _hex(texts: list[str]) -> bytes:
    """Hexadecimal data, maybe split across several fields."""
    try:
        return bytes.fromhex("".join(texts))
    except ValueError as exc:
        raise ValueError(f"bad hex data {''.join(texts)!r}") from exc


def _base64(texts: list[str]) -> bytes:
    """Base64 data, maybe split across several fields."""
    try:
        return binascii.a2b_base64("".join(texts), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64 data: {exc}") from exc


def _at_least(texts: list[str], count: int) -> None:
    if len(texts) < count:
        raise ValueError(f"expected at least {count} fields, found {len(texts)}")


def _caa(texts: list[str]) -> CAA:
    tag = texts[1]
    if not tag.isascii() or not tag.isalnum() or len(tag) > 255:
        raise ValueError(f"CAA tag {tag!r} is not letters and digits (RFC 8659 4.1)")
    return CAA(_uint(texts[0], 8), tag.encode("ascii"), _unescape(texts[2]))


def _ds(args: list[_Token], _: Callable[[str], Name]) -> DS:
    texts = [t.text for t in args]
    _at_least(texts, 4)
    digest_type = _uint(texts[2], 8)
    digest = _digest("digest type", digest_type, _hex(texts[3:]))
    return DS(_uint(texts[0], 16), _algorithm(texts[1]), digest_type, digest)


def _dnskey(args: list[_Token], _: Callable[[str], Name]) -> DNSKEY:
    texts = [t.text for t in args]
    _at_least(texts, 4)
    return DNSKEY(_uint(texts[0], 16), _uint(texts[1], 8), _algorithm(texts[2]), _base64(texts[3:]))


def _tlsa(args: list[_Token], _: Callable[[str], Name]) -> TLSA:
    texts = [t.text for t in args]
    _at_least(texts, 4)
    matching_type = _uint(texts[2], 8)
    data = _digest("matching type", matching_type, _hex(texts[3:]))
    return TLSA(_uint(texts[0], 8), _uint(texts[1], 8), matching_type, data)


def _sshfp(args: list[_Token], _: Callable[[str], Name]) -> SSHFP:
    texts = [t.text for t in args]
    _at_least(texts, 3)
    fp_type = _uint(texts[1], 8)
    return SSHFP(_uint(texts[0], 8), fp_type, _digest("fingerprint type", fp_type, _hex(texts[2:])))


def _value_list(text: str) -> list[bytes]:
    r"""Split an RFC 9460 value-list: char-string escapes first, then ``\,`` keeps a comma.

    Appendix A.1 of RFC 9460: ``alpn="h2,h\\,x"`` is ``h2,h\,x`` once the
    character-string is read, which is the two items ``h2`` and ``h,x``.
    """
    items: list[bytes] = []
    current = bytearray()
    data = _unescape(text)
    i = 0
    while i < len(data):
        if data[i] == 0x5C and i + 1 < len(data):  # backslash: the next byte as it is
            current.append(data[i + 1])
            i += 2
            continue
        if data[i] == 0x2C:  # comma
            items.append(bytes(current))
            current.clear()
        else:
            current.append(data[i])
        i += 1
    items.append(bytes(current))
    if any(not item for item in items):
        raise ValueError(f"empty item in the list {text!r}")
    return items


def _svc_key(text: str) -> int:
    match = _SVC_KEY_RE.match(text)
    if text in _SVC_KEYS:
        return _SVC_KEYS[text]
    if match and int(match.group(1)) < 65535:
        return int(match.group(1))
    raise ValueError(f"unknown SvcParamKey {text!r}")


def _alpn(text: str) -> bytes:
    items = _value_list(text)
    if any(len(item) > 255 for item in items):
        raise ValueError("an alpn id is over 255 bytes")
    return b"".join(bytes([len(item)]) + item for item in items)


#: The readers of the SvcParam values with a form of their own (RFC 9460 7);
#: any other key's value is a character-string, taken as it is.
_SVC_VALUES: dict[int, Callable[[str], bytes]] = {
    0: lambda text: b"".join(
        k.to_bytes(2, "big")
        for k in sorted({_svc_key(i.decode("ascii")) for i in _value_list(text)})
    ),
    1: _alpn,
    3: lambda text: _uint(text, 16).to_bytes(2, "big"),
    4: lambda text: b"".join(ipaddress.IPv4Address(a.decode()).packed for a in _value_list(text)),
    5: lambda text: _base64([text]),
    6: lambda text: b"".join(ipaddress.IPv6Address(a.decode()).packed for a in _value_list(text)),
}


def _svc_value(key: int, text: str | None) -> bytes:
    """The wire form of one SvcParam's value (RFC 9460 7)."""
    if key == _SVC_KEYS["no-default-alpn"]:
        if text:
            raise ValueError("no-default-alpn takes no value")
        return b""
    if text is None:
        raise ValueError(f"SvcParamKey {key} needs a value")
    reader = _SVC_VALUES.get(key)
    return reader(text) if reader else _unescape(text)


def _svcb(args: list[_Token], name: Callable[[str], Name], cls: type[SVCB]) -> SVCB:
    """SVCB and HTTPS: priority, target, then ``key=value`` pairs in any order."""
    if len(args) < 2:
        raise ValueError(f"expected at least 2 fields, found {len(args)}")
    params: dict[int, bytes] = {}
    rest = args[2:]
    while rest:
        token = rest.pop(0)
        key_text, equals, value = token.text.partition("=")
        text: str | None = value if equals else None
        # key="quoted value" arrives as two tokens: "key=" and the quoted string.
        if equals and not value and rest and rest[0].quoted:
            text = rest.pop(0).text
        key = _svc_key(key_text)
        if key in params:
            raise ValueError(f"SvcParamKey {key_text} given twice")
        params[key] = _svc_value(key, text)
    return cls(_uint(args[0].text, 16), name(args[1].text), tuple(sorted(params.items())))


#: Types whose text form has a variable number of fields: a reader each.
_VARIABLE: dict[int, Callable[[list[_Token], Callable[[str], Name]], RData]] = {
    RecordType.DS: _ds,
    RecordType.DNSKEY: _dnskey,
    RecordType.TLSA: _tlsa,
    RecordType.SSHFP: _sshfp,
    RecordType.SVCB: lambda args, name: _svcb(args, name, SVCB),
    RecordType.HTTPS: lambda args, name: _svcb(args, name, HTTPS),
}


#: How many fields each type's text form has (TXT: one or more).
_FIELDS = {
    RecordType.A: 1,
    RecordType.AAAA: 1,
    RecordType.CNAME: 1,
    RecordType.NS: 1,
    RecordType.PTR: 1,
    RecordType.MX: 2,
    RecordType.SRV: 4,
    RecordType.SOA: 7,
    RecordType.DNAME: 1,
    RecordType.CAA: 3,
    RecordType.NAPTR: 6,
}


def _rdata(rtype: int, args: list[_Token], origin: Name, line: int) -> RData:
    """Read the data fields of one record of type ``rtype``."""
    texts = [t.text for t in args]
    if args and not args[0].quoted and texts[0] == "\\#":
        return _generic(rtype, texts)
    if rtype == RecordType.TXT:
        return _txt(texts)
    if rtype in _VARIABLE:
        return _VARIABLE[rtype](args, lambda text: Name.from_text(text, origin=origin))
    if rtype not in _FIELDS:
        raise ValueError(f"type {rtype} needs the generic form \\# <length> <hex>")
    if len(texts) != _FIELDS[rtype]:
        raise ValueError(f"expected {_FIELDS[rtype]} fields, found {len(texts)}")

    def name(text: str) -> Name:
        return Name.from_text(text, origin=origin)

    readers: dict[int, Callable[[], RData]] = {
        RecordType.A: lambda: A(texts[0]),
        RecordType.AAAA: lambda: AAAA(texts[0]),
        RecordType.CNAME: lambda: CNAME(name(texts[0])),
        RecordType.NS: lambda: NS(name(texts[0])),
        RecordType.PTR: lambda: PTR(name(texts[0])),
        RecordType.MX: lambda: MX(_uint(texts[0], 16), name(texts[1])),
        RecordType.SRV: lambda: SRV(
            _uint(texts[0], 16), _uint(texts[1], 16), _uint(texts[2], 16), name(texts[3])
        ),
        RecordType.SOA: lambda: _soa(texts, name, line),
        RecordType.DNAME: lambda: DNAME(name(texts[0])),
        RecordType.CAA: lambda: _caa(texts),
        RecordType.NAPTR: lambda: NAPTR(
            _uint(texts[0], 16),
            _uint(texts[1], 16),
            _string(texts[2]),
            _string(texts[3]),
            _string(texts[4]),
            name(texts[5]),
        ),
    }
    return readers[rtype]()


def _rtype(text: str) -> int:
    """Return the type number of a mnemonic or ``TYPEnnn``."""
    upper = text.upper()
    match = _TYPE_RE.match(upper)
    if upper in TYPE_NAMES:
        return TYPE_NAMES[upper]
    if match and int(match.group(1)) < 65536 and int(match.group(1)) != RecordType.OPT:
        return int(match.group(1))
    if upper in ("CH", "HS", "CS") or upper.startswith("CLASS"):
        raise ZoneError(f"class {upper} is not served (only IN)")
    raise ZoneError(f"unknown record type {text!r}")


class _Reader:
    """The state a master file carries from entry to entry."""

    def __init__(self, origin: Name | None) -> None:
        self.origin = origin
        self.default_ttl: int | None = None
        self.last_ttl: int | None = None
        self.last_owner: Name | None = None

    def directive(self, tokens: list[_Token], line: int) -> None:
        """Apply ``$ORIGIN`` or ``$TTL``; refuse the others."""
        directive = tokens[0].text.upper()
        if directive == "$ORIGIN" and len(tokens) == 2:
            self.origin = Name.from_text(tokens[1].text, origin=self.origin)
        elif directive == "$TTL" and len(tokens) == 2:
            self.default_ttl = _ttl(tokens[1].text, line)
        else:
            raise ZoneError(f"unsupported directive {' '.join(t.text for t in tokens)}")

    def owner(self, rest: list[_Token], omitted: bool) -> Name:
        """Take the owner name off the entry (or repeat the last one)."""
        if omitted:
            if self.last_owner is None:
                raise ZoneError("the first record has no owner name")
            return self.last_owner
        text = rest.pop(0).text
        if self.origin is None and text != "." and not text.endswith("."):
            raise ZoneError(f"relative name {text!r} and no $ORIGIN")
        return Name.from_text(text, origin=self.origin)

    def record(self, tokens: list[_Token], omitted: bool, line: int) -> ResourceRecord:
        """Read one record entry: owner, TTL and class in either order, type, data."""
        rest = list(tokens)
        owner = self.owner(rest, omitted)
        ttl: int | None = None
        seen_class = False
        while rest and (_is_ttl(rest[0]) or rest[0].text.upper() in ("IN", "CLASS1")):
            token = rest.pop(0)
            if _is_ttl(token) and ttl is None:
                ttl = _ttl(token.text, line)
            elif not _is_ttl(token) and not seen_class:
                seen_class = True
            else:
                raise ZoneError(f"unexpected {token.text!r}")
        if not rest:
            raise ZoneError("no record type")
        rtype = _rtype(rest.pop(0).text)
        rdata = _rdata(rtype, rest, self.origin or Name(()), line)
        if ttl is None:
            ttl = self.default_ttl if self.default_ttl is not None else self.last_ttl
        if ttl is None:
            if not isinstance(rdata, SOA):
                raise ZoneError("no TTL given and no $TTL before")
            ttl = rdata.minimum
        self.last_ttl = ttl
        self.last_owner = owner
        return ResourceRecord(owner, rdata, ttl)


def parse_zone(text: str, *, origin: Name | str | None = None) -> Zone:
    """Read a zone from master-file text.

    Args:
        text: the master file's contents.
        origin: the initial origin (``$ORIGIN`` may change it); required when
            the file uses relative names before any ``$ORIGIN``.

    Returns:
        The zone, whose apex is the owner of its one SOA record.

    Raises:
        ZoneError: a syntax error, an unsupported construct, no SOA or several,
            a record outside the zone, or a CNAME beside other data.
    """
    reader = _Reader(Name.from_text(origin) if isinstance(origin, str) else origin)
    records: list[ResourceRecord] = []
    lines: list[int] = []
    for line, omitted, tokens in _entries(text):
        try:
            first = tokens[0]
            if not first.quoted and first.text.startswith("$") and not omitted:
                reader.directive(tokens, line)
                continue
            records.append(reader.record(tokens, omitted, line))
            lines.append(line)
        except ZoneError as exc:
            if exc.line is None:
                raise ZoneError(exc.detail, line=line) from exc
            raise
        except ValueError as exc:
            raise ZoneError(str(exc), line=line) from exc
    return _check(records, lines)


def _check(records: list[ResourceRecord], lines: list[int]) -> Zone:
    """Check the zone's shape: one SOA, everything inside, CNAMEs alone."""
    soas = [i for i, r in enumerate(records) if r.rtype == RecordType.SOA]
    if len(soas) != 1:
        raise ZoneError(f"a zone needs exactly one SOA record, found {len(soas)}")
    apex = records[soas[0]].name
    types: dict[tuple[bytes, ...], set[int]] = {}
    for record, line in zip(records, lines, strict=True):
        if not record.name.is_subdomain_of(apex):
            raise ZoneError(f"{record.name} is outside the zone {apex}", line=line)
        seen = types.setdefault(record.name.key, set())
        seen.add(record.rtype)
        if RecordType.CNAME in seen and len(seen) > 1:
            raise ZoneError(f"{record.name} has a CNAME and other data (RFC 1034 3.6.2)", line=line)
    return Zone(apex, tuple(records))


#: The embedded zone's apex: ``.test`` is reserved (RFC 6761), so it never
#: collides with a real name.
EXAMPLE_ORIGIN = "framing.test."


def _big_txt(count: int, size: int, word: str) -> str:
    """Quoted strings, ``count`` of ``size`` characters: a TXT record too big for UDP."""
    line = (word * (size // len(word) + 1))[:size]
    return " ".join(f'"{i:02d}{line[2:]}"' for i in range(count))


#: The embedded example zone: every record type served, a CNAME chain, a CNAME
#: leaving the zone and one ending nowhere, an empty non-terminal, a TXT record
#: too large for a 512-byte UDP answer (``medium``) and one too large for any
#: UDP answer this server sends (``big``, about 2 KB).
EXAMPLE_ZONE_TEXT = f"""\
; framing's example zone, served by `framing dns` when no --zone is given.
$ORIGIN {EXAMPLE_ORIGIN}
$TTL 3600
@           IN  SOA   ns1 hostmaster (
                      2024060101 ; serial
                      2h         ; refresh
                      1h         ; retry
                      2w         ; expire
                      300 )      ; negative-answer TTL (RFC 2308)
            IN  NS    ns1
            IN  NS    ns2.framing.test.
            IN  MX    10 mail
            IN  MX    20 mail2
            IN  TXT   "v=spf1 mx -all"
ns1         IN  A     127.0.0.53 ; name servers are loopback: a secondary
            IN  AAAA  ::1        ; set up from this zone sends nothing away
ns2    300  IN  A     127.0.0.54
www         IN  A     192.0.2.80
            IN  A     192.0.2.81
            IN  AAAA  2001:db8::80
mail        IN  A     192.0.2.25
mail2           A     192.0.2.26
web         IN  CNAME www
alias       IN  CNAME web        ; alias -> web -> www: a chain inside the zone
outside     IN  CNAME www.example.
dangling    IN  CNAME nowhere    ; a chain that ends in NXDOMAIN
_http._tcp  IN  SRV   10 60 80 www
            IN  SRV   20 40 8080 ns1.framing.test.
80.rev      IN  PTR   www
quote       IN  TXT   "say \\"hi\\"; not a comment" "tab\\009here" back\\\\slash
leaf.empty  IN  A     192.0.2.99 ; empty.framing.test. exists, with no records
opaque      IN  TYPE65280 \\# 4 C0000201
medium      IN  TXT   ( {_big_txt(3, 200, "medium-sized text, ")} )
big         IN  TXT   (
    {_big_txt(8, 250, "a record too large for UDP, ")} )
"""


def example_zone() -> Zone:
    """Return the embedded example zone (``framing.test.``)."""
    return parse_zone(EXAMPLE_ZONE_TEXT)
