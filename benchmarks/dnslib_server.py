"""The dnslib peer: dnslib's own ``DNSServer`` with its ``ZoneResolver``, UDP and TCP.

    python -m benchmarks.dnslib_server

serves the records of the query mix (``benchmarks.dns_zone``) on 127.0.0.1,
prints ``dnslib udp PORT tcp PORT`` once both listen, and serves until SIGTERM.
Request logging is off (dnslib prints every request by default); errors still show.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver

from benchmarks.dns_zone import records


def main() -> int:
    resolver = ZoneResolver("\n".join(records()), glob=False)
    logger = DNSLogger("-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    udp = DNSServer(resolver, port=0, address="127.0.0.1", logger=logger)
    tcp = DNSServer(resolver, port=0, address="127.0.0.1", logger=logger, tcp=True)
    udp.start_thread()
    tcp.start_thread()
    udp_port = udp.server.server_address[1]
    tcp_port = tcp.server.server_address[1]
    print(f"dnslib udp {udp_port} tcp {tcp_port}", flush=True)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    udp.stop()
    tcp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
