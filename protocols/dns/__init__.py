"""A small authoritative DNS server: construct-declared messages, UDP and framed TCP.

::

    message.py   the RFC 1035 message, declared with construct, behind parse/build
    names.py     domain names, with compression (and its defences)
    zone.py      master files (RFC 1035 5) and the embedded example zone
    answer.py    the sans-IO authority: query bytes in, answer bytes out, cached;
                 zone transfers as a stream of messages, NOTIFY answered
    edns.py      the EDNS options answered: cookies, TCP keepalive, NSID
    server.py    UDP and TCP (LengthPrefixed(2)) on one port; transfers, NOTIFY sent
    client.py    a pipelined TCP client, answers matched by id
    cli.py       ``framing dns``; SIGHUP reloads the zone files
"""

from protocols.dns.answer import Authority
from protocols.dns.client import DNSClient, make_query, open_dns_client
from protocols.dns.errors import DNSError, DNSFormatError, ZoneError
from protocols.dns.message import Message, build_message, parse_message
from protocols.dns.names import Name
from protocols.dns.server import DNSServerInfo, run_dns_server
from protocols.dns.zone import Zone, example_zone, parse_zone

__all__ = [
    "Authority",
    "DNSClient",
    "DNSError",
    "DNSFormatError",
    "DNSServerInfo",
    "Message",
    "Name",
    "Zone",
    "ZoneError",
    "build_message",
    "example_zone",
    "make_query",
    "open_dns_client",
    "parse_message",
    "parse_zone",
    "run_dns_server",
]
