"""Run the benchmarks: ``python -m benchmarks`` (what ``make bench`` runs after its setup).

Environment:
    BENCH=decode,scaling,echo,dns,axfr,scale,conns   the sections to run (default: all seven)
    BENCH_QUICK=1                   smaller streams and shorter runs (a smoke test)
    BENCH_REPEATS=N                 decode repeats (best of N; default 3)
    BENCH_ECHO_SECONDS, BENCH_DNS_SECONDS   measured seconds per server (default 5)
    BENCH_AXFR_RECORDS, BENCH_AXFR_PASSES   the AXFR zone's size (100000), timed passes (5)
    BENCH_SCALE_SECONDS, BENCH_SCALE_PASSES  the same for the scale section (default 4 s, 2)
    BENCH_OUT=DIR                   where RESULTS.md, results.json and charts/ go
    BENCH_NOTE=TEXT                 a sentence for RESULTS.md (such as why a run is preliminary)

A full run (every section, not quick) writes ``benchmarks/RESULTS.md``,
``benchmarks/results.json`` and ``benchmarks/charts/*.png``; any other run writes
to ``benchmarks/.build/partial/`` so that it never replaces a full run's results.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BUILD, HERE, SECTIONS, load, log, machine, quick


def main() -> int:
    wanted = [s.strip() for s in os.environ.get("BENCH", "").split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        print(f"unknown BENCH section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    sections = [s for s in SECTIONS if not wanted or s in wanted]
    partial = sections != list(SECTIONS) or quick()
    out_dir = Path(os.environ.get("BENCH_OUT") or (BUILD / "partial" if partial else HERE))
    results: dict[str, Any] = {
        "machine": machine(),
        "sections": sections,
        "partial": partial,
        "quick": quick(),
    }
    started = time.monotonic()
    for section in sections:
        log(f"== {section}")
        if section == "decode":
            from benchmarks.decode import run_decode

            results["decode"] = run_decode()
        elif section == "scaling":
            from benchmarks.decode import run_scaling

            results["scaling"] = run_scaling()
        elif section == "echo":
            from benchmarks.echo import run_echo

            results["echo"] = run_echo()
        elif section == "conns":
            from benchmarks.conns import run_conns

            results["conns"] = run_conns()
        elif section == "dns":
            from benchmarks.dns import run_dns

            results["dns"] = run_dns()
        elif section == "axfr":
            from benchmarks.axfr import run_axfr

            results["axfr"] = run_axfr()
        elif section == "scale":
            from benchmarks.scale import run_scale

            results["scale"] = run_scale()
        log(f"== {section} took {results[section]['seconds']:.0f} s")
    results["seconds"] = time.monotonic() - started
    results["load_after"] = load()
    results["note"] = os.environ.get("BENCH_NOTE", "")

    from benchmarks import report

    out_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = report.targets(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    chart_paths = report.charts(results, out_dir / "charts", "charts")
    (out_dir / "RESULTS.md").write_text(report.markdown(results, chart_paths))
    log(f"wrote {out_dir / 'RESULTS.md'} ({results['seconds']:.0f} s in all)")
    for t in results["targets"]:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        log(f"  {verdict:12} {t['target']}: {t['ratio']} {t['where']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
