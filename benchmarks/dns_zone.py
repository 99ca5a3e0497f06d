"""The DNS query mixes, the bench zone, and the mix's records as text for unbound and dnslib.

The mix is every plain record set of our embedded zone (``framing.test.``)
that all three servers answer the same way: the apex's SOA, NS, MX and TXT,
addresses, SRV, PTR, a CNAME asked for itself. Left out: CNAME chains (servers
differ on following them), the TXT records too large for UDP, the quoted-string
and unknown-type records (written differently in each server's own syntax).

The records come from our own zone parser, rendered here in master-file
syntax, so the peers serve exactly the records ``framing dns`` serves.

The second mix (``wild_query_file``) asks what an operator's zone holds
beyond plain record sets: names that exist only through a wildcard, names at
and under a delegation (referrals, with glue), names rewritten by a DNAME and
CNAME chains. Its records are ``ZONE_ADDITIONS``, appended to the embedded
zone in ``zone_text()``: the file ``framing dns --zone`` and Knot both serve.
Every address added is a loopback address.
"""

from __future__ import annotations

import random
from typing import Any

#: (owner relative to the origin, type): the query file, in order.
MIX: tuple[tuple[str, str], ...] = (
    ("www", "A"),
    ("www", "AAAA"),
    ("@", "SOA"),
    ("@", "NS"),
    ("@", "MX"),
    ("@", "TXT"),
    ("ns1", "A"),
    ("ns1", "AAAA"),
    ("ns2", "A"),
    ("mail", "A"),
    ("mail2", "A"),
    ("_http._tcp", "SRV"),
    ("80.rev", "PTR"),
    ("web", "CNAME"),
    ("leaf.empty", "A"),
)


#: Appended to the embedded zone for the second mix: a wildcard beside a name
#: that exists, a delegation with glue, a DNAME, a wildcard CNAME and a chain.
ZONE_ADDITIONS = """\
; The wildcard and delegation mix (benchmarks/dns_zone.py): loopback addresses only.
*.wild      IN  A     127.0.0.9
            IN  TXT   "wildcard"
            IN  MX    10 mail
exists.wild IN  A     127.0.0.10
*.cw        IN  CNAME www
sub         IN  NS    ns.sub
            IN  NS    ns2.sub
ns.sub      IN  A     127.0.0.55
            IN  AAAA  ::1
ns2.sub     IN  A     127.0.0.56
dn          IN  DNAME tgt
www.tgt     IN  A     127.0.0.70
            IN  AAAA  ::1
chain       IN  CNAME alias      ; chain -> alias -> web -> www
"""

#: The second mix's shares: names under a wildcard, under the delegation, and
#: DNAME or CNAME chains.
WILD_SHARES = {"wildcard": 40, "delegation": 30, "chain": 30}
#: Queries in the second mix's file; each is asked in turn, as the first mix's are.
WILD_QUERIES = 300
WILD_SEED = 13


def zone_text() -> str:
    """The bench zone: the embedded zone with ``ZONE_ADDITIONS``."""
    from protocols.dns.zone import EXAMPLE_ZONE_TEXT

    return EXAMPLE_ZONE_TEXT + ZONE_ADDITIONS


def _label(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(3, 10)))


def wild_mix(count: int = WILD_QUERIES, seed: int = WILD_SEED) -> list[tuple[str, str]]:
    """The second mix: (owner relative to the origin, type), seeded, in the shares above."""
    rng = random.Random(seed)
    kinds = rng.choices(list(WILD_SHARES), weights=list(WILD_SHARES.values()), k=count)
    out = []
    for kind in kinds:
        label = _label(rng)
        if kind == "wildcard":
            out.append(
                rng.choice(
                    [
                        (f"{label}.wild", "A"),
                        (f"{label}.wild", "TXT"),
                        (f"{label}.wild", "MX"),
                        (f"{label}.wild", "AAAA"),  # NODATA from the wildcard
                        (f"{label}.cw", "A"),  # a wildcard CNAME, then www
                    ]
                )
            )
        elif kind == "delegation":
            out.append(
                rng.choice(
                    [
                        (f"{label}.sub", "A"),
                        (f"{label}.sub", "AAAA"),
                        (f"www.{label}.sub", "A"),
                        ("sub", "NS"),
                        ("ns.sub", "A"),  # glue: a referral, not an answer
                    ]
                )
            )
        else:
            out.append(
                rng.choice(
                    [
                        ("www.dn", "A"),  # DNAME, synthesized CNAME, www.tgt's A
                        ("www.dn", "AAAA"),
                        (f"{label}.dn", "A"),  # DNAME, CNAME, then NXDOMAIN
                        ("chain", "A"),  # chain -> alias -> web -> www
                        ("alias", "AAAA"),
                    ]
                )
            )
    return out


