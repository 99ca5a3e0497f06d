#!/usr/bin/env bash
# make bench: set up the benchmark's own environment, then run every benchmark.
#
#   - .venv-bench (never the shared .venv): the project with its `bench` extra
#     (Twisted, uvloop, dnslib, matplotlib, pyinstrument, trio);
#   - dnsperf and unbound from Debian when missing (apt-get, as root or with sudo);
#   - python -m benchmarks: compiles the C reference with cc when there is one,
#     runs the five parts, writes benchmarks/RESULTS.md, results.json and charts/.
#
# Environment: BENCH=decode,scaling,echo,dns,conns runs a subset, BENCH_QUICK=1 a short
# smoke run (both write to benchmarks/.build/partial/, not RESULTS.md); see
# benchmarks/__main__.py for the rest. PYTHON picks the interpreter (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-bench
STAMP=$VENV/.installed

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# Reinstall whenever pyproject.toml changes (new dependencies, new extras).
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet -e '.[bench]'
    touch "$STAMP"
fi

if ! command -v dnsperf >/dev/null 2>&1 || ! command -v unbound >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    if command -v apt-get >/dev/null 2>&1; then
        # Install without a fresh package list first; update only if that fails.
        $SUDO apt-get install -y -qq dnsperf unbound >/dev/null 2>&1 || {
            $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dnsperf unbound
        } || echo "bench: could not install dnsperf/unbound; the DNS part will say so" >&2
    else
        echo "bench: no apt-get; install dnsperf and unbound for the DNS part" >&2
    fi
fi

exec "$VENV/bin/python" -m benchmarks
