"""The ``framing`` command line: one entry point for every application.

::

    framing echo [--port 1234] [--framing raw]     the echo server (protocols/echo.py)
    framing connect HOST PORT [--framing SPEC]      a framed netcat (protocols/connect.py)
    framing dns [--port 5053] [--zone FILE]         the DNS server (protocols/dns/)

Each application module has a ``register(subparsers)`` that adds its subcommand
and sets ``func``, the function that runs it and returns the exit status; this
module only gathers them. To add an application, add its ``register`` to
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import framing
from protocols import connect, echo
from protocols.dns import cli as dns_cli

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every subcommand's ``register``, in the order ``framing --help`` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    echo.register,
    connect.register,
    dns_cli.register,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``framing`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="framing", description="Message boundaries on byte streams: demo servers and tools."
    )
    parser.add_argument("--version", action="version", version=f"framing {framing.__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
