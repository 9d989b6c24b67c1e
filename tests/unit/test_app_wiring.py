"""The one assembly of a run: the mode picks the gate and the audit; batches and the breaker
come from the settings, else from the most careful runbook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from oorfix.app.settings import RunSettings
from oorfix.app.wiring import RunRequest, assemble, engine_options
from oorfix.errors import InputError
from oorfix.inventory.core import Inventory
from oorfix.results import RunMode
from oorfix.run.planner import PlannedJob, plan_run
from oorfix.runbook.loader import LoadedRunbook
from oorfix.safety.audit import AuditLog, NoAudit
from oorfix.safety.gates import OpenGate, RunGate

CAREFUL = """
name: careful
fault: software.crash
hosts: payment_api
serial: 1
max_fail_percent: 10
approval: required
detect: [{run: probe}]
"""
BOLD = """
name: bold
fault: software.crash
hosts: payment_api
serial: 50%
max_fail_percent: 50
detect: [{run: probe}]
"""


def request(
    inventory: Inventory,
    runbooks: Sequence[LoadedRunbook],
    mode: RunMode,
    settings: RunSettings,
) -> RunRequest:
    planned: list[PlannedJob] = plan_run(runbooks, inventory, {})
    return RunRequest(settings, inventory, planned, mode, "run-1")


@pytest.fixture
def two(
    runbook: Callable[[str], LoadedRunbook], write: Callable[[str, str], Path]
) -> list[LoadedRunbook]:
    return [runbook(CAREFUL), runbook(BOLD)]


@pytest.mark.parametrize("mode", [RunMode.DRY_RUN, RunMode.DETECT])
def test_a_run_that_changes_nothing_gets_the_open_gate_and_no_audit(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook], tmp_path: Path, mode: RunMode
) -> None:
    settings = RunSettings(state_dir=tmp_path / "state")
    engine = assemble(request(inventory, [runbook(BOLD)], mode, settings))
    assert isinstance(engine.parts.gate, OpenGate)
    assert isinstance(engine.parts.audit, NoAudit)
    assert engine.options.mode is mode
    assert not (tmp_path / "state").exists()  # nothing is written for a run that changes nothing


def test_a_fixing_run_gets_the_run_gate_and_the_audit_log(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook], tmp_path: Path
) -> None:
    settings = RunSettings(state_dir=tmp_path / "state", force=True)
    engine = assemble(request(inventory, [runbook(CAREFUL)], RunMode.FIX, settings))
    gate = engine.parts.gate
    assert isinstance(gate, RunGate)
    assert isinstance(engine.parts.audit, AuditLog)
    assert gate.force
    # Unattended, nobody approved the runbook that requires approval.
    assert gate.approved == frozenset()


def test_approval_comes_from_yes_or_the_approver(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook], tmp_path: Path
) -> None:
    asked: list[frozenset[str]] = []

    def approver(required: frozenset[str], planned: Sequence[PlannedJob]) -> frozenset[str]:
        asked.append(required)
        return required

    settings = RunSettings(state_dir=tmp_path / "state")
    engine = assemble(request(inventory, [runbook(CAREFUL)], RunMode.FIX, settings), None, approver)
    assert isinstance(engine.parts.gate, RunGate)
    assert (engine.parts.gate.approved, asked) == (frozenset({"careful"}), [frozenset({"careful"})])
    settings = RunSettings(state_dir=tmp_path / "state", yes=True)
    engine = assemble(request(inventory, [runbook(CAREFUL)], RunMode.FIX, settings), None, approver)
    assert isinstance(engine.parts.gate, RunGate)
    assert engine.parts.gate.approved == frozenset({"careful"})
    assert len(asked) == 1  # --yes asks nobody


def test_the_most_careful_runbook_sets_batches_and_the_breaker(
    inventory: Inventory, two: list[LoadedRunbook]
) -> None:
    options = engine_options(request(inventory, two, RunMode.FIX, RunSettings()))
    assert (options.serial, options.max_fail_percent) == (1, 10)


def test_the_settings_win_over_the_runbooks(inventory: Inventory, two: list[LoadedRunbook]) -> None:
    settings = RunSettings(serial="2", max_fail_percent=80, forks=3)
    options = engine_options(request(inventory, two, RunMode.FIX, settings))
    assert (options.serial, options.max_fail_percent, options.forks) == (2, 80, 3)


def test_a_bad_serial_is_an_input_error(inventory: Inventory, two: list[LoadedRunbook]) -> None:
    with pytest.raises(InputError, match="--serial"):
        engine_options(request(inventory, two, RunMode.FIX, RunSettings(serial="0")))
