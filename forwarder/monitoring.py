"""Optional HTTP endpoint (`http.enabled`): `GET /` for identity, `GET /stats` for counters.

Bound to localhost by default; it serves read-only counters and never a
config value, and the stats table redacts every known secret from error texts.
It has no authentication, so a host that other machines can reach is warned
about at start and by `forwarder test config`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from forwarder import __version__
from forwarder.stats import StatsTable

log = logging.getLogger("forwarder.monitoring")


def reachable_from_other_hosts(host: str) -> bool:
    """Whether binding to `host` accepts connections from other machines (any non-loopback address).

    A name is resolved as the bind will resolve it; a name that does not resolve cannot be bound, so it
    exposes nothing (the start fails with its own error).
    """
    name = host.strip().strip("[]")
    if not name:
        return True  # an empty host binds every interface
    if name.lower() == "localhost" or name.lower().endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return any(not ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


class MonitoringServer:
    def __init__(self, host: str, port: int, stats: StatsTable, name: str) -> None:
        table, beat_name = stats, name

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/":
                    body: Any = {"beat": "forwarder", "name": beat_name, "version": __version__}
                elif url.path == "/stats":
                    body = table.snapshot()
                else:
                    self.send_error(404, "unknown path; try /stats")
                    return
                pretty = "pretty" in parse_qs(url.query, keep_blank_values=True)
                data = json.dumps(body, indent=2 if pretty else None).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http %s", format % args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-monitoring", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("monitoring endpoint listening on http://%s:%d/stats", *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