def wild_query_file() -> str:
    """dnsperf's input for the second mix."""
    base = origin()
    return "".join(f"{_absolute(owner, base)} {rtype}\n" for owner, rtype in wild_mix())


def _absolute(owner: str, origin: str) -> str:
    return origin if owner == "@" else f"{owner}.{origin}"


def origin() -> str:
    from protocols.dns.zone import EXAMPLE_ORIGIN

    return EXAMPLE_ORIGIN


def query_file() -> str:
    """dnsperf's input: one ``name TYPE`` per line."""
    base = origin()
    return "".join(f"{_absolute(owner, base)} {rtype}\n" for owner, rtype in MIX)


def _rdata_text(rdata: Any) -> tuple[str, str]:
    """(TYPE, rdata in master-file syntax) for the record types of the mix."""
    kind = type(rdata).__name__
    if kind in ("A", "AAAA"):
        return kind, str(rdata.address)
    if kind in ("NS", "CNAME", "PTR"):
        return kind, rdata.target.to_text()
    if kind == "MX":
        return kind, f"{rdata.preference} {rdata.exchange.to_text()}"
    if kind == "SRV":
        return kind, f"{rdata.priority} {rdata.weight} {rdata.port} {rdata.target.to_text()}"
    if kind == "SOA":
        return kind, (
            f"{rdata.mname.to_text()} {rdata.rname.to_text()} {rdata.serial} {rdata.refresh} "
            f"{rdata.retry} {rdata.expire} {rdata.minimum}"
        )
    if kind == "TXT":
        parts = []
        for s in rdata.strings:
            if any(c < 0x20 or c > 0x7E or c in b'"\\' for c in s):
                raise ValueError(f"TXT string needs escapes: {s!r}")
            parts.append('"' + s.decode() + '"')
        return kind, " ".join(parts)
    raise ValueError(f"record type {kind} is not in the mix")


def records() -> list[str]:
    """Every record of the mix's record sets, one master-file line each (absolute names)."""
    from protocols.dns.zone import example_zone

    zone = example_zone()
    base = origin()
    wanted = {(_absolute(owner, base).lower(), rtype) for owner, rtype in MIX}
    lines = []
    for record in zone.records:
        owner = record.name.to_text().lower()
        rtype = type(record.rdata).__name__
        if (owner, rtype) not in wanted:
            continue
        rtype, text = _rdata_text(record.rdata)
        lines.append(f"{owner} {record.ttl} IN {rtype} {text}")
    found = {(line.split()[0], line.split()[3]) for line in lines}
    missing = wanted - found
    if missing:
        raise ValueError(f"the zone has no records for {sorted(missing)}")
    return lines


def unbound_conf(directory: str, port: int) -> str:
    """unbound's configuration: local data only, loopback only, one thread, no privileges."""
    # Single quotes around a record that holds double quotes (a TXT), as unbound.conf(5) shows.
    local_data = "".join(
        f"    local-data: '{line}'\n" if '"' in line else f'    local-data: "{line}"\n'
        for line in records()
    )
    return f"""\
server:
    interface: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    username: ""
    chroot: ""
    directory: "{directory}"
    pidfile: "{directory}/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    incoming-num-tcp: 256
    tcp-idle-timeout: 30000
    local-zone: "{origin()}" static
{local_data}
remote-control:
    control-enable: no
"""
