"""Knot (``knotd``) as a peer: a primary of one zone file, on loopback, from a temporary directory.

The configuration is our own, written into the benchmark's temporary
directory: one zone, read from the file we generated, never written back
(``zonefile-sync: -1``, no journal), transfers allowed to 127.0.0.1 only, no
NOTIFY sent to anyone. Knot runs in the foreground, logging to the file that
:func:`benchmarks.procs.server_matching` reads; it is stopped by its pid.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.procs import free_port, server_matching

LABEL = "Knot (knotd, default threads)"


def available() -> bool:
    """Whether ``knotd`` is installed."""
    return shutil.which("knotd") is not None


def conf(directory: Path, port: int, origin: str, zone_file: Path) -> str:
    """knot.conf(5): one zone from ``zone_file``, on 127.0.0.1 only, AXFR to 127.0.0.1 only."""
    return f"""\
server:
    listen: 127.0.0.1@{port}
    rundir: {directory}
database:
    storage: {directory}
log:
  - target: stderr
    any: info
acl:
  - id: loopback-transfer
    address: 127.0.0.1
    action: transfer
zone:
  - domain: {origin}
    storage: {zone_file.parent}
    file: {zone_file.name}
    zonefile-sync: -1
    journal-content: none
    acl: loopback-transfer
"""


@contextmanager
def start(
    directory: Path, origin: str, zone_file: Path, *, startup: float = 120.0
) -> Iterator[int]:
    """Run knotd until the block ends; yield its port once the zone is loaded."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "knot.conf"
    config.write_text(conf(directory, port, origin, zone_file))
    pattern = r"\[" + re.escape(origin) + r"\] loaded"
    with server_matching(["knotd", "--config", str(config)], pattern=pattern, startup=startup):
        yield port
