from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from protocols.dns import cli
from protocols.dns.message import encode_rdata
from protocols.dns.zone import example_zone
from tests.conftest import require_tool
from tests.protocols.dns.zones import OPERATOR_ZONE_TEXT

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
            "--host",
            "127.0.0.1",
            "--host",
            "::1",
            "--zone",
            "a.zone",
            "--zone",
            "b.zone",
            "--allow-transfer",
            "127.0.0.2",
            "--allow-transfer",
            "::1/128",
            "--notify",
            "127.0.0.2",
            "--notify",
            "127.0.0.3:5300",
            "--notify",
            "[::1]:5301",
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
    ) == (["127.0.0.1", "::1"], 0, 2.5, 1.5, 3, 2, "trio")
    assert args.proxy_protocol == ["127.0.0.1", "10.0.0.0/8"]
    assert args.zone == ["a.zone", "b.zone"]
    assert args.allow_transfer == ["127.0.0.2", "::1/128"]
    assert args.notify == [("127.0.0.2", 53), ("127.0.0.3", 5300), ("::1", 5301)]
    defaults = parser.parse_args(["dns"])
    assert (defaults.host, defaults.zone, defaults.allow_transfer, defaults.notify) == (
        None,
        None,
        [],
        [],
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["dns", "--port", "70000"])


