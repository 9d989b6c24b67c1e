"""The service's HTTP side through aiohttp's test server on loopback: the webhook's
authentication and bounds, the read rule (open on loopback, a token otherwise), the API,
metrics, and the security headers. The service behind it is real (scripted hosts)."""

# ruff: noqa: S105, S106 - test secrets
from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oorfix.serve.web import COOKIE, SIGNATURE, Secrets, make_app
from tests.unit.test_service import AM, Rig, crashed

TOKEN = "webhook-secret-value"
Check = Callable[[TestClient[Any, Any], Rig], Awaitable[None]]


def body(labels: dict[str, str], count: int = 1) -> bytes:
    alerts = [
        {"status": "firing", "labels": labels, "fingerprint": f"{i + 1:04x}"} for i in range(count)
    ]
    return json.dumps(
        {"version": "4", "groupKey": "g", "status": "firing", "alerts": alerts}
    ).encode()


def serve(
    tmp_path: Path, check: Check, secrets: Secrets, config: dict[str, Any] | None = None
) -> Rig:
    """Run ``check`` against the app of a rig's service, then stop the service."""
    rig = Rig(tmp_path, config or AM, {"h1": crashed()})
    rig.service.start()

    async def main() -> None:
        async with TestClient(
            TestServer(make_app(rig.service, secrets), host="127.0.0.1")
        ) as client:
            await check(client, rig)

    try:
        asyncio.run(main())
    finally:
        rig.service.stop(timeout=60)
    return rig


def test_the_webhook_refuses_a_missing_or_wrong_token_and_runs_nothing(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        good = body({"alertname": "ApiDown", "instance": "h1"})
        assert (await client.post("/hooks/alertmanager", data=good)).status == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await client.post("/hooks/alertmanager", data=good, headers=wrong)).status == 401
        metrics = await (await client.get("/metrics")).text()
        assert 'oorfix_webhook_refused_total{reason="token"} 2.0' in metrics

    rig = serve(tmp_path, check, Secrets(webhook_token=TOKEN))
    assert rig.sent == []
    assert rig.service.state.recent_alerts() == []


