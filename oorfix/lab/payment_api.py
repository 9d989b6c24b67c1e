"""The lab's payment API: a real HTTP process with a health and a payment endpoint.

``GET /health`` answers ``{"status": "ok", "version": ...}``; ``POST /pay`` accepts a
payment unless the installed version (read from the host's package database in the lab
state directory) is one the lab marks as bad, in which case it rejects payments with 502.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from oorfix.lab.httpserver import JsonHandler, LabHTTPServer

# Versions with the payment-rejecting bug of the guide's case study.
BAD_VERSIONS = frozenset({"2.3.0-bad"})
DEFAULT_VERSION = "2.4.1"
HOST = os.environ.get("OORFIX_LAB_HOST", "")


def installed_version(state: Path | None, package: str = "pg-api") -> str:
    """The installed version of ``package`` in the lab host's package database."""
    if state is None:
        return DEFAULT_VERSION
    path = state / "packages.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return DEFAULT_VERSION
    return str(data.get(package, DEFAULT_VERSION))


class Handler(JsonHandler):
    """Health and payment endpoints."""

    server: PaymentServer

    def do_GET(self) -> None:
        """Health check."""
        if self.path != "/health":
            self.send_json(404, {"error": "not found"})
            return
        self.send_json(200, {"status": "ok", "version": self.server.version, "host": HOST})

    def do_POST(self) -> None:
        """Take a payment, unless this version has the rejecting bug."""
        if self.path != "/pay":
            self.send_json(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.server.version in BAD_VERSIONS:
            self.send_json(502, {"status": "rejected", "error": "clearing module rejected payment"})
            return
        self.send_json(200, {"status": "accepted", "host": HOST})


class PaymentServer(LabHTTPServer):
    """The HTTP server, knowing the version it runs."""

    def __init__(self, address: tuple[str, int], version: str):
        super().__init__(address, Handler)
        self.version = version


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    state_env = os.environ.get("OORFIX_LAB_STATE")
    version = installed_version(Path(state_env) if state_env else None)
    server = PaymentServer((args.bind, args.port), version)
    print(f"pg-api {version} listening on {args.bind}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
