from __future__ import annotations

import dns.zone
import pytest

from protocols.dns.errors import ZoneError
from protocols.dns.message import (
    CAA,
    CNAME,
    DNAME,
    DNSKEY,
    DS,
    HTTPS,
    MX,
    NAPTR,
    SOA,
    SSHFP,
    SVCB,
    TLSA,
    TXT,
    A,
    Header,
    Message,
    RecordType,
    Unknown,
    build_message,
    decode_rdata,
    encode_rdata,
    parse_message,
)
from protocols.dns.names import Name
from protocols.dns.zone import EXAMPLE_ZONE_TEXT, example_zone, parse_zone
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

MINIMAL = """\
$ORIGIN z.test.
$TTL 60
@ SOA ns hostmaster 1 2 3 4 5
"""


def test_parse_every_master_file_feature() -> None:
    zone = parse_zone(
        """\
; a comment line
$ORIGIN z.test.
$TTL 1h
@   IN  SOA ns.z.test. hostmaster (   ; parentheses across lines
        7       ; serial
        1d 2h 3w 300 )
    NS  ns                             ; owner repeated, class and TTL omitted
ns  30 IN A 192.0.2.1
ns  IN 40 AAAA 2001:db8::1             ; class before TTL
txt TXT "with ; semicolon" "quote \\" here" \\065\\066 plain
$ORIGIN sub.z.test.
mx  MX 5 @
al  CNAME mx.sub.z.test.
"""
    )
    assert zone.origin == Name.from_text("z.test.")
    soa = zone.records[0]
    assert soa.ttl == 3600
    assert soa.rdata == SOA(
        Name.from_text("ns.z.test."),
        Name.from_text("hostmaster.z.test."),
        7,
        86400,
        7200,
        3 * 604800,
        300,
    )
    assert zone.records[1].name == Name.from_text("z.test.")
    assert [r.ttl for r in zone.records[2:4]] == [30, 40]
    assert zone.records[4].rdata == TXT((b"with ; semicolon", b'quote " here', b"AB", b"plain"))
    assert zone.records[5].name == Name.from_text("mx.sub.z.test.")
    assert zone.records[5].rdata == MX(5, Name.from_text("sub.z.test."))
    assert zone.records[6].rdata == CNAME(Name.from_text("mx.sub.z.test."))


def test_parse_generic_rfc3597_form() -> None:
    zone = parse_zone(MINIMAL + "x TYPE65280 \\# 2 abCD\ny TYPE1 \\# 4 c0000201\n")
    assert zone.records[1].rdata == Unknown(65280, b"\xab\xcd")
    assert zone.records[2].rdata == A("192.0.2.1")


def test_parse_origin_given_by_the_caller() -> None:
    zone = parse_zone("@ 60 SOA ns hm 1 2 3 4 5\nwww 60 A 192.0.2.1\n", origin="o.test.")
    assert zone.records[1].name == Name.from_text("www.o.test.")


def test_soa_without_ttl_takes_its_minimum() -> None:
    zone = parse_zone("$ORIGIN z.test.\n@ SOA ns hm 1 2 3 4 77\n")
    assert zone.records[0].ttl == 77


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("www A 192.0.2.1\n", "no \\$ORIGIN"),
        (MINIMAL + "www A 192.0.2.999\n", "line 4"),
        (MINIMAL + "$INCLUDE other.zone\n", "unsupported directive"),
        (MINIMAL + "www CH A 192.0.2.1\n", "only IN"),
        (MINIMAL + "www A\n", "expected 1 fields"),
        (MINIMAL + "www FOO bar\n", "unknown record type"),
        (MINIMAL + 'www TXT "unterminated\n', "newline inside"),
        (MINIMAL + 'www TXT ( "a"\n', "never closed"),
        (MINIMAL + 'www TXT ) "a"\n', "without"),
        (MINIMAL + "www TYPE99 abc\n", "generic form"),
        (MINIMAL + "www TYPE99 \\# 3 ab\n", "announced 3"),
        (MINIMAL + "www.other.test. A 192.0.2.1\n", "outside the zone"),
        (MINIMAL + "www CNAME a\nwww A 192.0.2.1\n", "CNAME and other data"),
        (MINIMAL + "@ SOA ns hm 1 2 3 4 5\n", "exactly one SOA"),
        ("$ORIGIN z.test.\nwww A 192.0.2.1\n", "no TTL"),
        (MINIMAL + "www MX 70000 mail\n", "16-bit"),
        (MINIMAL + 'www TXT "' + "x" * 256 + '"\n', "over 255"),
    ],
)
def test_parse_rejects_bad_zones(text: str, match: str) -> None:
    with pytest.raises(ZoneError, match=match):
        parse_zone(text)


def test_embedded_zone_has_every_record_type() -> None:
    zone = example_zone()
    types = {r.rtype for r in zone.records}
    assert types >= {1, 2, 5, 6, 12, 15, 16, 28, 33, 65280}
    big = next(r for r in zone.records if r.name == Name.from_text("big.framing.test."))
    assert isinstance(big.rdata, TXT)
    assert sum(len(s) + 1 for s in big.rdata.strings) > 1232


def _wire(rdata: object) -> bytes:
    out = bytearray()
    encode_rdata(rdata, out, None)  # type: ignore[arg-type]
    return bytes(out)


