"""framing: message boundaries on byte streams.

Sans-IO framers turn arbitrary chunks of a byte stream into whole messages and
back; :class:`FramedStream` puts any of them on any anyio byte stream, and
:func:`connect` and :func:`serve` are its client and server helpers;
:func:`serve_pipelined` and :class:`Requester` answer and make pipelined calls.
"""

from framing.base import BytesLike, Framer
from framing.delimited import Delimited, Lines
from framing.errors import (
    BufferBudgetExceeded,
    EncodeError,
    FrameTooLarge,
    FramingError,
    IdleTimeout,
    IncompleteFrame,
    MalformedFrame,
    MessageTimeout,
    MessageTooLarge,
    MessageTypeError,
    PlaintextInjection,
    ProxyHeaderError,
    ReceiveTimeout,
    RequestFailed,
    RequestTimeout,
    TLSHandshakeFailed,
    UnexpectedReply,
)
from framing.fixed import FixedSize
from framing.inline import serve_inline
from framing.length import Frame, LengthPrefixed, StructPrefixed
from framing.netstring import Netstring
from framing.pipeline import serve_pipelined
from framing.proxied import ProxiedStream, ProxyAttribute, read_proxy_header
from framing.proxy import ProxyCommand, ProxyHeader, ProxyHeaderParser
from framing.raw import Raw
from framing.requester import Requester
from framing.server import ServerInfo, ServerStats, serve, serve_unix
from framing.stream import (
    BufferBudget,
    FramedStream,
    StreamStats,
    connect,
    connect_unix,
)

__version__ = "0.1.0"

__all__ = [
    "BufferBudget",
    "BufferBudgetExceeded",
    "BytesLike",
    "Delimited",
    "EncodeError",
    "FixedSize",
    "Frame",
    "FrameTooLarge",
    "FramedStream",
    "Framer",
    "FramingError",
    "IdleTimeout",
    "IncompleteFrame",
    "LengthPrefixed",
    "Lines",
    "MalformedFrame",
    "MessageTimeout",
    "MessageTooLarge",
    "MessageTypeError",
    "Netstring",
    "PlaintextInjection",
    "ProxiedStream",
    "ProxyAttribute",
    "ProxyCommand",
    "ProxyHeader",
    "ProxyHeaderError",
    "ProxyHeaderParser",
    "Raw",
    "ReceiveTimeout",
    "RequestFailed",
    "RequestTimeout",
    "Requester",
    "ServerInfo",
    "ServerStats",
    "StreamStats",
    "StructPrefixed",
    "TLSHandshakeFailed",
    "UnexpectedReply",
    "__version__",
    "connect",
    "connect_unix",
    "read_proxy_header",
    "serve",
    "serve_inline",
    "serve_pipelined",
    "serve_unix",
]
