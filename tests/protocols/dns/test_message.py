from __future__ import annotations

import ipaddress
from typing import Any

import construct as cs
import dns.message
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.dns.answer import Authority
from protocols.dns.errors import DNSFormatError
from protocols.dns.message import (
    AAAA,
    DECLARATIONS,
    MX,
    SRV,
    TXT,
    A,
    Edns,
    EdnsOption,
    Header,
    Message,
    Question,
    RecordType,
    ResourceRecord,
    Unknown,
    build_message,
    build_messages,
    decode_rdata,
    encode_rdata,
    parse_message,
)
from protocols.dns.names import Name
from protocols.dns.zone import example_zone


def check_struct(struct: cs.Construct, data: bytes, value: dict[str, Any]) -> None:
    """As construct's declarativeunittest: parse, build, and the compiled form agree."""
    compiled = struct.compile()
    for form in (struct, compiled):
        parsed = form.parse(data)
        assert _plain(parsed) == value
        assert form.build(value) == data


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


STRUCT_CASES: dict[str, tuple[bytes, dict[str, Any]]] = {
    "HEADER": (
        b"\x12\x34\x85\x83\x00\x01\x00\x02\x00\x03\x00\x04",
        {
            "id": 0x1234,
            "flags": {
                "qr": True,
                "opcode": 0,
                "aa": True,
                "tc": False,
                "rd": True,
                "ra": True,
                "z": False,
                "ad": False,
                "cd": False,
                "rcode": 3,
            },
            "qdcount": 1,
            "ancount": 2,
            "nscount": 3,
            "arcount": 4,
        },
    ),
    "QUESTION_TAIL": (b"\x00\x1c\x00\x01", {"qtype": 28, "qclass": 1}),
    "RR_FIXED": (
        b"\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04",
        {"rtype": 1, "rclass": 1, "ttl": 3600, "rdlength": 4},
    ),
    "OPT_FIXED": (
        b"\x00\x29\x04\xd0\x01\x00\x80\x00\x00\x00",
        {
            "rtype": 41,
            "payload_size": 1232,
            "extended_rcode": 1,
            "version": 0,
            "flags": {"dnssec_ok": True, "z": 0},
            "rdlength": 0,
        },
    ),
    "IPV4": (b"\xc0\x00\x02\x01", {"address": b"\xc0\x00\x02\x01"}),
    "IPV6": (bytes(range(16)), {"address": bytes(range(16))}),
    "PREFERENCE": (b"\x00\x0a", {"preference": 10}),
    "SRV_FIELDS": (b"\x00\x01\x00\x02\x00\x50", {"priority": 1, "weight": 2, "port": 80}),
    "SOA_TIMES": (
        bytes.fromhex("0000000100000002000000030000000400000005"),
        {"serial": 1, "refresh": 2, "retry": 3, "expire": 4, "minimum": 5},
    ),
    "TXT_STRINGS": (b"\x02hi\x00\x01!", {"strings": [b"hi", b"", b"!"]}),
    "EDNS_OPTIONS": (
        b"\x00\x0a\x00\x02ab\x00\x0c\x00\x00",
        {"options": [{"code": 10, "data": b"ab"}, {"code": 12, "data": b""}]},
    ),
    "NAPTR_HEAD": (b"\x00\x64\x00\x0a", {"order": 100, "preference": 10}),
    "DS_HEAD": (b"\x30\x39\x0d\x02", {"key_tag": 12345, "algorithm": 13, "digest_type": 2}),
    "DNSKEY_HEAD": (b"\x01\x01\x03\x0d", {"flags": 257, "protocol": 3, "algorithm": 13}),
    "TLSA_HEAD": (b"\x03\x01\x01", {"usage": 3, "selector": 1, "matching_type": 1}),
    "SSHFP_HEAD": (b"\x04\x02", {"algorithm": 4, "fp_type": 2}),
    "CAA_HEAD": (b"\x80\x05issue", {"flags": 128, "tag": b"issue"}),
    "SVCB_PRIORITY": (b"\x00\x01", {"priority": 1}),
    "SVC_PARAMS": (
        b"\x00\x01\x00\x03\x02h2\x00\x03\x00\x02\x01\xbb",
        {"params": [{"key": 1, "value": b"\x02h2"}, {"key": 3, "value": b"\x01\xbb"}]},
    ),
}


def test_every_declaration_has_a_case() -> None:
    assert set(STRUCT_CASES) == set(DECLARATIONS)


@pytest.mark.parametrize("name", sorted(STRUCT_CASES))
def test_declaration_parses_builds_and_compiles(name: str) -> None:
    data, value = STRUCT_CASES[name]
    check_struct(DECLARATIONS[name], data, value)


