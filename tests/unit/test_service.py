"""The service's jobs with a fake clock and scripted hosts: schedules start on time and never
overlap themselves, alerts become fixes, notifications go out once, a stop keeps unfinished
jobs, and a restart resumes them. The engine, gates, state directory and run history are the
real ones; only the hosts (a scripted transport refusing unscripted commands), the clock and
the notifier's HTTP post are replaced.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.app.wiring import Seams
from oorfix.cli import main
from oorfix.errors import InputError
from oorfix.output.history import list_runs, load_run
from oorfix.results import ExitCode
from oorfix.safety.state import StateDir
from oorfix.serve.alerts import AMPayload
from oorfix.serve.config import ServeConfig, Target
from oorfix.serve.dashboard import dashboard_page
from oorfix.serve.notify import Notifier
from oorfix.serve.service import Parts, Service
from oorfix.serve.state import ServiceState
from tests.unit.fakes import Reply, Script, fake_factory

RUNBOOK = """
name: api-down
fault: software.crash
hosts: api
detect:
  - name: api answers
    run: check-api
remediate:
  - name: restart the api
    run: restart-api
verify: {retries: 1, delay: 0s}
"""
INVENTORY = """
all:
  children:
    api:
      hosts:
        h1: {ansible_host: 10.0.0.1}
        h2: {ansible_host: 10.0.0.2}
"""
T0 = datetime(2026, 12, 3, 9, 58, tzinfo=UTC)


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Posts:
    """The notifier's HTTP posts, recorded instead of sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        self.bodies.append(json.loads(body))
        return 200


