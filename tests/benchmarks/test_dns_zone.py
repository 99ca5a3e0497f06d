"""The DNS benchmark's second mix: each of its queries is the kind of answer it claims to be.

No timing here. The mix claims shares of wildcard answers, referrals and
chains; these tests answer every query of it in-process from the bench zone
and check each one is what its share says, and that the additions change
nothing the first mix asks.
"""

from __future__ import annotations

from collections import Counter

from benchmarks import dns_zone
from protocols.dns.answer import Authority
from protocols.dns.message import (
    CNAME,
    DNAME,
    NS,
    Header,
    Message,
    Question,
    Rcode,
    RecordType,
)
from protocols.dns.names import Name
from protocols.dns.zone import example_zone, parse_zone

_TYPES = {"A": RecordType.A, "AAAA": RecordType.AAAA, "TXT": RecordType.TXT}
_TYPES |= {"MX": RecordType.MX, "NS": RecordType.NS, "SOA": RecordType.SOA}
_TYPES |= {"SRV": RecordType.SRV, "PTR": RecordType.PTR, "CNAME": RecordType.CNAME}


def _ask(authority: Authority, owner: str, rtype: str) -> Message:
    origin = Name.from_text(dns_zone.origin())
    name = Name.from_text(owner, origin=origin)
    return authority.answer(Message(Header(1), (Question(name, _TYPES[rtype]),)))


def _kind(answer: Message) -> str:
    """What an answer is: a referral, a chain, a wildcard's, or something else."""
    first = answer.answers[0].rdata if answer.answers else None
    if not answer.header.aa and any(isinstance(r.rdata, NS) for r in answer.authorities):
        return "delegation" if answer.additionals else "referral without glue"
    if isinstance(first, DNAME) or (
        isinstance(first, CNAME) and len(answer.answers) > 1 and answer.header.aa
    ):
        return "chain"
    if answer.header.aa and answer.rcode == Rcode.NOERROR:
        return "wildcard"
    return f"rcode {answer.rcode}"


def test_wild_mix_queries_get_wildcards_referrals_and_chains() -> None:
    authority = Authority(parse_zone(dns_zone.zone_text()))
    kinds = Counter()
    for owner, rtype in dns_zone.wild_mix():
        answer = _ask(authority, owner, rtype)
        kind = _kind(answer)
        if owner.endswith((".wild", ".cw")):
            assert kind in ("wildcard", "chain"), (owner, rtype, answer)
            # Synthesized from the wildcard: owned by the name asked (RFC 4592 3.3.3).
            assert all(r.name == answer.questions[0].name for r in answer.answers[:1])
            kind = "wildcard"
        kinds[kind] += 1
    assert set(kinds) == set(dns_zone.WILD_SHARES), kinds
    for kind, share in dns_zone.WILD_SHARES.items():
        assert abs(kinds[kind] / dns_zone.WILD_QUERIES * 100 - share) < 10, kinds


def test_plain_mix_answers_are_the_same_with_the_additions() -> None:
    """The first mix asks the bench zone what it asked the embedded zone: same answers."""
    embedded = Authority(example_zone())
    bench = Authority(parse_zone(dns_zone.zone_text()))
    for owner, rtype in dns_zone.MIX:
        assert _ask(bench, owner, rtype) == _ask(embedded, owner, rtype), (owner, rtype)


def test_zone_additions_are_loopback() -> None:
    additions = parse_zone(dns_zone.zone_text()).records[len(example_zone().records) :]
    assert additions
    for record in additions:
        address = getattr(record.rdata, "address", None)
        if address is not None:
            assert address.startswith("127.") or address == "::1", record
