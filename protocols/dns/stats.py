"""The DNS server's counters, for ``--metrics``: queries by transport, type and rcode.

Counting costs a dictionary update per query (and reading the question's type
from the query's bytes), so it is done only when asked: ``run_dns_server(...,
stats=DNSStats())`` answers with a :class:`CountingAuthority`, which counts
each answer it gives; :func:`dns_metrics` turns the counts into Prometheus
counters (:mod:`framing.metrics`)::

    framing_dns_queries_total{transport="udp",qtype="A",rcode="NOERROR"}
    framing_dns_truncated_total{transport="udp"}      answers sent with TC set

Messages that get no answer (responses, fragments without an id) are not
counted; an answer's rcode is its header's 4 bits (BADVERS, which needs the
OPT record's bits, shows as NOERROR's 0 plus 16: ``"16"`` is not seen here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from framing.metrics import labelled_counter
from protocols.dns.answer import Authority
from protocols.dns.message import Rcode, RecordType
from protocols.dns.zone import Zone

__all__ = ["CountingAuthority", "DNSStats", "dns_metrics", "query_type"]

_TYPE_NAMES: Final = {
    value: name
    for name, value in vars(RecordType).items()
    if name.isupper() and isinstance(value, int)
}
_RCODE_NAMES: Final = {
    value: name for name, value in vars(Rcode).items() if name.isupper() and isinstance(value, int)
}

_NONE_READY: Final[Mapping[bytes, bytes]] = MappingProxyType({})


def query_type(query: bytes) -> str:
    """The type asked by a one-question query, by name (``"A"``, ``"TYPE65400"``), else ``"-"``.

    Reads only the bytes: the name's labels are skipped, not decoded.
    """
    if len(query) < 12 or query[4:6] != b"\x00\x01":
        return "-"
    offset = 12
    while offset < len(query):
        length = query[offset]
        if length == 0:
            break
        if length & 0xC0:  # a pointer in a question: not from a real client
            return "-"
        offset += length + 1
    else:
        return "-"
    if offset + 3 > len(query):
        return "-"
    number = int.from_bytes(query[offset + 1 : offset + 3], "big")
    return _TYPE_NAMES.get(number, f"TYPE{number}")


class DNSStats:
    """Counts of answers given, by ``(transport, qtype, rcode)``, and of truncated ones.

    Attributes:
        queries: answers given, by ``("udp" or "tcp", qtype name, rcode name)``.
        truncated: answers sent with TC set, by transport.
    """

    def __init__(self) -> None:
        self.queries: dict[tuple[str, str, str], int] = {}
        self.truncated: dict[str, int] = {"udp": 0, "tcp": 0}

    def count(self, query: bytes, answer: bytes, *, udp: bool) -> None:
        """Count one answer to ``query``."""
        transport = "udp" if udp else "tcp"
        rcode = answer[3] & 0x0F if len(answer) >= 4 else -1
        key = (transport, query_type(query), _RCODE_NAMES.get(rcode, str(rcode)))
        self.queries[key] = self.queries.get(key, 0) + 1
        if len(answer) >= 3 and answer[2] & 0x02:
            self.truncated[transport] += 1


class CountingAuthority(Authority):
    """An :class:`~protocols.dns.answer.Authority` that counts its answers in a :class:`DNSStats`.

    Args:
        *args: as for :class:`~protocols.dns.answer.Authority`.
        stats: where to count.
        **kwargs: as for :class:`~protocols.dns.answer.Authority`.
    """

    def __init__(self, *args: Any, stats: DNSStats, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats

    def respond(self, query: bytes, *, udp: bool, peer: str | None = None) -> bytes | None:
        """As :meth:`Authority.respond`, counting the answer."""
        answer = super().respond(query, udp=udp, peer=peer)
        if answer is not None:
            self.stats.count(query, answer, udp=udp)
        return answer

    def ready_udp_answers(self) -> Mapping[bytes, bytes]:
        """None at all: each answer goes through :meth:`respond`, which counts it."""
        return _NONE_READY

    def _renewed(self, zones: Zone | Sequence[Zone], **settings: Any) -> Authority:
        # A reload (with_zones) keeps counting in the same place.
        return CountingAuthority(zones, stats=self.stats, **settings)


def dns_metrics(stats: DNSStats) -> Callable[[], None]:
    """An update for :func:`framing.metrics.refresh_metrics` that exports ``stats``.

    Raises:
        MetricsUnavailable: prometheus_client is not installed.
    """
    queries = labelled_counter(
        "framing_dns_queries",
        "DNS queries answered, by transport, type asked and rcode.",
        ("transport", "qtype", "rcode"),
    )
    truncated = labelled_counter(
        "framing_dns_truncated",
        "DNS answers sent truncated (TC set), by transport.",
        ("transport",),
    )

    def update() -> None:
        queries({key: count for key, count in stats.queries.items()})
        truncated({(transport,): count for transport, count in stats.truncated.items()})

    return update
