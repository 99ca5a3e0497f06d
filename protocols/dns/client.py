"""A small DNS client over one TCP connection: many queries in flight, answers matched by id.

::

    client                                   server
      | 00 1D | query id=1 | 00 1D | query id=2 | 00 1D | query id=3 |  ->  one write
      <-  | 00 2D | answer id=2 | 00 31 | answer id=1 | ...              answers in any order

RFC 7766 6.2.1.1 lets a server answer pipelined queries out of order, so the
client matches each answer to its query by id (and checks that it answers the
same question), never by position: a :class:`framing.Requester` keyed by the
message id does the matching.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from types import TracebackType

import anyio

from framing.errors import RequestFailed, UnexpectedReply
from framing.length import LengthPrefixed
from framing.requester import Requester
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

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DNSClient", "make_query", "open_dns_client"]

# Queries in flight on one connection by default: a burst of this many goes out
# in one write (the tests send 500); the 16-bit id space allows 65536.
DEFAULT_MAX_IN_FLIGHT = 1000


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

    Built on :class:`framing.Requester` keyed by the message id. Inside
    ``async with client:`` one reader task serves every query method, and
    several tasks may query at once; outside it, each call reads its own
    answers (one task at a time).

    Args:
        stream: a connected stream with ``LengthPrefixed(2)`` framing.
        max_in_flight: queries in flight at once; a larger burst goes out in
            parts as answers come.
    """

    def __init__(
        self, stream: FramedStream[bytes], *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ) -> None:
        self.stream = stream
        self.max_in_flight = max_in_flight
        self._next_id = random.randrange(0x10000)
        self._calls: Requester[bytes] | None = None

    async def __aenter__(self) -> DNSClient:
        calls = Requester(self.stream, key=_message_id, max_in_flight=self.max_in_flight)
        self._calls = await calls.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        calls, self._calls = self._calls, None
        if calls is not None:
            await calls.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _requester(self) -> AsyncIterator[Requester[bytes]]:
        """The client's Requester, or one for this call when the client was not entered."""
        if self._calls is not None:
            yield self._calls
            return
        async with Requester(
            self.stream, key=_message_id, max_in_flight=self.max_in_flight
        ) as calls:
            yield calls

    async def exchange_raw(self, queries: Sequence[bytes]) -> list[bytes]:
        """Send query messages (distinct ids) together; return the answers in query order.

        As many as ``max_in_flight`` go out in one write.

        Raises:
            ValueError: two queries have the same id, or a query with that id
                is already in flight.
            DNSFormatError: an answer too short to carry an id, or with an id
                that no query in flight has.
            anyio.EndOfStream: the server closed the connection first.
            framing.RequestFailed: the connection failed otherwise.
        """
        ids = {bytes(query[:2]) for query in queries}
        if len(ids) != len(queries):
            raise ValueError("two queries in flight with the same id")
        try:
            async with self._requester() as calls:
                return await calls.request_many(queries)
        except UnexpectedReply as exc:
            raise DNSFormatError("an answer to no query in flight", offset=0) from exc
        except RequestFailed as exc:
            if isinstance(exc.__cause__, anyio.EndOfStream):
                raise anyio.EndOfStream from exc
            raise

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


def _message_id(message: bytes) -> bytes:
    """A DNS message's correlation key: its 2-byte id (RFC 1035 4.1.1)."""
    return bytes(message[:2])


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
        async with client:
            yield client
    finally:
        await client.aclose()
