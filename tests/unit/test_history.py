"""Run history: runs saved in the state directory, listed newest first, found by id prefix."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.cli.report import runs
from oorfix.errors import InputError
from oorfix.output.history import find_run_dir, list_runs, load_run, save_run, slug
from oorfix.output.record import RunRecord
from oorfix.results import Outcome, Phase, RunMode, StepStatus
from oorfix.safety.state import StateDir

from .test_reports import failed_result, fixed_result, make_record, simple, step

DRY = RunMode.DRY_RUN
WIDE = {"COLUMNS": "200"}  # rich sizes tables to the terminal; one line per run here
PLAN = [{"host": "api-1", "runbook": "api-down", "steps": [{"phase": "detect", "cmd": "x"}]}]


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


def record_at(start: str, run_id: str, *results: Any, **kw: Any) -> RunRecord:
    started = datetime.fromisoformat(start)
    return make_record(*(results or (fixed_result(),)), run_id=run_id, started=started, **kw)


def test_save_run_writes_record_plan_and_one_evidence_file_per_step(state: StateDir) -> None:
    first = fixed_result("api-1")
    ss = step(Phase.EVIDENCE, "ss -tlnp", StepStatus.FAILED, 4, 5, stderr="no")
    second = replace(first, steps=(*first.steps[:4], ss, *first.steps[4:]))
    record = make_record(second, failed_result())
    path = save_run(state, record, PLAN)
    assert path == state.runs / "20260314T090000Z-abc123def456"
    assert (path / "record.json").read_text() == record.to_json()  # as --json writes it
    assert RunRecord.read(path / "record.json") == record
    assert json.loads((path / "plan.json").read_text()) == PLAN
    files = sorted(str(p.relative_to(path)) for p in (path / "evidence").rglob("*.txt"))
    assert files == [
        "evidence/api-1/api-down/1-journal.txt",
        "evidence/api-1/api-down/2-ss-tlnp.txt",
        "evidence/api-2/api-down/1-journal.txt",
    ]
    text = (path / "evidence/api-1/api-down/1-journal.txt").read_text()
    assert "# command: journal\n" in text
    assert text.endswith("\n\npanic <script>alert('x')</script>\n")  # output as recorded
    assert "[stderr]\nno" in (path / "evidence/api-1/api-down/2-ss-tlnp.txt").read_text()
    assert [p.name for p in state.runs.iterdir()] == [path.name]  # no temporary left behind


def test_save_run_without_a_plan_writes_none(state: StateDir) -> None:
    path = save_run(state, make_record(simple("h", Outcome.HEALTHY)), None)
    assert sorted(p.name for p in path.iterdir()) == ["record.json"]


def test_saving_a_run_again_replaces_it(state: StateDir) -> None:
    save_run(state, make_record(fixed_result()), PLAN)
    path = save_run(state, make_record(simple("h", Outcome.HEALTHY)), None)
    assert sorted(p.name for p in path.iterdir()) == ["record.json"]
    assert [p.name for p in state.runs.iterdir()] == [path.name]


def test_host_and_runbook_names_cannot_leave_the_run_directory(state: StateDir) -> None:
    evil = replace(fixed_result("../../etc"), runbook="/tmp/x")
    path = save_run(state, make_record(evil), None)
    files = list((path / "evidence").rglob("*.txt"))
    assert len(files) == 1
    assert files[0].resolve().is_relative_to(path.resolve() / "evidence")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("journalctl -u pg-api -n 100", "journalctl-u-pg-api-n-100"),
        ("!!!", "step"),
        ("A" * 99, "a" * 48),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_list_runs_newest_first_with_their_summaries(state: StateDir) -> None:
    save_run(state, record_at("2026-03-14T09:00:00.000+00:00", "aaaa11112222"), None)
    failed = (failed_result(), simple("h", Outcome.UNREACHABLE))
    save_run(state, record_at("2026-03-15T08:00:00.000+01:00", "bbbb11112222", *failed), None)
    dry = simple("h", Outcome.WOULD_FIX, runbook="db-slow")
    dry_record = record_at("2026-03-14T10:00:00.000+00:00", "cccc11112222", dry, mode=DRY)
    save_run(state, dry_record, None)
    found = list_runs(state)
    assert [r.id for r in found] == ["bbbb11112222", "cccc11112222", "aaaa11112222"]
    newest = found[0]
    assert newest.started == datetime(2026, 3, 15, 7, 0, tzinfo=UTC)
    assert newest.path.name == "20260315T070000Z-bbbb11112222"  # stamped in UTC
    assert newest.summary == {"failed": 1, "unreachable": 1}
    assert (newest.exit_code, newest.dry_run, newest.runbooks) == (1, False, ("api-down",))
    assert (found[1].dry_run, found[1].mode, found[1].runbooks) == (True, DRY, ("db-slow",))
    assert newest.operator == found[2].operator != ""


def test_list_runs_reads_each_stored_record_once(
    state: StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_run(state, record_at("2026-03-14T09:00:00.000+00:00", "aaaa11112222"), None)
    save_run(state, record_at("2026-03-14T10:00:00.000+00:00", "bbbb11112222"), None)
    reads: list[Path] = []
    real = RunRecord.read.__func__  # type: ignore[attr-defined]

    def counted(cls: type[RunRecord], path: Path) -> RunRecord:
        reads.append(path)
        return real(cls, path)  # type: ignore[no-any-return]

    monkeypatch.setattr(RunRecord, "read", classmethod(counted))
    first = list_runs(state)
    assert [r.id for r in list_runs(state)] == [r.id for r in first]
    assert len(reads) <= 2  # the second listing parsed nothing again
    again = len(reads)
    # A run saved again (a new record) is read again; a removed run leaves the listing.
    save_run(state, record_at("2026-03-14T10:00:00.000+00:00", "bbbb11112222", mode=DRY), None)
    assert [r.mode for r in list_runs(state)] == [DRY, RunMode.FIX]
    assert len(reads) == again + 1


def test_list_runs_skips_what_is_not_a_stored_run(state: StateDir) -> None:
    assert list_runs(state) == []  # no state directory yet: nothing, and nothing created
    assert not state.path.exists()
    save_run(state, make_record(fixed_result()), None)
    (state.runs / ".tmp-half-written").mkdir()
    (state.runs / "junk").mkdir()
    (state.runs / "broken").mkdir()
    (state.runs / "broken" / "record.json").write_text("{not json")
    (state.runs / "not-a-record").mkdir()
    (state.runs / "not-a-record" / "record.json").write_text('{"run_id": "x"}')
    (state.runs / "unreadable").mkdir()
    (state.runs / "unreadable" / "record.json").mkdir()  # reading it fails with an OSError
    (state.runs / "stray-file").write_text("")
    assert [r.id for r in list_runs(state)] == ["abc123def456"]


@pytest.fixture
def three(state: StateDir) -> StateDir:
    for run_id in ("abc111000000", "abc222000000", "def333000000"):
        save_run(state, record_at("2026-03-14T09:00:00.000+00:00", run_id), None)
    return state


@pytest.mark.parametrize(
    "wanted",
    ["abc1", "abc111000000", " abc1 ", "20260314T090000Z-abc111000000", "20260314T090000Z-abc1"],
)
def test_load_run_by_unique_prefix_or_directory_name(three: StateDir, wanted: str) -> None:
    assert load_run(three, wanted).run_id == "abc111000000"


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        ("abc", "'abc' matches 2 runs: abc111000000, abc222000000; give more of the id"),
        ("20260314", "'20260314' matches 3 runs"),
        ("zzz", "no run matches 'zzz' (3 run(s) stored; see `oorfix runs`)"),
        ("", "no run id given"),
    ],
)
def test_load_run_refuses_what_is_not_one_run(three: StateDir, wanted: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        load_run(three, wanted)


def test_load_run_when_nothing_is_stored(state: StateDir) -> None:
    with pytest.raises(InputError, match="no run is stored"):
        find_run_dir(state, "abc")


def test_load_run_of_a_damaged_record_is_an_input_error(three: StateDir) -> None:
    (find_run_dir(three, "def") / "record.json").write_text("[]")
    with pytest.raises(InputError, match=r"record\.json: cannot read the run record"):
        load_run(three, "def")


def test_runs_command_lists_id_when_who_what_outcome(three: StateDir) -> None:
    dry = simple("h", Outcome.WOULD_FIX, runbook="db-slow")
    save_run(three, record_at("2026-03-16T09:00:00.000+00:00", "ffff00000000", dry, mode=DRY), None)
    done = CliRunner().invoke(runs, ["--state-dir", str(three.path)], env=WIDE)
    assert done.exit_code == 0, done.output
    lines = [line for line in done.output.splitlines() if "0000" in line]
    assert len(lines) == 4
    assert "ffff00000000" in lines[0]
    for part in ("2026-03-16 09:00:00 UTC", "db-slow (dry-run)", "1 would_fix (exit 1)"):
        assert part in lines[0]
    assert "1 fixed (exit 0)" in lines[1]
    last = CliRunner().invoke(runs, ["--state-dir", str(three.path), "-n", "1"], env=WIDE)
    assert [line for line in last.output.splitlines() if "0000" in line] == lines[:1]


def test_runs_command_on_an_empty_state_directory(tmp_path: Path) -> None:
    done = CliRunner().invoke(runs, ["--state-dir", str(tmp_path / "none")])
    assert done.exit_code == 0
    assert "no run is stored in" in done.output


def test_load_run_names_the_record_and_what_is_wrong_with_it(three: StateDir) -> None:
    path = find_run_dir(three, "def") / "record.json"
    data = json.loads(path.read_text())
    data["results"][0]["status"] = "mended"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as caught:
        load_run(three, "def")
    assert caught.value.path == str(path)
    assert "results[0].status: Input should be 'healthy'" in caught.value.message