def test_a_good_token_routes_the_alert_and_the_host_is_fixed(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        data = body({"alertname": "ApiDown", "instance": "h1:9100"})
        response = await client.post("/hooks/alertmanager", data=data, headers=auth)
        assert response.status == 200
        answer = await response.json()
        assert [(a["action"], a["host"]) for a in answer["alerts"]] == [("queued", "h1")]
        assert rig.service.wait_idle(timeout=60)
        runs = await (await client.get("/api/v1/runs")).json()
        assert len(runs) == 1
        record = await (await client.get(f"/api/v1/runs/{runs[0]['id']}")).json()
        assert record["results"][0]["status"] == "fixed"
        report = await client.get(f"/runs/{runs[0]['id']}")
        assert report.status == 200
        assert "h1" in await report.text()
        assert (await client.get("/api/v1/runs/nope")).status == 404

    serve(tmp_path, check, Secrets(webhook_token=TOKEN))


def test_an_hmac_signature_is_checked_over_the_exact_body(tmp_path: Path) -> None:
    key = "hmac-key"

    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        data = body({"alertname": "NoRoute", "instance": "h1"})
        signature = "sha256=" + hmac.new(key.encode(), data, hashlib.sha256).hexdigest()
        ok = await client.post("/hooks/alertmanager", data=data, headers={SIGNATURE: signature})
        assert ok.status == 200
        assert [a["action"] for a in (await ok.json())["alerts"]] == ["unmatched"]
        tampered = data.replace(b"NoRoute", b"NoRouteX")
        bad = await client.post(
            "/hooks/alertmanager", data=tampered, headers={SIGNATURE: signature}
        )
        assert bad.status == 401

    am = {"alertmanager": {"hmac": {"env": "UNUSED"}, "routes": AM["alertmanager"]["routes"]}}
    serve(tmp_path, check, Secrets(webhook_hmac=key), am)


def test_oversized_and_malformed_bodies_are_refused(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        huge = io.BytesIO(b" " * (1 << 20) + body({"alertname": "ApiDown", "instance": "h1"}))
        assert (await client.post("/hooks/alertmanager", data=huge, headers=auth)).status == 413

        async def chunks() -> Any:  # no Content-Length: the limit holds while reading
            for _ in range(40):
                yield b" " * 65536

        streamed = await client.post("/hooks/alertmanager", data=chunks(), headers=auth)
        assert streamed.status == 413
        bad = await client.post("/hooks/alertmanager", data=b"{not json", headers=auth)
        assert bad.status == 400
        v3 = json.dumps({"version": "3", "groupKey": "g", "status": "firing", "alerts": []})
        assert (await client.post("/hooks/alertmanager", data=v3, headers=auth)).status == 400
        many = body({"alertname": "ApiDown", "instance": "h1"}, count=1001)
        assert (await client.post("/hooks/alertmanager", data=many, headers=auth)).status == 413

    rig = serve(tmp_path, check, Secrets(webhook_token=TOKEN))
    assert rig.sent == []


def test_reads_are_open_on_loopback_and_carry_security_headers(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        paths = ("/", "/runs", "/api/v1/runs", "/api/v1/schedules", "/api/v1/alerts", "/metrics")
        for path in paths:
            response = await client.get(path)
            assert response.status == 200, path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
        assert (await client.get("/api/v1/diagnosis")).status == 404  # none yet
        health = await (await client.get("/healthz")).json()
        assert health["status"] == "ok"

    serve(tmp_path, check, Secrets(webhook_token=TOKEN))


@pytest.mark.parametrize("path", ["/", "/api/v1/runs", "/metrics", "/runs/x"])
def test_with_a_dashboard_token_reads_need_it(tmp_path: Path, path: str) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        assert (await client.get(path)).status == 401
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        right = await client.get(path, headers={"Authorization": "Bearer dash"})
        assert right.status in (200, 404)
        assert (await client.get("/healthz")).status == 200  # liveness never needs a login

    serve(tmp_path, check, Secrets(webhook_token=TOKEN, dashboard_token="dash"))


def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        assert (await client.get("/?token=wrong", allow_redirects=False)).status == 401
        first = await client.get("/?token=dash", allow_redirects=False)
        assert first.status == 303
        assert first.headers["Location"] == "/"
        assert first.cookies[COOKIE].value == "dash"
        assert "httponly" in first.headers["Set-Cookie"].lower()
        assert (await client.get("/")).status == 200  # the client now sends the cookie

    serve(tmp_path, check, Secrets(webhook_token=TOKEN, dashboard_token="dash"))


def test_open_reads_answer_only_loopback_host_names(tmp_path: Path) -> None:
    # A page elsewhere that rebinds its name to 127.0.0.1 sends that name as Host.
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        rebound = await client.get("/api/v1/runs", headers={"Host": "evil.example:9095"})
        assert rebound.status == 421
        for host in ("127.0.0.1:9095", "localhost:9095", "[::1]:9095", "127.0.0.1"):
            assert (await client.get("/api/v1/runs", headers={"Host": host})).status == 200
        metrics = await (await client.get("/metrics")).text()
        assert 'oorfix_webhook_refused_total{reason="host"} 1.0' in metrics

    serve(tmp_path, check, Secrets(webhook_token=TOKEN))


def test_a_header_that_is_not_utf8_is_refused_not_an_error(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        data = body({"alertname": "ApiDown", "instance": "h1"})
        bad = {"Authorization": "Bearer \udcff"}  # the byte 0xff, as aiohttp decodes it
        response = await client.post("/hooks/alertmanager", data=data, headers=bad)
        assert response.status == 401

    rig = serve(tmp_path, check, Secrets(webhook_token=TOKEN))
    assert rig.sent == []


def test_healthz_says_degraded_while_the_schedules_cannot_start(tmp_path: Path) -> None:
    async def check(client: TestClient[Any, Any], rig: Rig) -> None:
        rig.service.tick_error = "OSError: [Errno 28] No space left on device"
        answer = await (await client.get("/healthz")).json()
        assert (answer["status"], answer["schedules_error"]) == ("degraded", rig.service.tick_error)
        rig.service.tick_error = None
        assert (await (await client.get("/healthz")).json())["status"] == "ok"

    serve(tmp_path, check, Secrets(webhook_token=TOKEN))
