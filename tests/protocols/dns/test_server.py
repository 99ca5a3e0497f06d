from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import dns.asyncbackend
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from protocols.dns.client import DNSClient, make_query, open_dns_client
from protocols.dns.message import (
    Message,
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
    run_dns_server,
)
from protocols.dns.zone import example_zone
from tests.framing.transports import until

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
