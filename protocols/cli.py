"""The ``framing`` command line: one entry point for every application."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import framing


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``framing`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="framing", description="Message boundaries on byte streams: demo servers and tools."
    )
    parser.add_argument("--version", action="version", version=f"framing {framing.__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