_U16 = st.integers(0, 0xFFFF)


@settings(max_examples=200, deadline=None)
@given(
    ipv4=st.ip_addresses(v=4),
    ipv6=st.ip_addresses(v=6),
    preference=_U16,
    strings=st.lists(st.binary(max_size=255), min_size=1, max_size=4),
    srv=st.tuples(_U16, _U16, _U16),
)
def test_encode_rdata_writes_what_the_declarations_build(
    ipv4: ipaddress.IPv4Address,
    ipv6: ipaddress.IPv6Address,
    preference: int,
    strings: list[bytes],
    srv: tuple[int, int, int],
) -> None:
    """The transfer's hot path writes A, AAAA, MX, TXT and SRV without construct: same bytes."""
    root = b"\x00"
    priority, weight, port = srv
    cases = [
        (A(str(ipv4)), DECLARATIONS["IPV4"].build({"address": ipv4.packed})),
        (AAAA(str(ipv6)), DECLARATIONS["IPV6"].build({"address": ipv6.packed})),
        (
            MX(preference, Name(())),
            DECLARATIONS["PREFERENCE"].build({"preference": preference}) + root,
        ),
        (TXT(tuple(strings)), DECLARATIONS["TXT_STRINGS"].build({"strings": strings})),
        (
            SRV(priority, weight, port, Name(())),
            DECLARATIONS["SRV_FIELDS"].build({"priority": priority, "weight": weight, "port": port})
            + root,
        ),
    ]
    for rdata, expected in cases:
        out = bytearray()
        encode_rdata(rdata, out, None)
        assert bytes(out) == expected, rdata


@settings(max_examples=200, deadline=None)
@given(
    rtype=st.integers(0xFF00, 0xFFFF),
    rclass=_U16,
    ttl=st.integers(0, 2**32 - 1),
    data=st.binary(max_size=300),
)
def test_record_fixed_part_is_what_rr_fixed_builds(
    rtype: int, rclass: int, ttl: int, data: bytes
) -> None:
    """A record's type, class, TTL and rdlength are written as the RR_FIXED declaration builds."""
    record = ResourceRecord(Name(()), Unknown(rtype, data), ttl, rclass)
    wire = build_message(Message(Header(1, qr=True), (), (record,)))
    fixed = DECLARATIONS["RR_FIXED"].build(
        {"rtype": rtype, "rclass": rclass, "ttl": ttl, "rdlength": len(data)}
    )
    assert wire[12:] == b"\x00" + fixed + data


def _response_with_every_type() -> dns.message.Message:
    query = dns.message.make_query("WWW.framing.test.", "ANY", use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    for rtype, text in [
        ("A", "192.0.2.1"),
        ("AAAA", "2001:db8::1"),
        ("NS", "ns1.framing.test."),
        ("MX", "10 mail.framing.test."),
        ("TXT", '"a b" "" "c"'),
        ("PTR", "www.framing.test."),
        ("SRV", "1 2 3 www.framing.test."),
        ("SOA", "ns1.framing.test. hostmaster.framing.test. 1 2 3 4 5"),
        ("TYPE65280", r"\# 3 010203"),
    ]:
        response.answer.append(dns.rrset.from_text("WWW.framing.test.", 300, "IN", rtype, text))
    response.authority.append(
        dns.rrset.from_text("alias.framing.test.", 60, "IN", "CNAME", "www.framing.test.")
    )
    return response


def test_parse_then_build_is_byte_identical_to_dnspython() -> None:
    response = _response_with_every_type()
    wire = response.to_wire()
    message = parse_message(wire)
    assert build_message(message) == wire
    assert [r.rtype for r in message.answers] == [1, 28, 2, 15, 16, 12, 33, 6, 65280]
    assert message.answers[1].rdata == AAAA("2001:db8::1")
    assert message.answers[3].rdata == MX(10, Name.from_text("mail.framing.test."))
    assert message.answers[4].rdata == TXT((b"a b", b"", b"c"))
    assert message.answers[6].rdata == SRV(1, 2, 3, Name.from_text("www.framing.test."))
    assert message.answers[8].rdata == Unknown(65280, b"\x01\x02\x03")
    assert message.edns == Edns(payload_size=response.payload)


def test_build_is_read_by_dnspython() -> None:
    message = Message(
        Header(7, qr=True, aa=True, rd=True, rcode=3),
        (Question(Name.from_text("x.framing.test."), RecordType.A),),
        (ResourceRecord(Name.from_text("x.framing.test."), A("192.0.2.9"), 60),),
        edns=Edns(payload_size=4096, dnssec_ok=True, options=(EdnsOption(10, b"12345678"),)),
    )
    theirs = dns.message.from_wire(build_message(message))
    assert theirs.id == 7
    assert theirs.rcode() == 3
    assert theirs.payload == 4096
    assert theirs.ednsflags & dns.flags.DO
    assert theirs.options[0].otype == 10
    assert str(theirs.answer[0][0]) == "192.0.2.9"


def test_parse_error_carries_the_query_id() -> None:
    with pytest.raises(DNSFormatError) as info:
        parse_message(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www")
    assert info.value.query_id == 0xABCD
    with pytest.raises(DNSFormatError) as short:
        parse_message(b"\xab")
    assert short.value.query_id is None


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (b"\x00\x01\x00\x00\x00\x00", "shorter than a header"),
        (b"\x00\x01\x00\x00\xff\xff" + b"\x00" * 6, "past the end"),  # qdcount 65535
        (b"\x00\x01\x00\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01", "backwards"),
        (b"\x00\x01\x00\x00\x00\x01" + b"\x00" * 6 + b"\x41a\x00\x00\x01\x00\x01", "reserved"),
        (b"\x00\x01\x00\x00\x00\x00" + b"\x00" * 6 + b"junk", "after the last record"),
        # An A record with 3 bytes of data.
        (
            b"\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01"
            b"\x00\x00\x00\x00\x00\x03abc",
            "A record of 3 bytes",
        ),
        # A TXT record whose string claims more bytes than the record holds.
        (
            b"\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x10\x00\x01"
            b"\x00\x00\x00\x00\x00\x03\x05ab",
            "TXT string",
        ),
        # Two OPT records.
        (
            b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
            + b"\x00\x00\x29\x02\x00"
            + b"\x00" * 6
            + b"\x00\x00\x29\x02\x00"
            + b"\x00" * 6,
            "OPT",
        ),
    ],
)
def test_parse_rejects_malformed_messages(wire: bytes, match: str) -> None:
    with pytest.raises(DNSFormatError, match=match):
        parse_message(wire)


