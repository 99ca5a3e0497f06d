# ruff: noqa: E501 -- a base64 field of a master file is one word, whatever its length
"""Zones shared by the DNS tests: every address in them is a loopback address."""

from __future__ import annotations

#: A zone as an operator writes one: a delegation with glue (and one without a
#: DS), wildcards beside existing names and an empty non-terminal, DNAMEs in and
#: out of the zone, CNAME chains and loops, and every record type read by name.
#: ``test_knot.py`` serves it with Knot and with us and compares the answers.
OPERATOR_ZONE_TEXT = r"""$ORIGIN cmp.test.
$TTL 3600
@           SOA   ns1 hostmaster 2024060101 7200 3600 1209600 300
            NS    ns1
            NS    ns2
            MX    10 mail
            CAA   0 issue "ca.example.test"
            CAA   128 tbs "Unknown"
            HTTPS 1 . alpn="h2,h3" port=8443
ns1         A     127.0.0.11
ns2    300  A     127.0.0.12
            AAAA  ::1
mail        A     127.0.0.25
www         A     127.0.0.80
            A     127.0.0.81
            AAAA  ::1
            SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
_443._tcp.www TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
web         CNAME www
alias       CNAME web
outside     CNAME www.example.
dangling    CNAME nowhere
loop1       CNAME loop2
loop2       CNAME loop1
intosub     CNAME www.sub
sub         NS    ns.sub
            NS    ns1
            NS    ns.elsewhere.example.
            DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF 0123456789ABCDEF0123456789ABCDEF
ns.sub      A     127.0.0.53
            AAAA  ::1
deep.ns.sub A     127.0.0.54
nods        NS    ns.nods
ns.nods     A     127.0.0.55
*.wild      A     127.0.0.9
            TXT   "wild"
            MX    10 mail
exists.wild A     127.0.0.10
leaf.ent.wild A   127.0.0.11
*.cw        CNAME www
*.cwl       CNAME x.cwl
dn          DNAME www.example.
dz          DNAME tgt
www.tgt     A     127.0.0.70
dl1         DNAME dl2
dl2         DNAME dl1
dsub        DNAME sub
leaf.empty  A     127.0.0.99
nap         NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
            NAPTR 102 10 "U" "E2U+sip" "!^.*$!sip:info@example.test!" .
svc         SVCB  1 svc-target alpn=h2,h3 port=8443 ipv4hint=127.0.0.1,127.0.0.2 (
                  ipv6hint=::1 mandatory=port,alpn )
            SVCB  2 . key65000=opaque no-default-alpn alpn=h3 (
            ech=AEX+DQBBpQAgACB/ipq3vRs9+q0jLOhkd7Pw8wLBnyWWsdHmcr5zKcN4IAAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA= )
alias-svc   HTTPS 0 www
key         DNSKEY 257 3 13 (
                  mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+
                  KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== )
            DNSKEY 256 3 ECDSAP256SHA256 (
                  mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxIL
                  fDLUT0rAK9iUzy1L53eKGQ== )
opaque      TYPE65280 \# 4 7F000001
"""
