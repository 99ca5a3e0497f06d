"""Applications built on framing: the echo server, the DNS server, the command line."""
