from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from protocols.dns.answer import Authority
from protocols.dns.edns import ServerCookies
from protocols.dns.message import (
    AAAA,
    CNAME,
    DNAME,
    SOA,
    A,
    Edns,
    EdnsOption,
    Header,
    Message,
    Opcode,
    Question,
    Rcode,
    RecordType,
    ResourceRecord,
    build_message,
    parse_message,
)
from protocols.dns.names import Name
from protocols.dns.stats import CountingAuthority, DNSStats
from protocols.dns.zone import example_zone, parse_zone
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

ZONE = example_zone()


def ask(
    authority: Authority,
    name: str,
    qtype: int,
    *,
    udp: bool = False,
    edns: Edns | None = None,
    query_id: int = 0x4242,
    rd: bool = True,
    qclass: int = 1,
) -> Message:
    query = Message(
        Header(query_id, rd=rd), (Question(Name.from_text(name), qtype, qclass),), edns=edns
    )
    wire = authority.respond(build_message(query), udp=udp)
    assert wire is not None
    answer = parse_message(wire)
    assert answer.header.id == query_id
    assert answer.header.qr
    assert answer.header.rd == rd
    return answer


@pytest.fixture
def authority() -> Authority:
    return Authority(ZONE)


def _records(name: str, rtype: int) -> list[object]:
    key = Name.from_text(name).key
    return [r.rdata for r in ZONE.records if r.name.key == key and r.rtype == rtype]


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("www.framing.test.", RecordType.A),
        ("www.framing.test.", RecordType.AAAA),
        ("framing.test.", RecordType.NS),
        ("framing.test.", RecordType.SOA),
        ("framing.test.", RecordType.MX),
        ("framing.test.", RecordType.TXT),
        ("web.framing.test.", RecordType.CNAME),
        ("80.rev.framing.test.", RecordType.PTR),
        ("_http._tcp.framing.test.", RecordType.SRV),
        ("opaque.framing.test.", 65280),
        ("big.framing.test.", RecordType.TXT),
    ],
)
def test_answer_noerror_with_the_zone_records(authority: Authority, name: str, qtype: int) -> None:
    answer = ask(authority, name, qtype)
    assert answer.rcode == Rcode.NOERROR
    assert answer.header.aa
    assert [r.rdata for r in answer.answers] == _records(name, qtype)
    assert all(r.rtype == qtype for r in answer.answers)
    assert answer.authorities == ()


def test_answer_echoes_question_case_and_matches_any_case(authority: Authority) -> None:
    answer = ask(authority, "WwW.FRAMING.test.", RecordType.A)
    assert answer.questions[0].name.labels == (b"WwW", b"FRAMING", b"test")
    assert [r.rdata for r in answer.answers] == [A("192.0.2.80"), A("192.0.2.81")]
    assert answer.answers[0].name.labels == (b"WwW", b"FRAMING", b"test")


def test_answer_follows_a_cname_chain_inside_the_zone(authority: Authority) -> None:
    answer = ask(authority, "alias.framing.test.", RecordType.A)
    assert [(r.name.to_text(), r.rdata) for r in answer.answers] == [
        ("alias.framing.test.", CNAME(Name.from_text("web.framing.test."))),
        ("web.framing.test.", CNAME(Name.from_text("www.framing.test."))),
        ("www.framing.test.", A("192.0.2.80")),
        ("www.framing.test.", A("192.0.2.81")),
    ]
    assert answer.rcode == Rcode.NOERROR


def test_answer_cname_leaving_the_zone_is_not_followed(authority: Authority) -> None:
    answer = ask(authority, "outside.framing.test.", RecordType.A)
    assert [r.rdata for r in answer.answers] == [CNAME(Name.from_text("www.example."))]
    assert answer.rcode == Rcode.NOERROR
    assert answer.authorities == ()


def test_answer_cname_chain_ending_nowhere_is_nxdomain(authority: Authority) -> None:
    answer = ask(authority, "dangling.framing.test.", RecordType.A)
    assert answer.rcode == Rcode.NXDOMAIN
    assert len(answer.answers) == 1
    assert isinstance(answer.authorities[0].rdata, SOA)


def test_answer_nxdomain_carries_the_soa(authority: Authority) -> None:
    answer = ask(authority, "nothing.framing.test.", RecordType.A)
    assert answer.rcode == Rcode.NXDOMAIN
    assert answer.header.aa
    assert answer.answers == ()
    (soa,) = answer.authorities
    assert isinstance(soa.rdata, SOA)
    assert soa.ttl == min(ZONE.soa.ttl, soa.rdata.minimum)


