"""The HTTP server base of the lab's services: bound and listening at once, no name lookup.

``http.server.HTTPServer.server_bind`` calls ``socket.getfqdn()`` between ``bind`` and
``listen``. Inside a lab namespace that lookup goes to a nameserver the namespace cannot
reach and waits out the resolver's timeout, so a restarted service would refuse
connections for seconds while systemctl already calls it active.
"""

from __future__ import annotations

import json
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LabHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that never resolves its own name."""

    daemon_threads = True

    def server_bind(self) -> None:
        """Bind without looking up the host's name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers in JSON."""

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        """Send ``body`` as a JSON response with ``status``."""
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
