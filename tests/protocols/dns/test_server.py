from __future__ import annotations

import inspect
import os
import re
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from protocols.dns.answer import Authority
from protocols.dns.cli import _reload_on_hangup
from protocols.dns.client import DNSClient, make_query, open_dns_client
from protocols.dns.message import (
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
    build_message,
    encode_rdata,
    parse_message,
)
from protocols.dns.names import Name
from protocols.dns.server import (
    _UDP_BATCH,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MESSAGE_TIMEOUT,
    DNSServerInfo,
    _serial,
    _serve_udp,
    _Serving,
    run_dns_server,
    send_notify,
)
from protocols.dns.stats import CountingAuthority, DNSStats
from protocols.dns.zone import EXAMPLE_ZONE_TEXT, example_zone, parse_zone
from tests.framing.transports import until
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

ZONE = example_zone()
TIMEOUT = 10


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[DNSServerInfo]:
    async with anyio.create_task_group() as tg:
        info: DNSServerInfo = await tg.start(partial(run_dns_server, port=0, **options))
        try:
            yield info
        finally:
            tg.cancel_scope.cancel()


def _zone_rrsets() -> dict[tuple[str, int], list[bytes]]:
    """Every (owner, type) of the zone with its records' data, via dnspython's text form."""
    out: dict[tuple[str, int], list[bytes]] = {}
    for record in ZONE.records:
        data = bytearray()
        encode_rdata(record.rdata, data, None)
        out.setdefault((record.name.to_text(), record.rtype), []).append(bytes(data))
    return out


RRSETS = _zone_rrsets()
SMALL = sorted(k for k in RRSETS if not k[0].startswith(("big.", "medium.")))


def _check_answer(response: dns.message.Message, name: str, rtype: int) -> None:
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    (rrset,) = [r for r in response.answer if r.rdtype == rtype]
    assert rrset.name.to_text() == name
    got = sorted(rdata.to_digestable() for rdata in rrset)
    assert got == sorted(RRSETS[(name, rtype)])
    assert {rrset.ttl} == {
        r.ttl for r in ZONE.records if r.name.to_text() == name and r.rtype == rtype
    }


@pytest.mark.anyio
async def test_dnspython_reads_every_record_over_udp_and_tcp(anyio_backend: str) -> None:
    backend = dns.asyncbackend.get_backend(anyio_backend)
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            for name, rtype in SMALL:
                query = dns.message.make_query(name, dns.rdatatype.RdataType.make(rtype))
                udp = await dns.asyncquery.udp(
                    query, info.host, port=info.port, timeout=5, backend=backend
                )
                _check_answer(udp, name, rtype)
                tcp = await dns.asyncquery.tcp(
                    query, info.host, port=info.port, timeout=5, backend=backend
                )
                _check_answer(tcp, name, rtype)


@pytest.mark.anyio
async def test_large_txt_truncated_over_udp_whole_over_tcp(anyio_backend: str) -> None:
    # dnspython remembers the first backend it detects: name it every time.
    backend = dns.asyncbackend.get_backend(anyio_backend)
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            query = dns.message.make_query("big.framing.test.", "TXT", use_edns=0, payload=1232)
            udp = await dns.asyncquery.udp(
                query, info.host, port=info.port, timeout=5, backend=backend
            )
            assert udp.flags & dns.flags.TC
            assert udp.answer == []
            assert udp.question[0].name.to_text() == "big.framing.test."
            tcp = await dns.asyncquery.tcp(
                query, info.host, port=info.port, timeout=5, backend=backend
            )
            assert not tcp.flags & dns.flags.TC
            _check_answer(tcp, "big.framing.test.", RecordType.TXT)


@pytest.mark.anyio
async def test_pipelined_burst_of_100_queries_all_answered_by_id() -> None:
    names = [name for name, rtype in SMALL if rtype == RecordType.A]
    queries = [make_query(names[i % len(names)], RecordType.A) for i in range(100)]
    async with running() as info, open_dns_client(info.host, info.port) as client:
        with anyio.fail_after(TIMEOUT):
            answers = await client.exchange(queries)
    assert len(answers) == 100
    assert len({a.header.id for a in answers}) == 100
    for query, answer in zip(queries, answers, strict=True):
        assert answer.questions == query.questions
        assert answer.rcode == Rcode.NOERROR
        assert answer.answers


@pytest.mark.anyio
async def test_one_connection_is_reused_for_many_bursts() -> None:
    async with running() as info, open_dns_client(info.host, info.port) as client:
        with anyio.fail_after(TIMEOUT):
            for _ in range(5):
                answer = await client.query("www.framing.test.", RecordType.AAAA)
                assert answer.answers[0].rdata.address == "2001:db8::80"  # type: ignore[union-attr]


async def _raw_tcp(info: DNSServerInfo, frames: bytes) -> list[bytes]:
    """Send raw bytes on a new connection; return the frames read until the server closes."""
    out: list[bytes] = []
    async with await anyio.connect_tcp(info.host, info.port) as stream:
        await stream.send(frames)
        data = b""
        try:
            while True:
                data += await stream.receive()
                while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
                    size = int.from_bytes(data[:2], "big")
                    out.append(data[2 : 2 + size])
                    data = data[2 + size :]
                if len(out) >= frames.count(b"\xab\xcd"):
                    return out
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return out


