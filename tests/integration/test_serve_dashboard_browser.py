"""The service's dashboard in a real headless Chromium, served live by the service's web app.

The service is the real one over scripted hosts (h1's API is down, h2's is up): a schedule
diagnoses the fleet and a hostile alert (script and markup in its labels) is recorded. Then
Chromium loads ``/`` over HTTP from the app on loopback; the assertions are about the DOM it
built (the fault matrix cells, the run links, the schedule, the alert shown as text and
nothing executed) and a screenshot.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from oorfix.serve.alerts import AMPayload
from oorfix.serve.web import Secrets, make_app
from tests.integration.test_report_browser import CHROMIUM, chromium, png_pixel_bytes
from tests.support import require
from tests.unit.test_service import T0, Rig, crashed, healthy

pytestmark = pytest.mark.integration

HOSTILE = "<script>document.title='pwned'</script>"
MARKUP = '"><img src=x onerror="document.title=1">'
DIAGNOSE = {"name": "fleet-check", "cron": "*/5 * * * *", "job": {"mode": "diagnose"}}


class Dom(HTMLParser):
    """What the assertions need from the serialized DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.links: list[str] = []
        self.texts: list[str] = []
        self.title = ""
        self._fault = ""
        self._host = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self._in_title = tag == "title"
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "tr" and "data-fault" in values:
            self._fault = values["data-fault"]
        if tag == "td" and "data-host" in values:
            self._host = values["data-host"]
        if tag == "span" and values.get("class", "").startswith("status ") and self._host:
            self.cells[(self._fault, self._host)] = values["class"].split()[-1]
            self._host = ""
        if tag == "a":
            self.links.append(values.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._in_title:
            self.title += data


@pytest.fixture(scope="module")
def browser() -> Path:
    """Chromium, or a skip (a failure when OORFIX_REQUIRE_BROWSER=1, as in CI)."""
    require("BROWSER", CHROMIUM.exists(), f"{CHROMIUM} is not installed")
    return CHROMIUM


def test_the_dashboard_shows_the_fleet_runs_schedules_and_inert_alerts(
    browser: Path, tmp_path: Path
) -> None:
    config = {
        "schedules": [DIAGNOSE],
        "alertmanager": {"token": {"env": "UNUSED"}, "routes": []},
    }
    rig = Rig(tmp_path, config, {"h1": crashed(), "h2": healthy()})
    service = rig.service
    service.start()
    rig.clock.now = T0 + timedelta(minutes=2)
    assert len(service.tick()) == 1
    assert service.wait_idle(timeout=60)
    service.receive(
        AMPayload.model_validate(
            {
                "version": "4",
                "groupKey": "g",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": HOSTILE, "instance": MARKUP},
                        "fingerprint": "beef",
                    }
                ],
            }
        )
    )
    [run] = rig.records()
    shot = tmp_path / "dashboard.png"

    async def main() -> tuple[str, bytes]:
        secrets = Secrets(webhook_token="unused")  # noqa: S106 - no webhook is sent here
        server = TestServer(make_app(service, secrets), host="127.0.0.1")
        await server.start_server()
        try:
            url = str(server.make_url("/"))
            dom = await asyncio.to_thread(chromium, tmp_path, "--dump-dom", url)
            await asyncio.to_thread(
                chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", url
            )
            return dom.stdout, shot.read_bytes()
        finally:
            await server.close()

    try:
        html, png = asyncio.run(main())
    finally:
        service.stop(timeout=60)
    dom = Dom()
    dom.feed(html)
    assert dom.sections == ["fleet", "runs", "schedules", "alerts"]
    assert dom.cells == {
        ("software.crash", "h1"): "status-would_fix",
        ("software.crash", "h2"): "status-healthy",
    }
    assert f"/runs/{run.run_id}" in dom.links
    assert any("fleet-check" in text for text in dom.texts)
    # The hostile labels are text on the page; nothing of them ran or became an element.
    assert any(HOSTILE in text for text in dom.texts)
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    assert dom.title == "oorfix dashboard"
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png_pixel_bytes(png)) > 50
