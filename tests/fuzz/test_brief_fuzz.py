"""CI's brief fuzzing run: every target under atheris, 45 s in all, no finding.

``FUZZ_SECONDS`` (default 45) sets the total; ``make fuzz FUZZ_SECONDS=3600`` is
the long run. Needs atheris: like the real-client tests, it fails on CI
(``FRAMING_REQUIRE_TOOLS=1``) when atheris is missing and skips elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("FUZZ_SECONDS", "45"))


def _require_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("FRAMING_REQUIRE_TOOLS") == "1":
            pytest.fail("atheris is not installed, and the test extra promises it")
        pytest.skip("atheris is not installed (pip install atheris)")


@pytest.mark.timeout(SECONDS * 3 + 240)
def test_every_target_fuzzes_without_a_finding(tmp_path: Path) -> None:
    _require_atheris()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.run",
            "--seconds",
            str(SECONDS),
            "--jobs",
            "2",
            "--workdir",
            str(tmp_path / "work"),
            "--crashes",
            str(tmp_path / "crashes"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS * 3 + 200,
        check=False,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"fuzzing found something:\n{report[-8000:]}"
    assert "0 findings" in proc.stdout, report[-4000:]
    crashes = list((tmp_path / "crashes").glob("*"))
    assert not crashes, f"crash inputs saved: {crashes}"
