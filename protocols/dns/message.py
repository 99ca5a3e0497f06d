r"""DNS messages (RFC 1035 4.1): declared with ``construct``, wrapped in typed functions.

::

    +---------------------+
    |        Header       |   12 bytes: id, flags, four section counts
    +---------------------+
    |       Question      |   qname, qtype, qclass
    +---------------------+
    |        Answer       |   resource records
    +---------------------+
    |      Authority      |   resource records
    +---------------------+
    |      Additional     |   resource records (and the EDNS0 OPT pseudo-record)
    +---------------------+

    Header:    | id (16) | QR | opcode (4) | AA | TC | RD | RA | Z | AD | CD | rcode (4) |
               | qdcount (16) | ancount (16) | nscount (16) | arcount (16) |
    Record:    | name | type (16) | class (16) | ttl (32) | rdlength (16) | rdata |
    OPT:       | 00 (root) | 41 | UDP payload size | ext. rcode (8) | version (8) |
               | DO | Z (15) | rdlength | options: | code (16) | length (16) | data | ... |

The fixed-layout parts are ``construct`` declarations (``HEADER``, ``RR_FIXED``,
``SOA_TIMES``...), each used in its compiled form; on the hot path that writes
records (every record of a zone transfer) a few are written by ``struct`` calls
checked to build the same bytes. Names are not: compression
makes a name depend on the whole message, so :mod:`protocols.dns.names` reads
and writes them. The only entry points are :func:`parse_message` and
:func:`build_message`, which turn construct containers into the frozen
dataclasses below and back. Whatever bytes :func:`parse_message` is given, it
returns a :class:`Message` or raises :class:`~protocols.dns.errors.DNSFormatError`.

Record types understood: A, AAAA, CNAME, NS, SOA, MX, TXT, PTR, SRV, and DNAME,
CAA, DS, DNSKEY, TLSA, SSHFP, NAPTR, SVCB and HTTPS; any other type is carried
as opaque data (:class:`Unknown`, RFC 3597). An OPT record (RFC
6891) in the additional section becomes :attr:`Message.edns`.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Final

import construct as cs

from protocols.dns.errors import DNSFormatError
from protocols.dns.names import ROOT, CompressionTable, Name, decode_name, encode_name

__all__ = [
    "AAAA",
    "CAA",
    "CNAME",
    "DNAME",
    "DNSKEY",
    "DS",
    "HTTPS",
    "MX",
    "NAPTR",
    "NS",
    "PTR",
    "SOA",
    "SRV",
    "SSHFP",
    "SVCB",
    "TLSA",
    "TXT",
    "A",
    "Edns",
    "EdnsOption",
    "Header",
    "Message",
    "Opcode",
    "Question",
    "RData",
    "Rcode",
    "RecordClass",
    "RecordType",
    "ResourceRecord",
    "Unknown",
    "build_message",
    "build_messages",
    "decode_rdata",
    "encode_rdata",
    "parse_message",
    "parse_question",
]


class RecordType:
    """Record type numbers (IANA "Resource Record (RR) TYPEs")."""

    A: Final = 1
    NS: Final = 2
    CNAME: Final = 5
    SOA: Final = 6
    PTR: Final = 12
    MX: Final = 15
    TXT: Final = 16
    AAAA: Final = 28
    SRV: Final = 33
    NAPTR: Final = 35
    DNAME: Final = 39
    OPT: Final = 41
    DS: Final = 43
    SSHFP: Final = 44
    DNSKEY: Final = 48
    TLSA: Final = 52
    SVCB: Final = 64
    HTTPS: Final = 65
    IXFR: Final = 251
    AXFR: Final = 252
    ANY: Final = 255
    CAA: Final = 257


class RecordClass:
    """Record class numbers: only IN is served; ANY is accepted in questions."""

    IN: Final = 1
    ANY: Final = 255


class Opcode:
    """Header opcodes (RFC 1035, RFC 1996, RFC 2136)."""

    QUERY: Final = 0
    IQUERY: Final = 1
    STATUS: Final = 2
    NOTIFY: Final = 4
    UPDATE: Final = 5


class Rcode:
    """Response codes; BADVERS needs the OPT record's extended bits (RFC 6891)."""

    NOERROR: Final = 0
    FORMERR: Final = 1
    SERVFAIL: Final = 2
    NXDOMAIN: Final = 3
    NOTIMP: Final = 4
    REFUSED: Final = 5
    YXDOMAIN: Final = 6
    NOTAUTH: Final = 9
    BADVERS: Final = 16
    BADCOOKIE: Final = 23


# --- construct declarations: the fixed layouts, compiled once ----------------

