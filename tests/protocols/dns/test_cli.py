from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from protocols.dns import cli
from protocols.dns.message import encode_rdata
from protocols.dns.zone import example_zone
from tests.conftest import require_tool

ZONE = example_zone()
ROOT = Path(__file__).resolve().parents[3]


def _expected(name: str, rtype: str) -> list[bytes]:
    code = dns.rdatatype.from_text(rtype)
    out = []
    for record in ZONE.records:
        if record.name.to_text() == name and record.rtype == code:
            data = bytearray()
            encode_rdata(record.rdata, data, None)
            out.append(bytes(data))
    return sorted(out)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    """``python -m protocols.dns.cli --port 0`` as a subprocess; its host and port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "protocols.dns.cli", "--port", "0", "--idle-timeout", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the server prints as soon as it listens
        second = process.stdout.readline()
        match = re.search(r"on (\S+) port (\d+)", first)
        failed = process.stderr.read() if process.poll() is not None and process.stderr else ""
        assert match, first + failed
        assert f"dig @{match.group(1)} -p {match.group(2)} +tcp www.framing.test" in second
        yield match.group(1), int(match.group(2))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _run(tool: str, args: list[str]) -> str:
    result = subprocess.run(
        [require_tool(tool), *args], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _answers(output: str) -> list[tuple[str, int, str, bytes]]:
    """Parse the answer lines of dig or kdig into (owner, ttl, type, rdata wire)."""
    out = []
    for line in output.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        owner, ttl, rclass, rtype, text = line.split(None, 4)
        rdata = dns.rdata.from_text(
            dns.rdataclass.from_text(rclass), dns.rdatatype.from_text(rtype), text
        )
        out.append((owner, int(ttl), rtype, rdata.to_digestable()))
    return out


QUESTIONS = [
    ("www.framing.test.", "A"),
    ("www.framing.test.", "AAAA"),
    ("framing.test.", "SOA"),
    ("framing.test.", "NS"),
    ("framing.test.", "MX"),
    ("_http._tcp.framing.test.", "SRV"),
    ("80.rev.framing.test.", "PTR"),
    ("quote.framing.test.", "TXT"),
    ("web.framing.test.", "CNAME"),
    ("opaque.framing.test.", "TYPE65280"),
]


@pytest.mark.parametrize("tool", ["dig", "kdig"])
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
@pytest.mark.parametrize(("name", "rtype"), QUESTIONS)
def test_dig_and_kdig_read_every_type(
    server: tuple[str, int], tool: str, transport: str, name: str, rtype: str
) -> None:
    host, port = server
    output = _run(tool, [f"@{host}", "-p", str(port), transport, "+noall", "+answer", name, rtype])
    answers = _answers(output)
    assert answers, output
    assert {(owner, kind) for owner, _, kind, _ in answers} == {(name, rtype)}
    assert sorted(data for *_, data in answers) == _expected(name, rtype)


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_large_txt_truncated_over_udp_and_whole_over_tcp(
    server: tuple[str, int], tool: str
) -> None:
    host, port = server
    common = [f"@{host}", "-p", str(port), "big.framing.test.", "TXT"]
    udp = _run(tool, [*common, "+notcp", "+ignore"])
    flags = re.search(r"[Ff]lags: ([a-z ]+);", udp)
    assert flags, udp
    assert "tc" in flags.group(1).split()
    tcp = _run(tool, [*common, "+tcp", "+noall", "+answer"])
    assert [data for *_, data in _answers(tcp)] == _expected("big.framing.test.", "TXT")


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_dig_follows_the_cname_chain_and_sees_nxdomain(server: tuple[str, int], tool: str) -> None:
    host, port = server
    chain = _answers(
        _run(tool, [f"@{host}", "-p", str(port), "+noall", "+answer", "alias.framing.test."])
    )
    assert [kind for _, _, kind, _ in chain] == ["CNAME", "CNAME", "A", "A"]
    missing = _run(tool, [f"@{host}", "-p", str(port), "+tcp", "nothing.framing.test."])
    assert "NXDOMAIN" in missing


@pytest.mark.parametrize("opcode", ["status", "update"])
def test_dig_gets_the_opt_record_back_with_notimp(server: tuple[str, int], opcode: str) -> None:
    """Issue 13: dig warned "EDNS query returned status NOTIMP - retry with '+noedns'"."""
    host, port = server
    output = _run("dig", [f"@{host}", "-p", str(port), f"+opcode={opcode}", "www.framing.test."])
    assert "status: NOTIMP" in output
    assert "OPT PSEUDOSECTION" in output
    assert "EDNS query returned status" not in output
    # dig names the question of an UPDATE its "zone section" (RFC 2136 2.3).
    assert re.search(r"(QUESTION|ZONE) SECTION:\n;www\.framing\.test\.", output), output


def test_register_adds_the_dns_subcommand() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "dns",
            "--port",
            "0",
            "--idle-timeout",
            "2.5",
            "--message-timeout",
            "1.5",
            "--max-connections",
            "3",
            "--max-connections-per-peer",
            "2",
            "--proxy-protocol",
            "127.0.0.1",
            "--proxy-protocol",
            "10.0.0.0/8",
            "--loop",
            "trio",
        ]
    )
    assert (
        args.host,
        args.port,
        args.idle_timeout,
        args.message_timeout,
        args.max_connections,
        args.max_connections_per_peer,
        args.loop,
    ) == ("127.0.0.1", 0, 2.5, 1.5, 3, 2, "trio")
    assert args.proxy_protocol == ["127.0.0.1", "10.0.0.0/8"]
    assert args.zone is None
    with pytest.raises(SystemExit):
        parser.parse_args(["dns", "--port", "70000"])


def test_bad_zone_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "bad.zone"
    zone.write_text("$ORIGIN z.test.\nwww A 192.0.2.1\n")
    assert cli.main(["--zone", str(zone)]) == 1
    assert "no TTL" in capsys.readouterr().err
    assert cli.main(["--zone", str(tmp_path / "missing.zone")]) == 1


def test_load_zone_reads_a_file(tmp_path: Path) -> None:
    zone = tmp_path / "z.zone"
    zone.write_text("$ORIGIN z.test.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\nwww A 192.0.2.1\n")
    assert cli.load_zone(str(zone)).origin.to_text() == "z.test."
    assert cli.load_zone(None).origin.to_text() == "framing.test."
