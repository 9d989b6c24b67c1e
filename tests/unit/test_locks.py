"""Per-host locks and the state directory: exact lock files, expiry, reclaim, and real races."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import threading
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from oorfix.safety.locks import NEVER, HostLocks, LockInfo
from oorfix.safety.state import StateDir, default_state_dir, safe_name
from tests.unit.shared import T0, FakeClock, run_all

HOST = "pg-api-1"


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def locks_for(state: StateDir, clock: FakeClock, run_id: str, ttl: float = 900.0) -> HostLocks:
    """Host locks of one run, owned by a name derived from the run id."""
    return HostLocks(state, run_id=run_id, owner=f"owner-{run_id}", ttl=ttl, clock=clock)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


# --- the state directory ---------------------------------------------------------------


def test_default_state_dir_follows_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "oorfix"


def test_default_state_dir_falls_back_to_local_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "oorfix"


def test_ensure_creates_private_directories(state: StateDir) -> None:
    state.ensure()
    state.ensure()  # idempotent
    assert (state.locks, state.budget, state.runs) == (
        state.path / "locks",
        state.path / "budget",
        state.path / "runs",
    )
    for directory in (state.path, state.locks, state.budget, state.runs):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, directory


def test_mutex_serialises_threads(state: StateDir) -> None:
    counter = state.path / "counter"
    state.ensure()
    counter.write_text("0")

    def bump() -> None:
        for _ in range(50):
            with state.mutex("counter"):
                counter.write_text(str(int(counter.read_text()) + 1))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.read_text() == "400"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pg-api-1", "pg-api-1"),
        ("db_01.example.com", "db_01.example.com"),
        ("10.0.0.7", "10.0.0.7"),
    ],
)
def test_safe_name_keeps_safe_names(name: str, expected: str) -> None:
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["a/b", "a:b", "../etc", ".hidden", "", "é", "x" * 300])
def test_safe_name_maps_the_rest_to_distinct_safe_names(name: str) -> None:
    mapped = safe_name(name)
    assert mapped != name
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in mapped)
    assert not mapped.startswith(".")
    assert len(mapped) <= 120


def test_safe_name_keeps_colliding_mappings_apart() -> None:
    assert safe_name("a/b").startswith("a_b_")
    assert safe_name("a:b").startswith("a_b_")
    assert safe_name("a/b") != safe_name("a:b")


# --- acquire, re-entry, release, refresh ----------------------------------------------


def test_acquire_free_host_writes_the_lock_file(state: StateDir, clock: FakeClock) -> None:
    ours = locks_for(state, clock, "run-a")
    assert ours.acquire(HOST) is None
    assert json.loads((state.locks / "pg-api-1.json").read_text()) == {
        "host": HOST,
        "owner": "owner-run-a",
        "run_id": "run-a",
        "acquired": "2024-05-01T09:42:05+00:00",
        "expires": "2024-05-01T09:57:05+00:00",
    }


def test_another_run_is_told_who_holds_the_lock(state: StateDir, clock: FakeClock) -> None:
    locks_for(state, clock, "run-a").acquire(HOST)
    clock.advance(60)
    assert locks_for(state, clock, "run-b").acquire(HOST) == LockInfo(
        HOST, "owner-run-a", "run-a", T0, at(900)
    )


def test_same_run_is_reentrant_and_extends_expiry(state: StateDir, clock: FakeClock) -> None:
    assert locks_for(state, clock, "run-a").acquire(HOST) is None
    clock.advance(100)
    again = locks_for(state, clock, "run-a")  # another instance of the same run
    assert again.acquire(HOST) is None
    assert again.held(HOST) == LockInfo(HOST, "owner-run-a", "run-a", T0, at(1000))


def test_locks_are_per_host(state: StateDir, clock: FakeClock) -> None:
    assert locks_for(state, clock, "run-a").acquire("pg-api-1") is None
    assert locks_for(state, clock, "run-b").acquire("pg-api-2") is None


def test_release_deletes_only_our_lock(state: StateDir, clock: FakeClock) -> None:
    ours, theirs = locks_for(state, clock, "run-a"), locks_for(state, clock, "run-b")
    ours.acquire(HOST)
    assert theirs.release(HOST) is False
    assert (state.locks / "pg-api-1.json").exists()
    assert ours.release(HOST) is True
    assert not (state.locks / "pg-api-1.json").exists()
    assert ours.release(HOST) is False
    assert theirs.acquire(HOST) is None


def test_release_all_releases_this_runs_locks_only(state: StateDir, clock: FakeClock) -> None:
    ours = locks_for(state, clock, "run-a")
    theirs = locks_for(state, clock, "run-b")
    for host in ("web/2", "pg-api-1"):
        assert ours.acquire(host) is None
    assert theirs.acquire("lb-1") is None
    assert locks_for(state, clock, "run-a").release_all() == ["pg-api-1", "web/2"]
    assert sorted(p.name for p in state.locks.iterdir()) == ["lb-1.json"]


def test_refresh_keeps_a_long_fix_locked(state: StateDir, clock: FakeClock) -> None:
    ours = locks_for(state, clock, "run-a")
    ours.acquire(HOST)
    clock.advance(600)
    assert ours.refresh(HOST) is None
    assert ours.held(HOST) == LockInfo(HOST, "owner-run-a", "run-a", T0, at(1500))
    clock.advance(400)  # past the first expiry (T0 + 900), before the refreshed one
    blocker = locks_for(state, clock, "run-b").acquire(HOST)
    assert blocker == LockInfo(HOST, "owner-run-a", "run-a", T0, at(1500))


def test_refresh_reports_a_lock_lost_to_another_run(state: StateDir, clock: FakeClock) -> None:
    ours, theirs = locks_for(state, clock, "run-a"), locks_for(state, clock, "run-b")
    ours.acquire(HOST)
    clock.advance(901)
    assert theirs.acquire(HOST) is None
    assert ours.refresh(HOST) == LockInfo(HOST, "owner-run-b", "run-b", at(901), at(1801))


def test_refresh_retakes_a_vanished_lock(state: StateDir, clock: FakeClock) -> None:
    ours = locks_for(state, clock, "run-a")
    ours.acquire(HOST)
    (state.locks / "pg-api-1.json").unlink()
    clock.advance(10)
    assert ours.refresh(HOST) is None
    assert ours.held(HOST) == LockInfo(HOST, "owner-run-a", "run-a", at(10), at(910))


# --- expiry and reclaim ----------------------------------------------------------------


def test_lock_holds_until_strictly_after_expiry(state: StateDir, clock: FakeClock) -> None:
    locks_for(state, clock, "run-a").acquire(HOST)
    clock.advance(900)  # exactly at expiry: still held
    assert locks_for(state, clock, "run-b").acquire(HOST) is not None
    assert not (state.locks / "reclaimed.jsonl").exists()


def test_expired_lock_is_reclaimed_and_recorded(state: StateDir, clock: FakeClock) -> None:
    locks_for(state, clock, "run-a").acquire(HOST)
    clock.advance(901)
    theirs = locks_for(state, clock, "run-b")
    assert theirs.acquire(HOST) is None
    assert theirs.held(HOST) == LockInfo(HOST, "owner-run-b", "run-b", at(901), at(1801))
    lines = (state.locks / "reclaimed.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "host": HOST,
            "stale": {
                "host": HOST,
                "owner": "owner-run-a",
                "run_id": "run-a",
                "acquired": "2024-05-01T09:42:05+00:00",
                "expires": "2024-05-01T09:57:05+00:00",
            },
            "run_id": "run-b",
            "owner": "owner-run-b",
            "at": "2024-05-01T09:57:06+00:00",
        }
    ]


def _acquire_and_die(state_path: str, host: str) -> None:
    """Take a lock with the real clock, then die by SIGKILL as a killed run would."""
    locks = HostLocks(StateDir(Path(state_path)), run_id="killed-run", owner="doomed")
    assert locks.acquire(host) is None
    os.kill(os.getpid(), signal.SIGKILL)


def test_killed_runs_lock_is_reclaimed_after_expiry(state: StateDir) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=_acquire_and_die, args=(str(state.path), HOST)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    stale = HostLocks(state, run_id="observer", owner="x").held(HOST)
    assert stale is not None
    assert (stale.run_id, stale.owner) == ("killed-run", "doomed")

    clock = FakeClock(stale.expires)
    assert locks_for(state, clock, "next-run").acquire(HOST) == stale  # not yet expired
    clock.advance(1)
    assert locks_for(state, clock, "next-run").acquire(HOST) is None
    record = json.loads((state.locks / "reclaimed.jsonl").read_text())
    assert record["stale"] == stale.to_json()
    assert record["run_id"] == "next-run"


# --- unreadable lock files fail closed -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (
            "{not json",
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ("", "Expecting value: line 1 column 1 (char 0)"),
        ("[]", "not a JSON object"),
        ('{"host": "pg-api-1"}', "missing or non-text owner, run_id"),
        (
            '{"host": "pg-api-1", "owner": "o", "run_id": "r", '
            '"acquired": "2024-05-01T09:42:05", "expires": "2024-05-01T09:57:05"}',
            "'2024-05-01T09:42:05' has no time zone",
        ),
        (
            '{"host": "pg-api-1", "owner": "o", "run_id": "r", '
            '"acquired": "2024-05-01T09:42:05+00:00", "expires": "soon"}',
            "Invalid isoformat string: 'soon'",
        ),
    ],
)
def test_unreadable_lock_file_fails_closed(
    state: StateDir, clock: FakeClock, content: str, why: str
) -> None:
    state.ensure()
    path = state.locks / "pg-api-1.json"
    path.write_text(content)
    clock.advance(365 * 24 * 3600)  # no amount of waiting reclaims it
    locks = locks_for(state, clock, "run-b")
    blocker = locks.acquire(HOST)
    assert blocker is not None
    assert (blocker.host, blocker.owner, blocker.run_id, blocker.expires) == (
        HOST,
        f"unreadable lock file {path}: {why}",
        "",
        NEVER,
    )
    assert locks.refresh(HOST) == blocker
    assert locks.release(HOST) is False
    assert locks.release_all() == []
    assert path.read_text() == content
    assert not (state.locks / "reclaimed.jsonl").exists()


def test_lock_file_naming_another_host_fails_closed(state: StateDir, clock: FakeClock) -> None:
    state.ensure()
    path = state.locks / "pg-api-1.json"
    other = LockInfo("elsewhere", "o", "r", T0, at(900))
    path.write_text(json.dumps(other.to_json()))
    blocker = locks_for(state, clock, "run-b").acquire(HOST)
    assert blocker is not None
    assert blocker.owner == f"unreadable lock file {path}: it belongs to host 'elsewhere'"


def test_bad_settings_are_refused(state: StateDir) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        HostLocks(state, run_id="r", owner="o", ttl=0)
    with pytest.raises(ValueError, match="run id is required"):
        HostLocks(state, run_id="", owner="o")


# --- processes racing for one lock ------------------------------------------------------

WORKERS = 8
ATTEMPTS = 50


def _race(state_path: str, worker: int, barrier: Barrier) -> None:
    """Try ATTEMPTS times to hold HOST; prove exclusion with marker files; write a summary."""
    root = Path(state_path)
    locks = HostLocks(StateDir(root / "state"), run_id=f"w{worker}", owner=f"worker {worker}")
    markers = root / "markers"
    marker = markers / f"w{worker}"
    wins, violations = 0, []
    barrier.wait(timeout=120)
    for attempt in range(ATTEMPTS):
        if locks.acquire(HOST) is not None:
            continue
        before = sorted(os.listdir(markers))
        marker.write_text(str(attempt))
        os.sched_yield()  # invite another racer to break in while we "remediate"
        during = sorted(os.listdir(markers))
        marker.unlink()
        if before or during != [marker.name]:
            violations.append(f"attempt {attempt}: before={before} during={during}")
        if not locks.release(HOST):
            violations.append(f"attempt {attempt}: release failed")
        wins += 1
    summary = {"wins": wins, "violations": violations}
    (root / "results" / f"w{worker}.json").write_text(json.dumps(summary))


def test_processes_racing_for_one_host_never_hold_it_together(tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    (tmp_path / "results").mkdir()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=_race, args=(str(tmp_path), n, barrier)) for n in range(WORKERS)]
    run_all(procs)
    summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / "results").iterdir())]
    assert len(summaries) == WORKERS
    assert [s["violations"] for s in summaries] == [[]] * WORKERS
    assert sum(s["wins"] for s in summaries) >= 1  # the first acquire finds the host free
    assert sorted(p.name for p in (tmp_path / "state" / "locks").iterdir()) == []
