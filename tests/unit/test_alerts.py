"""Alertmanager's webhook payload, what the service decides for each alert (route, host,
cooldown), the job it queues and the run that job becomes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from oorfix.catalog import BUILTIN
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.results import RunMode
from oorfix.safety.state import StateDir
from oorfix.serve import jobs
from oorfix.serve.alerts import AMAlert, AMPayload, decide
from oorfix.serve.config import Defaults, Job, Route
from oorfix.serve.jobs import QueuedJob
from oorfix.serve.state import ServiceState

NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
FINGERPRINT = "a3f1c2e4b5d69788"

# A notification as Alertmanager 0.27 posts it to a webhook receiver.
PAYLOAD: dict[str, Any] = {
    "receiver": "oorfix",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "PostgresDown",
                "instance": "pg-api-1:9100",
                "job": "node",
                "severity": "critical",
            },
            "annotations": {
                "summary": "PostgreSQL on pg-api-1 is down",
                "runbook_url": "https://wiki.example/runbooks/postgres-down",
            },
            "startsAt": "2026-05-04T10:28:41.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
            "fingerprint": FINGERPRINT,
        },
        {
            "status": "resolved",
            "labels": {
                "alertname": "PostgresDown",
                "instance": "pg-api-2:9100",
                "job": "node",
                "severity": "critical",
            },
            "annotations": {"summary": "PostgreSQL on pg-api-2 is down"},
            "startsAt": "2026-05-04T09:00:00Z",
            "endsAt": "2026-05-04T10:20:00.5+02:00",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
            "fingerprint": "0b1c2d3e4f506172",
        },
    ],
    "groupLabels": {"alertname": "PostgresDown"},
    "commonLabels": {"alertname": "PostgresDown", "job": "node", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="PostgresDown"}',
    "truncatedAlerts": 0,
}

INVENTORY = """\
all:
  children:
    postgres:
      hosts:
        pg-api-1: {ansible_host: 10.0.0.5}
        pg-api-2: {ansible_host: 10.0.0.6}
        pg-v6: {ansible_host: "2001:db8::5"}
        "pg api,3": {ansible_host: 10.0.0.7}
    legacy:
      hosts:
        old-db: {ssh_host: 10.0.0.9}
        twin-a: {ansible_host: 10.0.0.20}
        twin-b: {ansible_host: 10.0.0.20}
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def route(**more: Any) -> Route:
    data = {
        "name": "postgres-down",
        "match": {"alertname": "PostgresDown"},
        "job": {"runbooks": ["postgres-down"], "mode": "fix", "auto_approve": True},
        "notify": ["oncall"],
        **more,
    }
    return Route.model_validate(data)


def alert(labels: dict[str, str] | None = None, **more: Any) -> AMAlert:
    data = copy.deepcopy(PAYLOAD["alerts"][0])
    if labels is not None:
        data["labels"] = labels
    return AMAlert.model_validate({**data, **more})


def never(fingerprint: str, route: str) -> datetime | None:
    return None


# --- the payload ------------------------------------------------------------------------


def test_a_real_alertmanager_payload_is_accepted() -> None:
    payload = AMPayload.model_validate(PAYLOAD)
    assert (payload.version, payload.status, payload.receiver) == ("4", "firing", "oorfix")
    assert payload.groupKey == '{}/{severity="critical"}:{alertname="PostgresDown"}'
    assert payload.truncatedAlerts == 0
    firing, resolved = payload.alerts
    assert (firing.status, firing.alertname, firing.fingerprint) == (
        "firing",
        "PostgresDown",
        FINGERPRINT,
    )
    assert firing.labels["instance"] == "pg-api-1:9100"
    assert firing.annotations["summary"] == "PostgreSQL on pg-api-1 is down"
    assert firing.startsAt == datetime(2026, 5, 4, 10, 28, 41, 123456, tzinfo=UTC)
    assert firing.endsAt == datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time: still firing
    assert resolved.status == "resolved"
    assert resolved.endsAt == datetime(2026, 5, 4, 8, 20, 0, 500000, tzinfo=UTC)
    # The body as it comes off the wire parses the same.
    assert AMPayload.model_validate_json(json.dumps(PAYLOAD).encode()) == payload