@pytest.mark.parametrize(
    "name", ["www.framing.test.", "empty.framing.test."]
)  # the second is an empty non-terminal
def test_answer_nodata_carries_the_soa(authority: Authority, name: str) -> None:
    answer = ask(authority, name, RecordType.MX)
    assert answer.rcode == Rcode.NOERROR
    assert answer.answers == ()
    assert isinstance(answer.authorities[0].rdata, SOA)


@pytest.mark.parametrize(
    ("name", "qtype", "qclass"),
    [
        ("www.example.", RecordType.A, 1),
        ("test.", RecordType.A, 1),
        ("www.framing.test.", RecordType.A, 3),
        ("framing.test.", RecordType.AXFR, 1),
    ],
)
def test_answer_refused(authority: Authority, name: str, qtype: int, qclass: int) -> None:
    answer = ask(authority, name, qtype, qclass=qclass)
    assert answer.rcode == Rcode.REFUSED
    assert not answer.header.aa
    assert answer.answers == ()


def test_answer_adds_addresses_of_mx_targets(authority: Authority) -> None:
    answer = ask(authority, "framing.test.", RecordType.MX)
    assert {(r.name.to_text(), r.rdata) for r in answer.additionals} == {
        ("mail.framing.test.", A("192.0.2.25")),
        ("mail2.framing.test.", A("192.0.2.26")),
    }


def test_answer_any_returns_every_record_of_the_name(authority: Authority) -> None:
    answer = ask(authority, "www.framing.test.", RecordType.ANY)
    assert len(answer.answers) == 3


def test_formerr_for_no_question_and_for_two(authority: Authority) -> None:
    question = Question(Name.from_text("www.framing.test."), 1)
    for questions in [(), (question, question)]:
        wire = authority.respond(build_message(Message(Header(9), questions)), udp=True)
        assert wire is not None
        answer = parse_message(wire)
        assert (answer.header.id, answer.rcode, answer.questions) == (9, Rcode.FORMERR, ())


@pytest.mark.parametrize(
    "wire",
    [
        b"\x12\x34",  # only an id
        b"\x12\x34\x01\x00\x00\x01",  # a short header
        b"\x12\x34\x01\x00\xff\xff" + b"\x00" * 6,  # qdcount 65535
        b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
        b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\x4aabc\x00\x00\x01\x00\x01",  # label 74
    ],
)
def test_formerr_for_unparseable_queries_with_an_id(authority: Authority, wire: bytes) -> None:
    answer = authority.respond(wire, udp=True)
    assert answer is not None
    assert answer[:2] == b"\x12\x34"
    assert parse_message(answer).rcode == Rcode.FORMERR


@pytest.mark.parametrize("wire", [b"", b"\x12"])
def test_no_answer_without_an_id(authority: Authority, wire: bytes) -> None:
    assert authority.respond(wire, udp=True) is None


def test_no_answer_to_a_response(authority: Authority) -> None:
    question = Question(Name.from_text("www.framing.test."), 1)
    response = build_message(Message(Header(5, qr=True), (question,)))
    assert authority.respond(response, udp=True) is None
    assert authority.respond(response, udp=False) is None


@pytest.mark.parametrize("opcode", [1, 2, 5, 15])
def test_notimp_for_other_opcodes(authority: Authority, opcode: int) -> None:
    question = Question(Name.from_text("www.framing.test."), 1)
    wire = authority.respond(
        build_message(Message(Header(5, opcode=opcode), (question,))), udp=True
    )
    assert wire is not None
    answer = parse_message(wire)
    assert (answer.rcode, answer.header.opcode) == (Rcode.NOTIMP, opcode)


def test_badvers_for_edns_version_1(authority: Authority) -> None:
    answer = ask(authority, "www.framing.test.", 1, edns=Edns(version=1))
    assert answer.rcode == Rcode.BADVERS
    assert answer.answers == ()


def test_udp_truncates_to_512_without_edns(authority: Authority) -> None:
    answer = ask(authority, "medium.framing.test.", RecordType.TXT, udp=True)
    assert answer.header.tc
    assert answer.answers == ()
    assert answer.questions[0].name == Name.from_text("medium.framing.test.")
    whole = ask(authority, "medium.framing.test.", RecordType.TXT, udp=False)
    assert not whole.header.tc
    assert len(build_message(whole)) > 512


