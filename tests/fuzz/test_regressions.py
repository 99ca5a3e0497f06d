"""Every input the fuzzers found that broke an invariant, replayed as a test.

The inputs are in ``fuzz/regressions/`` (named ``<target>-<kind>-<what>``); each
runs in a subprocess with a bound, so that a hang fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = ROOT / "fuzz" / "regressions"

# An input that took milliseconds takes at most this long with any slack at all.
BOUND_SECONDS = 10


def _replay(target: str, data: bytes) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from fuzz.targets import TARGETS\n"
        f"TARGETS[{target!r}](sys.stdin.buffer.read())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        input=data.decode("latin-1"),
        encoding="latin-1",
        capture_output=True,
        timeout=BOUND_SECONDS,
        check=False,
    )


# Found by `python -m fuzz.run zone` after 7,435 inputs: the TTL check
# r"^(?:\d+[smhdw]?)+$" backtracked exponentially on a run of digits followed
# by a non-unit ("7" * 120 + "AA"), so one zone line could hang the parser.
# Fixed with the unambiguous r"^\d+(?:[smhdw]\d+)*[smhdw]?$".


def test_zone_ttl_of_many_digits_then_letters_is_refused_quickly() -> None:
    text = "$ORIGIN example.\n@ SOA a b 1 2 3 4 5\nwww " + "7" * 60 + "AA 2001:db8::1\n"
    result = _replay("zone", b"\x00" + text.encode())
    assert result.returncode == 0, result.stderr


def test_zone_fuzz_input_ttl_redos() -> None:
    result = _replay("zone", (REGRESSIONS / "zone-timeout-ttl-redos").read_bytes())
    assert result.returncode == 0, result.stderr


def test_every_saved_regression_has_a_test() -> None:
    tested = {"zone-timeout-ttl-redos"}
    assert {p.name for p in REGRESSIONS.iterdir()} == tested
