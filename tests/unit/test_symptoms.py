"""Symptoms and causes: what confirms a fault, what only shows impact, and mitigated."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oorfix.inventory.core import Inventory
from oorfix.results import ExitCode, Outcome, Phase, RunMode, RunResult, StepStatus
from oorfix.runbook.loader import LoadedRunbook

from .fakes import Reply, Script
from .test_engine import run as engine_run

# The latency runbook's shape: the impact is the path in use, the cause the primary path.
RUNBOOK = """
name: path-slow
fault: network.latency
hosts: payment_api
symptoms:
  - name: clearing fast on the route in use
    run: probe-current
detect:
  - name: primary path fast
    run: probe-primary
evidence:
  - run: show-routes
remediate:
  - run: route-via-backup
verify: {retries: 1, delay: 1s}
rollback:
  - run: route-back
escalate:
  message: "primary path slow from {{ host.name }}"
"""


@pytest.fixture
def path_slow(runbook: Callable[[str], LoadedRunbook]) -> LoadedRunbook:
    return runbook(RUNBOOK)


def run(
    inventory: Inventory,
    loaded: LoadedRunbook,
    scripts: dict[str, Script],
    mode: RunMode = RunMode.FIX,
    limit: str | None = None,
) -> tuple[RunResult, list[tuple[str, str, bool]]]:
    """One check per round trip, so the commands sent show the order of the checks."""
    return engine_run(inventory, loaded, scripts, mode, limit, batch_detect=False)


def sent_texts(sent: list[tuple[str, str, bool]]) -> list[str]:
    return [text for _, text, _ in sent]


def test_symptom_alone_never_confirms(inventory: Inventory, path_slow: LoadedRunbook) -> None:
    script = Script().on("probe-current", Reply(rc=1)).on("probe-primary")
    result, sent = run(inventory, path_slow, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.HEALTHY
    assert sent_texts(sent) == ["probe-current", "probe-primary"]
    assert [(s.phase, s.status) for s in host.steps] == [
        (Phase.SYMPTOMS, StepStatus.FAILED),
        (Phase.DETECT, StepStatus.PASSED),
    ]
    refuted = "symptom seen, this cause refuted: clearing fast on the route in use: exit status 1"
    assert [n[: len(refuted)] for n in host.notes] == [refuted]


def test_cause_without_impact_is_mitigated_and_left_alone(
    inventory: Inventory, path_slow: LoadedRunbook
) -> None:
    script = Script().on("probe-current").on("probe-primary", Reply(rc=1)).on("show-routes")
    result, sent = run(inventory, path_slow, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.MITIGATED
    assert sent_texts(sent) == ["probe-current", "probe-primary", "show-routes"]
    assert (host.error or "").startswith("cause present, no impact: primary path fast")
    assert result.exit_code() is ExitCode.MITIGATED


def test_fix_that_removes_the_impact_only_is_mitigated_escalated_not_rolled_back(
    inventory: Inventory, path_slow: LoadedRunbook
) -> None:
    script = (
        Script()
        .on("probe-current", Reply(rc=1), Reply(rc=0))
        .on("probe-primary", Reply(rc=1))
        .on("show-routes")
        .on("route-via-backup")
    )
    result, sent = run(inventory, path_slow, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.MITIGATED
    assert sent_texts(sent) == [
        "probe-current",
        "probe-primary",
        "show-routes",
        "route-via-backup",
        *["probe-current", "probe-primary"] * 2,  # retries: 1 -> two attempts
    ]
    assert "route-back" not in sent_texts(sent)
    assert host.escalation == "primary path slow from api-1"
    assert (host.error or "").startswith("service restored; the cause remains: primary path")
    assert result.exit_code() is ExitCode.MITIGATED


def test_fixed_needs_both_cause_and_impact_clear(
    inventory: Inventory, path_slow: LoadedRunbook
) -> None:
    script = (
        Script()
        .on("probe-current", Reply(rc=1), Reply(rc=1), Reply(rc=0))
        .on("probe-primary", Reply(rc=1), Reply(rc=0))
        .on("show-routes")
        .on("route-via-backup")
    )
    result, _ = run(inventory, path_slow, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.FIXED
    verify = [(s.name, s.status, s.attempt) for s in host.steps if s.phase is Phase.VERIFY]
    assert verify == [
        ("clearing fast on the route in use", StepStatus.FAILED, 1),
        ("primary path fast", StepStatus.PASSED, 1),
        ("clearing fast on the route in use", StepStatus.PASSED, 2),
        ("primary path fast", StepStatus.PASSED, 2),
    ]
    assert host.escalation is None
    assert result.exit_code() is ExitCode.OK


def test_impact_that_stays_fails_and_rolls_back(
    inventory: Inventory, path_slow: LoadedRunbook
) -> None:
    script = (
        Script()
        .on("probe-current", Reply(rc=1))
        .on("probe-primary", Reply(rc=1), Reply(rc=0))
        .on("show-routes")
        .on("route-via-backup")
        .on("route-back")
    )
    result, sent = run(inventory, path_slow, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.FAILED
    assert sent_texts(sent)[-1] == "route-back"
    assert (host.error or "").endswith("route in use: exit status 1, expected 0")


def test_diagnosis_with_impact_is_confirmed(inventory: Inventory, path_slow: LoadedRunbook) -> None:
    script = Script().on("probe-current", Reply(rc=1)).on("probe-primary", Reply(rc=1)).on("show")
    result, sent = run(inventory, path_slow, {"api-1": script}, mode=RunMode.DETECT, limit="api-1")
    assert result.results[0].status is Outcome.WOULD_FIX
    assert sent_texts(sent) == ["probe-current", "probe-primary", "show-routes"]


def test_mitigated_ranks_below_fault_and_unreachable() -> None:
    assert Outcome.MITIGATED.fault_remains is False
    assert ExitCode.MITIGATED == 4
