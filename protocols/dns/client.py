"""A small DNS client over one TCP connection: many queries in flight, answers matched by id.

::

    client                                   server
      | 00 1D | query id=1 | 00 1D | query id=2 | 00 1D | query id=3 |  ->  one write
      <-  | 00 2D | answer id=2 | 00 31 | answer id=1 | ...              answers in any order

RFC 7766 6.2.1.1 lets a server answer pipelined queries out of order, so the
client matches each answer to its query by id (and checks that it answers the
same question), never by position.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio

from framing.length import LengthPrefixed
from framing.stream import FramedStream, connect
from protocols.dns.errors import DNSFormatError
from protocols.dns.message import (
    Edns,
    Header,
    Message,
    Question,
    build_message,
    parse_message,
)
from protocols.dns.names import Name

__all__ = ["DNSClient", "make_query", "open_dns_client"]


def make_query(
    name: Name | str,
    qtype: int,
    *,
    query_id: int = 0,
    rd: bool = False,
    edns: Edns | None = None,
) -> Message:
    """Return a query message for one question (class IN)."""
    qname = Name.from_text(name) if isinstance(name, str) else name
    return Message(Header(query_id, rd=rd), (Question(qname, qtype),), edns=edns)


class DNSClient:
    """Queries over one framed TCP connection (see :func:`open_dns_client`).

    One task at a time may call the query methods: each sends its queries in
    one burst and reads until every one is answered.

    Args:
        stream: a connected stream with ``LengthPrefixed(2)`` framing.
    """

    def __init__(self, stream: FramedStream[bytes]) -> None:
        self.stream = stream
        self._next_id = random.randrange(0x10000)

    async def exchange_raw(self, queries: Sequence[bytes]) -> list[bytes]:
        """Send query messages (distinct ids) in one write; return the answers in query order.

        Raises:
            DNSFormatError: an answer too short to carry an id, or with an id
                that no query in flight has.
            anyio.EndOfStream: the server closed the connection first.
        """
        order: dict[bytes, int] = {}
        for index, query in enumerate(queries):
            if query[:2] in order:
                raise ValueError(f"two queries in flight with id {query[:2].hex()}")
            order[query[:2]] = index
        answers: list[bytes | None] = [None] * len(queries)
        await self.stream.send_many(queries)
        missing = len(queries)
        while missing:
            for answer in await self.stream.receive_many():
                index_or_none = order.pop(answer[:2], None)
                if index_or_none is None:
                    raise DNSFormatError("an answer to no query in flight", offset=0)
                answers[index_or_none] = answer
                missing -= 1
        return [a for a in answers if a is not None]

    async def exchange(self, queries: Sequence[Message]) -> list[Message]:
        """Send queries (their ids are replaced by fresh, distinct ones); return the answers.

        The answers come back in the order of ``queries``, each checked to
        answer the same question (ignoring case), and carrying the id given.

        Raises:
            DNSFormatError: an answer that does not parse or does not match its query.
        """
        if len(queries) > 0x10000:
            raise ValueError("at most 65536 queries can be in flight on one connection")
        sent = []
        for query in queries:
            sent.append(replace(query, header=replace(query.header, id=self._next_id)))
            self._next_id = (self._next_id + 1) & 0xFFFF
        raw = await self.exchange_raw([build_message(q) for q in sent])
        answers = [parse_message(a) for a in raw]
        for query, answer in zip(sent, answers, strict=True):
            asked = [(q.name.key, q.qtype, q.qclass) for q in query.questions]
            told = [(q.name.key, q.qtype, q.qclass) for q in answer.questions]
            if answer.questions and told != asked:
                raise DNSFormatError(f"answer {answer.header.id} is for another question")
        return answers

    async def query(self, name: Name | str, qtype: int, *, edns: Edns | None = None) -> Message:
        """Ask one question; return the answer."""
        return (await self.exchange([make_query(name, qtype, edns=edns)]))[0]

    async def aclose(self) -> None:
        """Close the connection."""
        await self.stream.aclose()


@asynccontextmanager
async def open_dns_client(
    host: str, port: int, *, connect_timeout: float = 10.0
) -> AsyncIterator[DNSClient]:
    """Connect to a DNS server over TCP; close the connection on leaving.

    Example::

        async with open_dns_client("127.0.0.1", 5053) as client:
            answers = await client.exchange([make_query("www.framing.test.", 1)] * 100)

    Raises:
        OSError: the connection failed.
        TimeoutError: it took more than ``connect_timeout`` seconds.
    """
    with anyio.fail_after(connect_timeout):
        stream = await connect(host, port, LengthPrefixed(2))
    client = DNSClient(stream)
    try:
        yield client
    finally:
        await client.aclose()
