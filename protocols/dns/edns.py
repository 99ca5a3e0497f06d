r"""EDNS options the server answers: cookies, TCP keepalive and NSID. Sans-IO.

::

    COOKIE (10, RFC 7873)  | client cookie (8) | server cookie (8 to 32, optional) |
    our server cookie      | 01 | 00 00 00 | timestamp (4) | hash (8) |     (RFC 9018 4)
    NSID (3, RFC 5001)     query: empty;  answer: | the server's identifier |
    edns-tcp-keepalive     query: empty;  answer: | TIMEOUT (16), in units of 100 ms |
      (11, RFC 7828)

A server cookie proves that the client has talked to this server from this
address before: it is a hash, under a secret only the server knows, of the
client cookie, the client's address and the time. It has the layout of RFC
9018 (version 1, a timestamp, an 8-byte hash), hashed with HMAC-SHA-256 cut to
8 bytes rather than SipHash (which Python's standard library lacks): any
algorithm will do while one server checks only its own cookies (RFC 7873 4.2).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import struct
import time
from collections.abc import Callable
from typing import Final

__all__ = [
    "COOKIE",
    "COOKIE_LIFETIME",
    "NSID",
    "TCP_KEEPALIVE",
    "CookieError",
    "ServerCookies",
    "split_cookie",
]

#: Option codes (IANA "DNS EDNS0 Option Codes").
NSID: Final = 3
COOKIE: Final = 10
TCP_KEEPALIVE: Final = 11

#: RFC 9018 4.3: a server cookie is valid for an hour after it was made, and
#: up to 5 minutes "in the future" (another server's clock may run ahead).
COOKIE_LIFETIME: Final = 3600
_FUTURE: Final = 300
_VERSION: Final = b"\x01\x00\x00\x00"  # version 1, then 3 reserved bytes
_CLIENT: Final = 8


class CookieError(ValueError):
    """A COOKIE option of a length RFC 7873 5.2.2 forbids: the answer is FORMERR."""


def split_cookie(data: bytes) -> tuple[bytes, bytes]:
    """Split a COOKIE option's data into the client and the server cookie (maybe empty).

    Raises:
        CookieError: the data is not 8 bytes, nor 16 to 40 (RFC 7873 4, 5.2.2).
    """
    if len(data) != _CLIENT and not 16 <= len(data) <= 40:
        raise CookieError(f"a COOKIE option of {len(data)} bytes (8, or 16 to 40: RFC 7873 4)")
    return data[:_CLIENT], data[_CLIENT:]


class ServerCookies:
    """Makes and checks server cookies under one secret.

    Args:
        secret: the key of the hash; 16 random bytes when not given. Every
            process that must accept another's cookies needs the same one.
        clock: the time, in seconds since the epoch (a test may move it).
    """

    def __init__(
        self, secret: bytes | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret if secret is not None else os.urandom(16)
        self._clock = clock

    def make(self, client_cookie: bytes, client: str | None) -> bytes:
        """A fresh server cookie for this client cookie and client address."""
        stamp = struct.pack(">I", int(self._clock()) & 0xFFFFFFFF)
        return _VERSION + stamp + self._hash(client_cookie, stamp, client)

    def valid(self, client_cookie: bytes, server_cookie: bytes, client: str | None) -> bool:
        """Whether ``server_cookie`` is one of ours, for this client, and not too old."""
        if len(server_cookie) != 16 or server_cookie[:4] != _VERSION:
            return False
        stamp = server_cookie[4:8]
        # Serial arithmetic (RFC 1982): the 32-bit timestamp wraps in 2106.
        age = (int(self._clock()) - struct.unpack(">I", stamp)[0]) % 2**32
        if not (age <= COOKIE_LIFETIME or age >= 2**32 - _FUTURE):
            return False
        return hmac.compare_digest(server_cookie[8:], self._hash(client_cookie, stamp, client))

    def _hash(self, client_cookie: bytes, stamp: bytes, client: str | None) -> bytes:
        message = client_cookie + _VERSION + stamp + _address(client)
        return hmac.new(self.secret, message, hashlib.sha256).digest()[:8]


def _address(client: str | None) -> bytes:
    if client is None:
        return b""
    try:
        ip = ipaddress.ip_address(client.partition("%")[0])
    except ValueError:
        return client.encode()
    mapped = getattr(ip, "ipv4_mapped", None)  # the same client on a dual-stack socket
    return (mapped or ip).packed
