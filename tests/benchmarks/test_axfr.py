"""The AXFR benchmark's zone: what it generates, and that a transfer carries all of it.

No timing here: ``make bench`` measures; these check that what it measures is
the zone it claims (a benchmark that transfers the wrong records proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections import Counter

from benchmarks import axfr
from protocols.dns.answer import Authority
from protocols.dns.message import (
    AAAA,
    SOA,
    A,
    Header,
    Message,
    Question,
    RecordType,
    build_message,
    parse_message,
)
from protocols.dns.zone import parse_zone


def test_zone_text_has_the_records_asked_each_distinct() -> None:
    zone = parse_zone(axfr.zone_text(3000))
    assert len(zone.records) == 3000
    assert len({(r.name.key, r.rtype, r.rdata) for r in zone.records}) == 3000
    kinds = Counter(type(r.rdata).__name__ for r in zone.records)
    assert set(axfr.MIX) <= set(kinds), kinds


def test_zone_text_addresses_are_loopback() -> None:
    """Nothing in the zone points away from the machine (issue 13's rule for test zones)."""
    for record in parse_zone(axfr.zone_text(3000)).records:
        if isinstance(record.rdata, A):
            assert ipaddress.IPv4Address(record.rdata.address).is_loopback, record
        elif isinstance(record.rdata, AAAA):
            mapped = ipaddress.IPv6Address(record.rdata.address).ipv4_mapped
            assert mapped is not None, record
            assert mapped.is_loopback, record


def test_zone_text_is_the_same_for_a_seed() -> None:
    assert axfr.zone_text(500) == axfr.zone_text(500)
    assert axfr.zone_text(500, seed=1) != axfr.zone_text(500)


def test_transfer_of_the_zone_carries_every_record_soa_first_and_last() -> None:
    zone = parse_zone(axfr.zone_text(5000))
    query = build_message(Message(Header(7), (Question(zone.origin, RecordType.AXFR),)))
    messages = Authority(zone).transfer(query)
    assert messages is not None
    records = [r for wire in messages for r in parse_message(wire).answers]
    assert len(records) == 5001  # the SOA again at the end (RFC 5936 2.2)
    assert isinstance(records[0].rdata, SOA)
    assert records[-1] == records[0]
    assert Counter(records[:-1]) == Counter(zone.records)
