from __future__ import annotations

import dns.zone
import pytest

from protocols.dns.errors import ZoneError
from protocols.dns.message import CNAME, MX, SOA, TXT, A, RecordType, Unknown, encode_rdata
from protocols.dns.names import Name
from protocols.dns.zone import EXAMPLE_ZONE_TEXT, example_zone, parse_zone

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