HEADER = cs.Struct(
    "id" / cs.Int16ub,
    "flags"
    / cs.BitStruct(
        "qr" / cs.Flag,
        "opcode" / cs.BitsInteger(4),
        "aa" / cs.Flag,
        "tc" / cs.Flag,
        "rd" / cs.Flag,
        "ra" / cs.Flag,
        "z" / cs.Flag,
        "ad" / cs.Flag,
        "cd" / cs.Flag,
        "rcode" / cs.BitsInteger(4),
    ),
    "qdcount" / cs.Int16ub,
    "ancount" / cs.Int16ub,
    "nscount" / cs.Int16ub,
    "arcount" / cs.Int16ub,
)
QUESTION_TAIL = cs.Struct("qtype" / cs.Int16ub, "qclass" / cs.Int16ub)
RR_FIXED = cs.Struct(
    "rtype" / cs.Int16ub, "rclass" / cs.Int16ub, "ttl" / cs.Int32ub, "rdlength" / cs.Int16ub
)
# The same 10 bytes when the type is OPT: class and TTL are reused (RFC 6891 6.1.2).
OPT_FIXED = cs.Struct(
    "rtype" / cs.Int16ub,
    "payload_size" / cs.Int16ub,
    "extended_rcode" / cs.Int8ub,
    "version" / cs.Int8ub,
    "flags" / cs.BitStruct("dnssec_ok" / cs.Flag, "z" / cs.BitsInteger(15)),
    "rdlength" / cs.Int16ub,
)
IPV4 = cs.Struct("address" / cs.Bytes(4))
IPV6 = cs.Struct("address" / cs.Bytes(16))
PREFERENCE = cs.Struct("preference" / cs.Int16ub)
SRV_FIELDS = cs.Struct("priority" / cs.Int16ub, "weight" / cs.Int16ub, "port" / cs.Int16ub)
SOA_TIMES = cs.Struct(
    "serial" / cs.Int32ub,
    "refresh" / cs.Int32ub,
    "retry" / cs.Int32ub,
    "expire" / cs.Int32ub,
    "minimum" / cs.Int32ub,
)
TXT_STRINGS = cs.Struct(
    "strings" / cs.GreedyRange(cs.Prefixed(cs.Int8ub, cs.GreedyBytes)), cs.Terminated
)
EDNS_OPTIONS = cs.Struct(
    "options"
    / cs.GreedyRange(
        cs.Struct("code" / cs.Int16ub, "data" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes))
    ),
    cs.Terminated,
)
# The fixed heads of the newer types: each is followed by its variable part
# (a digest, a key, a tag and value, a name), read by the decoder.
NAPTR_HEAD = cs.Struct("order" / cs.Int16ub, "preference" / cs.Int16ub)
DS_HEAD = cs.Struct("key_tag" / cs.Int16ub, "algorithm" / cs.Int8ub, "digest_type" / cs.Int8ub)
DNSKEY_HEAD = cs.Struct("flags" / cs.Int16ub, "protocol" / cs.Int8ub, "algorithm" / cs.Int8ub)
TLSA_HEAD = cs.Struct("usage" / cs.Int8ub, "selector" / cs.Int8ub, "matching_type" / cs.Int8ub)
SSHFP_HEAD = cs.Struct("algorithm" / cs.Int8ub, "fp_type" / cs.Int8ub)
CAA_HEAD = cs.Struct("flags" / cs.Int8ub, "tag" / cs.Prefixed(cs.Int8ub, cs.GreedyBytes))
# SVCB and HTTPS (RFC 9460 2.2): | priority (16) | target | key (16) | length (16) | value |...
SVCB_PRIORITY = cs.Struct("priority" / cs.Int16ub)
SVC_PARAMS = cs.Struct(
    "params"
    / cs.GreedyRange(
        cs.Struct("key" / cs.Int16ub, "value" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes))
    ),
    cs.Terminated,
)

#: Every declaration above, by name: the tests check each parses, builds and
#: compiles to the same thing.
DECLARATIONS: Final = {
    "HEADER": HEADER,
    "QUESTION_TAIL": QUESTION_TAIL,
    "RR_FIXED": RR_FIXED,
    "OPT_FIXED": OPT_FIXED,
    "IPV4": IPV4,
    "IPV6": IPV6,
    "PREFERENCE": PREFERENCE,
    "SRV_FIELDS": SRV_FIELDS,
    "SOA_TIMES": SOA_TIMES,
    "TXT_STRINGS": TXT_STRINGS,
    "EDNS_OPTIONS": EDNS_OPTIONS,
    "NAPTR_HEAD": NAPTR_HEAD,
    "DS_HEAD": DS_HEAD,
    "DNSKEY_HEAD": DNSKEY_HEAD,
    "TLSA_HEAD": TLSA_HEAD,
    "SSHFP_HEAD": SSHFP_HEAD,
    "CAA_HEAD": CAA_HEAD,
    "SVCB_PRIORITY": SVCB_PRIORITY,
    "SVC_PARAMS": SVC_PARAMS,
}

# Compiled forms: construct generates Python source for each struct, several
# times faster than interpreting the declaration. The compiled code trusts its
# input more than the interpreter does (a short read is not always an error,
# and it raises struct.error, not ConstructError), so every caller below hands
# it exactly the bytes it needs, checks sizes, and catches both.
_HEADER = HEADER.compile()
_QUESTION_TAIL = QUESTION_TAIL.compile()
_RR_FIXED = RR_FIXED.compile()
_OPT_FIXED = OPT_FIXED.compile()
_IPV4 = IPV4.compile()
_IPV6 = IPV6.compile()
_PREFERENCE = PREFERENCE.compile()
_SRV_FIELDS = SRV_FIELDS.compile()
_SOA_TIMES = SOA_TIMES.compile()
_TXT_STRINGS = TXT_STRINGS.compile()
_EDNS_OPTIONS = EDNS_OPTIONS.compile()
_NAPTR_HEAD = NAPTR_HEAD.compile()
_DS_HEAD = DS_HEAD.compile()
_DNSKEY_HEAD = DNSKEY_HEAD.compile()
_TLSA_HEAD = TLSA_HEAD.compile()
_SSHFP_HEAD = SSHFP_HEAD.compile()
_CAA_HEAD = CAA_HEAD.compile()
_SVCB_PRIORITY = SVCB_PRIORITY.compile()
_SVC_PARAMS = SVC_PARAMS.compile()

_HEADER_SIZE = 12
_RR_FIXED_SIZE = 10