def test_udp_honours_the_client_edns_size(authority: Authority) -> None:
    fits = ask(authority, "medium.framing.test.", RecordType.TXT, udp=True, edns=Edns(1232))
    assert not fits.header.tc
    assert fits.edns is not None
    assert fits.edns.payload_size == 1232
    tiny = ask(authority, "medium.framing.test.", RecordType.TXT, udp=True, edns=Edns(100))
    assert tiny.header.tc  # under 512 counts as 512 (RFC 6891 6.2.5)
    big = ask(authority, "big.framing.test.", RecordType.TXT, udp=True, edns=Edns(65000))
    assert big.header.tc  # over the server's own 1232-byte cap
    assert not ask(authority, "big.framing.test.", RecordType.TXT, edns=Edns(512)).header.tc


def test_cache_answers_a_repeat_by_patching_the_id(authority: Authority) -> None:
    query = build_message(
        Message(Header(1, rd=True), (Question(Name.from_text("www.framing.test."), 1),))
    )
    first = authority.respond(query, udp=True)
    assert authority.cached == 1
    again = authority.respond(b"\xbe\xef" + query[2:], udp=True)
    assert first is not None
    assert again == b"\xbe\xef" + first[2:]
    # The other transport, the other case, another flag: each its own entry.
    authority.respond(query, udp=False)
    authority.respond(query.replace(b"www", b"WWW"), udp=True)
    assert authority.cached == 3


def test_cache_is_bounded() -> None:
    authority = Authority(ZONE, cache_size=4)
    for i in range(10):
        query = Message(Header(i), (Question(Name.from_text(f"n{i}.framing.test."), 1),))
        authority.respond(build_message(query), udp=True)
    assert authority.cached == 4


def test_cache_does_not_keep_errors(authority: Authority) -> None:
    authority.respond(b"\x00\x01\x00\x00\x00\x00", udp=True)
    authority.respond(build_message(Message(Header(3))), udp=True)
    assert authority.cached == 0


def test_answer_rejects_a_query_without_one_question(authority: Authority) -> None:
    with pytest.raises(ValueError, match="one question"):
        authority.answer(Message(Header(1)))
    assert (
        authority.answer(
            replace(Message(Header(1)), questions=(Question(Name.from_text("framing.test."), 6),))
        )
        .answers[0]
        .rdata
        == ZONE.soa.rdata
    )


# --- an operator's zone: cuts, wildcards, DNAME (issue 13) ------------------

OPERATOR = parse_zone(OPERATOR_ZONE_TEXT)


@pytest.fixture
def operator() -> Authority:
    return Authority(OPERATOR)


def _rows(records: tuple[ResourceRecord, ...]) -> list[tuple[str, int, int, object]]:
    return [(r.name.to_text().lower(), r.rtype, r.ttl, r.rdata) for r in records]


def _names(records: tuple[ResourceRecord, ...]) -> list[tuple[str, int]]:
    return [(r.name.to_text().lower(), r.rtype) for r in records]


_SUB_NS = [
    ("sub.cmp.test.", RecordType.NS),
    ("sub.cmp.test.", RecordType.NS),
    ("sub.cmp.test.", RecordType.NS),
]


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("www.sub.cmp.test.", RecordType.A),  # issue 13: was an authoritative NXDOMAIN
        ("sub.cmp.test.", RecordType.NS),  # issue 13: was answered with AA
        ("ns.sub.cmp.test.", RecordType.A),  # issue 13: glue was served as data
        ("deep.ns.sub.cmp.test.", RecordType.A),
        ("a.b.sub.cmp.test.", RecordType.MX),
        ("sub.cmp.test.", RecordType.A),
        ("sub.cmp.test.", RecordType.ANY),
    ],
)
def test_answer_under_a_zone_cut_is_a_referral_with_glue(
    operator: Authority, name: str, qtype: int
) -> None:
    """RFC 1034 4.3.2 step 3b, RFC 9471: AA=0, the cut's NS set, then its glue."""
    answer = ask(operator, name, qtype)
    assert answer.rcode == Rcode.NOERROR
    assert not answer.header.aa
    assert answer.answers == ()
    assert _names(answer.authorities) == _SUB_NS
    assert {(r.name.to_text(), r.rdata) for r in answer.additionals} == {
        ("ns.sub.cmp.test.", A("127.0.0.53")),
        ("ns.sub.cmp.test.", AAAA("::1")),
        ("ns1.cmp.test.", A("127.0.0.11")),
    }


