"""The authoritative answerer: query bytes in, answer bytes out, no I/O.

:class:`Authority` holds one zone and answers as RFC 1034 4.3.2 and RFC 1035
describe an authoritative server (no recursion, no referrals):

========================================  =========================================
query                                     answer
========================================  =========================================
a name in the zone, with records          NOERROR, AA, the records
  of the type asked
a CNAME, another type asked               the CNAME, then the chain followed inside
                                          the zone (RFC 1034 3.6.2, RFC 6604)
a name with no records of that type       NOERROR (NODATA), the SOA in authority
a name that does not exist                NXDOMAIN, the SOA in authority (RFC 2308)
a name outside the zone, a class          REFUSED
  other than IN, a zone transfer
no question or several                    FORMERR
bytes that do not parse                   FORMERR, if the id could be read
an opcode other than QUERY                NOTIMP
EDNS version other than 0                 BADVERS (RFC 6891 6.1.3)
a response (QR set)                       nothing at all
========================================  =========================================

The question is echoed as asked (the client's letter case, RFC 4343); names
match ignoring ASCII case; RD and CD are copied. MX, NS and SRV answers carry
the A and AAAA records of their targets in the additional section.

Over UDP an answer larger than 512 bytes, or than the client's EDNS0 payload
size (capped at ``udp_payload_size``), loses its records and gets TC, so the
client asks again over TCP (RFC 1035 4.2.1, RFC 2181 9).

The hot path: an authoritative answer is a pure function of the query's bytes
after the id, and of the transport. So :meth:`Authority.respond` first looks
those bytes up in a bounded cache of ready-encoded answers and, on a hit, only
puts the new id in front: no parsing, no encoding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from protocols.dns.errors import DNSFormatError
from protocols.dns.message import (
    CNAME,
    MX,
    NS,
    SOA,
    SRV,
    Edns,
    Header,
    Message,
    Opcode,
    Question,
    Rcode,
    RecordClass,
    RecordType,
    ResourceRecord,
    build_message,
    parse_message,
)
from protocols.dns.names import Name
from protocols.dns.zone import Zone

__all__ = ["DEFAULT_CACHE_SIZE", "DEFAULT_UDP_PAYLOAD_SIZE", "Authority"]

#: Ready answers kept, per transport. A cached query is at most 512 bytes, so
#: the cache holds at most about 2 x 4096 x (512 + answer) bytes: a few MB.
DEFAULT_CACHE_SIZE: Final = 4096
#: The largest UDP answer sent whatever the client offers: the DNS Flag Day 2020
#: value, small enough never to be fragmented on ordinary paths.
DEFAULT_UDP_PAYLOAD_SIZE: Final = 1232
#: RFC 1035 4.2.1: a UDP answer without EDNS0 is at most 512 bytes.
CLASSIC_UDP_SIZE: Final = 512
#: Only queries up to this size are cached (an ordinary query is under 100 bytes).
_MAX_CACHED_QUERY: Final = 512
#: Longest CNAME chain followed; a longer one (or a loop in the zone) stops there.
_MAX_CHAIN: Final = 8
_TCP_MAX: Final = 0xFFFF

_Records = tuple[ResourceRecord, ...]


class Authority:
    """Answers queries for one zone, from bytes to bytes.

    Args:
        zone: the zone served.
        cache_size: ready answers kept per transport; ``0`` disables the cache.
        udp_payload_size: the largest UDP answer, and the size advertised in
            the OPT record of answers to EDNS0 queries.
    """

    def __init__(
        self,
        zone: Zone,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        udp_payload_size: int = DEFAULT_UDP_PAYLOAD_SIZE,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 or more, not {cache_size}")
        if udp_payload_size < CLASSIC_UDP_SIZE:
            raise ValueError(f"udp_payload_size must be at least 512, not {udp_payload_size}")
        self.zone = zone
        self._cache_size = cache_size
        self._udp_payload_size = udp_payload_size
        self._udp_cache: dict[bytes, bytes] = {}
        self._tcp_cache: dict[bytes, bytes] = {}
        origin = zone.origin
        self._nodes: dict[tuple[bytes, ...], dict[int, list[ResourceRecord]]] = {}
        # Every name that exists: owners, and the empty non-terminals between
        # them and the apex (RFC 8020: a name with descendants is not NXDOMAIN).
        self._names: set[tuple[bytes, ...]] = set()
        for record in zone.records:
            key = record.name.key
            self._nodes.setdefault(key, {}).setdefault(record.rtype, []).append(record)
            for depth in range(len(origin.labels), len(key) + 1):
                self._names.add(key[len(key) - depth :])
        soa = zone.soa
        minimum = soa.rdata.minimum if isinstance(soa.rdata, SOA) else soa.ttl
        # RFC 2308 3: negative answers carry the SOA with the smaller of its TTL and MINIMUM.
        self._negative_soa = replace(soa, ttl=min(soa.ttl, minimum))

    @property
    def cached(self) -> int:
        """How many ready answers are held (both transports)."""
        return len(self._udp_cache) + len(self._tcp_cache)

    def respond(self, query: bytes, *, udp: bool) -> bytes | None:
        """Return the answer to one query message, or ``None`` when none is due.

        Args:
            query: one DNS message as received (a datagram, or a TCP frame's payload).
            udp: whether it came over UDP: the answer is then truncated to fit.

        Returns:
            The answer's bytes, or ``None`` for a message that is itself a
            response or too short to carry an id.
        """
        cache = self._udp_cache if udp else self._tcp_cache
        tail = cache.get(query[2:])
        if tail is not None:
            return query[:2] + tail
        wire, cacheable = self._respond_slowly(query, udp=udp)
        if wire is None:
            return None
        if cacheable and self._cache_size and len(query) <= _MAX_CACHED_QUERY:
            if len(cache) >= self._cache_size:
                # Evict the oldest entry: dicts keep insertion order, so this is FIFO.
                del cache[next(iter(cache))]
            cache[query[2:]] = wire[2:]
        return wire

    def _respond_slowly(self, query: bytes, *, udp: bool) -> tuple[bytes | None, bool]:
        """Return the answer (None when none is due) and whether it may be cached."""
        # Errors are not cached: junk would only push real answers out.
        if len(query) < 2 or (len(query) >= 3 and query[2] & 0x80):
            return None, False
        query_id = int.from_bytes(query[:2], "big")
        opcode = (query[2] >> 3) & 0xF if len(query) >= 3 else Opcode.QUERY
        rd = bool(query[2] & 0x01) if len(query) >= 3 else False
        if opcode != Opcode.QUERY:
            return self._error(query_id, Rcode.NOTIMP, opcode=opcode, rd=rd), False
        try:
            message = parse_message(query)
        except DNSFormatError:
            return self._error(query_id, Rcode.FORMERR, rd=rd), False
        if len(message.questions) != 1:
            return self._error(query_id, Rcode.FORMERR, rd=rd), False
        response = self.answer(message)
        wire = build_message(response)
        limit = self._udp_limit(message) if udp else _TCP_MAX
        if len(wire) > limit:
            wire = build_message(
                replace(
                    response,
                    header=replace(response.header, tc=True),
                    answers=(),
                    authorities=(),
                    additionals=(),
                )
            )
        return wire, True

    def _udp_limit(self, query: Message) -> int:
        if query.edns is None:
            return CLASSIC_UDP_SIZE
        # RFC 6891 6.2.5: a payload size under 512 is treated as 512.
        return max(CLASSIC_UDP_SIZE, min(query.edns.payload_size, self._udp_payload_size))

    @staticmethod
    def _error(query_id: int, rcode: int, *, opcode: int = Opcode.QUERY, rd: bool) -> bytes:
        header = Header(query_id, qr=True, opcode=opcode, rd=rd, rcode=rcode)
        return build_message(Message(header))

    def answer(self, query: Message) -> Message:
        """Return the answer to a parsed query with exactly one question (no truncation).

        Raises:
            ValueError: the query does not have exactly one question.
        """
        if len(query.questions) != 1:
            raise ValueError("a query has exactly one question")
        question = query.questions[0]
        edns = None
        rcode = Rcode.NOERROR
        if query.edns is not None:
            edns = Edns(payload_size=self._udp_payload_size)
            if query.edns.version != 0:
                rcode = Rcode.BADVERS
        if rcode == Rcode.NOERROR:
            aa, rcode, answers, authorities, additionals = self._lookup(question)
        else:
            aa, answers, authorities, additionals = False, (), (), ()
        if edns is not None:
            edns = replace(edns, extended_rcode=rcode >> 4)
        header = Header(
            query.header.id,
            qr=True,
            opcode=Opcode.QUERY,
            aa=aa,
            rd=query.header.rd,
            cd=query.header.cd,
            rcode=rcode & 0xF,
        )
        return Message(header, (question,), answers, authorities, additionals, edns)

    def _lookup(
        self, question: Question
    ) -> tuple[
        bool,
        int,
        tuple[ResourceRecord, ...],
        tuple[ResourceRecord, ...],
        tuple[ResourceRecord, ...],
    ]:
        """Return (AA, rcode, answers, authorities, additionals) for one question."""
        qtype = question.qtype
        if (
            not question.name.is_subdomain_of(self.zone.origin)
            or question.qclass not in (RecordClass.IN, RecordClass.ANY)
            or qtype in (RecordType.AXFR, RecordType.IXFR, RecordType.OPT)
        ):
            return False, Rcode.REFUSED, (), (), ()
        answers: list[ResourceRecord] = []
        # The owner of the answer records is the name as the client wrote it,
        # so it compresses against the question; later links of a CNAME chain
        # take the name as the zone wrote it in the CNAME's data.
        name = question.name
        for _ in range(_MAX_CHAIN):
            node = self._nodes.get(name.key)
            if node is None:
                rcode = Rcode.NOERROR if name.key in self._names else Rcode.NXDOMAIN
                return True, rcode, tuple(answers), (self._negative_soa,), ()
            cnames = node.get(RecordType.CNAME)
            if cnames and qtype not in (RecordType.CNAME, RecordType.ANY):
                answers.extend(replace(r, name=name) for r in cnames)
                target = cnames[0].rdata
                if not isinstance(target, CNAME) or not target.target.is_subdomain_of(
                    self.zone.origin
                ):
                    break
                name = target.target
                continue
            if qtype == RecordType.ANY:
                found = [r for records in node.values() for r in records]
            else:
                found = node.get(qtype, [])
            if not found:
                return True, Rcode.NOERROR, tuple(answers), (self._negative_soa,), ()
            answers.extend(replace(r, name=name) for r in found)
            return True, Rcode.NOERROR, tuple(answers), (), self._glue(found, answers)
        return True, Rcode.NOERROR, tuple(answers), (), ()

    def _glue(
        self, found: list[ResourceRecord], answers: list[ResourceRecord]
    ) -> tuple[ResourceRecord, ...]:
        """Addresses of the MX, NS and SRV targets inside the zone (RFC 1035 3.3.9)."""
        targets: list[Name] = []
        for record in found:
            rdata = record.rdata
            if isinstance(rdata, MX):
                targets.append(rdata.exchange)
            elif isinstance(rdata, NS | SRV):
                targets.append(rdata.target)
        glue: list[ResourceRecord] = []
        seen = set()
        for target in targets:
            if target.key in seen:
                continue
            seen.add(target.key)
            node = self._nodes.get(target.key, {})
            for rtype in (RecordType.A, RecordType.AAAA):
                glue.extend(r for r in node.get(rtype, []) if r not in answers)
        return tuple(glue)
