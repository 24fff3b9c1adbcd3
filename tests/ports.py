"""Ports for the servers the tests start (Ray heads, dashboards, the S3 server).

Not ``bind(("127.0.0.1", 0))``: that picks from Linux's ephemeral range (32768-60999 here), the range every outgoing
connection also takes its local port from, so on a busy machine the port can be taken between the pick and the
server's own bind (CI saw Ray's GCS fail with "Failed to start the grpc server" on such a port). These come from
below that range and above Ray's worker ports (10002-19999 by default), and are checked free on every interface,
as Ray's GCS binds them.
"""

from __future__ import annotations

import random
import socket

SERVER_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port no process listens on now, outside the ephemeral and Ray-worker ranges."""
    for port in random.sample(SERVER_PORTS, 100):
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {SERVER_PORTS.start}-{SERVER_PORTS.stop - 1} after 100 tries")