def test_answer_ds_at_a_cut_comes_from_the_parent(operator: Authority) -> None:
    """RFC 4035 3.1.4.1: the DS set lives on the parent side of the cut."""
    answer = ask(operator, "sub.cmp.test.", RecordType.DS)
    assert answer.header.aa
    assert _names(answer.answers) == [("sub.cmp.test.", RecordType.DS)]
    nodata = ask(operator, "nods.cmp.test.", RecordType.DS)
    assert (nodata.header.aa, nodata.rcode, nodata.answers) == (True, Rcode.NOERROR, ())
    assert _names(nodata.authorities) == [("cmp.test.", RecordType.SOA)]


def test_answer_cname_into_a_cut_ends_in_a_referral(operator: Authority) -> None:
    answer = ask(operator, "intosub.cmp.test.", RecordType.A)
    assert answer.header.aa  # the CNAME is ours
    assert _names(answer.answers) == [("intosub.cmp.test.", RecordType.CNAME)]
    assert _names(answer.authorities) == _SUB_NS
    assert len(answer.additionals) == 3


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "answers"),
    [
        # RFC 4592 2.2.1: synthesized from *.wild with the query's name
        ("x.wild.cmp.test.", RecordType.A, Rcode.NOERROR, [("x.wild.cmp.test.", 1, 3600)]),
        ("a.b.wild.cmp.test.", RecordType.A, Rcode.NOERROR, [("a.b.wild.cmp.test.", 1, 3600)]),
        ("*.wild.cmp.test.", RecordType.A, Rcode.NOERROR, [("*.wild.cmp.test.", 1, 3600)]),
        # NODATA from a wildcard: the name matches, the type does not
        ("x.wild.cmp.test.", RecordType.AAAA, Rcode.NOERROR, []),
        # a wildcard does not match a name that exists (RFC 4592 2.2.1) ...
        ("exists.wild.cmp.test.", RecordType.TXT, Rcode.NOERROR, []),
        # ... nor an empty non-terminal, nor below one: its closest encloser is
        # ent.wild, and *.ent.wild does not exist (RFC 4592 2.2.2)
        ("ent.wild.cmp.test.", RecordType.A, Rcode.NOERROR, []),
        ("x.ent.wild.cmp.test.", RecordType.A, Rcode.NXDOMAIN, []),
        ("wild.cmp.test.", RecordType.A, Rcode.NOERROR, []),
    ],
)
def test_answer_wildcards_per_rfc4592(
    operator: Authority, name: str, qtype: int, rcode: int, answers: list[tuple[str, int, int]]
) -> None:
    answer = ask(operator, name, qtype)
    assert answer.header.aa
    assert answer.rcode == rcode
    assert [(n, t, ttl) for n, t, ttl, _ in _rows(answer.answers)] == answers
    if not answers:
        assert _names(answer.authorities) == [("cmp.test.", RecordType.SOA)]


def test_answer_wildcard_keeps_the_query_case_and_adds_glue(operator: Authority) -> None:
    answer = ask(operator, "X.Wild.cmp.test.", RecordType.MX)
    assert answer.answers[0].name.labels[:2] == (b"X", b"Wild")
    assert [r.rdata for r in answer.additionals] == [A("127.0.0.25")]


def test_answer_wildcard_cname_is_followed(operator: Authority) -> None:
    answer = ask(operator, "x.cw.cmp.test.", RecordType.A)
    assert _names(answer.answers) == [
        ("x.cw.cmp.test.", RecordType.CNAME),
        ("www.cmp.test.", RecordType.A),
        ("www.cmp.test.", RecordType.A),
    ]


def test_answer_dname_synthesizes_a_cname(operator: Authority) -> None:
    """RFC 6672 2.2, 5.3.1: the DNAME, then a CNAME with the DNAME's TTL."""
    answer = ask(operator, "a.dn.cmp.test.", RecordType.A)
    assert answer.header.aa
    assert answer.rcode == Rcode.NOERROR
    assert _rows(answer.answers) == [
        ("dn.cmp.test.", RecordType.DNAME, 3600, DNAME(Name.from_text("www.example."))),
        ("a.dn.cmp.test.", RecordType.CNAME, 3600, CNAME(Name.from_text("a.www.example."))),
    ]


def test_answer_dname_owner_itself_is_not_rewritten(operator: Authority) -> None:
    assert ask(operator, "dn.cmp.test.", RecordType.A).answers == ()
    assert _names(ask(operator, "dn.cmp.test.", RecordType.DNAME).answers) == [
        ("dn.cmp.test.", RecordType.DNAME)
    ]