def _frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


MALFORMED = {
    "short header": b"\xab\xcd\x01\x00\x00\x01",
    "compression loop": b"\xab\xcd\x01\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01",
    "bad label length": b"\xab\xcd\x01\x00\x00\x01" + b"\x00" * 6 + b"\x50abc\x00\x00\x01\x00\x01",
    "qdcount 0": b"\xab\xcd\x01\x00" + b"\x00" * 8,
    "qdcount 65535": b"\xab\xcd\x01\x00\xff\xff" + b"\x00" * 6,
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_query_gets_formerr_and_server_keeps_serving(case: str) -> None:
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            # Over TCP: FORMERR, then a good query on the same connection is answered.
            good = make_query("www.framing.test.", RecordType.A, query_id=0xABCD)
            answers = await _raw_tcp(info, _frame(MALFORMED[case]) + _frame(build_message(good)))
            assert [parse_message(a).rcode for a in answers] == [Rcode.FORMERR, Rcode.NOERROR]
            # Over UDP: FORMERR too.
            async with await anyio.create_connected_udp_socket(info.host, info.port) as udp:
                await udp.send(MALFORMED[case])
                answer = parse_message(await udp.receive())
                assert (answer.header.id, answer.rcode) == (0xABCD, Rcode.FORMERR)
            async with open_dns_client(info.host, info.port) as client:
                assert (await client.query("www.framing.test.", 1)).rcode == Rcode.NOERROR


@pytest.mark.anyio
@pytest.mark.parametrize(
    "frames",
    [b"\x00\x00", b"\x00\x01\xab", b"\xff\xff" + b"\x00" * 100],
    ids=["zero-length frame", "one-byte frame", "oversized frame"],
)
async def test_bad_frame_closes_only_that_connection(frames: bytes) -> None:
    async with running() as info, open_dns_client(info.host, info.port) as bystander:
        with anyio.fail_after(TIMEOUT):
            assert await _raw_tcp(info, frames) == []  # closed without an answer
            assert (await bystander.query("www.framing.test.", 1)).rcode == Rcode.NOERROR


@pytest.mark.anyio
async def test_short_frame_after_queries_answers_them_then_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = [
        build_message(make_query("www.framing.test.", RecordType.A, query_id=i)) for i in (1, 2)
    ]
    # Two queries, a frame with no id, and a query after it, in one write.
    frames = _frame(good[0]) + _frame(good[1]) + b"\x00\x01\xab" + _frame(good[0])
    caplog.set_level("INFO", logger="framing.server")
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            answers = await _raw_tcp(info, frames)
            await until(lambda: info.tcp.stats.connections_open == 0)
    assert [parse_message(a).header.id for a in answers] == [1, 2]
    assert info.tcp.stats.errors == {"MalformedFrame": 1}
    (line,) = [r.getMessage() for r in caplog.records if r.name == "framing.server"]
    assert "MalformedFrame" in line
    assert "1-byte message has no id" in line


@pytest.mark.anyio
async def test_idle_connection_is_closed() -> None:
    async with running(idle_timeout=0.2) as info:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp(info.host, info.port) as stream:
                started = time.monotonic()
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
                assert time.monotonic() - started < TIMEOUT


@pytest.mark.anyio
async def test_at_the_connection_limit_the_idle_connection_is_shed_for_a_newcomer() -> None:
    """RFC 7766 6.2.3: under load, close idle connections early rather than refuse."""
    async with (
        running(max_connections=1) as info,
        open_dns_client(info.host, info.port) as first,
    ):
        with anyio.fail_after(TIMEOUT):
            assert (await first.query("www.framing.test.", 1)).rcode == Rcode.NOERROR
            async with open_dns_client(info.host, info.port) as second:
                assert (await second.query("www.framing.test.", 1)).rcode == Rcode.NOERROR
            assert info.tcp.stats.connections_shed == 1
            assert info.tcp.stats.connections_refused == 0
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
                await first.query("www.framing.test.", 1)


@pytest.mark.anyio
async def test_at_the_per_peer_limit_only_that_peers_idle_connection_is_shed() -> None:
    """One address past its limit sheds its own idle connection; another address is untouched."""
    query = build_message(make_query("www.framing.test.", RecordType.A, query_id=7))
    async with (
        running(max_connections_per_peer=1) as info,
        # 127.0.0.2 is another peer on Linux's loopback: it has a slot of its own.
        await anyio.connect_tcp(info.host, info.port, local_host="127.0.0.2") as other,
        open_dns_client(info.host, info.port) as first,
    ):
        with anyio.fail_after(TIMEOUT):
            assert (await first.query("www.framing.test.", 1)).rcode == Rcode.NOERROR
            async with open_dns_client(info.host, info.port) as second:
                assert (await second.query("www.framing.test.", 1)).rcode == Rcode.NOERROR
            assert info.tcp.stats.connections_shed == 1
            await other.send(len(query).to_bytes(2, "big") + query)
            framed = b""
            while len(framed) < 2 or len(framed) < 2 + int.from_bytes(framed[:2], "big"):
                framed += await other.receive()
            assert parse_message(framed[2:]).header.id == 7


@pytest.mark.anyio
async def test_tcp_behind_a_proxy_the_per_peer_limit_counts_its_clients() -> None:
    """PROXY v1 headers from the trusted 127.0.0.1 name two clients: each has its own slot."""
    query = build_message(make_query("www.framing.test.", RecordType.A, query_id=9))

    async def ask(stream: anyio.abc.ByteStream, client: str) -> None:
        await stream.send(f"PROXY TCP4 {client} 127.0.0.1 5000 53\r\n".encode())
        await stream.send(len(query).to_bytes(2, "big") + query)
        framed = b""
        while len(framed) < 2 or len(framed) < 2 + int.from_bytes(framed[:2], "big"):
            framed += await stream.receive()
        assert parse_message(framed[2:]).header.id == 9

    async with (
        running(max_connections_per_peer=1, proxy_protocol=["127.0.0.1"]) as info,
        await anyio.connect_tcp(info.host, info.port) as first,
        await anyio.connect_tcp(info.host, info.port) as second,
    ):
        with anyio.fail_after(TIMEOUT):
            await ask(first, "192.0.2.1")
            await ask(second, "192.0.2.2")
            assert info.tcp.stats.connections_shed == 0
            async with await anyio.connect_tcp(info.host, info.port) as again:
                await ask(again, "192.0.2.1")
            assert info.tcp.stats.connections_shed == 1


@pytest.mark.anyio
async def test_no_answer_to_a_response_over_udp() -> None:
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.create_connected_udp_socket(info.host, info.port) as udp:
                await udp.send(b"\x00\x07\x80\x00" + b"\x00" * 8)  # QR set: ignored
                await udp.send(b"\x00\x08\x00\x00" + b"\x00" * 8)  # qdcount 0: FORMERR
                answer = parse_message(await udp.receive())
                assert answer.header.id == 8


@pytest.mark.anyio
async def test_client_queries_per_second() -> None:
    """Not a timing assertion: the figure is printed for the report (pytest -s)."""
    names = [name for name, rtype in SMALL if rtype == RecordType.A]
    burst = [
        build_message(make_query(names[i % len(names)], RecordType.A, query_id=i))
        for i in range(500)
    ]
    async with running() as info, open_dns_client(info.host, info.port) as client:
        with anyio.fail_after(60):
            started = time.perf_counter()
            total = 0
            for _ in range(20):
                answers = await client.exchange_raw(burst)
                total += len(answers)
            elapsed = time.perf_counter() - started
    assert [a[:2] for a in answers] == [q[:2] for q in burst]
    assert total == 10_000
    print(f"\n{total / elapsed:,.0f} queries/s over one pipelined TCP connection")


@pytest.mark.anyio
async def test_client_answers_queries_from_many_tasks_at_once() -> None:
    """The client is a Requester keyed by id: tasks share one connection and reader."""
    names = [name for name, rtype in SMALL if rtype == RecordType.A]
    answers: dict[int, Message] = {}

    async def ask(client: DNSClient, i: int) -> None:
        answers[i] = await client.query(names[i % len(names)], RecordType.A)

    async with running() as info, open_dns_client(info.host, info.port) as client:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                for i in range(30):
                    tg.start_soon(ask, client, i)
    assert len(answers) == 30
    for i, answer in answers.items():
        assert answer.questions[0].name == Name.from_text(names[i % len(names)])
        assert answer.rcode == Rcode.NOERROR


def test_client_refuses_duplicate_ids() -> None:
    client = DNSClient.__new__(DNSClient)
    with pytest.raises(ValueError, match="two queries"):
        anyio.run(client.exchange_raw, [b"\x00\x01abc", b"\x00\x01def"])


@pytest.mark.anyio
async def test_udp_burst_is_answered_in_full() -> None:
    """More queries at once than one batch (_UDP_BATCH), each answered once, by id."""
    names = [name for name, rtype in SMALL if rtype == RecordType.A]
    queries = [
        build_message(make_query(names[i % len(names)], RecordType.A, query_id=i))
        for i in range(3 * _UDP_BATCH + 5)
    ]
    got: list[int] = []
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            async with (
                await anyio.create_connected_udp_socket(info.host, info.port) as udp,
                anyio.create_task_group() as tg,
            ):

                async def receive() -> None:
                    while len(got) < len(queries):
                        answer = parse_message(await udp.receive())
                        assert answer.rcode == Rcode.NOERROR
                        got.append(answer.header.id)

                tg.start_soon(receive)
                for query in queries:
                    await udp.send(query)
    assert sorted(got) == list(range(len(queries)))


@pytest.mark.anyio
async def test_udp_and_tcp_over_ipv6(anyio_backend: str) -> None:
    backend = dns.asyncbackend.get_backend(anyio_backend)
    async with running(host="::1") as info:
        with anyio.fail_after(TIMEOUT):
            for tcp in (False, True):
                query = dns.message.make_query("www.framing.test.", "A")
                ask = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
                response = await ask(query, "::1", port=info.port, timeout=TIMEOUT, backend=backend)
                _check_answer(response, "www.framing.test.", dns.rdatatype.A)


@pytest.mark.anyio
async def test_tcp_query_trickled_too_slowly_closes_the_connection() -> None:
    """RFC 7766 6.2.3: a client may not hold a connection by sending a query byte by byte."""
    async with running(message_timeout=0.2) as info:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp(info.host, info.port) as stream:
                await stream.send(b"\x00")  # the first byte of a length: a query has begun
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            await until(lambda: info.tcp.stats.connections_open == 0)
    assert info.tcp.stats.errors == {"MessageTimeout": 1}


def test_message_timeout_is_on_by_default_and_shorter_than_idle() -> None:
    default = inspect.signature(run_dns_server).parameters["message_timeout"].default
    assert default == DEFAULT_MESSAGE_TIMEOUT
    assert 0 < DEFAULT_MESSAGE_TIMEOUT <= DEFAULT_IDLE_TIMEOUT


# --- zone transfers (RFC 5936), NOTIFY (RFC 1996), reload, several addresses -----


def _large_zone_text(count: int) -> str:
    lines = [
        "$ORIGIN big.test.",
        "$TTL 300",
        "@ SOA ns1 hostmaster 1 7200 3600 1209600 300",
        "@ NS ns1",
        "ns1 A 127.0.0.53",
    ]
    lines += [
        f'h{i} A 127.0.{i // 250}.{i % 250 + 1}\nh{i} TXT "record {i:<80}"' for i in range(count)
    ]
    return "\n".join(lines) + "\n"


def _xfr(info: DNSServerInfo, origin: str, **options: Any) -> dns.zone.Zone:
    """dnspython's own transfer client, in a thread: the zone as it reads it."""
    return dns.zone.from_xfr(
        dns.query.xfr(info.host, origin, port=info.port, timeout=5, lifetime=10, **options)
    )


@pytest.mark.anyio
@pytest.mark.parametrize("rdtype", ["AXFR", "IXFR"])
async def test_axfr_gives_dnspython_the_zone_as_it_reads_the_file(rdtype: str) -> None:
    """Issue 13: dns.query.xfr raised TransferError. IXFR is answered as AXFR (RFC 1995 4)."""
    options: dict[str, Any] = {"rdtype": rdtype}
    if rdtype == "IXFR":
        options["serial"] = 1
    async with running(zone=parse_zone(OPERATOR_ZONE_TEXT), allow_transfer=["127.0.0.1"]) as info:
        with anyio.fail_after(TIMEOUT):
            theirs = await anyio.to_thread.run_sync(partial(_xfr, info, "cmp.test.", **options))
    assert theirs == dns.zone.from_text(OPERATOR_ZONE_TEXT)


@pytest.mark.anyio
async def test_axfr_of_a_large_zone_comes_in_several_full_messages() -> None:
    text = _large_zone_text(1500)
    async with running(zone=parse_zone(text), allow_transfer=["127.0.0.0/8"]) as info:
        with anyio.fail_after(TIMEOUT):
            query = build_message(make_query("big.test.", RecordType.AXFR, query_id=0xABCD))
            async with await anyio.connect_tcp(info.host, info.port) as stream:
                await stream.send(_frame(query))
                messages = await _read_transfer(stream)
            theirs = await anyio.to_thread.run_sync(partial(_xfr, info, "big.test."))
    assert len(messages) >= 3
    sizes = [len(m) for m in messages]
    assert max(sizes) <= 65535
    assert min(sizes[:-1]) > 60000  # each filled before the next begins
    records = [r for m in messages for r in parse_message(m).answers]
    assert records[0].rtype == records[-1].rtype == RecordType.SOA
    assert len(records) == 3000 + 4
    assert theirs == dns.zone.from_text(text)


async def _read_transfer(stream: anyio.abc.ByteStream) -> list[bytes]:
    """Read messages until the second SOA: the end of a transfer."""
    messages: list[bytes] = []
    data = b""
    soas = 0
    while soas < 2:
        data += await stream.receive()
        while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
            size = int.from_bytes(data[:2], "big")
            message = data[2 : 2 + size]
            data = data[2 + size :]
            messages.append(message)
            answer = parse_message(message)
            assert answer.rcode == Rcode.NOERROR, answer
            soas += sum(r.rtype == RecordType.SOA for r in answer.answers)
    return messages


@pytest.mark.anyio
async def test_axfr_refused_to_an_address_not_allowed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="protocols.dns")
    async with running(allow_transfer=["127.0.0.2", "10.0.0.0/8"]) as info:
        with anyio.fail_after(TIMEOUT):
            query = make_query("framing.test.", RecordType.AXFR, query_id=0xABCD)
            (answer,) = await _raw_tcp(info, _frame(build_message(query)))
    assert parse_message(answer).rcode == Rcode.REFUSED
    assert any(
        re.fullmatch(
            r"refused AXFR of framing\.test\. to 127\.0\.0\.1:\d+: "
            r"not an allowed address \(allow_transfer\)",
            r.getMessage(),
        )
        for r in caplog.records
    ), caplog.text


