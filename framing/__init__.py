"""framing: message boundaries on byte streams.

Sans-IO framers turn arbitrary chunks of a byte stream into whole messages and
back; :class:`FramedStream` puts any of them on any anyio byte stream.
"""

from framing.base import Framer
from framing.errors import FrameTooLarge, FramingError, IncompleteFrame, MalformedFrame
from framing.raw import Raw

__version__ = "0.1.0"

__all__ = [
    "FrameTooLarge",
    "Framer",
    "FramingError",
    "IncompleteFrame",
    "MalformedFrame",
    "Raw",
    "__version__",
]