def test_decode_rdata_standalone() -> None:
    assert decode_rdata(1, b"\xc0\x00\x02\x01") == A("192.0.2.1")
    assert decode_rdata(99, b"xyz") == Unknown(99, b"xyz")
    with pytest.raises(DNSFormatError):
        decode_rdata(5, b"\xc0\x00")


def test_build_rejects_values_out_of_range() -> None:
    too_long = Message(Header(0), answers=(ResourceRecord(Name(()), TXT((b"x" * 256,)), 1),))
    with pytest.raises(ValueError, match="255"):
        build_message(too_long)
    with pytest.raises(ValueError, match="encode"):
        build_message(Message(Header(70000)))
    with pytest.raises(ValueError, match="own class"):
        Unknown(1, b"")


# --- properties --------------------------------------------------------------

ZONE = example_zone()
AUTHORITY = Authority(ZONE, cache_size=0)
_OWNERS = [
    *sorted({r.name.to_text() for r in ZONE.records}),
    "nothing.framing.test.",
    "empty.framing.test.",
    "a.b.c.framing.test.",
    "elsewhere.example.",
    ".",
]
_QTYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 65280, 255, 99, 252]


@st.composite
def queries(draw: st.DrawFn) -> Message:
    """Every kind of query the server answers: names in and out of the zone, any case."""
    text = draw(st.sampled_from(_OWNERS))
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))
    edns = draw(
        st.none()
        | st.builds(
            Edns,
            payload_size=st.integers(0, 65535),
            version=st.sampled_from([0, 0, 1]),
            dnssec_ok=st.booleans(),
        )
    )
    header = Header(draw(st.integers(0, 0xFFFF)), rd=draw(st.booleans()), cd=draw(st.booleans()))
    qclass = draw(st.sampled_from([1, 1, 255, 3]))
    return Message(
        header, (Question(Name.from_text(text), draw(st.sampled_from(_QTYPES)), qclass),), edns=edns
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries(), st.booleans())
def test_every_answer_round_trips(query: Message, udp: bool) -> None:
    answer = AUTHORITY.answer(query)
    assert parse_message(build_message(answer)) == answer
    wire = AUTHORITY.respond(build_message(query), udp=udp)
    assert wire is not None
    assert build_message(parse_message(wire)) == wire


_SEEDS = [
    build_message(q)
    for q in [
        Message(Header(1), (Question(Name.from_text("www.framing.test."), 1),), edns=Edns()),
        AUTHORITY.answer(
            Message(Header(2), (Question(Name.from_text("_http._tcp.framing.test."), 33),))
        ),
        AUTHORITY.answer(Message(Header(3), (Question(Name.from_text("x.framing.test."), 1),))),
    ]
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        position = draw(st.integers(0, len(data)))
        if kind == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[position:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80) | mutated())