@pytest.mark.anyio
async def test_axfr_is_refused_by_default_and_over_udp(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="protocols.dns")
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            query = build_message(make_query("framing.test.", RecordType.AXFR, query_id=0xABCD))
            (answer,) = await _raw_tcp(info, _frame(query))
            assert parse_message(answer).rcode == Rcode.REFUSED
    async with running(allow_transfer=["127.0.0.1"]) as info:
        with anyio.fail_after(TIMEOUT):
            async with await anyio.create_connected_udp_socket(info.host, info.port) as udp:
                await udp.send(query)
                assert parse_message(await udp.receive()).rcode == Rcode.REFUSED
    assert "to 127.0.0.1:" in caplog.text
    assert "transfers go over TCP (RFC 5936 4.2)" in caplog.text


@pytest.mark.anyio
async def test_axfr_with_two_questions_gets_formerr() -> None:
    async with running(allow_transfer=["127.0.0.1"]) as info:
        with anyio.fail_after(TIMEOUT):
            question = make_query("framing.test.", RecordType.AXFR).questions[0]
            query = Message(Header(0xABCD), (question, question))
            good = make_query("www.framing.test.", RecordType.A, query_id=0xABCD)
            answers = await _raw_tcp(
                info, _frame(build_message(query)) + _frame(build_message(good))
            )
    assert [parse_message(a).rcode for a in answers] == [Rcode.FORMERR, Rcode.NOERROR]


