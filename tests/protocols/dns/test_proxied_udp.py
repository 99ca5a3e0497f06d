"""protocols/dns/proxied_udp.py: a PROXY v2 header before each UDP datagram from a proxy."""

from __future__ import annotations

import logging
import socket
from functools import partial

import anyio
import dns.message
import dns.rcode
import pytest

from framing.errors import ProxyHeaderError
from framing.proxy import ProxyCommand, ProxyHeader
from protocols.dns.proxied_udp import read_datagram_header
from protocols.dns.server import DNSServerInfo, run_dns_server

PROXY = "127.0.0.1"
CLIENT = "127.0.0.2"  # not a proxy


def header(source: str = "192.0.2.7", port: int = 40000, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "version": 2,
        "command": ProxyCommand.PROXY,
        "family": socket.AF_INET,
        "protocol": socket.SOCK_DGRAM,
        "source_address": source,
        "source_port": port,
        "destination_address": "127.0.0.1",
        "destination_port": 53,
        "tlvs": (),
        "size": 0,
    }
    fields.update(changes)
    return ProxyHeader(**fields).to_bytes()  # type: ignore[arg-type]


def query(name: str = "www.framing.test", qid: int = 7) -> bytes:
    return bytes(dns.message.make_query(name, "A", id=qid).to_wire())


def test_read_datagram_header_splits_header_and_query() -> None:
    parsed, rest = read_datagram_header(header() + query())
    assert (parsed.source_address, parsed.source_port, parsed.version) == ("192.0.2.7", 40000, 2)
    assert rest == query()


@pytest.mark.parametrize(
    ("datagram", "words"),
    [
        (query(), "not a PROXY header"),
        (header()[:20], "ended 20 bytes into a PROXY header"),  # cut inside the addresses
        (b"\r\n\r\n\x00\r\nQUIT\n", "ended 12 bytes into"),  # the signature alone
    ],
)
def test_read_datagram_header_refuses_what_is_not_a_whole_header(
    datagram: bytes, words: str
) -> None:
    with pytest.raises(ProxyHeaderError, match=words):
        read_datagram_header(datagram)


async def exchange(port: int, source: str, data: bytes, *, wait: float = 5.0) -> bytes | None:
    """Send one datagram from ``source``; return the reply, or ``None`` after ``wait`` s."""
    async with await anyio.create_udp_socket(local_host=source) as sock:
        await sock.sendto(data, "127.0.0.1", port)
        with anyio.move_on_after(wait):
            reply, _ = await sock.receive()
            return reply
    return None


@pytest.mark.anyio
async def test_udp_from_a_proxy_is_answered_after_its_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "protocols.dns")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            info: DNSServerInfo = await tg.start(
                partial(run_dns_server, port=0, proxy_protocol=[PROXY])
            )
            # From the proxy, with its header: answered, to the proxy, bare.
            reply = await exchange(info.port, PROXY, header() + query(qid=11))
            assert reply is not None
            answer = dns.message.from_wire(reply)
            assert (answer.id, answer.rcode()) == (11, dns.rcode.NOERROR)
            assert answer.answer
            # A LOCAL header (a health check): answered too.
            local = header(command=ProxyCommand.LOCAL)
            reply = await exchange(info.port, PROXY, local + query(qid=12))
            assert reply is not None
            assert dns.message.from_wire(reply).id == 12
            # dnsdist's health check, byte for byte: LOCAL, family UNSPEC, no
            # addresses (Knot 3.2 drops it, so dnsdist marks Knot down).
            check = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
            reply = await exchange(info.port, PROXY, check + query(qid=16))
            assert reply is not None
            assert dns.message.from_wire(reply).id == 16
            # From the proxy without a header, or with a broken one: dropped, logged.
            assert await exchange(info.port, PROXY, query(qid=13), wait=0.5) is None
            assert await exchange(info.port, PROXY, header()[:20], wait=0.5) is None
            # From anyone else a header is never believed: its bytes are the "query".
            reply = await exchange(info.port, CLIENT, header() + query(qid=14))
            assert reply is not None
            assert dns.message.from_wire(reply, ignore_trailing=True).id != 14
            # ... and a plain query is answered as always.
            reply = await exchange(info.port, CLIENT, query(qid=15))
            assert reply is not None
            assert dns.message.from_wire(reply).id == 15
            tg.cancel_scope.cancel()
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped, caplog.text
    assert dropped[0].startswith("dropped 1 UDP datagram(s) from proxy 127.0.0.1:")
    assert "ProxyHeaderError" in dropped[0]
