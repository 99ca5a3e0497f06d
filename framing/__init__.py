"""framing: message boundaries on byte streams.

Sans-IO framers turn arbitrary chunks of a byte stream into whole messages and
back; :class:`FramedStream` puts any of them on any anyio byte stream.
"""

from framing.base import Framer
from framing.delimited import Delimited, Lines
from framing.errors import FrameTooLarge, FramingError, IncompleteFrame, MalformedFrame
from framing.fixed import FixedSize
from framing.netstring import Netstring
from framing.raw import Raw

__version__ = "0.1.0"

__all__ = [
    "Delimited",
    "FixedSize",
    "FrameTooLarge",
    "Framer",
    "FramingError",
    "IncompleteFrame",
    "Lines",
    "MalformedFrame",
    "Netstring",
    "Raw",
    "__version__",
]
