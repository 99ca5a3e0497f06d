r"""``--framing SPEC``: a short text that names a framer and its settings.

Every command that speaks framed messages takes the same spec, so one word
switches the wire format::

    raw                  Raw()                             each chunk is a message
    length:2             LengthPrefixed(2)                 2-byte big-endian length (DNS over TCP)
    length:4:little      LengthPrefixed(4, "little")       widths 1, 2, 3, 4 or 8; big or little
    varint               LengthPrefixed("varint")          LEB128 length (protobuf style)
    line                 Lines()                           ends with \n (or \r\n on receive)
    delimiter:00         Delimited(b"\x00")                ends with these bytes, given in hex
    netstring            Netstring()                       5:hello,

``--max-size N`` applies to whichever framer is chosen (it is every framer's
``max_size``); left out, each framer keeps its own documented default.
"""

from __future__ import annotations

import argparse
import binascii
from typing import TypedDict, cast

from framing.base import Framer
from framing.delimited import Delimited, Lines
from framing.length import ByteOrder, LengthPrefixed, Width
from framing.netstring import Netstring
from framing.raw import Raw

__all__ = ["SPECS", "add_framing_arguments", "framing_spec", "parse_framing", "positive_int"]

#: The spec forms, as shown in help and error messages.
SPECS = "raw, length:N[:big|little] (N = 1, 2, 3, 4 or 8), varint, line, delimiter:HEX, netstring"

_WIDTHS = (1, 2, 3, 4, 8)


class _Limit(TypedDict, total=False):
    """The keyword arguments every framer takes here: ``max_size`` only when given."""

    max_size: int


def parse_framing(spec: str, *, max_size: int | None = None) -> Framer[bytes]:
    """Return a new framer for ``spec`` (see the module docstring for the forms).

    Args:
        spec: the spec, such as ``"length:2"`` or ``"delimiter:0d0a"``; case and
            surrounding blanks do not matter.
        max_size: the framer's ``max_size``; ``None`` keeps the framer's default.

    Returns:
        A fresh framer, ready to be a server's template or a client's framer.

    Raises:
        ValueError: ``spec`` is not one of the forms, or ``max_size`` is below 1;
            the message says what was wrong and lists the forms.
    """
    if max_size is not None and max_size < 1:
        raise ValueError(f"max size must be at least 1, not {max_size}")
    # Only pass max_size when given, so each framer keeps its own default.
    limit: _Limit = {} if max_size is None else {"max_size": max_size}
    name, _, rest = spec.strip().lower().partition(":")
    args = rest.split(":") if rest else []

    if name == "raw" and not args:
        return Raw(**limit)
    if name == "varint" and not args:
        return LengthPrefixed(width="varint", **limit)
    if name == "line" and not args:
        return Lines(**limit)
    if name == "netstring" and not args:
        return Netstring(**limit)
    if name == "length" and 1 <= len(args) <= 2:
        return _length(spec, args, limit)
    if name == "delimiter" and len(args) == 1:
        return Delimited(delimiter=_hex_delimiter(spec, args[0]), **limit)
    raise ValueError(f"unknown framing {spec!r}: expected one of {SPECS}")


def _length(spec: str, args: list[str], limit: _Limit) -> Framer[bytes]:
    """``length:N`` or ``length:N:ORDER``."""
    width_text, order = args[0], (args[1] if len(args) == 2 else "big")
    if not width_text.isdigit() or int(width_text) not in _WIDTHS:
        raise ValueError(
            f"bad framing {spec!r}: the length width must be one of "
            f"{', '.join(map(str, _WIDTHS))} bytes, not {width_text!r}"
        )
    if order not in ("big", "little"):
        raise ValueError(f"bad framing {spec!r}: the byte order must be big or little")
    width = cast("Width", int(width_text))
    byteorder = cast("ByteOrder", order)
    return LengthPrefixed(width=width, byteorder=byteorder, **limit)


def _hex_delimiter(spec: str, text: str) -> bytes:
    """The delimiter bytes of ``delimiter:HEX``."""
    try:
        delimiter = bytes.fromhex(text)
    except (ValueError, binascii.Error):
        raise ValueError(
            f"bad framing {spec!r}: the delimiter must be given in hex, such as 00 or 0d0a"
        ) from None
    if not delimiter:
        raise ValueError(f"bad framing {spec!r}: the delimiter is empty")
    return delimiter


def framing_spec(text: str) -> str:
    """An argparse ``type`` that accepts a valid spec (returned as given) or says why not."""
    try:
        parse_framing(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_int(text: str) -> int:
    """An argparse ``type`` for a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_framing_arguments(parser: argparse.ArgumentParser, *, default: str = "raw") -> None:
    """Add ``--framing SPEC`` and ``--max-size N`` to ``parser``.

    Build the framer afterwards with ``parse_framing(args.framing, max_size=args.max_size)``.
    """
    parser.add_argument(
        "--framing",
        type=framing_spec,
        default=default,
        metavar="SPEC",
        help=f"the message framing (default: %(default)s): {SPECS}",
    )
    parser.add_argument(
        "--max-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="the largest message accepted, in bytes (default: the framer's own)",
    )