def test_embedded_zone_reads_the_same_with_dnspython() -> None:
    ours = example_zone()
    theirs = dns.zone.from_text(EXAMPLE_ZONE_TEXT, origin=None, relativize=False)
    their_records = sorted(
        (
            name.to_text().lower(),
            int(rdataset.rdtype),
            rdataset.ttl,
            rdata.to_digestable(),
        )
        for name, rdataset in theirs.iterate_rdatasets()
        for rdata in rdataset
    )
    our_records = sorted(
        (r.name.to_text().lower(), r.rtype, r.ttl, _wire(r.rdata)) for r in ours.records
    )
    assert our_records == their_records
    assert len(our_records) == len(ours.records)
    assert str(theirs.origin) == str(ours.origin)
    assert RecordType.SOA in {t for _, t, _, _ in our_records}


def _their_wire(text: str) -> list[tuple[str, int, int, bytes]]:
    """Every record of a master file as dnspython reads it: owner, type, TTL, wire data."""
    theirs = dns.zone.from_text(text, origin=None, relativize=False, check_origin=False)
    return sorted(
        (name.to_text().lower(), int(rdataset.rdtype), rdataset.ttl, rdata.to_wire())
        for name, rdataset in theirs.iterate_rdatasets()
        for rdata in rdataset
    )


def _our_wire(text: str) -> list[tuple[str, int, int, bytes]]:
    return sorted(
        (r.name.to_text().lower(), r.rtype, r.ttl, _wire(r.rdata)) for r in parse_zone(text).records
    )


def test_operator_zone_reads_the_same_with_dnspython() -> None:
    """Issue 13: DNAME, CAA, DS, TLSA, SSHFP, NAPTR, SVCB, HTTPS, DNSKEY by name."""
    ours = _our_wire(OPERATOR_ZONE_TEXT)
    assert ours == _their_wire(OPERATOR_ZONE_TEXT)
    assert {t for _, t, _, _ in ours} >= {39, 257, 43, 52, 44, 35, 64, 65, 48}


@pytest.mark.parametrize(
    ("entry", "rdata"),
    [
        ("DNAME other.test.", DNAME(Name.from_text("other.test."))),
        ('CAA 0 issue "ca.test; account=1"', CAA(0, b"issue", b"ca.test; account=1")),
        ("CAA 128 iodef mailto:x@z.test", CAA(128, b"iodef", b"mailto:x@z.test")),
        (
            "DS 60485 5 1 2BB183AF5F22588179A53B0A 98631FAD1A292118",
            DS(60485, 5, 1, bytes.fromhex("2BB183AF5F22588179A53B0A98631FAD1A292118")),
        ),
        ("DS 1 RSASHA256 2 " + "ab" * 31 + " CD", DS(1, 8, 2, b"\xab" * 31 + b"\xcd")),
        ("DS 1 8 99 abcd", DS(1, 8, 99, b"\xab\xcd")),  # an unknown digest: any length
        ("TLSA 3 1 0 ab CD", TLSA(3, 1, 0, b"\xab\xcd")),
        ("SSHFP 1 2 " + "01" * 32, SSHFP(1, 2, b"\x01" * 32)),
        ("DNSKEY 256 3 ED25519 AQID BA==", DNSKEY(256, 3, 15, b"\x01\x02\x03\x04")),
        (
            'NAPTR 10 20 "s" "SIP+D2T" "" _sip._tcp',
            NAPTR(10, 20, b"s", b"SIP+D2T", b"", Name.from_text("_sip._tcp.z.test.")),
        ),
        ("SVCB 0 svc.test.", SVCB(0, Name.from_text("svc.test."), ())),
        (
            'HTTPS 1 . port=443 alpn="h2,h\\\\,x" key7="a b"',
            HTTPS(1, Name(()), ((1, b"\x02h2\x03h,x"), (3, b"\x01\xbb"), (7, b"a b"))),
        ),
    ],
)
def test_parse_new_types_by_name(entry: str, rdata: object) -> None:
    record = parse_zone(MINIMAL + "x " + entry + "\n").records[1]
    assert record.rdata == rdata
    assert _our_wire(MINIMAL + "x " + entry + "\n") == _their_wire(MINIMAL + "x " + entry + "\n")
    # The codec: through a whole message and back, and from the generic form.
    message = Message(Header(1, qr=True), answers=(record,))
    assert parse_message(build_message(message)).answers == (record,)
    assert decode_rdata(record.rtype, _wire(record.rdata)) == rdata


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("DNAME", "expected 1 fields"),
        ("CAA 0 is-sue x", "tag"),
        ("CAA 256 issue x", "8-bit"),
        ("DS 1 2 3 xyz", "hex"),
        ("DS 1 8 2 abcd", "digest type 2 is 32 bytes"),
        ("TLSA 3 1 1 abcd", "matching type 1 is 32 bytes"),
        ("SSHFP 1 1 abcd", "fingerprint type 1 is 20 bytes"),
        ("DNSKEY 256 3 13 !!!", "base64"),
        ("SVCB 1 . alpn", "needs a value"),
        ("SVCB 1 . port=1 port=2", "twice"),
        ("SVCB 1 . bogus=1", "unknown SvcParamKey"),
        ("DS 1 NOSUCHALG 99 ab", "algorithm"),
    ],
)
def test_parse_rejects_bad_new_types(entry: str, match: str) -> None:
    with pytest.raises(ZoneError, match=match):
        parse_zone(MINIMAL + "x " + entry + "\n")