def test_answer_dname_inside_the_zone_is_followed(operator: Authority) -> None:
    answer = ask(operator, "www.dz.cmp.test.", RecordType.A)
    assert _names(answer.answers) == [
        ("dz.cmp.test.", RecordType.DNAME),
        ("www.dz.cmp.test.", RecordType.CNAME),
        ("www.tgt.cmp.test.", RecordType.A),
    ]
    missing = ask(operator, "nope.dz.cmp.test.", RecordType.A)
    assert missing.rcode == Rcode.NXDOMAIN  # RFC 6604: the rcode of the last link
    assert len(missing.answers) == 2


def test_answer_dname_into_a_cut_ends_in_a_referral(operator: Authority) -> None:
    answer = ask(operator, "x.dsub.cmp.test.", RecordType.A)
    assert answer.header.aa
    assert _names(answer.answers) == [
        ("dsub.cmp.test.", RecordType.DNAME),
        ("x.dsub.cmp.test.", RecordType.CNAME),
    ]
    assert _names(answer.authorities) == _SUB_NS


def test_answer_dname_too_long_is_yxdomain(operator: Authority) -> None:
    """RFC 6672 2.2: a substituted name over 255 bytes is YXDOMAIN."""
    long = ".".join(["a" * 60] * 3) + ".dz.cmp.test."
    zone = parse_zone(OPERATOR_ZONE_TEXT + "dy DNAME " + "b" * 60 + ".b\n")
    answer = ask(Authority(zone), long.replace(".dz.", ".dy."), RecordType.A)
    assert answer.rcode == Rcode.YXDOMAIN
    assert _names(answer.answers) == [("dy.cmp.test.", RecordType.DNAME)]
    assert ask(operator, long, RecordType.A).rcode == Rcode.NXDOMAIN


@pytest.mark.parametrize(
    ("name", "links"),
    [("loop1.cmp.test.", 2), ("a.dl1.cmp.test.", 4), ("x.cwl.cmp.test.", 1)],
)
def test_answer_chain_loops_stop_at_the_first_repeat(
    operator: Authority, name: str, links: int
) -> None:
    answer = ask(operator, name, RecordType.A)
    assert answer.rcode == Rcode.NOERROR
    assert len(answer.answers) == links
    assert len(set(answer.answers)) == links  # never the same record twice (RFC 2181 5)


@pytest.mark.parametrize(
    ("opcode", "rcode"), [(Opcode.STATUS, Rcode.NOTIMP), (Opcode.UPDATE, Rcode.NOTIMP), (15, 4)]
)
def test_notimp_keeps_the_question_and_opt(operator: Authority, opcode: int, rcode: int) -> None:
    """RFC 6891 7: OPT in, OPT out; dig warned "EDNS query returned status NOTIMP"."""
    question = Question(Name.from_text("www.cmp.test."), 1)
    query = Message(Header(5, opcode=opcode), (question,), edns=Edns(4096))
    wire = operator.respond(build_message(query), udp=True)
    assert wire is not None
    answer = parse_message(wire)
    assert (answer.rcode, answer.header.opcode, answer.questions) == (rcode, opcode, (question,))
    assert answer.edns is not None
    assert answer.edns.payload_size == 1232


def test_formerr_keeps_the_question_when_it_parsed(operator: Authority) -> None:
    question = Question(Name.from_text("www.cmp.test."), 1)
    wire = build_message(Message(Header(5), (question,), edns=Edns()))
    answer = parse_message(operator.respond(wire[:-3], udp=True) or b"")
    assert (answer.rcode, answer.questions, answer.edns) == (Rcode.FORMERR, (question,), None)
    # Two questions parse whole: FORMERR, with the OPT record but no question.
    two = build_message(Message(Header(6), (question, question), edns=Edns()))
    answer = parse_message(operator.respond(two, udp=True) or b"")
    assert (answer.rcode, answer.questions) == (Rcode.FORMERR, ())
    assert answer.edns is not None


def test_refused_keeps_the_question_and_opt(operator: Authority) -> None:
    answer = ask(operator, "www.example.", RecordType.A, edns=Edns())
    assert answer.rcode == Rcode.REFUSED
    assert answer.questions[0].name == Name.from_text("www.example.")
    assert answer.edns is not None
    assert answer.edns.options == (EdnsOption(15, b"\x00\x14"),)  # RFC 8914: not authoritative


def test_answer_dname_asked_for_cname_stops_at_the_synthesized_one(operator: Authority) -> None:
    answer = ask(operator, "www.dz.cmp.test.", RecordType.CNAME)
    assert _names(answer.answers) == [
        ("dz.cmp.test.", RecordType.DNAME),
        ("www.dz.cmp.test.", RecordType.CNAME),
    ]
    assert answer.authorities == ()


