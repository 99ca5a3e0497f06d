"""The DNS package's errors.

::

    DNSError                 base of everything protocols.dns raises on purpose
     +-- DNSFormatError      bytes that are not a DNS message (answer FORMERR)
     +-- ZoneError           a master file that cannot be read (line number given)

Both are also :class:`ValueError`, so callers that treat bad input generically
keep working. The promise of :func:`protocols.dns.message.parse_message`:
whatever bytes it is given, it returns a message or raises
:class:`DNSFormatError`; any other exception is a bug.
"""

from __future__ import annotations

__all__ = ["DNSError", "DNSFormatError", "ZoneError"]


class DNSError(Exception):
    """Base class of the errors raised by ``protocols.dns``."""


class DNSFormatError(DNSError, ValueError):
    """Bytes that cannot be decoded as a DNS message.

    Attributes:
        query_id: the message id when the first two bytes could be read, so that
            a server can still answer FORMERR to the right query; else ``None``.
        offset: where in the message decoding failed, when known.
    """

    def __init__(self, detail: str, *, query_id: int | None = None, offset: int | None = None):
        where = "" if offset is None else f" at offset {offset}"
        super().__init__(f"malformed DNS message{where}: {detail}")
        self.detail = detail
        self.query_id = query_id
        self.offset = offset


class ZoneError(DNSError, ValueError):
    """A zone (master file) that cannot be read.

    Attributes:
        line: the 1-based line of the master file where the problem is, if known.
    """

    def __init__(self, detail: str, *, line: int | None = None) -> None:
        where = "" if line is None else f"line {line}: "
        super().__init__(f"{where}{detail}")
        self.detail = detail
        self.line = line
