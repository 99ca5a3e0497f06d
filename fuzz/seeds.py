"""Write the seed corpus: small valid (and a few broken) inputs for every target.

Run ``python -m fuzz.seeds`` to (re)write ``fuzz/corpus/<target>/seed-*``; the
files are committed. Framer seeds are option bytes, split bytes, then a stream
encoded by the framer those options choose (see ``fuzz.targets``); DNS seeds
are real queries and answers, written byte by byte here (they decode with
dnspython and ``dig``'s parser alike), so the script needs only this package.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Final

from fuzz.targets import FRAMER_TARGETS, build_framer

__all__ = ["CORPUS", "framer_seeds", "main", "write_corpus"]

#: Where the committed seeds live, one folder per target.
CORPUS: Final = Path(__file__).parent / "corpus"

_MESSAGES: Final = (
    b"hello",
    b"",
    b"a\r\nb",
    b"x" * 40,
    bytes(range(0, 256, 7)),
    b"\x00\x05hi",
    b"abcab",
    b"\xee\x01",
)

_SPLITS: Final = (b"\x01" + bytes([0, 10, 50, 90, 130, 200, 250]), b"\x00" * 8)


def framer_seeds(family: str) -> list[bytes]:
    """Seeds for a framer family: each option byte pattern with a valid stream."""
    seeds: list[bytes] = []
    seen: set[str] = set()
    for first in range(8):
        for variant in range(48):
            options = bytes(
                [
                    first,
                    variant,
                    variant * 37 % 256,
                    variant * 53 % 256,
                    variant * 11 % 256,
                    (variant * 3 + 7) % 256 | 0x07,
                    variant % 4,
                    variant % 3,
                ]
            )
            case = build_framer(family, options)
            if case is None:
                continue
            framer = case.make()
            key = repr(framer)
            if key in seen:
                continue
            seen.add(key)
            frames = []
            for message in _MESSAGES:
                try:
                    frames.append(framer.encode(message))
                except Exception:  # a message this framing cannot carry
                    continue
            stream = b"".join(frames)
            seeds.append(options + _SPLITS[len(seeds) % 2] + stream)
            if len(seeds) % 3 == 0 and stream:
                seeds.append(options + _SPLITS[0] + stream[: len(stream) // 2 + 1])
    return seeds


def _query(qid: int, name: bytes, qtype: int, *, edns: bool = False, rd: bool = True) -> bytes:
    """A DNS query: header, one question, optionally an OPT record."""
    labels = b"".join(bytes([len(p)]) + p for p in name.split(b".") if p) + b"\x00"
    flags = 0x0100 if rd else 0
    header = qid.to_bytes(2, "big") + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00"
    header += b"\x00\x01" if edns else b"\x00\x00"
    body = labels + qtype.to_bytes(2, "big") + b"\x00\x01"
    if edns:
        body += b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"
    return header + body


def dns_seeds() -> list[bytes]:
    """Real queries and answers, some with compression pointers, some broken."""
    answer = (
        bytes.fromhex("abcd81800001000200000000")
        + b"\x07example\x03com\x00\x00\x01\x00\x01"
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22"
        + b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x0e\x10\x00\x06\x05hello"
    )
    mx = (
        bytes.fromhex("000181800001000100000000")
        + b"\x07example\x03org\x00\x00\x0f\x00\x01"
        + b"\xc0\x0c\x00\x0f\x00\x01\x00\x00\x00\x3c\x00\x09\x00\x0a\x04mail\xc0\x0c"
    )
    seeds = [
        _query(0x1234, b"example.com", 1),
        _query(0x0001, b"www.example.org", 28, edns=True),
        _query(0xFFFF, b"example.", 15, rd=False),
        _query(7, b"a.b.c.d.e.f.example.net", 16),
        _query(8, b"_sip._tcp.example.com", 33, edns=True),
        _query(9, b"example.com", 6),
        _query(10, b"1.0.0.127.in-addr.arpa", 12),
        _query(11, b"", 2),
        answer,
        mx,
        answer[:20],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
    ]
    return seeds


_ZONE: Final = """$ORIGIN example.
$TTL 3600
@       IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )
        IN NS  ns1
        IN MX  10 mail
ns1     IN A   192.0.2.1
mail    IN A   192.0.2.2
www     IN AAAA 2001:db8::1
alias   IN CNAME www
txt     IN TXT "hello world" "second \\"quoted\\" string"
_sip._tcp IN SRV 10 60 5060 sip
raw     IN TYPE65534 \\# 3 010203
; a comment
"""


#: The types read by name since issue 13, one of each (a leading \x00: no origin given).
_NEWER_TYPES = """\x00$ORIGIN x.
$TTL 60
@ SOA ns hm 1 2 3 4 5
d DNAME y.
@ CAA 0 issue "ca.test"
s DS 1 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
k DNSKEY 257 3 ECDSAP256SHA256 AQID BA==
_443._tcp TLSA 3 1 0 abcd
h SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
n NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
v SVCB 1 . alpn="h2,h3" port=8443 ipv4hint=127.0.0.1 ipv6hint=::1 mandatory=port
w HTTPS 0 v
"""


def zone_seeds() -> list[bytes]:
    """Master files: the example zone, relative-origin forms, broken lines."""
    return [
        b"\x00" + _ZONE.encode(),
        b"\x01" + _ZONE.split("\n", 1)[1].encode(),
        b"\x01@ 60 IN SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 10.0.0.1\n",
        b"\x00$ORIGIN x.\n@ SOA a b 1 2 3 4 5\n@ A 300.1.1.1\n",
        b"\x00$ORIGIN x.\n@ SOA a b ( 1 2 3\n 4 5 )\n$INCLUDE other\n",
        _NEWER_TYPES.encode(),
    ]


def write_corpus(root: Path = CORPUS) -> dict[str, int]:
    """Write every target's seeds under ``root``; return how many per target."""
    out: dict[str, int] = {}
    by_target: dict[str, list[bytes]] = {name: framer_seeds(name) for name in FRAMER_TARGETS}
    by_target["dns_message"] = dns_seeds()
    by_target["zone"] = zone_seeds()
    for name, seeds in by_target.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for seed in seeds:
            digest = hashlib.sha1(seed, usedforsecurity=False).hexdigest()[:16]
            (folder / f"seed-{digest}").write_bytes(seed)
        out[name] = len(seeds)
    return out


def main() -> int:
    """Write the corpus and say how many seeds each target got."""
    for name, count in write_corpus().items():
        print(f"{name}: {count} seeds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