@pytest.mark.anyio
async def test_a_transfer_keeps_the_zone_it_started_with() -> None:
    """Issue 13: replace_zones during a transfer changes queries after it, not the transfer."""
    old = parse_zone(_large_zone_text(1500))
    new = parse_zone(_large_zone_text(10).replace(" 1 7200", " 2 7200"))
    async with running(zone=old, allow_transfer=["127.0.0.1"]) as info:
        with anyio.fail_after(TIMEOUT):
            query = build_message(make_query("big.test.", RecordType.AXFR, query_id=0xABCD))
            async with await anyio.connect_tcp(info.host, info.port) as stream:
                await stream.send(_frame(query))
                first = await stream.receive(2)
                assert info.replace_zones([new]) == (new,)
                messages = await _read_transfer_after(stream, first)
            async with open_dns_client(info.host, info.port) as client:
                soa = (await client.query("big.test.", RecordType.SOA)).answers[0]
    records = [r for m in messages for r in parse_message(m).answers]
    assert len(records) == 3004
    assert {r.rdata.serial for r in records if isinstance(r.rdata, SOA)} == {1}
    assert isinstance(soa.rdata, SOA)
    assert soa.rdata.serial == 2
    assert info.zones == (new,)


async def _read_transfer_after(stream: anyio.abc.ByteStream, first: bytes) -> list[bytes]:
    class _Prefixed:
        def __init__(self) -> None:
            self.held = first

        async def receive(self) -> bytes:
            if self.held:
                held, self.held = self.held, b""
                return held
            return await stream.receive()

    return await _read_transfer(_Prefixed())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_notify_received_for_a_served_zone_is_noerror_with_aa(anyio_backend: str) -> None:
    backend = dns.asyncbackend.get_backend(anyio_backend)
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            notify = dns.message.make_query("framing.test.", "SOA")
            notify.set_opcode(dns.opcode.NOTIFY)
            notify.flags |= dns.flags.AA
            answer = await dns.asyncquery.udp(
                notify, info.host, port=info.port, timeout=5, backend=backend
            )
            assert (answer.rcode(), answer.opcode()) == (dns.rcode.NOERROR, dns.opcode.NOTIFY)
            assert answer.flags & dns.flags.AA
            notify = dns.message.make_query("example.", "SOA")
            notify.set_opcode(dns.opcode.NOTIFY)
            answer = await dns.asyncquery.udp(
                notify, info.host, port=info.port, timeout=5, backend=backend
            )
            assert answer.rcode() == dns.rcode.NOTAUTH


