"""The state backends' contract: the state directory and a real Redis behave alike.

Every test of the contract runs against both backends: host locks (re-entrant, per host,
expiry judged strictly after, reclaim recorded, refresh after loss), remediation budgets
(spend, refuse with the reason, allowed again as entries leave the window), the audit chain
(appended by several processes at once, verified, exported as a file that verifies) and the
run history (saved, listed newest first, found by id prefix). Redis-only tests follow: the
server's own clock, an unreadable lock value, and a server that does not answer failing
closed in the gate.
"""

from __future__ import annotations

import io
import json
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oorfix.app.state import DirectoryState, StateBackend, open_state
from oorfix.errors import InputError, StateUnavailable
from oorfix.lab.redisserver import RedisServer, free_port, start_redis
from oorfix.output.record import RunRecord
from oorfix.results import Outcome
from oorfix.safety.audit import AuditWhere, verify
from oorfix.safety.budget import RemediationBudget
from oorfix.safety.gates import RunGate
from oorfix.safety.locks import NEVER, HostLocks
from oorfix.safety.redis_budget import RedisBudget
from oorfix.safety.redis_client import RedisState, RedisTarget, mask_url
from oorfix.safety.redis_locks import RedisLocks
from oorfix.safety.stores import BudgetStore, LockStore
from tests.unit.shared import T0, FakeClock, run_all
from tests.unit.test_reports import fixed_result, make_record

HOST = "pg-api-1"
RUNBOOK = {
    "name": "restart-api",
    "fault": "software.crash",
    "hosts": "all",
    "detect": [{"name": "api up", "run": "true"}],
    "remediate": [{"name": "start", "run": "true"}],
}


@dataclass
class Backend:
    """One backend under test, with stores judged by the test's clock."""

    name: str
    state: StateBackend
    locks: Callable[[str, float], LockStore]  # run id, ttl
    budget: Callable[[], BudgetStore]


