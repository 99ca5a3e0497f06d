r"""The PROXY protocol header parser: versions 1 and 2, TLVs, bounds, split invariance."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framing import MalformedFrame
from framing.errors import FramingError, ProxyHeaderError
from framing.proxy import (
    DEFAULT_MAX_V2_SIZE,
    PP2_TYPE_ALPN,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_CRC32C,
    V1_MAX_SIZE,
    V2_SIGNATURE,
    ProxyCommand,
    ProxyHeader,
    ProxyHeaderParser,
    crc32c,
)
from framing.testing import chunkings

Result = tuple[ProxyHeader | None, bytes]


def v1(
    source: str = "192.0.2.7",
    destination: str = "198.51.100.1",
    sport: int = 56324,
    dport: int = 53,
) -> ProxyHeader:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    return ProxyHeader(
        1,
        ProxyCommand.PROXY,
        family,
        socket.SOCK_STREAM,
        source,
        sport,
        destination,
        dport,
        (),
        0,
    )


def v2(
    source: str = "192.0.2.7",
    destination: str = "198.51.100.1",
    *,
    command: ProxyCommand = ProxyCommand.PROXY,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> ProxyHeader:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    return ProxyHeader(
        2, command, family, socket.SOCK_STREAM, source, 40000, destination, 53, tlvs, 0
    )


def assert_round_trip(header: ProxyHeader, payload: bytes = b"payload") -> None:
    """parse(header.to_bytes() + payload) == (header, payload), and back to the same bytes."""
    wire = header.to_bytes()
    parsed, rest = parse(wire + payload)
    assert parsed is not None
    assert (dataclasses.replace(parsed, size=0), rest) == (header, payload)
    assert parsed.size == len(wire)
    assert parsed.to_bytes() == wire


def parse(data: bytes, **options: object) -> Result:
    result = ProxyHeaderParser(**options).feed(data)  # type: ignore[arg-type]
    assert result is not None, "the header is incomplete"
    return result


def outcome(chunks: Sequence[bytes], **options: object) -> tuple[object, ...]:
    """Feed chunks until a result; return it with every byte after it, or the error."""
    parser = ProxyHeaderParser(**options)  # type: ignore[arg-type]
    try:
        for index, chunk in enumerate(chunks):
            result = parser.feed(chunk)
            if result is not None:
                header, rest = result
                return ("header", header, rest + b"".join(chunks[index + 1 :]))
            # Bounded: while waiting, only a header's own bytes are held.
            assert parser.buffered < max(V1_MAX_SIZE, parser.max_size)
        header, rest = parser.feed_eof()
        return ("header", header, rest)
    except ProxyHeaderError as exc:
        return ("error", exc.reason)


# -- version 1 ---------------------------------------------------------------------


def test_feed_v1_tcp4_returns_header_and_rest() -> None:
    header, rest = parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 53\r\nhello")
    assert header == dataclasses.replace(v1(), size=44)
    assert rest == b"hello"
    assert header.client_address == "192.0.2.7"


def test_feed_v1_tcp6_compresses_the_address() -> None:
    line = b"PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 ::1 1 65535\r\n"
    header, rest = parse(line)
    assert header is not None
    assert (header.source_address, header.destination_address) == ("2001:db8::1", "::1")
    assert (header.source_port, header.destination_port, rest) == (1, 65535, b"")


def test_feed_v1_longest_line_of_107_bytes_is_accepted() -> None:
    full = ":".join(["ffff"] * 8)
    line = f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX_SIZE
    header, rest = parse(line + b"x")
    assert header is not None
    assert (header.family, header.client_address, rest) == (socket.AF_UNSPEC, None, b"x")


def test_feed_v1_unknown_short_form_uses_the_real_endpoints() -> None:
    header, rest = parse(b"PROXY UNKNOWN\r\nGET /")
    assert header is not None
    assert (header.family, header.source_address, header.client_address) == (
        socket.AF_UNSPEC,
        None,
        None,
    )
    assert rest == b"GET /"


def test_feed_v1_byte_at_a_time() -> None:
    data = b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\nrest"
    parser = ProxyHeaderParser()
    results = [parser.feed(data[i : i + 1]) for i in range(data.index(b"\n") + 1)]
    assert results[:-1] == [None] * (len(results) - 1)
    last = results[-1]
    assert last is not None
    assert last[0] is not None
    assert (last[0].source_address, last[1]) == ("10.0.0.1", b"")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF alone"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown version 1 protocol"),
        (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown version 1 protocol"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "7 space-separated fields"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "5 space-separated fields"),
        (b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "canonical IPv4"),
        (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "canonical IPv4"),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "canonical IPv4"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "canonical IPv6"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "canonical IPv6"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "not a port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "not a port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "not a port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "7 space-separated fields"),
    ],
)
def test_feed_v1_malformed_raises(line: bytes, reason: str) -> None:
    with pytest.raises(ProxyHeaderError, match=reason):
        ProxyHeaderParser().feed(line)


def test_feed_v1_without_crlf_in_107_bytes_raises_before_holding_more() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(b"PROXY UNKNOWN " + b"x" * 92) is None  # 106 bytes
    assert parser.buffered == 106
    with pytest.raises(ProxyHeaderError, match="no CRLF in the first 107 bytes"):
        parser.feed(b"y")


def test_feed_v1_crlf_at_byte_108_raises() -> None:
    with pytest.raises(ProxyHeaderError, match="no CRLF in the first 107 bytes"):
        ProxyHeaderParser().feed(b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n")


# -- version 2 ---------------------------------------------------------------------


def test_feed_v2_tcp4_round_trip() -> None:
    assert_round_trip(v2())


def test_feed_v2_tcp6_with_tlvs_round_trip() -> None:
    tlvs = ((PP2_TYPE_ALPN, b"h2"), (PP2_TYPE_AUTHORITY, b"example.com"), (0xE0, b""))
    header = v2("2001:db8::7", "2001:db8::1", tlvs=tlvs)
    assert_round_trip(header)
    assert header.tlv(PP2_TYPE_AUTHORITY) == b"example.com"
    assert header.tlv(0x05) is None


def test_feed_v2_local_keeps_real_endpoints() -> None:
    wire = V2_SIGNATURE + b"\x20\x00\x00\x00"
    header, rest = parse(wire + b"ping")
    assert header is not None
    assert (header.command, header.family, header.client_address) == (
        ProxyCommand.LOCAL,
        socket.AF_UNSPEC,
        None,
    )
    assert rest == b"ping"


def test_feed_v2_local_with_addresses_still_has_no_client() -> None:
    header = v2(command=ProxyCommand.LOCAL)
    assert_round_trip(header)
    assert header.client_address is None


def test_feed_v2_unspec_skips_address_block_it_cannot_read() -> None:
    # "Receivers MUST always consider this field to skip the appropriate number of bytes."
    wire = V2_SIGNATURE + b"\x21\x00\x00\x05" + b"\xff" * 5
    header, rest = parse(wire + b"data")
    assert header is not None
    assert (header.family, header.size, rest) == (socket.AF_UNSPEC, 21, b"data")


def test_feed_v2_unix_paths() -> None:
    header = ProxyHeader(
        2,
        ProxyCommand.PROXY,
        socket.AF_UNIX,
        socket.SOCK_STREAM,
        "/run/client.sock",
        None,
        "/run/server.sock",
        None,
        (),
        0,
    )
    assert_round_trip(header)
    assert header.client_address is None


def test_feed_v2_crc32c_checked() -> None:
    header = v2(tlvs=((PP2_TYPE_CRC32C, b"\x00" * 4),))
    wire = header.to_bytes()
    parsed, _ = parse(wire)
    assert parsed is not None
    value = parsed.tlv(PP2_TYPE_CRC32C)
    assert value is not None
    corrupt = wire[:-1] + bytes([wire[-1] ^ 1])
    with pytest.raises(ProxyHeaderError, match="CRC32C"):
        ProxyHeaderParser().feed(corrupt)


def test_crc32c_known_answer() -> None:
    # RFC 3720 B.4's check value for "123456789".
    assert crc32c(b"123456789") == 0xE3069283


def fixed(ver_cmd: int, fam: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([ver_cmd, fam]) + len(body).to_bytes(2, "big") + body


IPV4_BODY = bytes(range(1, 9)) + b"\x9c\x40\x00\x35"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (fixed(0x11, 0x11, IPV4_BODY), "unknown PROXY version 1"),
        (fixed(0x31, 0x11, IPV4_BODY), "unknown PROXY version 3"),
        (fixed(0x22, 0x11, IPV4_BODY), "unknown version 2 command 0x2"),
        (fixed(0x2F, 0x11, IPV4_BODY), "unknown version 2 command 0xf"),
        (fixed(0x21, 0x41, IPV4_BODY), "unknown version 2 address family 0x4"),
        (fixed(0x21, 0x13, IPV4_BODY), "unknown version 2 transport protocol 0x3"),
        (fixed(0x21, 0x11, IPV4_BODY[:11]), "11 bytes is shorter than the 12"),
        (fixed(0x21, 0x21, IPV4_BODY), "12 bytes is shorter than the 36"),
        (fixed(0x21, 0x11, IPV4_BODY + b"\x01\x00"), "2 bytes at offset 28 cannot hold a TLV"),
        (fixed(0x21, 0x11, IPV4_BODY + b"\x01\x00\x05abc"), "announces 5 bytes, but .* 3 left"),
        (
            fixed(0x21, 0x11, IPV4_BODY + b"\x01\x00\x01a\x02\xff\xff"),
            "TLV 0x02 at offset 32 announces 65535",
        ),
        (fixed(0x21, 0x11, IPV4_BODY + b"\x03\x00\x02ab"), "CRC32C TLV of 2 bytes"),
    ],
)
def test_feed_v2_malformed_raises(wire: bytes, reason: str) -> None:
    with pytest.raises(ProxyHeaderError, match=reason) as info:
        ProxyHeaderParser().feed(wire + b"after")
    assert isinstance(info.value, MalformedFrame)
    assert isinstance(info.value, FramingError)
    assert "ProxyHeaderParser(" in str(info.value)


def test_feed_v2_version_refused_after_13_bytes() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(V2_SIGNATURE) is None
    with pytest.raises(ProxyHeaderError, match="unknown PROXY version 1"):
        parser.feed(b"\x11")


def test_feed_v2_over_max_size_raises_before_holding_it() -> None:
    parser = ProxyHeaderParser(max_size=64)
    with pytest.raises(ProxyHeaderError, match="header of 65 bytes is over the limit of 64"):
        parser.feed(V2_SIGNATURE + b"\x21\x11\x00\x31")
    default = ProxyHeaderParser()
    with pytest.raises(ProxyHeaderError, match=f"over the limit of {DEFAULT_MAX_V2_SIZE}"):
        default.feed(V2_SIGNATURE + b"\x21\x11\xff\xff")


def test_feed_v2_largest_header_accepted_with_max_size_65551() -> None:
    padding = 0xFFFF - len(IPV4_BODY) - 3
    wire = fixed(0x21, 0x11, IPV4_BODY + b"\x04" + padding.to_bytes(2, "big") + b"\x00" * padding)
    assert len(wire) == 16 + 0xFFFF
    header, rest = parse(wire + b"!", max_size=16 + 0xFFFF)
    assert header is not None
    assert (header.size, rest) == (len(wire), b"!")


@pytest.mark.parametrize("max_size", [15, 16 + 0x10000])
def test_max_size_out_of_range_is_refused(max_size: int) -> None:
    with pytest.raises(ValueError, match="max_size"):
        ProxyHeaderParser(max_size=max_size)


# -- no header, end of stream, misuse ----------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"GET / HTTP/1.1\r\n", b"\x00\x05hello", b"PROXYTCP4", b"\r\n\r\n\x00\r\nQUIT\r"]
)
def test_feed_without_signature_raises_unless_optional(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError, match="not a PROXY header"):
        ProxyHeaderParser().feed(data)
    assert ProxyHeaderParser(optional=True).feed(data) == (None, data)


def test_feed_optional_waits_while_bytes_could_begin_a_signature() -> None:
    parser = ProxyHeaderParser(optional=True)
    assert parser.feed(b"PRO") is None
    assert parser.feed(b"MPT") == (None, b"PROMPT")


def test_feed_optional_still_refuses_a_malformed_header() -> None:
    with pytest.raises(ProxyHeaderError, match="not a port"):
        ProxyHeaderParser(optional=True).feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n")


def test_feed_eof_inside_header_raises_with_count() -> None:
    parser = ProxyHeaderParser(optional=True)
    parser.feed(V2_SIGNATURE + b"\x21\x11\x00\x0c\x01")
    with pytest.raises(ProxyHeaderError, match="ended 17 bytes into a PROXY header"):
        parser.feed_eof()


def test_feed_eof_before_any_byte() -> None:
    with pytest.raises(ProxyHeaderError, match="ended before a PROXY header"):
        ProxyHeaderParser().feed_eof()
    assert ProxyHeaderParser(optional=True).feed_eof() == (None, b"")


def test_feed_eof_optional_after_a_signature_prefix_returns_the_bytes() -> None:
    parser = ProxyHeaderParser(optional=True)
    assert parser.feed(b"PROX") is None
    assert parser.feed_eof() == (None, b"PROX")


def test_feed_after_the_header_is_a_caller_error() -> None:
    parser = ProxyHeaderParser()
    parser.feed(b"PROXY UNKNOWN\r\n")
    with pytest.raises(RuntimeError):
        parser.feed(b"more")
    with pytest.raises(RuntimeError):
        parser.feed_eof()


def test_feed_accepts_bytearray_and_memoryview() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(bytearray(b"PROXY UNKNOWN")) is None
    assert parser.feed(memoryview(b"\r\nx")) is not None


# -- properties: round trip, split invariance, bounds ---------------------------------------

ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
ports = st.integers(0, 65535)
tlv_lists = st.lists(
    st.tuples(st.integers(0, 255).filter(lambda k: k != PP2_TYPE_CRC32C), st.binary(max_size=40)),
    max_size=4,
).map(tuple)


@st.composite
def headers(draw: st.DrawFn) -> ProxyHeader:
    """Any header that ``to_bytes`` writes and the parser reads back unchanged."""
    version = draw(st.sampled_from([1, 2]))
    six = draw(st.booleans())
    addresses = ipv6 if six else ipv4
    family = socket.AF_INET6 if six else socket.AF_INET
    command = ProxyCommand.PROXY
    tlvs: tuple[tuple[int, bytes], ...] = ()
    if version == 2:
        command = draw(st.sampled_from(ProxyCommand))
        tlvs = draw(tlv_lists)
    return ProxyHeader(
        version,
        command,
        family,
        draw(st.sampled_from([socket.SOCK_STREAM, socket.SOCK_DGRAM]))
        if version == 2
        else socket.SOCK_STREAM,
        draw(addresses),
        draw(ports),
        draw(addresses),
        draw(ports),
        tlvs,
        0,
    )


@given(headers(), st.binary(max_size=64))
def test_round_trip_any_header(header: ProxyHeader, payload: bytes) -> None:
    assert_round_trip(header, payload)


@given(st.data(), headers(), st.binary(max_size=64))
def test_feed_any_split_gives_the_whole_result(
    data: st.DataObject, header: ProxyHeader, payload: bytes
) -> None:
    stream = header.to_bytes() + payload
    whole = outcome([stream])
    assert whole[0] == "header"
    assert outcome([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert outcome(data.draw(chunkings(stream))) == whole


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    """Valid headers with a byte changed, cut short or grown; and near-signature noise."""
    kind = draw(st.sampled_from(["mutated", "truncated", "noise", "v1-noise"]))
    if kind == "noise":
        prefix = draw(st.sampled_from([V2_SIGNATURE, V2_SIGNATURE[:7], b""]))
        return prefix + draw(st.binary(max_size=80))
    if kind == "v1-noise":
        alphabet = st.sampled_from(list(b"PROXY TCP46UNKOW0123456789.:abcdef\r\n"))
        return b"PROXY " + bytes(draw(st.lists(alphabet, max_size=120)))
    wire = draw(headers()).to_bytes()
    if kind == "truncated":
        return wire[: draw(st.integers(0, len(wire) - 1))]
    at = draw(st.integers(0, len(wire) - 1))
    return wire[:at] + bytes([draw(st.integers(0, 255))]) + wire[at + 1 :]


@settings(max_examples=300)
@given(st.data(), hostile_streams(), st.booleans())
def test_feed_hostile_stream_same_outcome_however_split(
    data: st.DataObject, stream: bytes, optional: bool
) -> None:
    """Header or ProxyHeaderError, never another exception; the same for every split."""
    whole = outcome([stream], optional=optional)
    assert outcome([stream[i : i + 1] for i in range(len(stream))], optional=optional) == whole
    assert outcome(data.draw(chunkings(stream)), optional=optional) == whole