def test_answer_https_adds_the_addresses_of_its_target(operator: Authority) -> None:
    """RFC 9460 4.1, as Knot does."""
    answer = ask(operator, "alias-svc.cmp.test.", RecordType.HTTPS)
    assert _names(answer.additionals) == [
        ("www.cmp.test.", RecordType.A),
        ("www.cmp.test.", RecordType.A),
        ("www.cmp.test.", RecordType.AAAA),
    ]


# --- zone transfers, NOTIFY, several zones ----------------------------------


def _transfer_query(name: str, qtype: int = RecordType.AXFR, **header: Any) -> bytes:
    question = Question(Name.from_text(name), qtype)
    return build_message(Message(Header(0x77, **header), (question,)))


@pytest.mark.parametrize("qtype", [RecordType.AXFR, RecordType.IXFR])
def test_transfer_gives_the_zone_soa_first_and_last(operator: Authority, qtype: int) -> None:
    """RFC 5936 2.2; IXFR gets the same full transfer (RFC 1995 4)."""
    messages = operator.transfer(_transfer_query("CMP.test.", qtype))
    assert messages is not None
    (wire,) = list(messages)
    answer = parse_message(wire)
    assert (answer.header.id, answer.header.aa, answer.rcode) == (0x77, True, Rcode.NOERROR)
    assert answer.questions == (Question(Name.from_text("CMP.test."), qtype),)
    zone = operator.zone
    assert answer.answers[0] == answer.answers[-1] == zone.soa
    assert sorted(map(repr, answer.answers[1:-1])) == sorted(
        repr(r) for r in zone.records if r is not zone.soa
    )


@pytest.mark.parametrize(
    "query",
    [
        _transfer_query("www.cmp.test."),  # not a zone's apex
        _transfer_query("example."),  # not ours
        _transfer_query("cmp.test.", RecordType.A),
        _transfer_query("cmp.test.", opcode=Opcode.NOTIFY),
        build_message(Message(Header(1), ())),
        b"\x00\x01\x02",
    ],
)
def test_transfer_is_none_for_anything_else(operator: Authority, query: bytes) -> None:
    assert operator.transfer(query) is None


@pytest.mark.parametrize("udp", [True, False])
@pytest.mark.parametrize("qtype", [RecordType.AXFR, RecordType.IXFR])
def test_respond_refuses_every_transfer_and_never_caches_it(
    operator: Authority, udp: bool, qtype: int
) -> None:
    """Issue 13: transfers are the server's to give, to the peers it allows."""
    answer = ask(operator, "cmp.test.", qtype, udp=udp)
    assert (answer.rcode, answer.header.aa, answer.answers) == (Rcode.REFUSED, False, ())
    assert operator.cached == 0


def test_formerr_for_a_transfer_with_two_questions(operator: Authority) -> None:
    question = Question(Name.from_text("cmp.test."), RecordType.AXFR)
    wire = build_message(Message(Header(9), (question, question)))
    assert operator.transfer(wire) is None
    answer = parse_message(operator.respond(wire, udp=False) or b"")
    assert answer.rcode == Rcode.FORMERR


def test_notify_for_a_zone_served_is_acknowledged_with_aa(operator: Authority) -> None:
    """RFC 1996 3.7 and 4.7: NOERROR, AA set, the question echoed; was NOTIMP."""
    wire = _transfer_query("cmp.test.", RecordType.SOA, opcode=Opcode.NOTIFY, aa=True)
    answer = parse_message(operator.respond(wire, udp=True) or b"")
    assert (answer.rcode, answer.header.opcode, answer.header.aa) == (
        Rcode.NOERROR,
        Opcode.NOTIFY,
        True,
    )
    assert answer.questions[0].name == Name.from_text("cmp.test.")


@pytest.mark.parametrize("name", ["example.", "www.cmp.test."])
def test_notify_for_a_zone_not_served_is_notauth(operator: Authority, name: str) -> None:
    wire = _transfer_query(name, RecordType.SOA, opcode=Opcode.NOTIFY)
    answer = parse_message(operator.respond(wire, udp=True) or b"")
    assert (answer.rcode, answer.header.aa) == (Rcode.NOTAUTH, False)


_CHILD = parse_zone(
    "$ORIGIN sub.cmp.test.\n$TTL 60\n@ SOA ns hm 7 1 1 1 1\n@ NS ns\nns A 127.0.0.53\n"
    "www A 127.0.0.88\n"
)
_OTHER = parse_zone("$ORIGIN other.test.\n$TTL 60\n@ SOA ns hm 1 1 1 1 1\nwww A 127.0.0.77\n")