@pytest.fixture(params=["directory", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Backend:
    if request.param == "directory":
        state = open_state(None, tmp_path / "state")
        assert isinstance(state, DirectoryState)
        directory = state.directory
        return Backend(
            "directory",
            state,
            lambda run, ttl: HostLocks(directory, run, f"owner-{run}", ttl, clock),
            lambda: RemediationBudget(directory, clock),
        )
    url = request.getfixturevalue("redis_url")
    shared = open_state(url, tmp_path / "unused")
    client = RedisState(RedisTarget.parse(url))
    return Backend(
        "redis",
        shared,
        lambda run, ttl: RedisLocks(client, run, f"owner-{run}", ttl, clock),
        lambda: RedisBudget(client, clock),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- locks --------------------------------------------------------------------------------


def test_a_lock_blocks_other_runs_and_names_its_holder(backend: Backend) -> None:
    ours, theirs = backend.locks("run-a", 900), backend.locks("run-b", 900)
    assert ours.acquire(HOST) is None
    held = theirs.acquire(HOST)
    assert held is not None
    assert (held.run_id, held.owner, held.acquired, held.expires) == (
        "run-a",
        "owner-run-a",
        at(0),
        at(900),
    )
    assert theirs.acquire("pg-api-2") is None  # locks are per host


def test_a_lock_is_reentrant_for_its_run_and_refresh_extends_it(
    backend: Backend, clock: FakeClock
) -> None:
    ours = backend.locks("run-a", 900)
    assert ours.acquire(HOST) is None
    clock.advance(600)
    assert ours.acquire(HOST) is None
    clock.advance(600)
    assert ours.refresh(HOST) is None
    held = ours.held(HOST)
    assert held is not None
    assert (held.acquired, held.expires) == (at(0), at(2100))


def test_a_lock_holds_until_strictly_after_expiry_then_is_reclaimed(
    backend: Backend, clock: FakeClock
) -> None:
    backend.locks("run-a", 900).acquire(HOST)
    theirs = backend.locks("run-b", 900)
    clock.advance(900)
    assert theirs.acquire(HOST) is not None  # at the expiry itself: still held
    clock.advance(1)
    assert theirs.acquire(HOST) is None
    held = theirs.held(HOST)
    assert held is not None
    assert (held.run_id, held.acquired, held.expires) == ("run-b", at(901), at(1801))


def test_refresh_reports_a_lock_lost_to_another_run(backend: Backend, clock: FakeClock) -> None:
    ours, theirs = backend.locks("run-a", 10), backend.locks("run-b", 10)
    ours.acquire(HOST)
    clock.advance(11)
    assert theirs.acquire(HOST) is None
    lost = ours.refresh(HOST)
    assert lost is not None
    assert lost.run_id == "run-b"
    assert not ours.release(HOST)  # never releases the new holder's lock
    assert theirs.held(HOST) is not None


def test_release_and_release_all_free_only_this_runs_locks(backend: Backend) -> None:
    ours, theirs = backend.locks("run-a", 900), backend.locks("run-b", 900)
    for host in ("h1", "h2", "h3"):
        ours.acquire(host)
    theirs.acquire("h4")
    assert ours.release("h1")
    assert not ours.release("h4")
    assert ours.release_all() == ["h2", "h3"]
    assert [ours.held(h) for h in ("h1", "h2", "h3")] == [None, None, None]
    assert theirs.held("h4") is not None


# --- budgets ------------------------------------------------------------------------------


def test_a_budget_spends_up_to_its_count_then_says_when_next(
    backend: Backend, clock: FakeClock
) -> None:
    one, other = backend.budget(), backend.budget()  # two controllers
    assert one.try_spend("restart-api", HOST, 2, 3600) is None
    clock.advance(60)
    assert other.try_spend("restart-api", HOST, 2, 3600) is None
    clock.advance(60)
    refused = one.try_spend("restart-api", HOST, 2, 3600)
    assert refused == (
        "budget spent: 2 remediations of restart-api on pg-api-1 in the last 1h "
        "(next allowed at 10:42:05 UTC)"
    )
    assert other.try_spend("restart-api", "pg-api-2", 2, 3600) is None  # per host
    assert other.try_spend("other", HOST, 2, 3600) is None  # per runbook
    clock.advance(3600 - 121)
    assert other.try_spend("restart-api", HOST, 2, 3600) is not None  # a second early
    clock.advance(1)  # the first spend is an hour old: out of the window
    assert other.try_spend("restart-api", HOST, 2, 3600) is None


def _spend_many(url_or_dir: str, count: int, barrier: Any, results: Any) -> None:
    """In a child: spend ``count`` times at once with the others; put how many were granted."""
    state = open_state(url_or_dir if "://" in url_or_dir else None, Path(url_or_dir))
    budget = state.budget()
    barrier.wait()
    granted = sum(budget.try_spend("rb", HOST, 5, 3600) is None for _ in range(count))
    results.put(granted)


def test_controllers_spending_at_once_never_overspend(backend: Backend, tmp_path: Path) -> None:
    where = backend.state.where if backend.name == "directory" else _url(backend)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_spend_many, args=(where, 5, barrier, results)) for _ in range(4)]
    run_all(procs)
    assert sum(results.get(timeout=10) for _ in procs) == 5


def _url(backend: Backend) -> str:
    """The URL a child process opens for the Redis backend (password from the environment)."""
    state = backend.state
    assert not isinstance(state, DirectoryState)
    return str(state.state.target.url)  # type: ignore[attr-defined]


# --- the audit chain ----------------------------------------------------------------------


def _where(step: str) -> AuditWhere:
    return AuditWhere("run-1", HOST, "restart-api", "remediate", step, f"systemctl start {step}")


def _append(url_or_dir: str, actor: str, count: int, barrier: Any) -> None:
    """In a child: append ``count`` intent+result pairs as ``actor``, racing the others."""
    state = open_state(url_or_dir if "://" in url_or_dir else None, Path(url_or_dir))
    log = state.audit(actor)
    barrier.wait()
    for n in range(count):
        intent = log.intent(_where(f"{actor}-{n}"))
        log.result(_where(f"{actor}-{n}"), 0, "passed", intent)


def test_processes_appending_at_once_keep_one_chain_that_verifies_and_exports(
    backend: Backend, tmp_path: Path
) -> None:
    where = backend.state.where if backend.name == "directory" else _url(backend)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_append, args=(where, f"sre{n}@laptop", 40, barrier)) for n in range(3)
    ]
    run_all(procs)
    log = backend.state.audit("checker@ci")
    assert log.exists()
    result = log.verify()
    assert (result.ok, result.entries) == (True, 240)
    out = io.BytesIO()
    assert log.export(out) == 240
    exported = tmp_path / "audit-export.log"
    exported.write_bytes(out.getvalue())
    assert verify(exported).entries == 240
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, 241))
    assert {e["actor"] for e in lines} == {"sre0@laptop", "sre1@laptop", "sre2@laptop"}


def test_an_edited_redis_entry_is_reported(redis_url: str, redis_server: RedisServer) -> None:
    import redis

    log = open_state(redis_url, Path("/nonexistent")).audit("sre@laptop")
    for n in range(3):
        log.result(_where(str(n)), 0, "passed", log.intent(_where(str(n))))
    client = redis.Redis.from_url(redis_server.url_with_password)
    entry = json.loads(client.lindex("oorfix:audit", 2))
    entry["command"] = "systemctl start something-else"
    client.lset("oorfix:audit", 2, json.dumps(entry, sort_keys=True, separators=(",", ":")))
    result = log.verify()
    assert (result.ok, result.entries, result.first_bad) == (False, 2, 3)
    assert result.reason == "line 3: hash does not match its content (edited?)"


# --- the run history ----------------------------------------------------------------------


def _record(run_id: str, minutes: int, command: str = "run") -> RunRecord:
    record = make_record(fixed_result(), run_id=run_id, started=T0 + timedelta(minutes=minutes))
    return record.model_copy(update={"command": command})


