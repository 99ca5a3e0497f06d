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
NS, CNAME, PTR, MX, SOA, TXT, SRV, and ``TYPEnnn``/``\#`` for the rest. Not
understood: ``$INCLUDE`` and ``$GENERATE`` (an error, never silently skipped),
classes other than IN.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocols.dns.errors import DNSFormatError, ZoneError
from protocols.dns.message import (
    AAAA,
    CNAME,
    MX,
    NS,
    PTR,
    SOA,
    SRV,
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
}


def _rdata(rtype: int, args: list[_Token], origin: Name, line: int) -> RData:
    """Read the data fields of one record of type ``rtype``."""
    texts = [t.text for t in args]
    if args and not args[0].quoted and texts[0] == "\\#":
        return _generic(rtype, texts)
    if rtype == RecordType.TXT:
        return _txt(texts)
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
ns1         IN  A     192.0.2.53
            IN  AAAA  2001:db8::53
ns2    300  IN  A     192.0.2.54
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
