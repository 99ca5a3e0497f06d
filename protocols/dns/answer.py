"""The authoritative answerer: query bytes in, answer bytes out, no I/O.

:class:`Authority` holds one zone and answers as RFC 1034 4.3.2 and RFC 1035
describe an authoritative server (no recursion), as Knot answers:

========================================  =========================================
query                                     answer
========================================  =========================================
a name in the zone, with records          NOERROR, AA, the records
  of the type asked
a CNAME, another type asked               the CNAME, then the chain followed inside
                                          the zone (RFC 1034 3.6.2, RFC 6604)
a name below a DNAME                      the DNAME, a CNAME synthesized with its
                                          TTL, then the chain (RFC 6672 3.2);
                                          YXDOMAIN when the new name is too long
a name at or below a zone cut (an NS      a referral: no AA, the cut's NS set in
  set other than the apex's), any type    authority, the addresses of in-zone
  but DS at the cut itself                servers (glue) in additional (RFC 1034
                                          4.3.2 3b, RFC 9471)
a name that does not exist, with          the wildcard's records, owned by the
  ``*.<closest encloser>`` in the zone    name asked (RFC 4592 2.2, 3.3.3)
a name with no records of that type       NOERROR (NODATA), the SOA in authority
a name that does not exist                NXDOMAIN, the SOA in authority (RFC 2308)
a name outside the zone, a class          REFUSED (and, for a name outside,
  other than IN, a zone transfer          the Extended DNS Error 20, RFC 8914)
no question or several                    FORMERR
bytes that do not parse                   FORMERR, if the id could be read
an opcode other than QUERY                NOTIMP
EDNS version other than 0                 BADVERS (RFC 6891 6.1.3)
a response (QR set)                       nothing at all
========================================  =========================================

A chain of CNAMEs and DNAMEs is followed while it stays in the zone, at most
``_MAX_CHAIN`` links, and stops at the first name it has already visited: a
loop in the zone gives each of its records once. REFUSED, FORMERR, NOTIMP and
BADVERS answers echo the question whenever it could be read, and the OPT
record whenever the query had one and parsed whole (RFC 6891 7).

The question is echoed as asked (the client's letter case, RFC 4343); names
match ignoring ASCII case; RD and CD are copied. MX, NS and SRV answers carry
the A and AAAA records of their targets in the additional section, as do
SVCB and HTTPS answers (RFC 9460 4.1).

Over UDP an answer larger than 512 bytes, or than the client's EDNS0 payload
size (capped at ``udp_payload_size``), loses its records and gets TC, so the
client asks again over TCP (RFC 1035 4.2.1, RFC 2181 9).

The hot path: an authoritative answer is a pure function of the query's bytes
after the id, and of the transport. So :meth:`Authority.respond` first looks
those bytes up in a bounded cache of ready-encoded answers and, on a hit, only
puts the new id in front: no parsing, no encoding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypedDict

from protocols.dns.edns import COOKIE, NSID, TCP_KEEPALIVE, CookieError, ServerCookies, split_cookie
from protocols.dns.errors import DNSFormatError
from protocols.dns.message import (
    CNAME,
    DNAME,
    MX,
    NS,
    SOA,
    SRV,
    SVCB,
    Edns,
    EdnsOption,
    Header,
    Message,
    Opcode,
    Question,
    Rcode,
    RecordClass,
    RecordType,
    ResourceRecord,
    build_message,
    build_messages,
    parse_message,
    parse_question,
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
#: Longest CNAME and DNAME chain followed; a longer one stops there (a loop
#: stops earlier, at its first repeated name).
_MAX_CHAIN: Final = 8
_TCP_MAX: Final = 0xFFFF
#: RFC 8914 4.21: the Extended DNS Error "Not Authoritative" (20), as Knot
#: gives it with REFUSED for a name outside the zone.
_NOT_AUTHORITATIVE: Final = EdnsOption(15, (20).to_bytes(2, "big"))

_Records = tuple[ResourceRecord, ...]
_Key = tuple[bytes, ...]
_Node = dict[int, list[ResourceRecord]]
_Result = tuple[bool, int, _Records, _Records, _Records]
_WILDCARD: Final = b"*"


class _OptionsOut(TypedDict):
    """How :meth:`Authority._error` is to write the OPT record."""

    edns: bool
    options: tuple[EdnsOption, ...]


class _KeepaliveError(ValueError):
    """An edns-tcp-keepalive option with a TIMEOUT in a query (RFC 7828 3.2.2): FORMERR."""


@dataclass(frozen=True, slots=True)
class _Found:
    """Where the search for one name ended (RFC 1034 4.3.2 step 3).

    Attributes:
        node: the records of the name, or of the wildcard that matched it
            (empty for an empty non-terminal); ``None`` when the name does
            not exist.
        cut: the owner of the zone cut the name is at or below, if any.
        dname: the DNAME of an ancestor that rewrites the name, if any.
    """

    node: _Node | None = None
    cut: _Key | None = None
    dname: ResourceRecord | None = None


@dataclass(slots=True)
class _Answer:
    """An answer being built, link after link of a chain."""

    aa: bool = True
    rcode: int = Rcode.NOERROR
    answers: list[ResourceRecord] = field(default_factory=list)
    authorities: tuple[ResourceRecord, ...] = ()
    additionals: tuple[ResourceRecord, ...] = ()


class Authority:
    """Answers queries for one zone or several, from bytes to bytes.

    A name is answered from the zone whose origin is its longest suffix
    (``sub.example.`` before ``example.``); a name in none is REFUSED.

    Attributes:
        zones: the zones served, in the order given.
        zone: the first of them.

    Args:
        zone: the zone served, or several (no two with the same origin).
        cache_size: ready answers kept per transport; ``0`` disables the cache.
        udp_payload_size: the largest UDP answer, and the size advertised in
            the OPT record of answers to EDNS0 queries.
        nsid: the server's identifier, given to queries that ask for it (RFC
            5001); ``None``: not given.
        cookies: makes and checks server cookies (RFC 7873); a new secret
            when not given. A client cookie always gets a server cookie back.
        tcp_keepalive: returns the idle timeout to state in TCP answers to
            queries with the edns-tcp-keepalive option, in units of 100 ms
            (RFC 7828), 0 under load; ``None``: not stated.

    Raises:
        ValueError: no zone, two with one origin, or a size out of range.
    """

    def __init__(
        self,
        zone: Zone | Sequence[Zone],
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        udp_payload_size: int = DEFAULT_UDP_PAYLOAD_SIZE,
        nsid: bytes | None = None,
        cookies: ServerCookies | None = None,
        tcp_keepalive: Callable[[], int] | None = None,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 or more, not {cache_size}")
        if udp_payload_size < CLASSIC_UDP_SIZE:
            raise ValueError(f"udp_payload_size must be at least 512, not {udp_payload_size}")
        zones = (zone,) if isinstance(zone, Zone) else tuple(zone)
        if not zones:
            raise ValueError("an Authority needs at least one zone")
        origins = [z.origin.key for z in zones]
        if len(set(origins)) != len(origins):
            raise ValueError("two zones have the same origin")
        self.zones = zones
        self.zone = zones[0]
        self._cache_size = cache_size
        self._udp_payload_size = udp_payload_size
        self._nsid = nsid
        self._cookies = cookies if cookies is not None else ServerCookies()
        self._tcp_keepalive = tcp_keepalive
        self._udp_cache: dict[bytes, bytes] = {}
        self._tcp_cache: dict[bytes, bytes] = {}
        self._indexes = {z.origin.key: _Index(z) for z in zones}
        self._deepest = max(len(key) for key in self._indexes)

    def with_zones(self, zones: Zone | Sequence[Zone]) -> Authority:
        """A new authority, with these settings, for ``zones`` (an empty cache)."""
        return self._renewed(
            zones,
            cache_size=self._cache_size,
            udp_payload_size=self._udp_payload_size,
            nsid=self._nsid,
            cookies=self._cookies,
            tcp_keepalive=self._tcp_keepalive,
        )

    def _renewed(self, zones: Zone | Sequence[Zone], **settings: Any) -> Authority:
        """An authority of this kind for ``zones`` (a subclass adds its own state)."""
        return Authority(zones, **settings)

    def ready_udp_answers(self) -> Mapping[bytes, bytes]:
        """The UDP answers held ready, by the query's bytes after its id: a server's fast path.

        For a datagram ``query`` whose ``query[2:]`` is a key, ``query[:2] + value``
        is exactly what :meth:`respond` would return; on a miss, call
        :meth:`respond`. No answer held depends on the client (a cookie answer
        is never held) and none is a transfer's. The mapping is live (it fills as
        :meth:`respond` answers) and belongs to this authority: a reload makes a
        new one (:meth:`with_zones`).
        """
        return self._udp_cache

    @property
    def cached(self) -> int:
        """How many ready answers are held (both transports)."""
        return len(self._udp_cache) + len(self._tcp_cache)

    def respond(self, query: bytes, *, udp: bool, peer: str | None = None) -> bytes | None:
        """Return the answer to one query message, or ``None`` when none is due.

        Args:
            query: one DNS message as received (a datagram, or a TCP frame's payload).
            udp: whether it came over UDP: the answer is then truncated to fit.
            peer: the client's IP address, which its server cookie is made for
                (RFC 7873); ``None`` when unknown.

        Returns:
            The answer's bytes, or ``None`` for a message that is itself a
            response or too short to carry an id.
        """
        cache = self._udp_cache if udp else self._tcp_cache
        tail = cache.get(query[2:])
        if tail is not None:
            return query[:2] + tail
        wire, cacheable = self._respond_slowly(query, udp=udp, peer=peer)
        if wire is None:
            return None
        if cacheable and self._cache_size and len(query) <= _MAX_CACHED_QUERY:
            if len(cache) >= self._cache_size:
                # Evict the oldest entry: dicts keep insertion order, so this is FIFO.
                del cache[next(iter(cache))]
            cache[query[2:]] = wire[2:]
        return wire

    def _respond_slowly(
        self, query: bytes, *, udp: bool, peer: str | None
    ) -> tuple[bytes | None, bool]:
        """Return the answer (None when none is due) and whether it may be cached."""
        # Errors are not cached: junk would only push real answers out.
        if len(query) < 2 or (len(query) >= 3 and query[2] & 0x80):
            return None, False
        query_id = int.from_bytes(query[:2], "big")
        opcode = (query[2] >> 3) & 0xF if len(query) >= 3 else Opcode.QUERY
        rd = bool(query[2] & 0x01) if len(query) >= 3 else False
        try:
            message = parse_message(query)
        except DNSFormatError:
            question = parse_question(query)
            rcode = Rcode.NOTIMP if opcode != Opcode.QUERY else Rcode.FORMERR
            return self._error(query_id, rcode, opcode, rd, question, edns=False), False
        if opcode == Opcode.NOTIFY and len(message.questions) == 1:
            return self._notified(message), False
        if opcode != Opcode.QUERY or len(message.questions) != 1:
            rcode = Rcode.NOTIMP if opcode not in (Opcode.QUERY, Opcode.NOTIFY) else Rcode.FORMERR
            question = message.questions[0] if len(message.questions) == 1 else None
            edns = message.edns is not None
            return self._error(query_id, rcode, opcode, rd, question, edns=edns), False
        options, cacheable, refusal = self._edns_options(message, udp, peer)
        if refusal is not None:
            return self._error(
                query_id, refusal, opcode, rd, message.questions[0], **options
            ), False
        response = self.answer(message)
        if options["options"] and response.edns is not None:
            extended = replace(response.edns, options=response.edns.options + options["options"])
            response = replace(response, edns=extended)
        # Transfers are refused here, whoever asks: a transfer is the server's to
        # give, to the peers it allows, over TCP (see transfer()). Never cached.
        cacheable = cacheable and message.questions[0].qtype not in (
            RecordType.AXFR,
            RecordType.IXFR,
        )
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
        return wire, cacheable

    def _edns_options(
        self, message: Message, udp: bool, peer: str | None
    ) -> tuple[_OptionsOut, bool, int | None]:
        """The options of the answer, whether it may be cached, and an rcode to refuse with.

        The rcode is FORMERR for a COOKIE option of a length RFC 7873 5.2.2
        forbids, or an edns-tcp-keepalive option with a TIMEOUT (RFC 7828
        3.2.2); BADCOOKIE over UDP for a server cookie not ours or stale (RFC
        7873 5.2.4: the client sends the query again with the fresh one given).
        """
        edns = message.edns
        if edns is None or not edns.options:
            return {"edns": edns is not None, "options": ()}, True, None
        try:
            options, badcookie, cacheable = self._options(edns, udp, peer)
        except (CookieError, _KeepaliveError):
            return {"edns": True, "options": ()}, False, Rcode.FORMERR
        refusal = Rcode.BADCOOKIE if badcookie else None
        return {"edns": True, "options": options}, cacheable, refusal

    def _options(
        self, edns: Edns, udp: bool, peer: str | None
    ) -> tuple[tuple[EdnsOption, ...], bool, bool]:
        """The options to answer a query's with: (options, BADCOOKIE, cacheable).

        Raises:
            CookieError: a COOKIE option of a forbidden length.
            _KeepaliveError: an edns-tcp-keepalive option with a TIMEOUT in a query.
        """
        out: list[EdnsOption] = []
        badcookie = False
        cacheable = True
        for option in edns.options:
            if option.code == NSID and self._nsid is not None:
                out.append(EdnsOption(NSID, self._nsid))
            elif option.code == COOKIE:
                client_cookie, server_cookie = split_cookie(option.data)
                # Made for this client, at this time: never from the cache.
                cacheable = False
                fresh = self._cookies.make(client_cookie, peer)
                out.append(EdnsOption(COOKIE, client_cookie + fresh))
                if udp and server_cookie:
                    badcookie = not self._cookies.valid(client_cookie, server_cookie, peer)
            elif option.code == TCP_KEEPALIVE and not udp:
                if option.data:
                    raise _KeepaliveError
                if self._tcp_keepalive is not None:
                    cacheable = False  # the timeout drops to 0 under load
                    timeout = max(0, min(self._tcp_keepalive(), 0xFFFF))
                    out.append(EdnsOption(TCP_KEEPALIVE, timeout.to_bytes(2, "big")))
            # RFC 7828 3.2.1: over UDP the option is ignored; so is any other.
        return tuple(out), badcookie, cacheable

    def _udp_limit(self, query: Message) -> int:
        if query.edns is None:
            return CLASSIC_UDP_SIZE
        # RFC 6891 6.2.5: a payload size under 512 is treated as 512.
        return max(CLASSIC_UDP_SIZE, min(query.edns.payload_size, self._udp_payload_size))

    def _error(
        self,
        query_id: int,
        rcode: int,
        opcode: int,
        rd: bool,
        question: Question | None,
        *,
        edns: bool,
        options: tuple[EdnsOption, ...] = (),
    ) -> bytes:
        """An answer with no records: the question if it was read, OPT if the query had one."""
        header = Header(query_id, qr=True, opcode=opcode, rd=rd, rcode=rcode & 0xF)
        opt = (
            Edns(payload_size=self._udp_payload_size, extended_rcode=rcode >> 4, options=options)
            if edns
            else None
        )
        questions = (question,) if question is not None else ()
        return build_message(Message(header, questions, edns=opt))

    def _notified(self, message: Message) -> bytes:
        """RFC 1996 3.7: a NOTIFY for a zone served is acknowledged, AA set; else NOTAUTH."""
        question = message.questions[0]
        index = self._indexes.get(question.name.key)
        served = index is not None and question.qclass == RecordClass.IN
        header = Header(
            message.header.id,
            qr=True,
            opcode=Opcode.NOTIFY,
            aa=served,
            rcode=Rcode.NOERROR if served else Rcode.NOTAUTH,
        )
        opt = Edns(payload_size=self._udp_payload_size) if message.edns is not None else None
        return build_message(Message(header, (question,), edns=opt))

    def transfer(self, query: bytes) -> Iterator[bytes] | None:
        """The messages of a full zone transfer (RFC 5936), for a query that asks one.

        AXFR, and IXFR answered the same way (RFC 1995 4 allows a full
        transfer in answer to IXFR), for the apex of a zone served. The zone is
        the one held now: a reload while the messages are being sent does not
        change them. Whether the peer may have the zone is the caller's to
        decide; :meth:`respond` refuses every transfer.

        ::

            | SOA | records ... |  | records ... |  ...  | records ... | SOA |
             first message          next                 last message

        Args:
            query: the query's bytes.

        Returns:
            The messages, each at most 65535 bytes, made one at a time as they
            are taken; ``None`` when the query is not a well-formed transfer
            request for a zone served (answer it with :meth:`respond`).
        """
        try:
            message = parse_message(query)
        except DNSFormatError:
            return None
        if (
            message.header.qr
            or message.header.opcode != Opcode.QUERY
            or len(message.questions) != 1
            or (message.edns is not None and message.edns.version != 0)
        ):
            return None
        question = message.questions[0]
        index = self._indexes.get(question.name.key)
        if (
            question.qtype not in (RecordType.AXFR, RecordType.IXFR)
            or question.qclass != RecordClass.IN
            or index is None
        ):
            return None
        zone = index.zone
        soa = zone.soa
        records = itertools.chain((soa,), (r for r in zone.records if r is not soa), (soa,))
        header = Header(message.header.id, qr=True, aa=True, rd=message.header.rd)
        opt = Edns(payload_size=self._udp_payload_size) if message.edns is not None else None
        return build_messages(header, question, records, edns=opt, limit=_TCP_MAX)

    def zone_for(self, name: Name) -> Zone | None:
        """The served zone that ``name`` is in: the one with the longest origin; else ``None``."""
        index = self._index_for(name)
        return index.zone if index is not None else None

    def _index_for(self, name: Name) -> _Index | None:
        key = name.key
        indexes = self._indexes
        for depth in range(min(len(key), self._deepest), -1, -1):
            index = indexes.get(key[len(key) - depth :])
            if index is not None:
                return index
        return None

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
        index = self._index_for(question.name)
        result: _Result
        if rcode != Rcode.NOERROR:
            result = (False, rcode, (), (), ())
        elif (
            index is None
            or question.qclass not in (RecordClass.IN, RecordClass.ANY)
            or question.qtype in (RecordType.AXFR, RecordType.IXFR, RecordType.OPT)
        ):
            result = (False, Rcode.REFUSED, (), (), ())
        else:
            result = index.lookup(question)
        aa, rcode, answers, authorities, additionals = result
        if edns is not None:
            edns = replace(edns, extended_rcode=rcode >> 4)
            if rcode == Rcode.REFUSED and index is None:
                edns = replace(edns, options=(_NOT_AUTHORITATIVE,))
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


class _Index:
    """One zone, indexed for answering: its nodes, names, cuts and DNAMEs."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
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
        # Zone cuts: every NS set but the apex's. Below one, records are glue,
        # never answers (RFC 1034 4.2.1).
        self._cuts = {key for key, node in self._nodes.items() if RecordType.NS in node} - {
            origin.key
        }
        self._dnames = {key for key, node in self._nodes.items() if RecordType.DNAME in node}
        soa = zone.soa
        minimum = soa.rdata.minimum if isinstance(soa.rdata, SOA) else soa.ttl
        # RFC 2308 3: negative answers carry the SOA with the smaller of its TTL and MINIMUM.
        self._negative_soa = replace(soa, ttl=min(soa.ttl, minimum))

    def lookup(self, question: Question) -> _Result:
        """Return (AA, rcode, answers, authorities, additionals) for a question in the zone."""
        qtype = question.qtype
        result = _Answer()
        # The owner of the answer records is the name as the client wrote it,
        # so it compresses against the question; later links of a chain take
        # the name as the zone (or the DNAME substitution) wrote it.
        name: Name | None = question.name
        visited: set[_Key] = set()
        while name is not None and name.key not in visited and len(visited) < _MAX_CHAIN:
            visited.add(name.key)
            name = self._link(name, qtype, result)
        return (
            result.aa,
            result.rcode,
            tuple(result.answers),
            result.authorities,
            result.additionals,
        )

    def _link(self, name: Name, qtype: int, result: _Answer) -> Name | None:
        """Answer for one name of a chain; return the next name, or ``None`` when done."""
        answers = result.answers
        found = self._find(name, qtype)
        if found.cut is not None:
            # A referral: authoritative only if a link of ours came before it.
            result.aa = bool(answers)
            ns = self._nodes[found.cut][RecordType.NS]
            result.authorities = tuple(ns)
            result.additionals = self._addresses(ns, answers, glue=True)
            return None
        if found.dname is not None:
            target = self._substitute(name, found.dname, result)
            # Asked for the CNAME, the synthesized one is the answer (RFC 1034 4.3.2 3a).
            return None if qtype == RecordType.CNAME else target
        if found.node is None:
            result.rcode = Rcode.NXDOMAIN
            result.authorities = (self._negative_soa,)
            return None
        cnames = found.node.get(RecordType.CNAME)
        if cnames and qtype not in (RecordType.CNAME, RecordType.ANY):
            answers.extend(replace(r, name=name) for r in cnames)
            alias = cnames[0].rdata
            assert isinstance(alias, CNAME)
            return self._in_zone(alias.target)
        if qtype == RecordType.ANY:
            records = [r for rrset in found.node.values() for r in rrset]
        else:
            records = found.node.get(qtype, [])
        if not records:
            result.authorities = (self._negative_soa,)
            return None
        answers.extend(replace(r, name=name) for r in records)
        result.additionals = self._addresses(records, answers, glue=False)
        return None

    def _substitute(self, name: Name, dname: ResourceRecord, result: _Answer) -> Name | None:
        """RFC 6672 3.2: the DNAME, then the CNAME it synthesizes, with the DNAME's TTL."""
        answers = result.answers
        assert isinstance(dname.rdata, DNAME)
        depth = len(dname.name.labels)
        # The DNAME's owner as the query spelled it, so that it compresses.
        answers.append(replace(dname, name=Name(name.labels[len(name.labels) - depth :])))
        try:
            target = Name(name.labels[: len(name.labels) - depth] + dname.rdata.target.labels)
        except ValueError:
            result.rcode = Rcode.YXDOMAIN  # the new name is over 255 bytes (RFC 6672 2.2)
            return None
        answers.append(ResourceRecord(name, CNAME(target), dname.ttl))
        return self._in_zone(target)

    def _in_zone(self, name: Name) -> Name | None:
        return name if name.is_subdomain_of(self.zone.origin) else None

    def _find(self, name: Name, qtype: int) -> _Found:
        """RFC 1034 4.3.2 step 3 with RFC 4592 and RFC 6672: walk down from the apex."""
        key = name.key
        top = len(self.zone.origin.labels)
        encloser = key[len(key) - top :]
        for depth in range(top, len(key) + 1):
            ancestor = key[len(key) - depth :]
            if ancestor not in self._names:
                break
            encloser = ancestor
            # The parent side of a cut answers DS for it (RFC 4035 3.1.4.1).
            if ancestor in self._cuts and not (ancestor == key and qtype == RecordType.DS):
                return _Found(cut=ancestor)
            # A DNAME rewrites the names below its owner, not the owner itself.
            if ancestor in self._dnames and ancestor != key:
                return _Found(dname=self._nodes[ancestor][RecordType.DNAME][0])
        else:
            return _Found(node=self._nodes.get(key, {}))
        # The name does not exist. The wildcard that may stand for it hangs
        # below its closest encloser, the deepest ancestor that exists, an empty
        # non-terminal included: so *.wild does not match x.ent.wild when
        # ent.wild exists (RFC 4592 2.2.1, 3.3.1).
        wildcard = (_WILDCARD, *encloser)
        if wildcard in self._names:
            return _Found(node=self._nodes.get(wildcard, {}))
        return _Found()

    def _addresses(
        self, found: list[ResourceRecord], answers: list[ResourceRecord], *, glue: bool
    ) -> tuple[ResourceRecord, ...]:
        """Addresses of the MX, NS, SRV, SVCB and HTTPS targets inside the zone.

        RFC 1035 3.3.9 asks for them with MX and NS, RFC 9460 4.1 with SVCB.

        Args:
            found: the records whose targets are looked up.
            answers: records already in the answer, not repeated.
            glue: whether the addresses below a zone cut are given (in a
                referral, RFC 9471), or left out (they are not ours to give).
        """
        targets: list[Name] = []
        for record in found:
            rdata = record.rdata
            if isinstance(rdata, MX):
                targets.append(rdata.exchange)
            elif isinstance(rdata, NS | SRV):
                targets.append(rdata.target)
            elif isinstance(rdata, SVCB):
                # RFC 9460 4.1: "." as the target is the owner itself.
                targets.append(rdata.target if rdata.target.labels else record.name)
        out: list[ResourceRecord] = []
        seen = set()
        for target in targets:
            if target.key in seen or (not glue and self._below_cut(target.key)):
                continue
            seen.add(target.key)
            node = self._nodes.get(target.key, {})
            for rtype in (RecordType.A, RecordType.AAAA):
                out.extend(r for r in node.get(rtype, []) if r not in answers)
        return tuple(out)

    def _below_cut(self, key: _Key) -> bool:
        return any(key[len(key) - depth :] in self._cuts for depth in range(1, len(key) + 1))