# The encoding hot path: a zone transfer writes every record of the zone, and
# per record the compiled construct build (a Container, a stream, a dict) cost
# more than everything else together (profiled: 100,000 records took 2.8 s, the
# builds of RR_FIXED, IPV4/IPV6, PREFERENCE and TXT_STRINGS over half of it).
# These are the same layouts as one struct call each; test_message checks that
# each builds exactly what its declaration builds. The declarations still parse.
_RR_FIXED_PACK = struct.Struct(">HHIH").pack  # RR_FIXED
_PREFERENCE_PACK = struct.Struct(">H").pack  # PREFERENCE
_SRV_FIELDS_PACK = struct.Struct(">HHH").pack  # SRV_FIELDS


# --- values ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """The message header, without its section counts (they follow the sections).

    Attributes:
        id: the query id, copied into the answer.
        qr: set in responses.
        opcode: the kind of query (:class:`Opcode`).
        aa: authoritative answer.
        tc: truncated: the message did not fit (retry over TCP).
        rd: recursion desired, copied from query to answer.
        ra: recursion available.
        z: the reserved bit.
        ad: authentic data (DNSSEC).
        cd: checking disabled (DNSSEC).
        rcode: the low four bits of the response code (:class:`Rcode`).
    """

    id: int
    qr: bool = False
    opcode: int = Opcode.QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    z: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = Rcode.NOERROR


@dataclass(frozen=True, slots=True)
class Question:
    """One entry of the question section.

    Attributes:
        name: the name asked about, in the asker's letter case.
        qtype: the record type asked for (:class:`RecordType`).
        qclass: the class (:class:`RecordClass`).
    """

    name: Name
    qtype: int
    qclass: int = RecordClass.IN


@dataclass(frozen=True, slots=True)
class A:
    """An IPv4 address record (type 1).

    Attributes:
        address: the address in dotted-quad form.
    """

    rtype: ClassVar[int] = 1
    address: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", str(ipaddress.IPv4Address(self.address)))


@dataclass(frozen=True, slots=True)
class AAAA:
    """An IPv6 address record (type 28, RFC 3596).

    Attributes:
        address: the address, normalised to its compressed text form.
    """

    rtype: ClassVar[int] = 28
    address: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", str(ipaddress.IPv6Address(self.address)))


@dataclass(frozen=True, slots=True)
class CNAME:
    """An alias (type 5): the owner is another name for ``target``.

    Attributes:
        target: the canonical name.
    """

    rtype: ClassVar[int] = 5
    target: Name


@dataclass(frozen=True, slots=True)
class NS:
    """A name server of the owner's zone (type 2).

    Attributes:
        target: the server's name.
    """

    rtype: ClassVar[int] = 2
    target: Name


@dataclass(frozen=True, slots=True)
class PTR:
    """A pointer to another name (type 12), as used for reverse lookups.

    Attributes:
        target: the name pointed to.
    """

    rtype: ClassVar[int] = 12
    target: Name


@dataclass(frozen=True, slots=True)
class MX:
    """A mail exchanger (type 15).

    Attributes:
        preference: lower is preferred.
        exchange: the mail server's name.
    """

    rtype: ClassVar[int] = 15
    preference: int
    exchange: Name


@dataclass(frozen=True, slots=True)
class SOA:
    """The start of a zone of authority (type 6).

    Attributes:
        mname: the primary name server.
        rname: the responsible mailbox, as a name (``hostmaster.framing.test.``).
        serial: the zone's version.
        refresh: seconds between secondary refreshes.
        retry: seconds before a failed refresh is retried.
        expire: seconds after which a secondary stops answering.
        minimum: the TTL of negative answers (RFC 2308).
    """

    rtype: ClassVar[int] = 6
    mname: Name
    rname: Name
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True, slots=True)
class TXT:
    """Text strings (type 16), each of at most 255 bytes.

    Attributes:
        strings: the character-strings, in order.
    """

    rtype: ClassVar[int] = 16
    strings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SRV:
    """A service location (type 33, RFC 2782).

    Attributes:
        priority: lower is tried first.
        weight: share among equal priorities.
        port: the service's port.
        target: the host's name (never compressed on the wire).
    """

    rtype: ClassVar[int] = 33
    priority: int
    weight: int
    port: int
    target: Name


@dataclass(frozen=True, slots=True)
class DNAME:
    """A redirection of the owner's whole subtree (type 39, RFC 6672).

    Attributes:
        target: the name that replaces the owner in every name below it
            (never compressed on the wire, RFC 6672 2.5).
    """

    rtype: ClassVar[int] = 39
    target: Name


@dataclass(frozen=True, slots=True)
class NAPTR:
    """A naming authority pointer (type 35, RFC 3403).

    Attributes:
        order: lower is processed first.
        preference: lower is preferred among equal orders.
        flags: the flags character-string (``b"S"``, ``b"U"``...).
        services: the service parameters (``b"SIP+D2U"``).
        regexp: the substitution expression, maybe empty.
        replacement: the next name to look up (never compressed).
    """

    rtype: ClassVar[int] = 35
    order: int
    preference: int
    flags: bytes
    services: bytes
    regexp: bytes
    replacement: Name


@dataclass(frozen=True, slots=True)
class DS:
    """A delegation signer (type 43, RFC 4034 5): a child zone's key digest.

    Attributes:
        key_tag: the tag of the key digested.
        algorithm: that key's algorithm number.
        digest_type: the digest's algorithm (2 is SHA-256).
        digest: the digest's bytes.
    """

    rtype: ClassVar[int] = 43
    key_tag: int
    algorithm: int
    digest_type: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class SSHFP:
    """An SSH host key fingerprint (type 44, RFC 4255).

    Attributes:
        algorithm: the key's algorithm (4 is Ed25519).
        fp_type: the fingerprint's hash (2 is SHA-256).
        fingerprint: the hash's bytes.
    """

    rtype: ClassVar[int] = 44
    algorithm: int
    fp_type: int
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class DNSKEY:
    """A zone's public key (type 48, RFC 4034 2).

    Attributes:
        flags: 256 for a zone key, 257 with the secure entry point bit.
        protocol: always 3.
        algorithm: the key's algorithm number (13 is ECDSA P-256).
        key: the public key's bytes.
    """

    rtype: ClassVar[int] = 48
    flags: int
    protocol: int
    algorithm: int
    key: bytes


@dataclass(frozen=True, slots=True)
class TLSA:
    """A TLS certificate association (type 52, RFC 6698).

    Attributes:
        usage: which certificate is matched (3 is the server's own).
        selector: the whole certificate (0) or its public key (1).
        matching_type: exact (0), SHA-256 (1), SHA-512 (2).
        data: the certificate association data.
    """

    rtype: ClassVar[int] = 52
    usage: int
    selector: int
    matching_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SVCB:
    """A service binding (type 64, RFC 9460).

    Attributes:
        priority: 0 for alias mode, else lower is preferred.
        target: the target name (``.`` for the owner itself; never compressed).
        params: (key, value) pairs in wire form, in strictly increasing key order.
    """

    rtype: ClassVar[int] = 64
    priority: int
    target: Name
    params: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class HTTPS(SVCB):
    """A service binding for HTTPS (type 65, RFC 9460 9): SVCB's fields and form."""

    rtype: ClassVar[int] = 65


@dataclass(frozen=True, slots=True)
class CAA:
    """A certification authority authorization (type 257, RFC 8659).

    Attributes:
        flags: 128 is the issuer-critical flag.
        tag: the property (``b"issue"``, ``b"issuewild"``, ``b"iodef"``...).
        value: the property's value.
    """

    rtype: ClassVar[int] = 257
    flags: int
    tag: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Unknown:
    """Data of a type this module does not decode, kept as opaque bytes (RFC 3597).

    Attributes:
        type_code: the record type number.
        data: the RDATA, exactly as on the wire.
    """

    type_code: int
    data: bytes

    def __post_init__(self) -> None:
        if self.type_code in _DECODERS or self.type_code == RecordType.OPT:
            raise ValueError(f"type {self.type_code} has its own class; Unknown is for others")

    @property
    def rtype(self) -> int:
        """The record type number."""
        return self.type_code


#: The data of a resource record: one class per type understood, else Unknown.
RData = (
    A
    | AAAA
    | CNAME
    | NS
    | PTR
    | MX
    | SOA
    | TXT
    | SRV
    | DNAME
    | NAPTR
    | DS
    | SSHFP
    | DNSKEY
    | TLSA
    | SVCB
    | CAA
    | Unknown
)


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """A resource record: owner name, class, TTL and typed data.

    Attributes:
        name: the owner name.
        rdata: the typed data; its ``rtype`` is the record's type.
        ttl: seconds the record may be cached.
        rclass: the class (:class:`RecordClass`).
    """

    name: Name
    rdata: RData
    ttl: int
    rclass: int = RecordClass.IN

    @property
    def rtype(self) -> int:
        """The record type number."""
        return self.rdata.rtype


@dataclass(frozen=True, slots=True)
class EdnsOption:
    """One EDNS0 option (RFC 6891 6.1.2), kept opaque.

    Attributes:
        code: the option code (10 is a cookie, RFC 7873).
        data: the option's bytes.
    """

    code: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Edns:
    """The EDNS0 OPT pseudo-record (RFC 6891) of a message.

    Attributes:
        payload_size: the largest UDP payload the sender can receive.
        extended_rcode: the high 8 bits of the 12-bit response code.
        version: the EDNS version (only 0 exists).
        dnssec_ok: the DO bit (RFC 3225).
        z: the other 15 flag bits.
        options: the options, in order.
    """

    payload_size: int = 1232
    extended_rcode: int = 0
    version: int = 0
    dnssec_ok: bool = False
    z: int = 0
    options: tuple[EdnsOption, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A whole DNS message.

    Attributes:
        header: id and flags.
        questions: the question section (a query has exactly one).
        answers: the answer section.
        authorities: the authority section.
        additionals: the additional section, without the OPT record.
        edns: the OPT record, if the message had one.
    """

    header: Header
    questions: tuple[Question, ...] = ()
    answers: tuple[ResourceRecord, ...] = ()
    authorities: tuple[ResourceRecord, ...] = ()
    additionals: tuple[ResourceRecord, ...] = ()
    edns: Edns | None = None

    @property
    def rcode(self) -> int:
        """The full response code: header bits plus the OPT record's extension."""
        high = self.edns.extended_rcode if self.edns is not None else 0
        return (high << 4) | self.header.rcode


# --- record data: decoding ---------------------------------------------------


def _name_exactly(data: bytes, start: int, end: int) -> Name:
    name, after = decode_name(data, start)
    if after != end:
        raise DNSFormatError("name does not fill its record data", offset=start)
    return name


def _dec_a(data: bytes, start: int, end: int) -> RData:
    if end - start != 4:
        raise DNSFormatError(f"A record of {end - start} bytes", offset=start)
    return A(str(ipaddress.IPv4Address(_IPV4.parse(data[start:end]).address)))


def _dec_aaaa(data: bytes, start: int, end: int) -> RData:
    if end - start != 16:
        raise DNSFormatError(f"AAAA record of {end - start} bytes", offset=start)
    return AAAA(str(ipaddress.IPv6Address(_IPV6.parse(data[start:end]).address)))


def _dec_cname(data: bytes, start: int, end: int) -> RData:
    return CNAME(_name_exactly(data, start, end))


def _dec_ns(data: bytes, start: int, end: int) -> RData:
    return NS(_name_exactly(data, start, end))


def _dec_ptr(data: bytes, start: int, end: int) -> RData:
    return PTR(_name_exactly(data, start, end))


def _dec_mx(data: bytes, start: int, end: int) -> RData:
    if end - start < 3:
        raise DNSFormatError("MX record too short", offset=start)
    preference = _PREFERENCE.parse(data[start : start + 2]).preference
    return MX(preference, _name_exactly(data, start + 2, end))


def _dec_soa(data: bytes, start: int, end: int) -> RData:
    mname, pos = decode_name(data, start)
    rname, pos = decode_name(data, pos)
    if end - pos != 20:
        raise DNSFormatError("SOA times are not 20 bytes", offset=pos)
    t = _SOA_TIMES.parse(data[pos:end])
    return SOA(mname, rname, t.serial, t.refresh, t.retry, t.expire, t.minimum)


def _dec_txt(data: bytes, start: int, end: int) -> RData:
    if end == start:
        raise DNSFormatError("TXT record with no string", offset=start)
    try:
        strings = tuple(_TXT_STRINGS.parse(data[start:end]).strings)
    except cs.ConstructError as exc:
        raise DNSFormatError("TXT string runs past its record data", offset=start) from exc
    # The compiled Prefixed accepts a short last string: check every byte is accounted for.
    if sum(1 + len(s) for s in strings) != end - start:
        raise DNSFormatError("TXT string runs past its record data", offset=start)
    return TXT(strings)


def _dec_srv(data: bytes, start: int, end: int) -> RData:
    if end - start < 7:
        raise DNSFormatError("SRV record too short", offset=start)
    f = _SRV_FIELDS.parse(data[start : start + 6])
    return SRV(f.priority, f.weight, f.port, _name_exactly(data, start + 6, end))


def _dec_dname(data: bytes, start: int, end: int) -> RData:
    return DNAME(_name_exactly(data, start, end))


def _strings(data: bytes, pos: int, end: int, count: int) -> tuple[list[bytes], int]:
    """Read ``count`` character-strings (a length byte, then the bytes) from ``pos``."""
    out = []
    for _ in range(count):
        if pos >= end or pos + 1 + data[pos] > end:
            raise DNSFormatError("character-string runs past its record data", offset=pos)
        out.append(data[pos + 1 : pos + 1 + data[pos]])
        pos += 1 + data[pos]
    return out, pos


def _dec_naptr(data: bytes, start: int, end: int) -> RData:
    if end - start < 4:
        raise DNSFormatError("NAPTR record too short", offset=start)
    head = _NAPTR_HEAD.parse(data[start : start + 4])
    (flags, services, regexp), pos = _strings(data, start + 4, end, 3)
    replacement = _name_exactly(data, pos, end)
    return NAPTR(head.order, head.preference, flags, services, regexp, replacement)


def _head(
    parser: cs.Construct, data: bytes, start: int, end: int, *, size: int, what: str
) -> cs.Container:
    """Parse the fixed head of a record that is at least ``size`` bytes long."""
    if end - start < size:
        raise DNSFormatError(f"{what} record too short", offset=start)
    return parser.parse(data[start : start + size])


def _dec_ds(data: bytes, start: int, end: int) -> RData:
    h = _head(_DS_HEAD, data, start, end, size=4, what="DS")
    return DS(h.key_tag, h.algorithm, h.digest_type, data[start + 4 : end])


def _dec_sshfp(data: bytes, start: int, end: int) -> RData:
    h = _head(_SSHFP_HEAD, data, start, end, size=2, what="SSHFP")
    return SSHFP(h.algorithm, h.fp_type, data[start + 2 : end])


def _dec_dnskey(data: bytes, start: int, end: int) -> RData:
    h = _head(_DNSKEY_HEAD, data, start, end, size=4, what="DNSKEY")
    return DNSKEY(h.flags, h.protocol, h.algorithm, data[start + 4 : end])


def _dec_tlsa(data: bytes, start: int, end: int) -> RData:
    h = _head(_TLSA_HEAD, data, start, end, size=3, what="TLSA")
    return TLSA(h.usage, h.selector, h.matching_type, data[start + 3 : end])


def _svcb_fields(
    data: bytes, start: int, end: int
) -> tuple[int, Name, tuple[tuple[int, bytes], ...]]:
    priority = _head(_SVCB_PRIORITY, data, start, end, size=2, what="SVCB").priority
    target, pos = decode_name(data, start + 2)
    if pos > end:
        raise DNSFormatError("SVCB target runs past its record data", offset=start + 2)
    try:
        params = _SVC_PARAMS.parse(data[pos:end]).params
    except cs.ConstructError as exc:
        raise DNSFormatError("SvcParam runs past its record data", offset=pos) from exc
    # The compiled Prefixed accepts a short last value: check every byte is accounted for.
    if sum(4 + len(p.value) for p in params) != end - pos:
        raise DNSFormatError("SvcParam runs past its record data", offset=pos)
    keys = [p.key for p in params]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise DNSFormatError("SvcParam keys not in increasing order (RFC 9460 2.2)", offset=pos)
    return priority, target, tuple((p.key, bytes(p.value)) for p in params)


def _dec_svcb(data: bytes, start: int, end: int) -> RData:
    return SVCB(*_svcb_fields(data, start, end))


def _dec_https(data: bytes, start: int, end: int) -> RData:
    return HTTPS(*_svcb_fields(data, start, end))


def _dec_caa(data: bytes, start: int, end: int) -> RData:
    if end - start < 2 or start + 2 + data[start + 1] > end:
        raise DNSFormatError("CAA tag runs past its record data", offset=start)
    tag_end = start + 2 + data[start + 1]
    h = _CAA_HEAD.parse(data[start:tag_end])
    return CAA(h.flags, bytes(h.tag), data[tag_end:end])


_DECODERS: dict[int, Callable[[bytes, int, int], RData]] = {
    1: _dec_a,
    2: _dec_ns,
    5: _dec_cname,
    6: _dec_soa,
    12: _dec_ptr,
    15: _dec_mx,
    16: _dec_txt,
    28: _dec_aaaa,
    33: _dec_srv,
    35: _dec_naptr,
    39: _dec_dname,
    43: _dec_ds,
    44: _dec_sshfp,
    48: _dec_dnskey,
    52: _dec_tlsa,
    64: _dec_svcb,
    65: _dec_https,
    257: _dec_caa,
}


def decode_rdata(rtype: int, data: bytes) -> RData:
    r"""Decode standalone record data (no compression pointers possible).

    Used for the RFC 3597 generic form ``\# 4 c0000201`` of master files.

    Raises:
        DNSFormatError: the bytes are not valid data for ``rtype``.
    """
    try:
        decoder = _DECODERS.get(rtype)
        return decoder(data, 0, len(data)) if decoder else Unknown(rtype, data)
    except DNSFormatError:
        raise
    except (cs.ConstructError, struct.error, ValueError) as exc:
        raise DNSFormatError(f"bad data for type {rtype}: {exc}") from exc


# --- record data: encoding ---------------------------------------------------


def encode_rdata(rdata: RData, out: bytearray, table: CompressionTable | None) -> None:
    """Append the wire form of ``rdata`` to ``out``, compressing names where allowed.

    Compression is used only for the names of the RFC 1035 types (NS, CNAME,
    PTR, MX, SOA); RFC 2782 forbids it for SRV, RFC 6672 for DNAME, RFC 3403
    for NAPTR, RFC 9460 for SVCB, and RFC 3597 for anything newer.
    """
    # The commonest types first, each written as its declaration (IPV4, IPV6,
    # PREFERENCE, TXT_STRINGS, SRV_FIELDS) builds it, without construct: see
    # _RR_FIXED_PACK. The addresses were validated and normalised when the
    # record was made, so inet_pton (a C call) reads them back exactly.
    if isinstance(rdata, A):
        out += socket.inet_pton(socket.AF_INET, rdata.address)
    elif isinstance(rdata, AAAA):
        out += socket.inet_pton(socket.AF_INET6, rdata.address)
    elif isinstance(rdata, CNAME | NS | PTR):
        encode_name(rdata.target, out, table)
    elif isinstance(rdata, MX):
        out += _PREFERENCE_PACK(rdata.preference)
        encode_name(rdata.exchange, out, table)
    elif isinstance(rdata, SOA):
        encode_name(rdata.mname, out, table)
        encode_name(rdata.rname, out, table)
        out += _SOA_TIMES.build(
            {
                "serial": rdata.serial,
                "refresh": rdata.refresh,
                "retry": rdata.retry,
                "expire": rdata.expire,
                "minimum": rdata.minimum,
            }
        )
    elif isinstance(rdata, TXT):
        if not rdata.strings or any(len(s) > 255 for s in rdata.strings):
            raise ValueError("a TXT record needs 1 or more strings of at most 255 bytes")
        for string in rdata.strings:
            out.append(len(string))
            out += string
    elif isinstance(rdata, SRV):
        out += _SRV_FIELDS_PACK(rdata.priority, rdata.weight, rdata.port)
        encode_name(rdata.target, out, None)
    elif isinstance(rdata, DNAME):
        encode_name(rdata.target, out, None)
    else:
        _encode_newer(rdata, out)


def _encode_newer(
    rdata: NAPTR | DS | SSHFP | DNSKEY | TLSA | SVCB | CAA | Unknown, out: bytearray
) -> None:
    """Append the wire form of the types newer than RFC 1035 (no name compressed)."""
    if isinstance(rdata, NAPTR):
        out += _NAPTR_HEAD.build({"order": rdata.order, "preference": rdata.preference})
        for string in (rdata.flags, rdata.services, rdata.regexp):
            if len(string) > 255:
                raise ValueError("a NAPTR string is over 255 bytes")
            out.append(len(string))
            out += string
        encode_name(rdata.replacement, out, None)
    elif isinstance(rdata, DS):
        out += _DS_HEAD.build(
            {
                "key_tag": rdata.key_tag,
                "algorithm": rdata.algorithm,
                "digest_type": rdata.digest_type,
            }
        )
        out += rdata.digest
    elif isinstance(rdata, SSHFP):
        out += _SSHFP_HEAD.build({"algorithm": rdata.algorithm, "fp_type": rdata.fp_type})
        out += rdata.fingerprint
    elif isinstance(rdata, DNSKEY):
        out += _DNSKEY_HEAD.build(
            {"flags": rdata.flags, "protocol": rdata.protocol, "algorithm": rdata.algorithm}
        )
        out += rdata.key
    elif isinstance(rdata, TLSA):
        out += _TLSA_HEAD.build(
            {"usage": rdata.usage, "selector": rdata.selector, "matching_type": rdata.matching_type}
        )
        out += rdata.data
    elif isinstance(rdata, SVCB):
        out += _SVCB_PRIORITY.build({"priority": rdata.priority})
        encode_name(rdata.target, out, None)
        out += _SVC_PARAMS.build({"params": [{"key": k, "value": v} for k, v in rdata.params]})
    elif isinstance(rdata, CAA):
        if len(rdata.tag) > 255:
            raise ValueError("a CAA tag is over 255 bytes")
        out += _CAA_HEAD.build({"flags": rdata.flags, "tag": rdata.tag})
        out += rdata.value
    else:
        out += rdata.data


# --- whole messages ----------------------------------------------------------


def _read_record(data: bytes, pos: int) -> tuple[Name, cs.Container, int, int]:
    """Read a record's owner and fixed part; return them with rdata start and end."""
    name, pos = decode_name(data, pos)
    if pos + _RR_FIXED_SIZE > len(data):
        raise DNSFormatError("record header runs past the end of the message", offset=pos)
    fixed = _RR_FIXED.parse(data[pos : pos + _RR_FIXED_SIZE])
    start = pos + _RR_FIXED_SIZE
    end = start + fixed.rdlength
    if end > len(data):
        raise DNSFormatError("record data runs past the end of the message", offset=start)
    return name, fixed, start, end


def _parse(data: bytes) -> Message:
    if len(data) < _HEADER_SIZE:
        raise DNSFormatError(f"message of {len(data)} bytes is shorter than a header")
    h = _HEADER.parse(data[:_HEADER_SIZE])
    f = h.flags
    header = Header(h.id, f.qr, f.opcode, f.aa, f.tc, f.rd, f.ra, f.z, f.ad, f.cd, f.rcode)
    pos = _HEADER_SIZE
    questions = []
    for _ in range(h.qdcount):
        name, pos = decode_name(data, pos)
        if pos + 4 > len(data):
            raise DNSFormatError("question runs past the end of the message", offset=pos)
        tail = _QUESTION_TAIL.parse(data[pos : pos + 4])
        questions.append(Question(name, tail.qtype, tail.qclass))
        pos += 4
    sections: list[list[ResourceRecord]] = [[], [], []]
    edns: Edns | None = None
    for index, count in enumerate((h.ancount, h.nscount, h.arcount)):
        records = sections[index]
        for _ in range(count):
            record_start = pos
            name, fixed, start, end = _read_record(data, pos)
            pos = end
            if fixed.rtype == RecordType.OPT:
                if index != 2 or edns is not None or name != ROOT:
                    raise DNSFormatError("misplaced or repeated OPT record", offset=record_start)
                opt = _OPT_FIXED.parse(data[start - _RR_FIXED_SIZE : start])
                options = _EDNS_OPTIONS.parse(data[start:end]).options
                if sum(4 + len(o.data) for o in options) != end - start:
                    raise DNSFormatError("EDNS option runs past its record", offset=start)
                edns = Edns(
                    opt.payload_size,
                    opt.extended_rcode,
                    opt.version,
                    opt.flags.dnssec_ok,
                    opt.flags.z,
                    tuple(EdnsOption(o.code, o.data) for o in options),
                )
                continue
            decoder = _DECODERS.get(fixed.rtype)
            rdata = decoder(data, start, end) if decoder else Unknown(fixed.rtype, data[start:end])
            records.append(ResourceRecord(name, rdata, fixed.ttl, fixed.rclass))
    if pos != len(data):
        raise DNSFormatError(f"{len(data) - pos} bytes after the last record", offset=pos)
    return Message(
        header, tuple(questions), tuple(sections[0]), tuple(sections[1]), tuple(sections[2]), edns
    )


def parse_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode a whole DNS message.

    Args:
        data: the message: one UDP datagram, or one TCP frame without its length.

    Returns:
        The message, every name decompressed.

    Raises:
        DNSFormatError: the bytes are not a valid message; its ``query_id`` is
            set when at least the two bytes of the id were there.
    """
    raw = bytes(data)
    query_id = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else None
    try:
        return _parse(raw)
    except DNSFormatError as exc:
        if exc.query_id is None and query_id is not None:
            raise DNSFormatError(exc.detail, query_id=query_id, offset=exc.offset) from exc
        raise
    except (cs.ConstructError, struct.error, ValueError, IndexError) as exc:
        raise DNSFormatError(str(exc) or type(exc).__name__, query_id=query_id) from exc


def parse_question(data: bytes) -> Question | None:
    """Read the one question of a message that may not parse whole.

    An answer to a query that cannot be read to its end (FORMERR) still echoes
    its question, when it has exactly one and that far could be read.

    Returns:
        The question, or ``None`` when the header or the question cannot be
        read, or the header counts other than one question.
    """
    if len(data) < _HEADER_SIZE or data[4:6] != b"\x00\x01":
        return None
    try:
        name, pos = decode_name(data, _HEADER_SIZE)
    except DNSFormatError:
        return None
    if pos + 4 > len(data):
        return None
    tail = _QUESTION_TAIL.parse(data[pos : pos + 4])
    return Question(name, tail.qtype, tail.qclass)


def _write_record(record: ResourceRecord, out: bytearray, table: CompressionTable) -> None:
    encode_name(record.name, out, table)
    fixed_at = len(out)
    out += _RR_FIXED_PACK(record.rtype, record.rclass, record.ttl, 0)
    encode_rdata(record.rdata, out, table)
    # rdlength is only known once the (compressed) data is written: patch it in.
    rdlength = len(out) - fixed_at - _RR_FIXED_SIZE
    if rdlength > 0xFFFF:
        raise ValueError(f"record data of {rdlength} bytes (at most 65535)")
    out[fixed_at + 8 : fixed_at + 10] = rdlength.to_bytes(2, "big")


def _write_opt(edns: Edns, out: bytearray) -> None:
    out.append(0)  # the root name
    fixed_at = len(out)
    out += _OPT_FIXED.build(
        {
            "rtype": RecordType.OPT,
            "payload_size": edns.payload_size,
            "extended_rcode": edns.extended_rcode,
            "version": edns.version,
            "flags": {"dnssec_ok": edns.dnssec_ok, "z": edns.z},
            "rdlength": 0,
        }
    )
    out += _EDNS_OPTIONS.build(
        {"options": [{"code": o.code, "data": o.data} for o in edns.options]}
    )
    rdlength = len(out) - fixed_at - _RR_FIXED_SIZE
    out[fixed_at + 8 : fixed_at + 10] = rdlength.to_bytes(2, "big")


def _header(h: Header, qdcount: int, ancount: int, nscount: int, arcount: int) -> bytes:
    return bytes(
        _HEADER.build(
            {
                "id": h.id,
                "flags": {
                    "qr": h.qr,
                    "opcode": h.opcode,
                    "aa": h.aa,
                    "tc": h.tc,
                    "rd": h.rd,
                    "ra": h.ra,
                    "z": h.z,
                    "ad": h.ad,
                    "cd": h.cd,
                    "rcode": h.rcode,
                },
                "qdcount": qdcount,
                "ancount": ancount,
                "nscount": nscount,
                "arcount": arcount,
            }
        )
    )


def build_message(message: Message) -> bytes:
    """Encode a message, compressing names.

    Raises:
        ValueError: a field out of range (a count over 65535, a TXT string over
            255 bytes, an integer too large for its field).
    """
    h = message.header
    arcount = len(message.additionals) + (message.edns is not None)
    try:
        out = bytearray(
            _header(
                h,
                len(message.questions),
                len(message.answers),
                len(message.authorities),
                arcount,
            )
        )
        table: CompressionTable = {}
        for q in message.questions:
            encode_name(q.name, out, table)
            out += _QUESTION_TAIL.build({"qtype": q.qtype, "qclass": q.qclass})
        for section in (message.answers, message.authorities, message.additionals):
            for record in section:
                _write_record(record, out, table)
        if message.edns is not None:
            _write_opt(message.edns, out)
    except (cs.ConstructError, struct.error, OverflowError) as exc:
        raise ValueError(f"cannot encode message: {exc}") from exc
    return bytes(out)


def build_messages(
    header: Header,
    question: Question | None,
    answers: Iterable[ResourceRecord],
    *,
    edns: Edns | None = None,
    limit: int = 0xFFFF,
) -> Iterator[bytes]:
    """Pack records into a stream of messages, each at most ``limit`` bytes (a zone transfer).

    ::

        | header | question | answer records ... | OPT |    the first message
        | header | answer records ...           | OPT |    the next ones (RFC 5936 2.2.1)

    Every message is compressed on its own (a pointer cannot reach into another
    message); each is filled until the next record would pass ``limit``. Records
    are read from ``answers`` one at a time, so a generator over a large zone
    is never held whole: at most one message is.

    Args:
        header: the header of every message (its counts are filled in).
        question: the question, echoed in the first message only.
        answers: the records, in order.
        edns: the OPT record to end every message with, if any.
        limit: the largest message, 65535 over TCP.

    Yields:
        Each message's bytes; at least one, even with no records.

    Raises:
        ValueError: one record alone does not fit in a message, or a field is out of range.
    """
    opt = bytearray()
    if edns is not None:
        _write_opt(edns, opt)
    room = limit - len(opt)
    questions = (question,) if question is not None else ()
    out, table = _start(questions)
    count = 0
    for record in answers:
        mark = len(out)
        _write_record(record, out, table)
        if len(out) <= room:
            count += 1
            continue
        if not count:
            raise ValueError(f"a record of {len(out) - mark} bytes does not fit in a message")
        # Take the record back out (its table entries go with the table) and begin anew.
        del out[mark:]
        yield _finish(header, out, len(questions), count, opt)
        questions = ()
        out, table = _start(questions)
        _write_record(record, out, table)
        if len(out) > room:
            raise ValueError(f"a record of {len(out) - 12} bytes does not fit in a message")
        count = 1
    yield _finish(header, out, len(questions), count, opt)


def _start(questions: tuple[Question, ...]) -> tuple[bytearray, CompressionTable]:
    out = bytearray(_HEADER_SIZE)  # the header is written once the counts are known
    table: CompressionTable = {}
    for q in questions:
        encode_name(q.name, out, table)
        out += _QUESTION_TAIL.build({"qtype": q.qtype, "qclass": q.qclass})
    return out, table


def _finish(header: Header, out: bytearray, qdcount: int, ancount: int, opt: bytearray) -> bytes:
    try:
        out[:_HEADER_SIZE] = _header(header, qdcount, ancount, 0, 1 if opt else 0)
    except (cs.ConstructError, struct.error, OverflowError) as exc:
        raise ValueError(f"cannot encode message: {exc}") from exc
    out += opt
    return bytes(out)