@pytest.mark.anyio
async def test_a_higher_serial_sends_notify_until_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 1996 3.6: the first NOTIFY goes unanswered here; the second is answered."""
    caplog.set_level("INFO", logger="protocols.dns")
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as secondary:
        port = secondary.extra(anyio.abc.SocketAttribute.local_port)
        async with running(notify=[("127.0.0.1", port)]) as info:
            with anyio.fail_after(TIMEOUT):
                same = info.replace_zones([ZONE])  # the same serial: no NOTIFY
                assert same == ()
                newer = parse_zone(EXAMPLE_ZONE_TEXT.replace("2024060101", "2024060102"))
                assert info.replace_zones([newer]) == (newer,)
                first, _ = await secondary.receive()
                second, peer = await secondary.receive()
                assert first == second  # the same NOTIFY, sent again
                notify = parse_message(second)
                assert (notify.header.opcode, notify.header.aa) == (Opcode.NOTIFY, True)
                assert notify.questions[0] == Question(Name.from_text("framing.test."), 6)
                assert notify.answers[0].rdata.serial == 2024060102  # type: ignore[union-attr]
                reply = Message(
                    Header(notify.header.id, qr=True, opcode=Opcode.NOTIFY, aa=True),
                    notify.questions,
                )
                await secondary.sendto(build_message(reply), *peer[:2])
                await until(lambda: "answered, rcode 0" in caplog.text)
    assert "NOTIFY for framing.test. serial 2024060102 to 127.0.0.1:" in caplog.text


@pytest.mark.anyio
async def test_send_notify_gives_up_after_its_attempts() -> None:
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as silent:
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(TIMEOUT):
            answered = await send_notify(ZONE, "127.0.0.1", port, attempts=3, first_wait=0.05)
            assert not answered
            received = 0
            with anyio.move_on_after(0.2):
                while True:
                    await silent.receive()
                    received += 1
    assert received == 3


@pytest.mark.anyio
async def test_several_hosts_share_one_port(anyio_backend: str) -> None:
    """Issue 13: one process on 127.0.0.1 and ::1 together, UDP and TCP on each."""
    async with running(host=["127.0.0.1", "::1"]) as info:
        assert info.hosts == ("127.0.0.1", "::1")
        with anyio.fail_after(TIMEOUT):
            for host in info.hosts:
                query = dns.message.make_query("www.framing.test.", "A")
                backend = dns.asyncbackend.get_backend(anyio_backend)
                for answer in (
                    await dns.asyncquery.udp(query, host, port=info.port, backend=backend),
                    await dns.asyncquery.tcp(query, host, port=info.port, backend=backend),
                ):
                    assert answer.rcode() == dns.rcode.NOERROR
                    assert len(answer.answer[0]) == 2


# --- EDNS: cookies, keepalive, NSID -------------------------------------------


def _cookie(response: dns.message.Message) -> dns.edns.CookieOption:
    (option,) = [o for o in response.options if o.otype == dns.edns.OptionType.COOKIE]
    assert isinstance(option, dns.edns.CookieOption)
    return option


@pytest.mark.anyio
async def test_dnspython_cookies_round_trip_and_a_bad_one_gets_badcookie(
    anyio_backend: str,
) -> None:
    """RFC 7873: a client cookie gets a server cookie; sent back, it is good; forged, BADCOOKIE."""
    backend = dns.asyncbackend.get_backend(anyio_backend)
    client = bytes.fromhex("0102030405060708")

    def query(server: bytes = b"") -> dns.message.Message:
        option = dns.edns.CookieOption(client, server)
        return dns.message.make_query("www.framing.test.", "A", use_edns=0, options=[option])

    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            udp = partial(dns.asyncquery.udp, where=info.host, port=info.port, backend=backend)
            first = await udp(query())
            assert first.rcode() == dns.rcode.NOERROR
            cookie = _cookie(first)
            assert (cookie.client, len(cookie.server)) == (client, 16)
            again = await udp(query(cookie.server))
            assert (again.rcode(), len(again.answer)) == (dns.rcode.NOERROR, 1)
            forged = await udp(query(bytes(16)))
            assert forged.rcode() == dns.rcode.BADCOOKIE
            assert forged.answer == []
            assert _cookie(forged).server != bytes(16)
            retried = await udp(query(_cookie(forged).server))
            assert retried.rcode() == dns.rcode.NOERROR


def _keepalive(response: dns.message.Message) -> int | None:
    found = [o for o in response.options if o.otype == dns.edns.OptionType.KEEPALIVE]
    if not found:
        return None
    return int.from_bytes(found[0].to_wire(), "big")


@pytest.mark.anyio
async def test_keepalive_states_the_idle_timeout_and_0_when_shedding(anyio_backend: str) -> None:
    """RFC 7828: TCP answers state the idle timeout in units of 100 ms; 0 at the limit."""
    backend = dns.asyncbackend.get_backend(anyio_backend)
    keepalive = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")
    query = dns.message.make_query("www.framing.test.", "A", use_edns=0, options=[keepalive])
    async with running(idle_timeout=2.5, max_connections=2) as info:
        with anyio.fail_after(TIMEOUT):
            tcp = partial(dns.asyncquery.tcp, where=info.host, port=info.port, backend=backend)
            assert _keepalive(await tcp(query)) == 25
            udp = await dns.asyncquery.udp(query, info.host, port=info.port, backend=backend)
            assert _keepalive(udp) is None
            async with open_dns_client(info.host, info.port) as other:
                assert (await other.query("www.framing.test.", 1)).rcode == Rcode.NOERROR
                # With this query's connection, two are open: the table is full.
                assert _keepalive(await tcp(query)) == 0
            await until(lambda: info.tcp.stats.connections_open == 0)
            assert _keepalive(await tcp(query)) == 25


@pytest.mark.anyio
async def test_nsid_is_given_when_configured(anyio_backend: str) -> None:
    backend = dns.asyncbackend.get_backend(anyio_backend)
    query = dns.message.make_query(
        "www.framing.test.", "A", use_edns=0, options=[dns.edns.NSIDOption(b"")]
    )
    async with running(nsid=b"ns1.framing.test") as info:
        with anyio.fail_after(TIMEOUT):
            answer = await dns.asyncquery.udp(query, info.host, port=info.port, backend=backend)
    (nsid,) = [o for o in answer.options if o.otype == dns.edns.OptionType.NSID]
    assert nsid.to_wire() == b"ns1.framing.test"


@pytest.mark.anyio
async def test_transfers_pipelined_beyond_the_queue_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A peer pipelining AXFR queries gets 4 queued; the rest REFUSED and logged."""
    caplog.set_level("INFO", logger="protocols.dns")
    async with running(allow_transfer=["127.0.0.1"]) as info:
        with anyio.fail_after(TIMEOUT):
            query = build_message(make_query("framing.test.", RecordType.AXFR, query_id=0xABCD))
            async with await anyio.connect_tcp(info.host, info.port) as stream:
                await stream.send(_frame(query) * 6)  # one write: read, and answered, together
                refused = soas = 0
                data = b""
                while soas < 8 or refused < 2:
                    data += await stream.receive()
                    while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
                        size = int.from_bytes(data[:2], "big")
                        message = parse_message(data[2 : 2 + size])
                        data = data[2 + size :]
                        refused += message.rcode == Rcode.REFUSED
                        soas += sum(r.rtype == RecordType.SOA for r in message.answers)
    assert (refused, soas) == (2, 8)
    assert caplog.text.count("too many transfers queued") == 2