def test_parse_random_bytes_raises_only_format_errors(wire: bytes) -> None:
    try:
        message = parse_message(wire)
    except DNSFormatError as exc:
        error = exc
    else:
        # Whatever parses builds again, and what that builds parses to the same message.
        assert parse_message(build_message(message)) == message
        return
    assert error.query_id == (int.from_bytes(wire[:2], "big") if len(wire) >= 2 else None)


NEWER_TYPES = [
    ("DNAME", "other.framing.test."),
    ("NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.framing.test.'),
    ("DS", "12345 13 2 " + "ab" * 32),
    ("SSHFP", "4 2 " + "cd" * 32),
    ("DNSKEY", "257 3 13 AQIDBA=="),
    ("TLSA", "3 1 1 " + "ef" * 32),
    ("SVCB", "1 svc.framing.test. alpn=h2,h3 port=8443 ipv6hint=::1"),
    ("HTTPS", "0 www.framing.test."),
    ("CAA", '0 issue "ca.test"'),
]


def test_newer_types_parse_and_build_byte_identical_to_dnspython() -> None:
    """Issue 13: DNAME, NAPTR, DS, SSHFP, DNSKEY, TLSA, SVCB, HTTPS, CAA are typed, not opaque."""
    response = dns.message.make_response(dns.message.make_query("www.framing.test.", "ANY"))
    for rtype, text in NEWER_TYPES:
        response.answer.append(dns.rrset.from_text("www.framing.test.", 300, "IN", rtype, text))
    wire = response.to_wire()
    message = parse_message(wire)
    assert build_message(message) == wire
    assert [type(r.rdata).__name__ for r in message.answers] == [t for t, _ in NEWER_TYPES]


@pytest.mark.parametrize(
    ("rtype", "data", "match"),
    [
        (RecordType.DS, b"\x00\x01\x02", "too short"),
        (RecordType.NAPTR, b"\x00\x01\x00\x02\x05ab", "character-string"),
        (RecordType.CAA, b"\x00\x09issue", "CAA tag"),
        (RecordType.SVCB, b"\x00\x01\x00\x00\x03\x00\x02\x01", "SvcParam runs past"),
        (RecordType.SVCB, b"\x00\x01\x00\x00\x03\x00\x00\x00\x01\x00\x00", "increasing"),
        (RecordType.DNAME, b"\x01a\x00\x00", "does not fill"),
    ],
)
def test_newer_types_refuse_bad_data(rtype: int, data: bytes, match: str) -> None:
    with pytest.raises(DNSFormatError, match=match):
        decode_rdata(rtype, data)


# --- streams of messages (zone transfers) --------------------------------------


def _records(count: int) -> list[ResourceRecord]:
    return [
        ResourceRecord(Name.from_text(f"host{i}.framing.test."), TXT((b"x" * 100,)), 60)
        for i in range(count)
    ]


def test_build_messages_fills_each_message_up_to_the_limit() -> None:
    records = _records(1000)
    question = Question(Name.from_text("framing.test."), RecordType.AXFR)
    header = Header(7, qr=True, aa=True)
    wires = list(build_messages(header, question, records, edns=Edns(1232), limit=8192))
    assert len(wires) > 10
    assert all(len(w) <= 8192 for w in wires)
    messages = [parse_message(w) for w in wires]
    # The question in the first message only (RFC 5936 2.2.1); the OPT in each.
    assert [len(m.questions) for m in messages] == [1] + [0] * (len(wires) - 1)
    assert all(m.edns is not None and m.header.id == 7 and m.header.aa for m in messages)
    assert [r for m in messages for r in m.answers] == records
    # Full: the next record would not have fitted in any message but the last.
    for wire in wires[:-1]:
        assert len(wire) + 120 > 8192


def test_build_messages_compresses_each_message_on_its_own() -> None:
    wires = list(build_messages(Header(1, qr=True), None, _records(50), limit=2048))
    assert len(wires) > 1
    for wire in wires:  # every message decodes alone: no pointer into another
        assert dns.message.from_wire(wire).answer
    # Compressed: the second owner's "framing.test." is a pointer, not 14 bytes again.
    assert len(wires[0]) < 12 + sum(len(r.name.to_text()) + 1 + 10 + 101 for r in _records(16))


def test_build_messages_with_no_record_is_one_empty_message() -> None:
    (wire,) = build_messages(Header(1, qr=True), None, [])
    assert parse_message(wire).answers == ()


def test_build_messages_refuses_a_record_larger_than_a_message() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        list(build_messages(Header(1, qr=True), None, _records(1), limit=100))