def test_several_zones_answer_from_the_longest_matching_origin() -> None:
    """Issue 13: --zone repeats; the child zone answers below its apex, not the parent's cut."""
    authority = Authority([parse_zone(OPERATOR_ZONE_TEXT), _CHILD, _OTHER])
    child = ask(authority, "www.sub.cmp.test.", RecordType.A)
    assert (child.rcode, child.header.aa) == (Rcode.NOERROR, True)
    assert child.answers[0].rdata == A("127.0.0.88")
    assert ask(authority, "www.other.test.", RecordType.A).answers[0].rdata == A("127.0.0.77")
    parent = ask(authority, "www.cmp.test.", RecordType.A)
    assert (parent.rcode, len(parent.answers)) == (Rcode.NOERROR, 2)
    outside = ask(authority, "www.example.", RecordType.A, edns=Edns())
    assert outside.rcode == Rcode.REFUSED
    assert outside.edns is not None
    assert outside.edns.options == (EdnsOption(15, b"\x00\x14"),)
    assert authority.zone_for(Name.from_text("a.b.sub.cmp.test.")) is _CHILD
    messages = authority.transfer(_transfer_query("sub.cmp.test."))
    assert messages is not None
    assert parse_message(next(messages)).answers[1:-1] == _CHILD.records[1:]


def test_several_zones_must_have_different_origins() -> None:
    with pytest.raises(ValueError, match="same origin"):
        Authority([_OTHER, _OTHER])
    with pytest.raises(ValueError, match="at least one zone"):
        Authority([])


# --- EDNS options: cookies (RFC 7873), NSID (RFC 5001), keepalive (RFC 7828) -----

_CLIENT_COOKIE = bytes.fromhex("0102030405060708")


def _with_options(
    authority: Authority, *options: EdnsOption, udp: bool = True, peer: str = "127.0.0.1"
) -> Message:
    question = Question(Name.from_text("www.framing.test."), RecordType.A)
    query = build_message(Message(Header(0x55), (question,), edns=Edns(options=options)))
    return parse_message(authority.respond(query, udp=udp, peer=peer) or b"")


def _option(answer: Message, code: int) -> bytes | None:
    assert answer.edns is not None
    found = [o.data for o in answer.edns.options if o.code == code]
    return found[0] if found else None


def test_a_client_cookie_gets_a_server_cookie_made_for_that_client() -> None:
    cookies = ServerCookies()
    authority = Authority(ZONE, cookies=cookies)
    answer = _with_options(authority, EdnsOption(10, _CLIENT_COOKIE))
    assert (answer.rcode, len(answer.answers)) == (Rcode.NOERROR, 2)
    cookie = _option(answer, 10)
    assert cookie is not None
    assert cookie[:8] == _CLIENT_COOKIE
    assert cookies.valid(_CLIENT_COOKIE, cookie[8:], "127.0.0.1")
    assert not cookies.valid(_CLIENT_COOKIE, cookie[8:], "127.0.0.2")
    assert authority.cached == 0  # made for one client at one time: never cached


@pytest.mark.parametrize("udp", [True, False])
def test_a_valid_server_cookie_gets_an_answer_and_a_fresh_cookie(udp: bool) -> None:
    cookies = ServerCookies()
    authority = Authority(ZONE, cookies=cookies)
    server = cookies.make(_CLIENT_COOKIE, "127.0.0.1")
    answer = _with_options(authority, EdnsOption(10, _CLIENT_COOKIE + server), udp=udp)
    assert (answer.rcode, len(answer.answers)) == (Rcode.NOERROR, 2)
    assert _option(answer, 10) is not None


def test_a_bad_server_cookie_over_udp_gets_badcookie_and_the_right_one() -> None:
    """RFC 7873 5.2.4: BADCOOKIE (23) with a fresh server cookie, no records."""
    cookies = ServerCookies()
    authority = Authority(ZONE, cookies=cookies)
    stale = ServerCookies().make(_CLIENT_COOKIE, "127.0.0.1")  # another secret's
    answer = _with_options(authority, EdnsOption(10, _CLIENT_COOKIE + stale))
    assert answer.rcode == Rcode.BADCOOKIE
    assert (answer.answers, answer.questions[0].name) == ((), Name.from_text("www.framing.test."))
    cookie = _option(answer, 10)
    assert cookie is not None
    assert cookies.valid(_CLIENT_COOKIE, cookie[8:], "127.0.0.1")
    # Over TCP the address is proven by the handshake: answered, with a fresh cookie.
    over_tcp = _with_options(authority, EdnsOption(10, _CLIENT_COOKIE + stale), udp=False)
    assert (over_tcp.rcode, len(over_tcp.answers)) == (Rcode.NOERROR, 2)


