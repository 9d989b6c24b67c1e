"""Remediation budgets: exact refusals, the sliding window, persistence and real concurrency."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from oorfix.safety.budget import BudgetUnreadable, RemediationBudget, format_window
from oorfix.safety.state import StateDir
from tests.unit.shared import T0, FakeClock, run_all

RUNBOOK = "payment-api-down"
HOST = "pg-api-1"
HOUR = 3600.0


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budget(state: StateDir, clock: FakeClock) -> RemediationBudget:
    return RemediationBudget(state, clock=clock)


def spend_three(budget: RemediationBudget, clock: FakeClock) -> None:
    """Spend a 3-per-hour budget at T0, T0+5m and T0+10m; the clock ends at T0+10m."""
    for step in range(3):
        if step:
            clock.advance(300)
        assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) is None


def spent_reason(count: int, next_at: str, window: str = "1h") -> str:
    """The refusal message for ``RUNBOOK`` on ``HOST``."""
    noun = "remediation" if count == 1 else "remediations"
    return (
        f"budget spent: {count} {noun} of {RUNBOOK} on {HOST} in the last {window} "
        f"(next allowed at {next_at})"
    )


def test_spends_up_to_count_then_refuses_with_the_reason(
    budget: RemediationBudget, clock: FakeClock
) -> None:
    spend_three(budget, clock)
    clock.advance(600)
    assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) == spent_reason(3, "10:42:05 UTC")
    assert budget.check(RUNBOOK, HOST, 3, HOUR) == spent_reason(3, "10:42:05 UTC")
    assert budget.entries(RUNBOOK, HOST) == [
        T0,
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=10),
    ]


def test_file_is_a_list_of_iso_timestamps(
    budget: RemediationBudget, state: StateDir, clock: FakeClock
) -> None:
    spend_three(budget, clock)
    path = state.budget / RUNBOOK / f"{HOST}.json"
    assert budget.path(RUNBOOK, HOST) == path
    assert json.loads(path.read_text()) == [
        "2024-05-01T09:42:05+00:00",
        "2024-05-01T09:47:05+00:00",
        "2024-05-01T09:52:05+00:00",
    ]


def test_allowed_again_as_each_entry_leaves_the_window(
    budget: RemediationBudget, clock: FakeClock
) -> None:
    spend_three(budget, clock)
    clock.now = T0 + timedelta(seconds=HOUR - 1)
    assert budget.check(RUNBOOK, HOST, 3, HOUR) == spent_reason(3, "10:42:05 UTC")
    clock.now = T0 + timedelta(seconds=HOUR)  # the first remediation leaves the window
    assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) is None
    assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) == spent_reason(3, "10:47:05 UTC")


def test_check_does_not_spend(budget: RemediationBudget, clock: FakeClock) -> None:
    for _ in range(5):
        assert budget.check(RUNBOOK, HOST, 1, HOUR) is None
    assert budget.entries(RUNBOOK, HOST) == []


def test_record_spends_without_checking(budget: RemediationBudget, clock: FakeClock) -> None:
    budget.record(RUNBOOK, HOST)
    budget.record(RUNBOOK, HOST)
    assert budget.check(RUNBOOK, HOST, 2, HOUR) == spent_reason(2, "10:42:05 UTC")


def test_old_entries_are_pruned_on_write(
    budget: RemediationBudget, state: StateDir, clock: FakeClock
) -> None:
    spend_three(budget, clock)
    clock.now = T0 + timedelta(hours=1, minutes=7)  # only T0+10m is still in the window
    assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) is None
    assert json.loads(budget.path(RUNBOOK, HOST).read_text()) == [
        "2024-05-01T09:52:05+00:00",
        "2024-05-01T10:49:05+00:00",
    ]


def test_record_prunes_only_when_given_a_window(
    budget: RemediationBudget, clock: FakeClock
) -> None:
    budget.record(RUNBOOK, HOST)
    clock.advance(2 * HOUR)
    budget.record(RUNBOOK, HOST)
    assert len(budget.entries(RUNBOOK, HOST)) == 2
    budget.record(RUNBOOK, HOST, per=HOUR)
    assert budget.entries(RUNBOOK, HOST) == [T0 + timedelta(hours=2)] * 2


def test_budgets_are_per_runbook_and_host(budget: RemediationBudget) -> None:
    assert budget.try_spend(RUNBOOK, HOST, 1, HOUR) is None
    assert budget.try_spend(RUNBOOK, "pg-api-2", 1, HOUR) is None
    assert budget.try_spend("disk-full", HOST, 1, HOUR) is None
    assert budget.try_spend(RUNBOOK, HOST, 1, HOUR) == spent_reason(1, "10:42:05 UTC")


def test_a_lowered_count_reports_every_recent_remediation(
    budget: RemediationBudget, clock: FakeClock
) -> None:
    spend_three(budget, clock)
    # Allowed again when two of the three have left the window: at T0+5m+1h.
    assert budget.check(RUNBOOK, HOST, 2, HOUR) == spent_reason(3, "10:47:05 UTC")


def test_persisted_across_instances(state: StateDir, clock: FakeClock) -> None:
    spend_three(RemediationBudget(state, clock=clock), clock)
    again = RemediationBudget(state, clock=clock)
    assert again.try_spend(RUNBOOK, HOST, 3, HOUR) == spent_reason(3, "10:42:05 UTC")


def test_next_allowed_is_rounded_up_and_dated_when_not_today(
    budget: RemediationBudget, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 5, 1, 23, 30, 0, 250_000, tzinfo=UTC)
    assert budget.try_spend(RUNBOOK, HOST, 1, HOUR) is None
    assert budget.check(RUNBOOK, HOST, 1, HOUR) == spent_reason(1, "2024-05-02 00:30:01 UTC")
    assert budget.check(RUNBOOK, HOST, 1, 90.0) == spent_reason(1, "23:31:31 UTC", "90s")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1h"), (86400, "24h"), (5400, "90m"), (60, "1m"), (90, "90s"), (1.5, "1.5s")],
)
def test_format_window(seconds: float, text: str) -> None:
    assert format_window(seconds) == text


@pytest.mark.parametrize(("count", "per"), [(0, HOUR), (-1, HOUR), (3, 0.0), (3, float("inf"))])
def test_senseless_limits_are_refused(budget: RemediationBudget, count: int, per: float) -> None:
    with pytest.raises(ValueError, match="max_remediations"):
        budget.try_spend(RUNBOOK, HOST, count, per)
    with pytest.raises(ValueError, match="max_remediations"):
        budget.check(RUNBOOK, HOST, count, per)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("[oops", "Expecting value: line 1 column 2 (char 1)"),
        ('{"a": 1}', "not a list of timestamps"),
        ('["yesterday"]', "Invalid isoformat string: 'yesterday'"),
        ('["2024-05-01T09:42:05"]', "a timestamp has no time zone"),
    ],
)
def test_unreadable_budget_file_refuses_and_is_kept(
    budget: RemediationBudget, content: str, why: str
) -> None:
    path = budget.path(RUNBOOK, HOST)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    reason = f"budget file {path} is unreadable ({why}); remediation refused until fixed"
    assert budget.check(RUNBOOK, HOST, 3, HOUR) == reason
    assert budget.try_spend(RUNBOOK, HOST, 3, HOUR) == reason
    with pytest.raises(BudgetUnreadable):
        budget.record(RUNBOOK, HOST)
    assert path.read_text() == content


def test_unsafe_names_stay_inside_the_budget_directory(
    budget: RemediationBudget, state: StateDir
) -> None:
    assert budget.try_spend("../../escape", "../host", 1, HOUR) is None
    path = budget.path("../../escape", "../host")
    assert path.parent.parent == state.budget
    assert path.exists()


# --- across processes --------------------------------------------------------------------


def _spend(state_path: str, now: str, attempts: int, count: int, barrier: Barrier | None) -> None:
    """Try to spend ``attempts`` times at the fixed time ``now``; write how many succeeded."""
    root = Path(state_path)
    fixed = datetime.fromisoformat(now)
    budget = RemediationBudget(StateDir(root / "state"), clock=lambda: fixed)
    if barrier is not None:
        barrier.wait(timeout=120)
    spent = sum(budget.try_spend(RUNBOOK, HOST, count, HOUR) is None for _ in range(attempts))
    with (root / "spent.log").open("a") as log:  # one short append per process
        log.write(f"{spent}\n")


def run_processes(tmp_path: Path, workers: int, attempts: int, count: int) -> list[int]:
    """Run ``workers`` spawned processes spending at T0; the spends each reported."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers) if workers > 1 else None
    args = (str(tmp_path), T0.isoformat(), attempts, count, barrier)
    procs = [ctx.Process(target=_spend, args=args) for _ in range(workers)]
    run_all(procs)
    return [int(line) for line in (tmp_path / "spent.log").read_text().split()]


def test_a_spend_in_another_process_is_seen_by_this_one(tmp_path: Path, clock: FakeClock) -> None:
    assert run_processes(tmp_path, workers=1, attempts=1, count=1) == [1]
    budget = RemediationBudget(StateDir(tmp_path / "state"), clock=clock)
    assert budget.try_spend(RUNBOOK, HOST, 1, HOUR) == spent_reason(1, "10:42:05 UTC")


def test_concurrent_processes_never_overspend(tmp_path: Path) -> None:
    spent = run_processes(tmp_path, workers=8, attempts=5, count=3)
    assert len(spent) == 8
    assert sum(spent) == 3
    budget = RemediationBudget(StateDir(tmp_path / "state"), clock=lambda: T0)
    assert budget.entries(RUNBOOK, HOST) == [T0, T0, T0]
