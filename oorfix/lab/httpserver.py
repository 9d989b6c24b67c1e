"""The HTTP server base of the lab's services: bound and listening at once, no name lookup.

``http.server.HTTPServer.server_bind`` calls ``socket.getfqdn()`` between ``bind`` and
``listen``. Inside a lab namespace that lookup goes to a nameserver the namespace cannot
reach and waits out the resolver's timeout, so a restarted service would refuse
connections for seconds while systemctl already calls it active.
"""

from __future__ import annotations

import socketserver
from http.server import ThreadingHTTPServer


class LabHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that never resolves its own name."""

    daemon_threads = True

    def server_bind(self) -> None:
        """Bind without looking up the host's name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