@pytest.mark.anyio
async def test_sighup_builds_the_new_zones_index_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100,000-record zone's index takes seconds to build: a reload builds it in a worker
    thread, so the loop answers meanwhile (it was built on the loop)."""
    path = tmp_path / "cmp.test.zone"
    path.write_text(OPERATOR_ZONE_TEXT)
    built_on: list[threading.Thread] = []
    with_zones = Authority.with_zones

    def recording(self: Authority, zones: Any) -> Authority:
        built_on.append(threading.current_thread())
        return with_zones(self, zones)

    monkeypatch.setattr(Authority, "with_zones", recording)
    async with (
        running(zone=parse_zone(OPERATOR_ZONE_TEXT)) as info,
        anyio.create_task_group() as tg,
    ):
        await tg.start(_reload_on_hangup, info, [str(path)])
        path.write_text(OPERATOR_ZONE_TEXT.replace("2024060101", "2024060102"))
        os.kill(os.getpid(), signal.SIGHUP)
        with anyio.fail_after(TIMEOUT):
            await until(lambda: _serial(info.zones[0]) == 2024060102)
        tg.cancel_scope.cancel()
    assert built_on
    assert threading.main_thread() not in built_on


# --- the UDP fast path: ready answers, reload, cookies, counters (issue 15) ------


async def _ask_udp(info: DNSServerInfo, query: bytes, *, source: str = "127.0.0.1") -> Message:
    """One query over UDP from ``source``, and its answer."""
    async with await anyio.create_udp_socket(local_host=source) as udp:
        await udp.sendto(query, info.host, info.port)
        answer, _ = await udp.receive()
    return parse_message(answer)


def _addresses(answer: Message) -> list[str]:
    return sorted(r.rdata.address for r in answer.answers if isinstance(r.rdata, A))


def _a_query(name: str, query_id: int, *options: EdnsOption) -> bytes:
    edns = Edns(options=options) if options else None
    return build_message(make_query(name, RecordType.A, query_id=query_id, edns=edns))


@pytest.mark.anyio
async def test_udp_repeat_after_sighup_gets_the_new_zones_answer(tmp_path: Path) -> None:
    """A reload invalidates every ready answer: a repeat asked before it was held ready."""
    path = tmp_path / "framing.test.zone"
    path.write_text(EXAMPLE_ZONE_TEXT)
    async with (
        running(zone=parse_zone(EXAMPLE_ZONE_TEXT)) as info,
        anyio.create_task_group() as tg,
    ):
        await tg.start(_reload_on_hangup, info, [str(path)])
        with anyio.fail_after(TIMEOUT):
            for query_id in (1, 2):  # the second is answered from the ready answers
                answer = await _ask_udp(info, _a_query("www.framing.test.", query_id))
                assert answer.header.id == query_id
                assert _addresses(answer) == ["192.0.2.80", "192.0.2.81"]
            path.write_text(
                EXAMPLE_ZONE_TEXT.replace("2024060101", "2024060102").replace(
                    "www         IN  A     192.0.2.80", "www         IN  A     192.0.2.82"
                )
            )
            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: _serial(info.zones[0]) == 2024060102)
            answer = await _ask_udp(info, _a_query("www.framing.test.", 3))
        tg.cancel_scope.cancel()
    assert answer.header.id == 3
    assert _addresses(answer) == ["192.0.2.81", "192.0.2.82"]


@pytest.mark.anyio
async def test_udp_repeat_with_a_cookie_gets_a_cookie_made_for_its_own_client() -> None:
    """RFC 7873: the same query bytes from two addresses get two server cookies, each
    valid from its own address only: a cookie answer is never held ready."""
    client_cookie = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    query = _a_query("www.framing.test.", 7, EdnsOption(10, client_cookie))
    cookies: dict[str, bytes] = {}
    async with running() as info:
        with anyio.fail_after(TIMEOUT):
            for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
                answer = await _ask_udp(info, query, source=source)
                assert answer.rcode == Rcode.NOERROR
                assert answer.edns is not None
                (cookie,) = [o.data for o in answer.edns.options if o.code == 10]
                assert cookie[:8] == client_cookie
                cookies[source] = cookie[8:]
            assert cookies["127.0.0.1"] != cookies["127.0.0.2"]
            for source, server_cookie in cookies.items():
                for other in cookies:
                    option = EdnsOption(10, client_cookie + server_cookie)
                    answer = await _ask_udp(
                        info, _a_query("www.framing.test.", 8, option), source=other
                    )
                    want = Rcode.NOERROR if other == source else Rcode.BADCOOKIE
                    assert answer.rcode == want, (source, other)


@pytest.mark.anyio
async def test_udp_repeats_are_each_counted_in_the_stats() -> None:
    """--metrics: an answer served from the ready answers is counted like any other."""
    stats = DNSStats()
    async with running(stats=stats) as info:
        with anyio.fail_after(TIMEOUT):
            for query_id in range(5):
                answer = await _ask_udp(info, _a_query("www.framing.test.", query_id))
                assert answer.rcode == Rcode.NOERROR
            for query_id in range(3):
                answer = await _ask_udp(info, _a_query("nowhere.framing.test.", query_id))
                assert answer.rcode == Rcode.NXDOMAIN
    assert stats.queries == {("udp", "A", "NOERROR"): 5, ("udp", "A", "NXDOMAIN"): 3}


class _FullSocket(socket.socket):
    """A UDP socket whose first ``full`` sends find the buffer full (BlockingIOError),
    and whose first ``refused`` receives report an ICMP error (ConnectionRefusedError)."""

    full = 0
    refused = 0

    def recvfrom(self, size: int, flags: int = 0) -> tuple[bytes, Any]:
        if self.refused:
            self.refused -= 1
            raise ConnectionRefusedError
        return super().recvfrom(size, flags)

    def sendto(self, data: Any, address: Any) -> int:  # type: ignore[override]
        if self.full:
            self.full -= 1
            raise BlockingIOError
        return super().sendto(data, address)


@pytest.mark.parametrize(("full", "answered"), [(1, [1, 2]), (2, [2])])
@pytest.mark.anyio
async def test_udp_full_send_buffer_waits_once_then_drops_that_answer_only(
    full: int, answered: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A send that finds the buffer full waits for it once and tries again; full again,
    that answer is dropped (logged) and the next datagram is answered."""
    caplog.set_level("DEBUG", logger="protocols.dns")
    with _FullSocket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        sock.full = full
        port = sock.getsockname()[1]
        got: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_udp, sock, _Serving(Authority(ZONE), ()))
            with anyio.fail_after(TIMEOUT):
                async with await anyio.create_connected_udp_socket("127.0.0.1", port) as udp:
                    for query_id in (1, 2):
                        await udp.send(_a_query("www.framing.test.", query_id))
                    while answered[-1] not in got:
                        got.append(parse_message(await udp.receive()).header.id)
            tg.cancel_scope.cancel()
    assert got == answered
    dropped = [r for r in caplog.records if "dropped: the socket stayed full" in r.getMessage()]
    assert len(dropped) == full - 1


