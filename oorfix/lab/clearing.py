"""The clearing network peer of the lab: the far end of the payment hosts' data plane.

A tiny real HTTP server that runs inside the ``oorfix-clearing`` namespace, so reaching it
proves a host's route, gateway and path work. ``GET /health`` answers ``{"status": "ok"}``
and ``POST /clear`` answers ``{"status": "cleared"}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from oorfix.lab.httpserver import JsonHandler, LabHTTPServer
from oorfix.lab.topology import CLEARING_ADDRESS, CLEARING_PORT


class Handler(JsonHandler):
    """Health and clearing endpoints."""

    # HTTP/1.0 closes after each answer: a probe measures one whole exchange, not keep-alive.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        """Health check."""
        if self.path != "/health":
            self.send_json(404, {"error": "not found"})
            return
        self.send_json(200, {"status": "ok"})

    def do_POST(self) -> None:
        """Clear a payment (the body is read and ignored)."""
        if self.path != "/clear":
            self.send_json(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_json(200, {"status": "cleared"})

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the journal to startup lines: probes would flood it."""


class ClearingServer(LabHTTPServer):
    """The HTTP server; threads die with it."""


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default=CLEARING_ADDRESS)
    parser.add_argument("--port", type=int, default=CLEARING_PORT)
    args = parser.parse_args(argv)
    server = ClearingServer((args.bind, args.port), Handler)
    print(f"clearing peer listening on {args.bind}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