@pytest.mark.parametrize("size", [0, 5, 9, 15, 41])
def test_a_cookie_of_a_wrong_length_gets_formerr(size: int) -> None:
    """RFC 7873 5.2.2; the question and the OPT record are kept."""
    answer = _with_options(Authority(ZONE), EdnsOption(10, bytes(size)))
    assert answer.rcode == Rcode.FORMERR
    assert answer.questions[0].name == Name.from_text("www.framing.test.")
    assert answer.edns is not None


def test_nsid_is_given_only_when_configured_and_asked() -> None:
    authority = Authority(ZONE, nsid=b"ns1.test")
    assert _option(_with_options(authority, EdnsOption(3, b"")), 3) == b"ns1.test"
    assert _with_options(authority).edns == Edns(payload_size=1232)
    assert _option(_with_options(Authority(ZONE), EdnsOption(3, b"")), 3) is None


def test_keepalive_states_the_timeout_over_tcp_only() -> None:
    """RFC 7828: units of 100 ms; over UDP the option is ignored."""
    timeout = [100]
    authority = Authority(ZONE, tcp_keepalive=lambda: timeout[0])
    keepalive = EdnsOption(11, b"")
    assert _option(_with_options(authority, keepalive, udp=False), 11) == b"\x00\x64"
    timeout[0] = 0  # shedding load: never a cached 100
    assert _option(_with_options(authority, keepalive, udp=False), 11) == b"\x00\x00"
    assert _option(_with_options(authority, keepalive, udp=True), 11) is None
    assert _option(_with_options(Authority(ZONE), keepalive, udp=False), 11) is None


def test_keepalive_with_a_timeout_in_a_query_gets_formerr() -> None:
    """RFC 7828 3.2.2: a client sends the option empty."""
    authority = Authority(ZONE, tcp_keepalive=lambda: 100)
    answer = _with_options(authority, EdnsOption(11, b"\x00\x64"), udp=False)
    assert answer.rcode == Rcode.FORMERR


def test_ready_udp_answers_are_respond_s_answers_behind_the_id(authority: Authority) -> None:
    """The server's UDP fast path: query[:2] + ready[query[2:]] is respond's answer, byte
    for byte; TCP answers, cookie answers and transfers are never held ready."""
    ready = authority.ready_udp_answers()
    www = Question(Name.from_text("www.framing.test."), RecordType.A)
    plain = build_message(Message(Header(1, rd=True), (www,)))
    with_edns = build_message(Message(Header(2), (www,), edns=Edns(4096)))
    big = build_message(Message(Header(3), (Question(Name.from_text("big.framing.test."), 16),)))
    for query in (plain, with_edns, big):
        first = authority.respond(query, udp=True)
        assert first is not None
        again = b"\xbe\xef" + query[2:]
        assert again[:2] + ready[again[2:]] == authority.respond(again, udp=True)
    assert parse_message(b"\x00\x00" + ready[big[2:]]).header.tc  # truncated, as respond said
    held = len(ready)
    cookie = EdnsOption(10, _CLIENT_COOKIE)
    authority.respond(
        build_message(Message(Header(4), (www,), edns=Edns(options=(cookie,)))),
        udp=True,
        peer="127.0.0.1",
    )
    axfr = Question(Name.from_text("framing.test."), RecordType.AXFR)
    authority.respond(build_message(Message(Header(5), (axfr,))), udp=True)
    authority.respond(build_message(Message(Header(6), (www,))), udp=False)
    assert len(ready) == held
    assert len(authority.with_zones([ZONE]).ready_udp_answers()) == 0  # a reload starts empty


def test_counting_authority_holds_no_ready_answers() -> None:
    """Each of its answers is counted, so each goes through respond."""
    stats = DNSStats()
    counting = CountingAuthority(ZONE, stats=stats)
    query = build_message(Message(Header(1), (Question(Name.from_text("www.framing.test."), 1),)))
    for query_id in range(3):
        counting.respond(query_id.to_bytes(2, "big") + query[2:], udp=True)
    assert len(counting.ready_udp_answers()) == 0
    assert len(counting.with_zones([ZONE]).ready_udp_answers()) == 0
    assert stats.queries == {("udp", "A", "NOERROR"): 3}
