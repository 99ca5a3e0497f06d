#!/usr/bin/env bash
# make bench: set up the benchmark's own environment, then run every benchmark.
#
#   - .venv-bench (never the shared .venv): the project with its `bench` extra
#     (Twisted, uvloop, dnslib, matplotlib, pyinstrument, trio);
#   - dnsperf, unbound, haproxy, knotd (knot) and kdig (knot-dnsutils) from Debian
#     when missing (apt-get, as root or with sudo; a Knot service apt starts is stopped);
#   - python -m benchmarks: compiles the C reference with cc when there is one,
#     runs the five parts, writes benchmarks/RESULTS.md, results.json and charts/.
#
# Environment: BENCH=decode,scaling,echo,dns,axfr,scale,conns runs a subset, BENCH_QUICK=1 a short
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

# command -> the Debian package that provides it.
declare -A PACKAGE=([dnsperf]=dnsperf [unbound]=unbound [knotd]=knot [kdig]=knot-dnsutils [haproxy]=haproxy)
missing=()
for tool in dnsperf unbound knotd kdig haproxy; do
    # knotd, unbound and haproxy live in /usr/sbin, outside a normal user's PATH.
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        missing+=("${PACKAGE[$tool]}")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    if command -v apt-get >/dev/null 2>&1; then
        # Install without a fresh package list first; update only if that fails.
        $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
            $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
        } || echo "bench: could not install ${missing[*]}; the DNS, AXFR and scale parts will say so" >&2
        # On a machine with an init system apt starts the Knot it just installed as
        # a service (port 53, every address); the benchmark starts its own, on
        # loopback, from a temporary directory. A Knot that was there before stays.
        if [[ " ${missing[*]} " == *" knot "* ]]; then
            $SUDO service knot stop >/dev/null 2>&1 || true
        fi
    else
        echo "bench: no apt-get; install ${missing[*]} for the DNS, AXFR and scale parts" >&2
    fi
fi
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac

exec "$VENV/bin/python" -m benchmarks