def test_a_payload_without_the_optional_parts_is_accepted() -> None:
    minimal = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {}, "fingerprint": "0"}],
    }
    payload = AMPayload.model_validate(minimal)
    assert (payload.receiver, payload.truncatedAlerts) == ("", 0)
    assert payload.alerts[0].alertname == ""
    assert payload.alerts[0].annotations == {}


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(PAYLOAD)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("version",), "3", id="version 3"),
        pytest.param(("version",), 4, id="version as a number"),
        pytest.param(("status",), "pending", id="unknown status"),
        pytest.param(("alerts", 0, "status"), "silenced", id="unknown alert status"),
        pytest.param(("alerts", 0, "fingerprint"), "a3f1c2e4b5d6978g", id="non-hex fingerprint"),
        pytest.param(("alerts", 0, "fingerprint"), "A3F1C2E4B5D69788", id="upper-case hex"),
        pytest.param(("alerts", 0, "fingerprint"), "../../etc/passwd", id="path fingerprint"),
        pytest.param(("alerts", 0, "fingerprint"), "", id="empty fingerprint"),
        pytest.param(("alerts", 0, "fingerprint"), "a" * 65, id="long fingerprint"),
        pytest.param(("alerts", 0, "labels"), {f"l{i}": "v" for i in range(65)}, id="65 labels"),
        pytest.param(
            ("alerts", 0, "annotations"), {f"a{i}": "v" for i in range(65)}, id="65 annotations"
        ),
        pytest.param(
            ("alerts", 0, "labels"), {"alertname": "X", "instance": "h" * 2048}, id="2 KB value"
        ),
        pytest.param(("alerts", 0, "labels"), {"k" * 1025: "v"}, id="long label name"),
        pytest.param(
            ("alerts", 0, "annotations"), {f"a{i}": "x" for i in range(65)}, id="65 annotations"
        ),
        pytest.param(("alerts", 0, "labels"), {"instance": 5}, id="label not a string"),
    ],
)
def test_a_payload_out_of_bounds_is_refused(path: tuple[Any, ...], value: Any) -> None:
    with pytest.raises(ValidationError):
        AMPayload.model_validate(broken(path, value))


def test_the_bounds_themselves_are_accepted() -> None:
    labels = {f"l{i}": "v" * 1024 for i in range(64)}
    data = broken(("alerts", 0, "labels"), labels)
    data["alerts"][0]["fingerprint"] = "f" * 64
    payload = AMPayload.model_validate(data)
    assert payload.alerts[0].labels == labels


# --- routing ----------------------------------------------------------------------------


def test_an_alert_no_route_matches_is_recorded_as_unmatched(inventory: Inventory) -> None:
    routes = [route(match={"alertname": "PostgresDown", "severity": "warning"})]
    decision = decide(alert(), routes, inventory, never, NOW)
    assert decision.job is None
    entry = decision.entry
    assert (entry.action, entry.route, entry.host, entry.job_id) == ("unmatched", None, None, None)
    assert (entry.received, entry.fingerprint, entry.alertname, entry.status) == (
        NOW,
        FINGERPRINT,
        "PostgresDown",
        "firing",
    )
    assert decide(alert(), [], inventory, never, NOW).entry.action == "unmatched"


def test_the_first_matching_route_is_taken(inventory: Inventory) -> None:
    routes = [
        route(name="other", match={"alertname": "DiskFull"}),
        route(name="critical", match={"severity": "critical"}),
        route(name="postgres-down"),
    ]
    decision = decide(alert(), routes, inventory, never, NOW)
    assert decision.entry.route == "critical"
    assert decision.job is not None
    assert decision.job.name == "critical"


def test_a_resolved_alert_is_recorded_and_runs_nothing(inventory: Inventory) -> None:
    resolved = alert(status="resolved")
    decision = decide(resolved, [route()], inventory, never, NOW)
    assert decision.job is None
    assert (decision.entry.action, decision.entry.route, decision.entry.status) == (
        "resolved",
        "postgres-down",
        "resolved",
    )


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({"alertname": "PostgresDown"}, id="missing"),
        pytest.param({"alertname": "PostgresDown", "instance": ""}, id="empty"),
    ],
)
def test_a_missing_host_label_is_an_unknown_host(
    inventory: Inventory, labels: dict[str, str]
) -> None:
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert decision.job is None
    assert (decision.entry.action, decision.entry.route, decision.entry.host) == (
        "unknown_host",
        "postgres-down",
        None,
    )
    assert decision.entry.detail == "the host label is missing or empty"


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        pytest.param("pg-api-1", "pg-api-1", id="name"),
        pytest.param("pg-api-1:9100", "pg-api-1", id="name:port"),
        pytest.param("pg-api-2:9187", "pg-api-2", id="other host"),
        pytest.param("10.0.0.5", "pg-api-1", id="address"),
        pytest.param("10.0.0.5:9100", "pg-api-1", id="address:port"),
        pytest.param("[2001:db8::5]:9100", "pg-v6", id="[ipv6]:port"),
        pytest.param("2001:db8::5", "pg-v6", id="ipv6"),
    ],
)
def test_the_host_label_names_an_inventory_host(
    inventory: Inventory, instance: str, host: str
) -> None:
    labels = {"alertname": "PostgresDown", "instance": instance}
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert (decision.entry.action, decision.entry.host) == ("queued", host)
    assert decision.job is not None
    assert decision.job.host == host
    assert decision.job.limit == host


