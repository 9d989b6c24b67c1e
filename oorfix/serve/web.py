"""The service's HTTP side (aiohttp): the Alertmanager webhook, the JSON API, /metrics,
/healthz and the dashboard, and the loop that runs the service until SIGTERM.

    POST /hooks/alertmanager     Alertmanager's webhook (bearer token or HMAC, size-limited)
    GET  /healthz                liveness and queue sizes (no secret in it, no login)
    GET  /metrics                Prometheus text format
    GET  /api/v1/runs[/ID]       run summaries; one run's record
    GET  /api/v1/diagnosis       the newest diagnosis's record
    GET  /api/v1/schedules       schedules with next and last starts
    GET  /api/v1/alerts          recent alerts and what was done with them
    GET  /api/v1/jobs            jobs queued or running
    GET  /                       the dashboard;  GET /runs  every run;  GET /runs/ID  a report

Reads need no login on loopback; elsewhere (or when a dashboard token is set) they need
``Authorization: Bearer TOKEN`` or the cookie that ``/?token=TOKEN`` sets. The webhook always
needs its own secret. Blocking work (the engine, files) runs in threads, never in the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from oorfix import __version__
from oorfix.errors import InputError, StateUnavailable
from oorfix.output.reports.html import html_report
from oorfix.serve.alerts import AMPayload
from oorfix.serve.dashboard import dashboard_page, runs_page
from oorfix.serve.service import Service

log = logging.getLogger("oorfix.serve")
COOKIE = "oorfix_token"
SIGNATURE = "X-Oorfix-Signature"
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Secrets:
    """The secrets read when the service starts (never from a request)."""

    webhook_token: str | None = None
    webhook_hmac: str | None = None
    dashboard_token: str | None = None


def read_secrets(service: Service) -> Secrets:
    """Read every configured secret now: a missing one stops the start (exit 2)."""
    am = service.config.alertmanager
    dash = service.config.dashboard.token
    return Secrets(
        webhook_token=am.token.read() if am and am.token else None,
        webhook_hmac=am.hmac.read() if am and am.hmac else None,
        dashboard_token=dash.read() if dash else None,
    )


def _same(given: str, expected: str) -> bool:
    # A header may carry any byte: one that is not UTF-8 is a mismatch, never an error.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _loopback_host(request: web.Request) -> bool:
    """Whether the request names a loopback host: a page the operator opens elsewhere that
    rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own name instead."""
    host = request.host or ""
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def make_app(service: Service, secrets: Secrets) -> web.Application:
    """The aiohttp application of one service."""
    am = service.config.alertmanager
    max_body = am.max_body if am else 1 << 20
    app = web.Application(client_max_size=max_body, middlewares=[_security_headers])
    api = _Api(service, secrets, max_body)
    app.router.add_post("/hooks/alertmanager", api.alertmanager)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.read(api.metrics))
    app.router.add_get("/api/v1/runs", api.read(api.runs))
    app.router.add_get("/api/v1/runs/{run_id}", api.read(api.run))
    app.router.add_get("/api/v1/diagnosis", api.read(api.diagnosis))
    app.router.add_get("/api/v1/schedules", api.read(api.schedules))
    app.router.add_get("/api/v1/alerts", api.read(api.alerts))
    app.router.add_get("/api/v1/jobs", api.read(api.jobs))
    app.router.add_get("/", api.read(api.dashboard))
    app.router.add_get("/runs", api.read(api.all_runs))
    app.router.add_get("/runs/{run_id}", api.read(api.report))
    return app


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except StateUnavailable as exc:  # the team's Redis is down: say so, the service lives on
        response = _json({"error": str(exc)}, 503)
    response.headers.update(_HEADERS)
    return response


def _json(data: Any, status: int = 200) -> web.Response:
    text = json.dumps(data, indent=2, default=_default, ensure_ascii=False)
    return web.Response(text=text + "\n", status=status, content_type="application/json")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Api:
    """The handlers, with the service and the secrets they check."""

    def __init__(self, service: Service, secrets: Secrets, max_body: int) -> None:
        self.service = service
        self.secrets = secrets
        self.max_body = max_body

    # --- the webhook ----------------------------------------------------------------------

    async def alertmanager(self, request: web.Request) -> web.Response:
        """Alertmanager's webhook: authenticate, bound, parse, route."""
        if self.service.config.alertmanager is None:
            return self._refuse(request, 404, "no alertmanager section", "not_configured")
        length = request.content_length
        if length is not None and length > self.max_body:
            return self._refuse(request, 413, f"body over {self.max_body} bytes", "too_large")
        token = self.secrets.webhook_token
        if token and not self.secrets.webhook_hmac and not self._bearer(request, token):
            # Refused before the body is read: a stranger cannot make us buffer a megabyte.
            return self._refuse(request, 401, "wrong or missing bearer token", "token")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(request, 413, f"body over {self.max_body} bytes", "too_large")
        if not self._authentic(request, body):
            return self._refuse(request, 401, "wrong or missing token or signature", "token")
        try:
            payload = AMPayload.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return self._refuse(
                request, 400, f"not a version 4 payload: {where}: {first['msg']}", "payload"
            )
        am = self.service.config.alertmanager
        if len(payload.alerts) > am.max_alerts:
            return self._refuse(request, 413, f"over {am.max_alerts} alerts", "too_many_alerts")
        entries = await asyncio.to_thread(self.service.receive, payload)
        return _json({"received": len(entries), "alerts": [e.to_json() for e in entries]})

    def _bearer(self, request: web.Request, token: str) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and _same(given.strip(), token)

    def _authentic(self, request: web.Request, body: bytes) -> bool:
        if self.secrets.webhook_token and self._bearer(request, self.secrets.webhook_token):
            return True
        if self.secrets.webhook_hmac:
            key = self.secrets.webhook_hmac.encode()
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            return _same(request.headers.get(SIGNATURE, ""), expected)
        return False

    def _refuse(self, request: web.Request, status: int, why: str, reason: str) -> web.Response:
        log.warning("webhook refused from %s: %s", request.remote, why)
        self.service.metrics.refused.labels(reason).inc()
        return _json({"error": why}, status)

    # --- reads --------------------------------------------------------------------------

    def read(self, handler: Handler) -> Handler:
        """``handler`` behind the dashboard's access rule."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            token = self.secrets.dashboard_token
            if token is None:
                if _loopback_host(request):
                    return await handler(request)
                # Open reads are for loopback only; behind a proxy, set dashboard.token.
                log.warning("read refused: Host %r is not loopback", request.host)
                self.service.metrics.refused.labels("host").inc()
                return _json({"error": "open reads answer loopback host names only"}, 421)
            given = request.query.get("token")
            if given is not None and _same(given, token):
                # The token leaves the address bar at once: a cookie carries it from now on.
                response = web.Response(status=303, headers={"Location": request.path})
                response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
                return response
            if self._bearer(request, token) or _same(request.cookies.get(COOKIE, ""), token):
                return await handler(request)
            log.warning("read refused from %s: no valid token", request.remote)
            self.service.metrics.refused.labels("dashboard").inc()
            return _json({"error": "a token is required"}, 401)

        return guarded

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness: the service answers, and how busy it is."""
        jobs = self.service.jobs()
        failing = self.service.tick_error
        status = "stopping" if self.service.stopping else "degraded" if failing else "ok"
        return _json(
            {
                "status": status,
                "schedules_error": failing,
                "version": __version__,
                "jobs": len(jobs),
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text format."""
        body = self.service.metrics.text()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def runs(self, request: web.Request) -> web.Response:
        """Run summaries, newest first."""
        summaries = await asyncio.to_thread(self.service.history.runs)
        return _json([_summary(s) for s in summaries[:200]])

    async def run(self, request: web.Request) -> web.Response:
        """One run's record."""
        try:
            record = await asyncio.to_thread(
                self.service.history.load, request.match_info["run_id"]
            )
        except InputError as exc:
            return _json({"error": exc.message}, 404)
        return _json(record.to_dict())

    async def diagnosis(self, request: web.Request) -> web.Response:
        """The newest diagnosis."""
        record = await asyncio.to_thread(self.service.last_diagnosis)
        if record is None:
            return _json({"error": "no diagnosis yet"}, 404)
        return _json(record.to_dict())

    async def schedules(self, request: web.Request) -> web.Response:
        """Schedules with their next and last starts."""
        return _json([asdict(s) for s in await asyncio.to_thread(self.service.schedules)])

    async def alerts(self, request: web.Request) -> web.Response:
        """Recent alerts, newest first."""
        entries = await asyncio.to_thread(self.service.state.recent_alerts, 200)
        return _json([e.to_json() for e in entries])

    async def jobs(self, request: web.Request) -> web.Response:
        """Jobs queued or running."""
        return _json([j.to_json() for j in self.service.jobs()])

    async def dashboard(self, request: web.Request) -> web.Response:
        """The dashboard page."""
        data = await asyncio.to_thread(self.service.dashboard)
        return web.Response(text=dashboard_page(data), content_type="text/html")

    async def all_runs(self, request: web.Request) -> web.Response:
        """Every run kept, newest first."""
        summaries = await asyncio.to_thread(self.service.history.runs)
        return web.Response(text=runs_page(summaries), content_type="text/html")

    async def report(self, request: web.Request) -> web.Response:
        """One run's incident report."""
        try:
            record = await asyncio.to_thread(
                self.service.history.load, request.match_info["run_id"]
            )
        except InputError as exc:
            return _json({"error": exc.message}, 404)
        return web.Response(text=html_report(record), content_type="text/html")


def _summary(summary: Any) -> dict[str, Any]:
    return {
        "id": summary.id,
        "started": summary.started,
        "operator": summary.operator,
        "runbooks": list(summary.runbooks),
        "mode": str(summary.mode),
        "aborted": summary.aborted,
        "exit_code": summary.exit_code,
        "summary": summary.summary,
    }


async def serve(
    service: Service, secrets: Secrets, ready: Callable[[str], None] | None = None
) -> None:
    """Run the service until SIGTERM or SIGINT, then stop gracefully (see ``Service.stop``)."""
    listen = service.config.listen
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal(loop, stop))
    # The queue on disk is read before the webhook listens: a job queued by a request in
    # between would otherwise be read again and run twice.
    await asyncio.to_thread(service.start)
    runner = web.AppRunner(make_app(service, secrets), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, listen.host, listen.port)
    await site.start()
    url = f"http://{listen.host}:{listen.port}"
    log.info("oorfix serve listening on %s", url)
    if ready is not None:
        ready(url)
    ticker = asyncio.create_task(_schedule_loop(service, stop))
    await stop.wait()
    log.info("stopping: running steps finish, no new ones start")
    await site.stop()  # no new request; the webhook is refused while we stop
    await asyncio.to_thread(service.stop)
    ticker.cancel()
    await runner.cleanup()


def _on_signal(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Callable[[], None]:
    """The first SIGTERM or SIGINT stops gracefully; a second one exits at once."""

    def handle() -> None:
        if stop.is_set():
            log.warning("second signal: exiting without waiting")
            os._exit(1)
        stop.set()

    return handle


async def _schedule_loop(service: Service, stop: asyncio.Event) -> None:
    """Start schedules when due; sleep until the next one (at most a minute at a time)."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.tick)
        except Exception as exc:  # a full disk must not stop every schedule for good
            log.exception("starting the due schedules failed; trying again in a minute")
            service.tick_error = f"{type(exc).__name__}: {exc}"
            delay = 60.0
        else:
            service.tick_error = None
            wake = service.scheduler.wake_at()
            delay = 60.0 if wake is None else (wake - service.clock()).total_seconds()
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(max(delay, 0.05), 60.0))
        except TimeoutError:
            continue