class Rig:
    """A service over scripted hosts h1 and h2, its files under tmp_path."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], scripts: dict[str, Script]):
        (tmp_path / "runbooks").mkdir(exist_ok=True)
        (tmp_path / "runbooks" / "api-down.yml").write_text(textwrap.dedent(RUNBOOK))
        (tmp_path / "inventory.yml").write_text(textwrap.dedent(INVENTORY))
        self.tmp = tmp_path
        self.config = ServeConfig.model_validate(
            {
                "defaults": {
                    "inventory": str(tmp_path / "inventory.yml"),
                    "runbooks": str(tmp_path / "runbooks"),
                    "state_dir": str(tmp_path / "state"),
                },
                "notify": [{"name": "hook", "kind": "webhook", "url": {"env": "UNUSED"}}],
                **config,
            }
        )
        self.scripts = scripts
        self.sent: list[tuple[str, str, bool]] = []
        self.clock = Clock(T0)
        self.posts = Posts()
        self.service = self.start()

    def start(self) -> Service:
        """A new service on the same state (a restart)."""
        targets = [Target.model_validate(t.model_dump()) for t in self.config.notify]
        notifier = Notifier(targets, {"hook.url": "http://127.0.0.1:9/hook"}, post=self.posts)
        seams = Seams(transports=fake_factory(self.scripts, self.sent), sleep=lambda _: None)
        parts = Parts(seams=seams, clock=self.clock, notifier=notifier)
        return Service(self.config, parts)

    @property
    def state(self) -> StateDir:
        return StateDir(self.tmp / "state")

    def records(self) -> list[Any]:
        return [load_run(self.state, s.id) for s in list_runs(self.state)]


def healthy() -> Script:
    return Script().on("check-api", Reply(0, "ok"))


def crashed() -> Script:
    return Script().on("check-api", Reply(1), Reply(0, "ok")).on("restart-api", Reply(0))


SCHEDULE = {
    "name": "every-ten",
    "cron": "*/10 * * * *",
    "job": {"runbooks": ["api-down"], "mode": "fix", "auto_approve": True},
}


def test_a_schedule_starts_on_time_and_its_run_is_kept_with_its_trigger(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"schedules": [SCHEDULE]}, {"h1": crashed(), "h2": healthy()})
    rig.service.start()
    assert rig.service.tick() == []  # 09:58: not due yet
    rig.clock.now = T0 + timedelta(minutes=2)
    [job_id] = rig.service.tick()
    assert rig.service.wait_idle(timeout=60)
    [record] = rig.records()
    assert {r.host: str(r.status) for r in record.results} == {"h1": "fixed", "h2": "healthy"}
    assert record.trigger is not None
    assert record.trigger["source"] == "schedule"
    assert record.trigger["name"] == "every-ten"
    assert record.trigger["job"] == job_id
    assert record.trigger["due"] == "2026-12-03T10:00:00+00:00"
    [status] = rig.service.schedules()
    assert status.last_run_id == record.run_id
    assert status.last_exit == ExitCode.OK
    assert status.next_start == datetime(2026, 12, 3, 10, 10, tzinfo=UTC)
    assert list((tmp_path / "state" / "serve" / "queue").glob("*.json")) == []
    # `oorfix runs` and the dashboard show it.
    listed = CliRunner().invoke(main, ["runs", "--state-dir", str(tmp_path / "state")])
    assert listed.exit_code == 0, listed.output
    assert record.run_id in listed.output
    page = dashboard_page(rig.service.dashboard())
    assert f"/runs/{record.run_id}" in page
    assert "every-ten" in page
    rig.service.stop(timeout=60)
    # The unattended fix was notified, once.
    assert [(b["event"], b["host"]) for b in rig.posts.bodies] == [("fixed", "h1")]


def test_a_schedule_never_overlaps_itself(tmp_path: Path) -> None:
    arrived, release = threading.Event(), threading.Event()
    slow = Script().on("check-api", Reply(0, "ok", arrived=arrived, wait_for=release))
    rig = Rig(tmp_path, {"schedules": [SCHEDULE]}, {"h1": slow, "h2": healthy()})
    rig.service.start()
    rig.clock.now = T0 + timedelta(minutes=2)
    assert len(rig.service.tick()) == 1
    assert arrived.wait(timeout=60)
    rig.clock.now = T0 + timedelta(minutes=12)  # the next start comes while the first runs
    assert rig.service.tick() == []
    release.set()
    assert rig.service.wait_idle(timeout=60)
    [status] = rig.service.schedules()
    assert status.skipped == 1
    assert len(rig.records()) == 1
    rig.service.stop(timeout=60)


def test_a_missed_start_runs_once_after_a_restart_within_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"schedules": [SCHEDULE]}, {"h1": healthy(), "h2": healthy()})
    rig.service.start()  # next start 10:00 is recorded
    rig.service.stop(timeout=60)
    rig.clock.now = T0 + timedelta(minutes=35)  # down over 10:00, 10:10, 10:20 and 10:30
    rig.service = rig.start()
    rig.service.start()
    assert rig.service.wait_idle(timeout=60)
    [record] = rig.records()
    assert record.trigger is not None
    assert record.trigger["due"] == "2026-12-03T10:30:00+00:00"
    assert "late" in record.trigger
    [status] = rig.service.schedules()
    assert status.missed == 3  # the other three were not run
    rig.service.stop(timeout=60)


def payload(labels: dict[str, str], fingerprint: str = "ab12") -> AMPayload:
    return AMPayload.model_validate(
        {
            "version": "4",
            "groupKey": "g",
            "status": "firing",
            "alerts": [{"status": "firing", "labels": labels, "fingerprint": fingerprint}],
        }
    )


ROUTE = {
    "name": "api",
    "match": {"alertname": "ApiDown"},
    "job": {"runbooks": ["api-down"], "mode": "fix", "auto_approve": True},
}
AM = {"alertmanager": {"token": {"env": "UNUSED"}, "routes": [ROUTE]}}


def test_an_alert_fixes_its_host_only_and_a_duplicate_within_cooldown_does_nothing(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, AM, {"h1": crashed()})  # h2 has no script: any command would fail
    rig.service.start()
    [entry] = rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1:9100"}))
    assert (entry.action, entry.host) == ("queued", "h1")
    assert rig.service.wait_idle(timeout=60)
    [duplicate] = rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1:9100"}))
    assert duplicate.action == "duplicate"
    [record] = rig.records()
    assert [(r.host, str(r.status)) for r in record.results] == [("h1", "fixed")]
    assert {host for host, _, _ in rig.sent} == {"h1"}
    assert record.trigger is not None
    assert record.trigger["fingerprint"] == "ab12"
    assert [a.action for a in rig.service.state.recent_alerts()] == ["duplicate", "queued"]
    rig.service.stop(timeout=60)
    assert [b["event"] for b in rig.posts.bodies] == ["fixed"]


def test_an_alert_for_an_unknown_host_runs_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, AM, {})
    rig.service.start()
    entries = rig.service.receive(payload({"alertname": "ApiDown", "instance": "$(reboot)"}))
    assert [e.action for e in entries] == ["unknown_host"]
    assert rig.service.jobs() == []
    assert rig.sent == []
    assert rig.records() == []
    rig.service.stop(timeout=60)


def test_a_read_only_route_escalates_once_then_waits_before_repeating(tmp_path: Path) -> None:
    route = {**ROUTE, "job": {"runbooks": ["api-down"], "mode": "diagnose"}, "cooldown": "1s"}
    down = Script().on("check-api", Reply(1))
    rig = Rig(tmp_path, {"alertmanager": {**AM["alertmanager"], "routes": [route]}}, {"h1": down})
    rig.service.start()
    for minutes in (0, 5):  # the second alert is past the cooldown, within renotify
        rig.clock.now = T0 + timedelta(minutes=minutes)
        rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1"}))
        assert rig.service.wait_idle(timeout=60)
    assert [str(r.results[0].status) for r in rig.records()] == ["would_fix", "would_fix"]
    assert all("restart-api" not in text for _, text, _ in rig.sent)
    rig.service.stop(timeout=60)
    assert [(b["event"], b["host"]) for b in rig.posts.bodies] == [("escalated", "h1")]


def test_a_stop_keeps_the_unfinished_job_and_a_restart_resumes_it(tmp_path: Path) -> None:
    arrived, release = threading.Event(), threading.Event()
    first = Script().on("check-api", Reply(1, arrived=arrived, wait_for=release))
    rig = Rig(tmp_path, AM, {"h1": first})
    rig.service.start()
    rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1"}))
    assert arrived.wait(timeout=60)
    stopper = threading.Thread(target=rig.service.stop, kwargs={"timeout": 60})
    stopper.start()  # no new step starts; the running check finishes when released
    release.set()
    stopper.join(timeout=60)
    [aborted] = rig.records()
    assert aborted.aborted
    assert all("restart-api" not in text for _, text, _ in rig.sent)
    [queued] = ServiceState(rig.state).pending()
    assert queued.attempts == 1
    rig.scripts["h1"] = crashed()
    rig.service = rig.start()
    rig.service.start()
    assert rig.service.wait_idle(timeout=60)
    resumed = [r for r in rig.records() if not r.aborted]
    assert [str(r.results[0].status) for r in resumed] == ["fixed"]
    assert resumed[0].trigger is not None
    assert resumed[0].trigger["job"] == queued.id
    assert ServiceState(rig.state).pending() == []
    rig.service.stop(timeout=60)


def test_a_job_that_cannot_load_is_recorded_and_leaves_the_queue(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"schedules": [SCHEDULE]}, {})
    rig.service.start()
    (tmp_path / "runbooks" / "api-down.yml").write_text("name: [broken\n")
    rig.clock.now = T0 + timedelta(minutes=2)
    rig.service.tick()
    assert rig.service.wait_idle(timeout=60)
    [event] = rig.service.state.recent_jobs()
    assert event["event"] == "error"
    assert "api-down.yml" in event["error"]
    assert ServiceState(rig.state).pending() == []
    assert "last_error" in rig.service.state.marks()["every-ten"]
    rig.service.stop(timeout=60)


def test_a_runbook_a_job_names_must_exist_when_the_service_starts(tmp_path: Path) -> None:
    missing = {**SCHEDULE, "job": {"runbooks": ["no-such-runbook"], "mode": "diagnose"}}
    with pytest.raises(InputError, match="no-such-runbook"):
        Rig(tmp_path, {"schedules": [missing]}, {})


def test_an_alert_flood_past_the_queue_limit_is_refused_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("oorfix.serve.service.MAX_QUEUED", 0)
    rig = Rig(tmp_path, AM, {})
    rig.service.start()
    [entry] = rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1"}))
    assert (entry.action, entry.detail, entry.job_id) == ("refused", "the job queue is full", None)
    assert rig.service.state.acted("ab12", "api") is None  # a refused alert may come again
    assert rig.sent == []
    rig.service.stop(timeout=60)


def test_a_job_queued_before_the_start_reads_the_queue_runs_once(tmp_path: Path) -> None:
    # The webhook may queue a job before start() reads the queue folder, which then holds it.
    rig = Rig(tmp_path, AM, {"h1": crashed()})
    rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1"}))
    rig.service.start()
    assert rig.service.wait_idle(timeout=60)
    assert [str(r.results[0].status) for r in rig.records()] == ["fixed"]
    rig.service.stop(timeout=60)


def test_deliveries_of_one_alert_at_once_queue_one_job(tmp_path: Path) -> None:
    rig = Rig(tmp_path, AM, {"h1": crashed()})
    rig.service.start()
    together = threading.Barrier(2)
    actions: list[str] = []

    def deliver() -> None:
        together.wait(timeout=60)
        alert = payload({"alertname": "ApiDown", "instance": "h1"})
        actions.extend(e.action for e in rig.service.receive(alert))

    # Any interleaving of the two must give one job: check and mark are one step.
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert rig.service.wait_idle(timeout=60)
    assert sorted(actions) == ["duplicate", "queued"]
    assert len(rig.records()) == 1
    rig.service.stop(timeout=60)


def test_a_fault_that_clears_and_comes_back_is_news_again(tmp_path: Path) -> None:
    route = {**ROUTE, "job": {"runbooks": ["api-down"], "mode": "diagnose"}, "cooldown": "1s"}
    flapping = Script().on("check-api", Reply(1), Reply(0, "ok"), Reply(1))
    config = {"alertmanager": {**AM["alertmanager"], "routes": [route]}}
    rig = Rig(tmp_path, config, {"h1": flapping})
    rig.service.start()
    for minutes in (0, 5, 10):  # down, healthy, down again: all within renotify
        rig.clock.now = T0 + timedelta(minutes=minutes)
        rig.service.receive(payload({"alertname": "ApiDown", "instance": "h1"}))
        assert rig.service.wait_idle(timeout=60)
    statuses = [str(r.results[0].status) for r in reversed(rig.records())]
    assert statuses == ["would_fix", "healthy", "would_fix"]
    rig.service.stop(timeout=60)
    assert [(b["event"], b["host"]) for b in rig.posts.bodies] == [("escalated", "h1")] * 2


def test_a_job_being_written_is_not_read_from_the_queue(tmp_path: Path) -> None:
    # write_json_atomic's temporary file, half written: the reader must not set it aside,
    # or the writer's rename fails and the job is lost.
    state = ServiceState(StateDir(tmp_path / "state"))
    state.ensure()
    partial = state.queue / ".tmp-abc123.json"
    partial.write_text('{"id": "job-')
    assert state.pending() == []
    assert partial.read_text() == '{"id": "job-'