def test_the_route_host_label_is_the_one_read(inventory: Inventory) -> None:
    labels = {"alertname": "PostgresDown", "instance": "pg-api-1:9100", "node": "pg-api-2"}
    decision = decide(alert(labels), [route(host_label="node")], inventory, never, NOW)
    assert decision.entry.host == "pg-api-2"


@pytest.mark.parametrize(
    ("instance", "why"),
    [
        pytest.param("pg-api-9:9100", "no inventory host is named 'pg-api-9:9100'", id="unknown"),
        pytest.param("10.9.9.9", "no inventory host is named '10.9.9.9'", id="unknown address"),
        pytest.param(
            "10.0.0.20:9100", "2 inventory hosts have the address '10.0.0.20'", id="shared address"
        ),
        pytest.param(
            "pg api,3", "the inventory host 'pg api,3' cannot be named alone", id="weird name"
        ),
        pytest.param(
            "10.0.0.7:9100", "the inventory host 'pg api,3' cannot be named alone", id="weird host"
        ),
        pytest.param("postgres", "no inventory host is named 'postgres'", id="a group"),
        pytest.param("all", "no inventory host is named 'all'", id="all"),
    ],
)
def test_an_unknown_or_ambiguous_host_queues_nothing(
    inventory: Inventory, instance: str, why: str
) -> None:
    labels = {"alertname": "PostgresDown", "instance": instance}
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert decision.job is None
    assert (decision.entry.action, decision.entry.host) == ("unknown_host", None)
    assert decision.entry.detail.startswith(why), decision.entry.detail


@pytest.mark.parametrize(
    "instance",
    [
        "pg-api-1; rm -rf /",
        "pg-api-1 && reboot",
        "$(reboot)",
        "`reboot`",
        "../../etc/passwd",
        "{{ 7*7 }}",
        "{{ lookup('pipe', 'id') }}",
        "pg-api-*",
        "~pg-api-.*",
        "pg-api-1,pg-api-2",
        "pg-api-1:&pg-api-2",
        "!pg-api-2",
        "pg-api-1\n",
        "pg-api-1 ",
        "pg-api-1:9100:9100",
    ],
)
def test_a_hostile_host_label_is_an_unknown_host(inventory: Inventory, instance: str) -> None:
    labels = {"alertname": "PostgresDown", "instance": instance}
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert decision.job is None
    assert (decision.entry.action, decision.entry.host, decision.entry.job_id) == (
        "unknown_host",
        None,
        None,
    )


def test_a_host_label_with_a_trailing_newline_is_an_unknown_host(inventory: Inventory) -> None:
    labels = {"alertname": "PostgresDown", "instance": "pg-api-1:9100\n"}
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert (decision.entry.action, decision.job) == ("unknown_host", None)


def test_a_host_addressed_by_ssh_host_is_found_by_its_address(inventory: Inventory) -> None:
    assert inventory.hosts["old-db"].connection().address == "10.0.0.9"
    labels = {"alertname": "PostgresDown", "instance": "10.0.0.9:9100"}
    decision = decide(alert(labels), [route()], inventory, never, NOW)
    assert decision.entry.host == "old-db"


# --- cooldowns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ago", "action"),
    [
        pytest.param(timedelta(0), "duplicate", id="just now"),
        pytest.param(timedelta(minutes=14, seconds=59), "duplicate", id="inside"),
        pytest.param(timedelta(minutes=15), "queued", id="at the end"),
        pytest.param(timedelta(hours=3), "queued", id="long ago"),
    ],
)
def test_a_fingerprint_acted_on_within_the_cooldown_is_a_duplicate(
    inventory: Inventory, ago: timedelta, action: str
) -> None:
    asked: list[tuple[str, str]] = []

    def acted(fingerprint: str, route_name: str) -> datetime | None:
        asked.append((fingerprint, route_name))
        return NOW - ago

    decision = decide(alert(), [route(cooldown="15m")], inventory, acted, NOW)
    assert asked == [(FINGERPRINT, "postgres-down")]
    assert (decision.entry.action, decision.entry.host) == (action, "pg-api-1")
    assert (decision.job is None) == (action == "duplicate")
    if action == "duplicate":
        assert decision.entry.detail == (f"acted on at {(NOW - ago).isoformat()}, cooldown 900s")