def test_runs_are_listed_newest_first_and_found_by_prefix(backend: Backend) -> None:
    store = backend.state.history()
    store.save(_record("aaaa1111", 0), [{"host": HOST, "runbook": "rb", "steps": []}])
    backend.state.history().save(_record("bbbb2222", 5, "diagnose"), None)  # another controller
    listed = store.runs()
    assert [(s.id, s.command, s.summary) for s in listed] == [
        ("bbbb2222", "diagnose", {"fixed": 1}),
        ("aaaa1111", "run", {"fixed": 1}),
    ]
    assert store.load("aaaa").run_id == "aaaa1111"
    with pytest.raises(InputError, match="no run matches 'cccc'"):
        store.load("cccc")


# --- Redis only ---------------------------------------------------------------------------


def test_without_a_clock_redis_judges_expiry_by_its_own(redis_url: str) -> None:
    client = RedisState(RedisTarget.parse(redis_url))
    ours = RedisLocks(client, "run-a", "a", 900)
    assert ours.acquire(HOST) is None
    held = RedisLocks(client, "run-b", "b", 900).acquire(HOST)
    assert held is not None
    assert held.expires - held.acquired == timedelta(seconds=900)
    assert held.fence is not None
    assert RedisBudget(client).try_spend("rb", HOST, 1, 3600) is None
    assert RedisBudget(client).try_spend("rb", HOST, 1, 3600) is not None


def test_every_new_holder_gets_a_higher_fencing_token(redis_url: str, clock: FakeClock) -> None:
    client = RedisState(RedisTarget.parse(redis_url))
    first = RedisLocks(client, "run-a", "a", 10, clock)
    first.acquire(HOST)
    token = first.held(HOST)
    clock.advance(11)
    second = RedisLocks(client, "run-b", "b", 10, clock)
    second.acquire(HOST)
    later = second.held(HOST)
    assert token is not None
    assert later is not None
    assert token.fence is not None
    assert later.fence is not None
    assert later.fence > token.fence
    reclaim = second.reclaims()
    assert [(r["host"], r["stale"]["run_id"], r["run_id"]) for r in reclaim] == [
        (HOST, "run-a", "run-b")
    ]


def test_an_unreadable_lock_value_blocks_for_ever(
    redis_url: str, redis_server: RedisServer, clock: FakeClock
) -> None:
    import redis

    redis.Redis.from_url(redis_server.url_with_password).set(f"oorfix:lock:{HOST}", b"{not json")
    client = RedisState(RedisTarget.parse(redis_url))
    held = RedisLocks(client, "run-a", "a", 900, clock).acquire(HOST)
    assert held is not None
    assert held.expires == NEVER
    assert held.owner.startswith("unreadable lock")


def test_the_password_is_masked_in_every_message() -> None:
    url = "redis://user:s3cret@127.0.0.1:1/0"
    assert mask_url(url) == "redis://user:***@127.0.0.1:1/0"
    with pytest.raises(InputError) as caught:
        RedisTarget.parse("redis://:s3cret@127.0.0.1:1/0?prefix=bad/prefix")
    assert "s3cret" not in str(caught.value)
    client = RedisState(RedisTarget.parse(url))
    with pytest.raises(StateUnavailable) as down:
        client.ping()
    assert "s3cret" not in str(down.value)
    assert "***" in str(down.value)


@dataclass(frozen=True)
class _Job:
    host_name: str
    runbook: Any


@pytest.fixture
def dead_state() -> Iterator[RedisState]:
    """A state URL where nothing listens."""
    client = RedisState(RedisTarget.parse(f"redis://127.0.0.1:{free_port()}/0"))
    yield client
    client.close()


def test_a_gate_without_redis_refuses_to_fix(dead_state: RedisState, clock: FakeClock) -> None:
    from oorfix.runbook.models import Runbook

    runbook = Runbook.model_validate(RUNBOOK)
    gate = RunGate(locks=RedisLocks(dead_state, "run-a", "a", 900, clock), clock=clock)
    refusal = gate.admit(_Job(HOST, runbook))
    assert refusal is not None
    assert refusal.outcome is Outcome.LOCKED
    assert refusal.reason.startswith("fix not started without a lock: ")
    assert "failed" in refusal.reason


def test_a_lock_that_cannot_be_refreshed_is_lost(
    redis_server: RedisServer, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oorfix.runbook.models import Runbook

    own = start_redis(tmp_path / "redis")  # its own server, to stop in the middle of a fix
    try:
        monkeypatch.setenv("OORFIX_STATE_PASSWORD", own.password)
        client = RedisState(RedisTarget.parse(own.url))
        gate = RunGate(locks=RedisLocks(client, "run-a", "a", 900, clock), clock=clock)
        job = _Job(HOST, Runbook.model_validate(RUNBOOK))
        assert gate.admit(job) is None
        assert gate.step(job) is None
        own.stop()
        reason = gate.step(job)
        assert reason is not None
        assert reason.startswith(f"the lock on {HOST} could not be refreshed: ")
        assert own.password not in reason
        assert gate.step(job) == reason  # lost stays lost
        gate.done(job)  # giving back what cannot be reached does not raise
    finally:
        own.stop()
