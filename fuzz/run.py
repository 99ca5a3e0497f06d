"""Run the fuzz targets under atheris (libFuzzer) for a bounded time.

::

    python -m fuzz.run                          # every target, 75 s in all (CI)
    python -m fuzz.run --seconds 3600           # every target, an hour in all
    python -m fuzz.run --seconds 600 length     # one target, ten minutes
    python -m fuzz.run --replay                 # the corpus through every target, no atheris

Each target runs in a subprocess of its own (``--child``), so a crash, a hang
(``-timeout``, per input) or memory over ``-rss_limit_mb`` ends that target
alone and is reported with the input that caused it, saved under
``--crashes`` (default ``fuzz/crashes/``). New inputs that reach new coverage
go to ``--workdir`` (default ``fuzz/work/<target>/``, not committed); the
committed seeds in ``fuzz/corpus/<target>/`` are read, never written.

The exit status is 0 when no target found anything, 1 otherwise. The last line
printed is a summary: targets, seconds, executions, findings.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Result", "main", "run_target"]

HERE: Final = Path(__file__).resolve().parent
CORPUS: Final = HERE / "corpus"

# The target names, repeated here so the parent never imports the package
# under test (the child must import it inside atheris' instrumentation).
TARGET_NAMES: Final = ("length", "delimited", "netstring", "fixed_raw", "dns_message", "zone")

# Per-input limits: a framer handles a few KiB in microseconds, so 10 s for
# one input is a hang, and 2 GiB of RSS is a leak, not a framer's buffer.
PER_INPUT_TIMEOUT: Final = 10
RSS_LIMIT_MB: Final = 2048
MAX_LEN: Final = 4096


@dataclass(frozen=True, slots=True)
class Result:
    """One target's run.

    Attributes:
        target: the target's name.
        seconds: how long it ran.
        executions: inputs tried (from libFuzzer's final stats; 0 if unknown).
        status: the child's exit status; 0 means no finding.
        output: the tail of the child's output (the traceback, on a finding).
    """

    target: str
    seconds: float
    executions: int
    status: int
    output: str


def _child(target: str, seconds: int, workdir: Path, crashes: Path) -> None:
    """Fuzz one target in this process (never returns)."""
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: PLC0415

    # The checking helpers are imported first, uninstrumented: coverage of the
    # checks themselves would only distract libFuzzer from the code under test.
    import framing.testing  # noqa: PLC0415, F401

    with atheris.instrument_imports(include=["framing", "protocols"]):
        from fuzz.targets import TARGETS  # noqa: PLC0415 (imported under instrumentation)

    function = TARGETS[target]
    work = workdir / target
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-timeout={PER_INPUT_TIMEOUT}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={MAX_LEN}",
        f"-artifact_prefix={crashes}/{target}-",
        "-print_final_stats=1",
        str(work),
        str(CORPUS / target),
    ]
    atheris.Setup(argv, function)
    atheris.Fuzz()


def run_target(
    target: str,
    seconds: int,
    *,
    workdir: Path,
    crashes: Path,
    python: str = sys.executable,
) -> Result:
    """Fuzz one target for ``seconds`` in a subprocess; return what happened."""
    command = [
        python,
        "-m",
        "fuzz.run",
        "--child",
        target,
        "--seconds",
        str(seconds),
        "--workdir",
        str(workdir),
        "--crashes",
        str(crashes),
    ]
    start = time.monotonic()
    # Startup (imports, the corpus pass) comes on top of max_total_time; a
    # finding ends the child early. The outer timeout only catches a wedged child.
    proc = subprocess.run(
        command,
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=seconds + 120,
        check=False,
    )
    elapsed = time.monotonic() - start
    output = proc.stdout + proc.stderr
    found = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output)
    executions = int(found[-1]) if found else 0
    return Result(target, elapsed, executions, proc.returncode, output[-6000:])


def replay(targets: Sequence[str]) -> int:
    """Run every committed seed (and any saved crash) through its target, uninstrumented."""
    from fuzz.targets import TARGETS  # noqa: PLC0415

    failures = 0
    for name in targets:
        for path in sorted((CORPUS / name).iterdir()):
            try:
                TARGETS[name](path.read_bytes())
            except Exception as exc:  # every exception is a finding here
                failures += 1
                print(f"{name}: {path.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"replayed {len(targets)} targets: {failures} findings")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the targets; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "targets", nargs="*", help=f"any of {', '.join(TARGET_NAMES)} (default: all)"
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("FUZZ_SECONDS", "75")),
        help="total fuzzing time, shared by the targets (default: $FUZZ_SECONDS or 75)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="targets run at once (default: 2)")
    parser.add_argument("--workdir", type=Path, default=HERE / "work")
    parser.add_argument("--crashes", type=Path, default=HERE / "crashes")
    parser.add_argument("--replay", action="store_true", help="run the corpus, no fuzzing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    targets = list(args.targets) or list(TARGET_NAMES)
    unknown = sorted(set(targets) - set(TARGET_NAMES))
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")

    if args.child:
        _child(args.child, args.seconds, args.workdir, args.crashes)
        return 0
    if args.replay:
        return replay(targets)

    jobs = max(1, min(args.jobs, len(targets)))
    # Split the budget: with 6 targets on 2 jobs, 75 s gives each 25 s.
    each = max(1, args.seconds * jobs // len(targets))
    with ThreadPoolExecutor(jobs) as pool:
        results = list(
            pool.map(
                lambda t: run_target(t, each, workdir=args.workdir, crashes=args.crashes),
                targets,
            )
        )
    findings = 0
    for r in results:
        verdict = "ok" if r.status == 0 else f"FINDING (exit {r.status})"
        print(f"{r.target:12} {r.seconds:7.1f} s {r.executions:>10} runs  {verdict}")
        if r.status != 0:
            findings += 1
            print(r.output, file=sys.stderr)
    total_runs = sum(r.executions for r in results)
    print(
        f"fuzzed {len(results)} targets for {each} s each: {total_runs} runs, {findings} findings"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