def test_cooldowns_kept_in_the_state_are_per_route(tmp_path: Path, inventory: Inventory) -> None:
    state = ServiceState(StateDir(tmp_path / "state"))
    state.mark_acted(FINGERPRINT, "postgres-down", NOW - timedelta(minutes=5))
    decision = decide(alert(), [route()], inventory, state.acted, NOW)
    assert decision.entry.action == "duplicate"
    other = route(name="postgres-down-too")
    assert decide(alert(), [other], inventory, state.acted, NOW).entry.action == "queued"
    assert decide(alert(), [route()], inventory, state.acted, NOW + timedelta(minutes=11)).job


def test_the_cooldown_is_not_checked_for_alerts_that_run_nothing(inventory: Inventory) -> None:
    def acted(fingerprint: str, route_name: str) -> datetime | None:
        raise AssertionError("asked about a cooldown")

    no_host = alert({"alertname": "PostgresDown", "instance": "$(reboot)"})
    assert decide(no_host, [route()], inventory, acted, NOW).entry.action == "unknown_host"
    assert decide(alert(status="resolved"), [route()], inventory, acted, NOW).job is None


# --- the queued job ---------------------------------------------------------------------


def test_the_queued_job_runs_the_routes_job_on_the_inventory_host(inventory: Inventory) -> None:
    labels = {"alertname": "PostgresDown", "instance": "10.0.0.5:9100"}
    decision = decide(alert(labels), [route()], inventory, never, NOW, group_key="g" * 300)
    job = decision.job
    assert job is not None
    assert decision.entry.action == "queued"
    assert decision.entry.job_id == job.id
    assert job.id.startswith("job-20260504T103000-")
    assert (job.source, job.name, job.queued, job.attempts) == ("alert", "postgres-down", NOW, 0)
    assert job.job == Job(runbooks=["postgres-down"], mode="fix", auto_approve=True)
    assert (job.host, job.limit, job.notify) == ("pg-api-1", "pg-api-1", ("oncall",))
    assert job.trigger == {
        "alertname": "PostgresDown",
        "fingerprint": FINGERPRINT,
        "group": "g" * 200,
    }


def test_a_routes_limit_is_narrowed_to_the_host(inventory: Inventory) -> None:
    limited = route(job={"runbooks": ["postgres-down"], "limit": "postgres:!pg-v6"}, notify=None)
    job = decide(alert(), [limited], inventory, never, NOW).job
    assert job is not None
    assert job.limit == "postgres:!pg-v6:&pg-api-1"
    assert job.notify is None
    selected = [h.name for h in inventory.select(job.limit)]
    assert selected == ["pg-api-1"]


def test_a_jobs_limit_without_a_host_is_its_own() -> None:
    scheduled = QueuedJob("job-1", "schedule", "nightly", Job(limit="postgres"), NOW)
    assert scheduled.limit == "postgres"
    assert QueuedJob("job-2", "schedule", "nightly", Job(), NOW).limit is None


@pytest.mark.parametrize(
    "queued",
    [
        QueuedJob(
            id="job-20260504T103000-abcdef",
            source="alert",
            name="postgres-down",
            job=Job(runbooks=["postgres-down"], mode="fix", limit="postgres", auto_approve=True),
            queued=NOW,
            host="pg-api-1",
            trigger={"alertname": "PostgresDown", "fingerprint": FINGERPRINT, "group": "{}"},
            attempts=2,
            notify=("oncall", "pager"),
        ),
        QueuedJob(
            id="job-20260504T020000-012345",
            source="schedule",
            name="nightly",
            job=Job(),
            queued=datetime(2026, 5, 4, 2, 0, tzinfo=UTC),
        ),
    ],
    ids=["alert", "schedule"],
)
def test_a_queued_job_survives_json(tmp_path: Path, queued: QueuedJob) -> None:
    data = json.loads(json.dumps(queued.to_json()))
    assert data["queued"] == queued.queued.isoformat()
    back = QueuedJob.from_json(data)
    assert back == queued
    assert back.limit == queued.limit
    # and the service's queue, which stores it so
    state = ServiceState(StateDir(tmp_path / "state"))
    state.enqueue(queued)
    assert state.pending() == [queued]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param({"job": {"mode": "fix"}}, id="fix without approval"),
        pytest.param({"queued": "yesterday"}, id="bad time"),
        pytest.param({"id": None, "source": None, "name": None}, id="missing"),
    ],
)
def test_a_damaged_queue_entry_is_not_a_job(damage: dict[str, Any]) -> None:
    queued = QueuedJob("job-1", "schedule", "nightly", Job(), NOW)
    data = {**queued.to_json(), **damage}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises((ValueError, KeyError, TypeError)):
        QueuedJob.from_json(data)