@pytest.mark.anyio
async def test_udp_queue_is_answered_in_batches_with_other_tasks_run_between() -> None:
    """A flood cannot starve TCP: with 200 datagrams queued at once, another task runs
    between batches of _UDP_BATCH answers, not only before the first and after the last."""
    stats = DNSStats()
    queued = 200
    seen: list[int] = []

    def answered() -> int:
        return sum(stats.queries.values())

    async def watch() -> None:
        while answered() < queued:
            seen.append(answered())
            await anyio.lowlevel.checkpoint()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            for query_id in range(queued):  # all queued before the server reads one
                client.sendto(_a_query("www.framing.test.", query_id), sock.getsockname())
            async with anyio.create_task_group() as tg:
                with anyio.fail_after(TIMEOUT):
                    tg.start_soon(watch)
                    tg.start_soon(
                        _serve_udp, sock, _Serving(CountingAuthority(ZONE, stats=stats), ())
                    )
                    await until(lambda: answered() == queued)
                tg.cancel_scope.cancel()
    assert 0 < len({n for n in seen if 0 < n < queued}) <= queued // _UDP_BATCH


@pytest.mark.anyio
async def test_udp_receive_error_is_logged_and_the_next_datagram_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An ICMP error reported on the socket (port unreachable for an earlier answer) is
    not fatal: logged at DEBUG, and the query queued behind it is answered."""
    caplog.set_level("DEBUG", logger="protocols.dns")
    with _FullSocket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        sock.refused = 1
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_udp, sock, _Serving(Authority(ZONE), ()))
            with anyio.fail_after(TIMEOUT):
                async with await anyio.create_connected_udp_socket(
                    "127.0.0.1", sock.getsockname()[1]
                ) as udp:
                    await udp.send(_a_query("www.framing.test.", 9))
                    answer = parse_message(await udp.receive())
            tg.cancel_scope.cancel()
    assert answer.header.id == 9
    assert [r.getMessage() for r in caplog.records if "receive failed" in r.getMessage()] == [
        "UDP receive failed: ConnectionRefusedError()"
    ]


@pytest.mark.anyio
async def test_udp_a_bug_in_answering_costs_that_datagram_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception out of the authority is logged with its traceback, and the next
    datagram is answered, on every loop (asyncio's readiness callback and trio's task)."""

    class Buggy(Authority):
        def respond(self, query: bytes, **options: Any) -> bytes | None:
            if query[:2] == b"\x00\x07":
                raise RuntimeError("a bug")
            return super().respond(query, **options)

    caplog.set_level("INFO", logger="protocols.dns")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_udp, sock, _Serving(Buggy(ZONE), ()))
            with anyio.fail_after(TIMEOUT):
                async with await anyio.create_connected_udp_socket(
                    "127.0.0.1", sock.getsockname()[1]
                ) as udp:
                    await udp.send(_a_query("www.framing.test.", 7))
                    await udp.send(_a_query("www.framing.test.", 8))
                    answer = parse_message(await udp.receive())
            tg.cancel_scope.cancel()
    assert answer.header.id == 8
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith("answering a UDP query from 127.0.0.1:")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