@pytest.mark.parametrize(
    "text", ["", "host.example", "127.0.0.1:", "127.0.0.1:0", "[::1", "[::1]x", "::1:99999"]
)
def test_notify_target_rejects_what_is_not_an_address(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.notify_target(text)


def test_notify_target_reads_bare_ipv6_as_an_address() -> None:
    assert cli.notify_target("::1") == ("::1", 53)


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


# --- an operator's server: zone files, transfers, SIGHUP ------------------------


class _Running:
    """``python -m protocols.dns.cli`` with options, its log read in a thread."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "protocols.dns.cli", "--port", "0", *options],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        first = self.process.stdout.readline()
        match = re.search(r"on (\S+) .*port (\d+)", first)
        if not match:
            self.stop()
            pytest.fail(f"no 'listening' line: {first!r} {self.process.stderr.read()}")
        self.host, self.port = match.group(1), int(match.group(2))
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def wait_for_log(self, pattern: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in list(self.log):
                if re.search(pattern, line):
                    return line
            assert self.process.poll() is None, f"exited with {self.process.returncode}"
            time.sleep(0.02)
        pytest.fail(f"no log line matching {pattern!r} in {self.log}")

    def ask(self, name: str, rtype: str = "A") -> dns.message.Message:
        query = dns.message.make_query(name, rtype)
        return dns.query.udp(query, self.host, port=self.port, timeout=5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def operator_zone(tmp_path: Path) -> Path:
    path = tmp_path / "cmp.test.zone"
    path.write_text(OPERATOR_ZONE_TEXT)
    return path


@pytest.fixture
def primary(operator_zone: Path) -> Iterator[_Running]:
    """Our server on the operator zone, transfers allowed to loopback."""
    server = _Running("--zone", str(operator_zone), "--allow-transfer", "127.0.0.0/8")
    try:
        yield server
    finally:
        server.stop()


def _zone_file_records(text: str) -> list[tuple[str, int, str, bytes]]:
    """(owner, ttl, type, data) of every record, as dnspython reads the file; SOA twice."""
    zone = dns.zone.from_text(text, relativize=False)
    out = []
    for name, rdataset in zone.iterate_rdatasets():
        for rdata in rdataset:
            record = (name.to_text(), rdataset.ttl, dns.rdatatype.to_text(rdataset.rdtype))
            out.append((*record, rdata.to_digestable()))
            if rdataset.rdtype == dns.rdatatype.SOA:
                out.append((*record, rdata.to_digestable()))
    return sorted(out)


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_dig_and_kdig_axfr_give_the_zone_as_dnspython_reads_the_file(
    primary: _Running, tool: str
) -> None:
    """Issue 13: dig AXFR and kdig AXFR got REFUSED."""
    output = _run(tool, [f"@{primary.host}", "-p", str(primary.port), "cmp.test.", "AXFR"])
    records = _answers(output)
    assert records[0][2] == records[-1][2] == "SOA"
    assert sorted((o.lower(), t, k, d) for o, t, k, d in records) == _zone_file_records(
        OPERATOR_ZONE_TEXT
    )
    primary.wait_for_log(r"sent AXFR of cmp\.test\. to 127\.0\.0\.1:\d+: 1 messages")


def test_sighup_reloads_the_zone_and_notifies(operator_zone: Path) -> None:
    """Issue 13: SIGHUP killed the server (exit 129). Now it reloads and sends NOTIFY."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as secondary:
        secondary.bind(("127.0.0.1", 0))
        secondary.settimeout(10)
        port = secondary.getsockname()[1]
        server = _Running("--zone", str(operator_zone), "--notify", f"127.0.0.1:{port}")
        try:
            assert server.ask("www.cmp.test.").answer[0][0].to_text() in {
                "127.0.0.80",
                "127.0.0.81",
            }
            server.process.send_signal(signal.SIGHUP)
            server.wait_for_log(r"SIGHUP: reloaded 1 zone files, 0 with a new serial")
            operator_zone.write_text(
                OPERATOR_ZONE_TEXT.replace("2024060101", "2024060102").replace(
                    "www         A     127.0.0.80\n            A     127.0.0.81\n",
                    "www         A     127.0.0.82\n",
                )
            )
            server.process.send_signal(signal.SIGHUP)
            data, peer = secondary.recvfrom(65535)
            notify = dns.message.from_wire(data)
            assert notify.opcode() == dns.opcode.NOTIFY
            assert notify.question[0].name.to_text() == "cmp.test."
            secondary.sendto(dns.message.make_response(notify).to_wire(), peer)
            server.wait_for_log(r"NOTIFY for cmp\.test\. serial 2024060102 .*answered, rcode 0")
            answer = server.ask("www.cmp.test.")
            assert [r.to_text() for r in answer.answer[0]] == ["127.0.0.82"]
            assert server.process.poll() is None
        finally:
            server.stop()
    assert server.process.returncode == 0


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_sighup_with_a_broken_zone_file_keeps_the_old_zone(operator_zone: Path, loop: str) -> None:
    server = _Running("--zone", str(operator_zone), "--loop", loop)
    try:
        operator_zone.write_text(
            OPERATOR_ZONE_TEXT.replace("2024060101", "2024060102").replace(
                "mail        A     127.0.0.25", "mail        A     127.0.0.999"
            )
        )
        server.process.send_signal(signal.SIGHUP)
        line = server.wait_for_log(r"kept the old zone")
        number = OPERATOR_ZONE_TEXT.splitlines().index("mail        A     127.0.0.25") + 1
        assert line == (
            f"framing dns: {operator_zone}: kept the old zone: line {number}: "
            "Octet 999 (> 255) not permitted in '127.0.0.999'"
        )
        server.wait_for_log(r"SIGHUP: reloaded 1 zone files, 0 with a new serial")
        soa = server.ask("cmp.test.", "SOA").answer[0][0]
        assert soa.serial == 2024060101
        assert server.ask("mail.cmp.test.").answer[0][0].to_text() == "127.0.0.25"
    finally:
        server.stop()
    assert server.process.returncode == 0


CHILD_ZONE_TEXT = """$ORIGIN sub.cmp.test.
$TTL 60
@    SOA  ns hostmaster 7 7200 3600 1209600 60
     NS   ns
ns   A    127.0.0.53
www  A    127.0.0.88
"""


def test_several_zones_and_hosts_in_one_process(operator_zone: Path, tmp_path: Path) -> None:
    """Issue 13: --zone and --host repeat; the longest matching zone answers; each reloads."""
    child = tmp_path / "sub.cmp.test.zone"
    child.write_text(CHILD_ZONE_TEXT)
    server = _Running(
        "--zone", str(operator_zone), "--zone", str(child), "--host", "127.0.0.1", "--host", "::1"
    )
    try:
        for host in ("127.0.0.1", "::1"):
            for name, address in [
                ("www.sub.cmp.test.", "127.0.0.88"),
                ("mail.cmp.test.", "127.0.0.25"),
            ]:
                query = dns.message.make_query(name, "A")
                for answer in (
                    dns.query.udp(query, host, port=server.port, timeout=5),
                    dns.query.tcp(query, host, port=server.port, timeout=5),
                ):
                    assert answer.flags & dns.flags.AA
                    assert [r.to_text() for r in answer.answer[0]] == [address]
            outside = dns.query.udp(
                dns.message.make_query("www.example.", "A"), host, port=server.port, timeout=5
            )
            assert outside.rcode() == dns.rcode.REFUSED
        # One file broken, the other changed: the broken one keeps its zone.
        operator_zone.write_text(OPERATOR_ZONE_TEXT.replace("SOA", "SOA (", 1))
        child.write_text(CHILD_ZONE_TEXT.replace(" 7 ", " 8 ").replace("127.0.0.88", "127.0.0.89"))
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log(rf"{re.escape(str(operator_zone))}: kept the old zone: ")
        server.wait_for_log(r"SIGHUP: reloaded 2 zone files, 1 with a new serial")
        assert server.ask("www.sub.cmp.test.").answer[0][0].to_text() == "127.0.0.89"
        assert server.ask("mail.cmp.test.").answer[0][0].to_text() == "127.0.0.25"
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_dig_cookie_keepalive_and_nsid() -> None:
    """Issue 13: RFC 7873 cookies, RFC 7828 keepalive (TCP only), RFC 5001 NSID."""
    server = _Running("--nsid", "ns1.framing.test", "--idle-timeout", "7.5")
    try:
        common = [f"@{server.host}", "-p", str(server.port), "+cookie", "+keepalive", "+nsid"]
        tcp = _run("dig", [*common, "+tcp", "www.framing.test."])
        assert "status: NOERROR" in tcp
        assert '; NSID: 6e 73 31 2e 66 72 61 6d 69 6e 67 2e 74 65 73 74 ("ns1.framing.test")' in tcp
        assert re.search(r"; COOKIE: [0-9a-f]{16}01000000[0-9a-f]{24} \(good\)", tcp), tcp
        assert "; TCP KEEPALIVE: 7.5 secs" in tcp
        udp = _run("dig", [*common, "+notcp", "www.framing.test."])
        assert "(good)" in udp
        assert "KEEPALIVE" not in udp
        # A server cookie that is not ours: BADCOOKIE, and dig retries with the new one.
        forged = _run(
            "dig", [*common[:3], f"+cookie=0102030405060708{'00' * 16}", "www.framing.test."]
        )
        assert "BADCOOKIE, retrying" in forged
        assert "status: NOERROR" in forged
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["udp", "tcp"])
def test_reload_under_load_loses_no_query_and_never_mixes_zones(
    operator_zone: Path, tmp_path: Path, mode: str
) -> None:
    """Issue 13: dnsperf runs while SIGHUP reloads the zone three times: 0 queries lost,
    and every answer seen comes from one zone, old or new, never a mix."""
    dnsperf = require_tool("dnsperf")
    queries = tmp_path / "queries"
    queries.write_text("www.cmp.test A\nmail.cmp.test A\ncmp.test SOA\nx.wild.cmp.test TXT\n")
    old = ["127.0.0.80", "127.0.0.81"]
    versions = [
        OPERATOR_ZONE_TEXT.replace("2024060101", f"202406010{n + 2}").replace(
            "www         A     127.0.0.80\n            A     127.0.0.81\n",
            f"www         A     127.0.0.{90 + n}\n",
        )
        for n in range(3)
    ]
    server = _Running("--zone", str(operator_zone))
    try:
        load = subprocess.Popen(
            [
                *(dnsperf, "-s", server.host, "-p", str(server.port), "-m", mode),
                *("-d", str(queries), "-l", "3", "-Q", "2000", "-t", "2"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seen: set[tuple[str, ...]] = set()
        for n, text in enumerate(versions):
            time.sleep(0.5)
            operator_zone.write_text(text)
            server.process.send_signal(signal.SIGHUP)
            server.wait_for_log(rf"serving cmp\.test\. serial 202406010{n + 2}")
            for _ in range(20):
                answer = server.ask("www.cmp.test.")
                seen.add(tuple(sorted(r.to_text() for r in answer.answer[0])))
        output, _ = load.communicate(timeout=20)
    finally:
        server.stop()
    assert load.returncode == 0, output
    sent = re.search(r"Queries sent:\s+(\d+)", output)
    lost = re.search(r"Queries lost:\s+(\d+)", output)
    assert sent is not None, output
    assert lost is not None, output
    assert int(sent.group(1)) > 1000, output
    assert int(lost.group(1)) == 0, output
    allowed = {tuple(old), *((f"127.0.0.{90 + n}",) for n in range(3))}
    assert seen <= allowed
    assert ("127.0.0.92",) in seen