# --- the run a job becomes --------------------------------------------------------------


@pytest.fixture
def defaults(tmp_path: Path) -> Defaults:
    return Defaults(
        inventory=tmp_path / "inventory.yml",
        runbooks=tmp_path / "runbooks",
        forks=7,
        known_hosts=tmp_path / "known_hosts",
        connect_timeout=3.5,
        lock_ttl="20m",
        state_dir=tmp_path / "state",
    )


def test_a_job_without_runbooks_is_a_diagnosis_of_the_runbook_dir(
    defaults: Defaults, tmp_path: Path
) -> None:
    queued = QueuedJob("job-7", "schedule", "nightly", Job(), NOW, trigger={"k": "v"})
    spec = jobs.run_spec(defaults, queued, BUILTIN)
    assert (spec.command, spec.mode, spec.catalog) == ("diagnose", RunMode.DETECT, BUILTIN)
    settings = spec.settings
    assert settings.runbooks == (str(tmp_path / "runbooks"),)
    assert settings.runbook_dir == tmp_path / "runbooks"
    assert settings.inventory_paths == (tmp_path / "inventory.yml",)
    assert (settings.limit, settings.forks, settings.yes) == (None, 7, False)
    assert (settings.known_hosts, settings.connect_timeout) == (tmp_path / "known_hosts", 3.5)
    assert (settings.state_dir, settings.lock_ttl) == (tmp_path / "state", 1200.0)
    assert dict(spec.trigger) == {
        "source": "schedule",
        "name": "nightly",
        "job": "job-7",
        "k": "v",
    }
    assert not spec.fixes


@pytest.mark.parametrize(
    ("mode", "auto_approve", "run_mode"),
    [
        ("diagnose", False, RunMode.DETECT),
        ("dry-run", False, RunMode.DRY_RUN),
        ("dry-run", True, RunMode.DRY_RUN),
        ("fix", True, RunMode.FIX),
    ],
)
def test_a_job_with_runbooks_is_a_run_in_its_mode(
    defaults: Defaults, mode: str, auto_approve: bool, run_mode: RunMode
) -> None:
    job = Job.model_validate(
        {"runbooks": ["postgres-down", "disk-full"], "mode": mode, "auto_approve": auto_approve}
    )
    queued = QueuedJob("job-8", "alert", "postgres-down", job, NOW, host="pg-api-1")
    spec = jobs.run_spec(defaults, queued, BUILTIN)
    assert (spec.command, spec.mode) == ("run", run_mode)
    assert spec.settings.runbooks == ("postgres-down", "disk-full")
    assert spec.settings.yes is auto_approve
    assert spec.settings.limit == "pg-api-1"
    assert spec.fixes is (run_mode is RunMode.FIX)


def test_the_diagnose_mode_of_a_diagnosis_and_its_fixing_modes(defaults: Defaults) -> None:
    for mode, run_mode in jobs.MODES.items():
        job = Job.model_validate({"mode": mode, "auto_approve": mode == "fix"})
        spec = jobs.run_spec(defaults, QueuedJob("j", "schedule", "n", job, NOW), BUILTIN)
        assert (spec.command, spec.mode) == ("diagnose", run_mode)
    assert jobs.MODES == {
        "diagnose": RunMode.DETECT,
        "dry-run": RunMode.DRY_RUN,
        "fix": RunMode.FIX,
    }


def test_without_a_state_dir_a_run_uses_the_default_one(
    defaults: Defaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    unset = defaults.model_copy(update={"state_dir": None})
    spec = jobs.run_spec(unset, QueuedJob("j", "schedule", "n", Job(), NOW), BUILTIN)
    assert spec.settings.state_dir == tmp_path / "xdg" / "oorfix"


def test_a_long_annotation_is_prose_and_accepted() -> None:
    # A description or runbook_url is never routed on; the body's size limit bounds it.
    alert = AMAlert.model_validate(
        {"status": "firing", "labels": {}, "annotations": {"description": "d" * 4096},
         "fingerprint": "ab"}
    )  # fmt: skip
    assert len(alert.annotations["description"]) == 4096
