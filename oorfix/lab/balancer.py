"""The lab's load balancer: a real HTTP reverse proxy on the payment VIP, and ``lbctl``.

The proxy forwards every request to the next enabled backend (round robin) and adds the
``X-Served-By`` header. Its pool lives in ``$OORFIX_LAB_STATE/pool.json`` and is read per
request, so ``lbctl disable pg-api-2`` takes effect at once. ``lbctl`` stands in for a real
balancer's runtime API (for HAProxy: ``echo "disable server payments/pg-api-2" | socat
stdio /run/haproxy/admin.sock``); runbooks call it with ``on: lb``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from oorfix.lab.httpserver import LabHTTPServer

POOL_FILE = "pool.json"
BACKEND_TIMEOUT = 3.0


def pool_path(state: Path) -> Path:
    """Where the balancer's pool is kept."""
    return state / POOL_FILE


def read_pool(state: Path) -> dict[str, Any]:
    """The pool: every backend's address and which are enabled."""
    data: dict[str, Any] = json.loads(pool_path(state).read_text())
    return data


def write_pool(state: Path, backends: dict[str, str], enabled: list[str]) -> None:
    """Write the pool atomically."""
    path = pool_path(state)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"backends": backends, "enabled": enabled}, indent=2))
    tmp.replace(path)


class Proxy(BaseHTTPRequestHandler):
    """Forwards GET and POST to the next enabled backend."""

    server: Balancer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the journal keeps only what the balancer decides."""

    def _forward(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        backend = self.server.next_backend()
        if backend is None:
            self._reply(503, b'{"error": "no backend enabled"}', "-")
            return
        name, address = backend
        request = urllib.request.Request(f"http://{address}{self.path}", data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=BACKEND_TIMEOUT) as reply:  # noqa: S310
                self._reply(reply.status, reply.read(), name)
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.read(), name)
        except OSError:
            self._reply(502, b'{"error": "backend unreachable"}', name)

    def _reply(self, status: int, payload: bytes, served_by: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Served-By", served_by)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        """Forward a GET."""
        self._forward("GET")

    def do_POST(self) -> None:
        """Forward a POST."""
        self._forward("POST")


class Balancer(LabHTTPServer):
    """The proxy server, round-robin over the enabled backends."""

    def __init__(self, address: tuple[str, int], state: Path):
        super().__init__(address, Proxy)
        self.state = state
        self._counter = itertools.count()

    def next_backend(self) -> tuple[str, str] | None:
        """The next enabled backend as (name, host:port)."""
        pool = read_pool(self.state)
        enabled = [n for n in pool["enabled"] if n in pool["backends"]]
        if not enabled:
            return None
        name = enabled[next(self._counter) % len(enabled)]
        return name, pool["backends"][name]


def serve(argv: list[str] | None = None) -> None:
    """Run the proxy until killed."""
    parser = argparse.ArgumentParser(description="lab load balancer")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    state = Path(os.environ.get("OORFIX_LAB_STATE", "."))
    server = Balancer((args.bind, args.port), state)
    print(f"pg-lb listening on {args.bind}:{args.port}", flush=True)
    server.serve_forever()


def lbctl(state: Path, args: list[str]) -> int:
    """``lbctl status | enable NAME | disable NAME``: change or show the pool."""
    pool = read_pool(state)
    backends, enabled = pool["backends"], list(pool["enabled"])
    if not args or args[0] == "status":
        for name in backends:
            print(f"{name} {backends[name]} {'UP' if name in enabled else 'MAINT'}")
        return 0
    if len(args) != 2 or args[0] not in ("enable", "disable"):
        print("usage: lbctl status | enable NAME | disable NAME", file=sys.stderr)
        return 2
    verb, name = args
    if name not in backends:
        print(f"lbctl: no backend {name!r}", file=sys.stderr)
        return 1
    if verb == "enable" and name not in enabled:
        enabled.append(name)
    if verb == "disable" and name in enabled:
        enabled.remove(name)
    write_pool(state, backends, enabled)
    return 0


def main() -> None:
    """``python -m oorfix.lab.balancer serve ...`` or ``... lbctl ARGS``."""
    if len(sys.argv) > 1 and sys.argv[1] == "lbctl":
        sys.exit(lbctl(Path(os.environ.get("OORFIX_LAB_STATE", ".")), sys.argv[2:]))
    serve(sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "serve" else sys.argv[1:])


if __name__ == "__main__":
    main()
