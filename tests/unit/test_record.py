"""The run record: written from results, read back the same, format 1 still read, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import ValidationError

from oorfix.errors import InputError
from oorfix.output.record import (
    RECORD_FORMAT,
    RunRecord,
    record_json,
    record_json_schema,
    run_dict,
    write_record,
)
from oorfix.results import Outcome, RunMode, RunResult, StepStatus

from .test_reports import at, every_status_record, failed_result, fixed_result, simple

META = {"command": "run", "runbooks": ["api-down"], "inventory": "inv.yml", "limit": "api-*"}

# A record as format 1 wrote it (oorfix diagnose --dry-run, before `mode` existed).
FORMAT_1 = """{
  "format": 1,
  "oorfix": "0.1.0",
  "run_id": "abc123def456",
  "operator": "root@vm",
  "dry_run": true,
  "aborted": false,
  "start": "2026-03-14T09:00:00.000+00:00",
  "end": "2026-03-14T09:00:02.000+00:00",
  "exit_code": 1,
  "summary": {"would_fix": 1},
  "command": "diagnose",
  "runbooks": "runbooks",
  "limit": null,
  "results": [
    {
      "host": "api-1",
      "runbook": "api-down",
      "fault": "software.service_interruption",
      "status": "would_fix",
      "error": null,
      "escalation": null,
      "notes": [],
      "start": "2026-03-14T09:00:00.000+00:00",
      "end": "2026-03-14T09:00:01.500+00:00",
      "steps": [
        {
          "phase": "detect",
          "name": "health",
          "status": "failed",
          "host": null,
          "command": "curl -fsS localhost:8080/health",
          "rc": 7,
          "stdout": "",
          "stdout_bytes": 0,
          "stdout_truncated": false,
          "stderr": "refused",
          "stderr_bytes": 7,
          "stderr_truncated": false,
          "timed_out": false,
          "reason": "exit status 7",
          "attempt": 1,
          "start": "2026-03-14T09:00:00.000+00:00",
          "end": "2026-03-14T09:00:01.250+00:00"
        }
      ]
    }
  ]
}
"""


def a_run(mode: RunMode = RunMode.FIX) -> RunResult:
    results = (fixed_result(), failed_result(), simple("api-3", Outcome.HEALTHY))
    return RunResult("abc123def456", at(0), at(200), mode, results)


def test_a_run_written_and_read_back_is_the_same_record_and_the_same_json() -> None:
    run = a_run()
    text = record_json(run, META)
    record = RunRecord.parse(text)
    assert record.to_json() == text
    assert record == RunRecord.of(run, META)
    assert run_dict(run, META) == json.loads(text)


def test_the_json_keeps_the_keys_of_format_1_and_adds_mode() -> None:
    data = run_dict(a_run(), META)
    old = json.loads(FORMAT_1)
    assert list(data) == [
        "format", "oorfix", "run_id", "operator", "mode", "dry_run", "aborted", "start", "end",
        "exit_code", "summary", "command", "runbooks", "inventory", "limit", "results",
        "diagnosis", "trigger",
    ]  # fmt: skip
    # Every meta key is always written; diagnose's conclusions and the trigger are new.
    assert set(data) == set(old) | {"mode", "inventory", "diagnosis", "trigger"}
    assert data["diagnosis"] is None
    assert list(data["results"][0]) == [*old["results"][0], "explained_by"]
    assert list(data["results"][0]["steps"][0]) == list(old["results"][0]["steps"][0])
    assert (data["format"], data["mode"], data["dry_run"]) == (RECORD_FORMAT, "fix", False)
    assert data["summary"] == {"fixed": 1, "failed": 1, "healthy": 1}
    assert {k: data[k] for k in META} == META
    assert data["results"][0]["start"] == "2026-03-14T09:00:00.000+00:00"


@pytest.mark.parametrize(
    ("mode", "dry_run"),
    [(RunMode.FIX, False), (RunMode.DRY_RUN, True), (RunMode.DETECT, False)],
)
def test_the_mode_of_the_run_is_recorded(mode: RunMode, dry_run: bool) -> None:
    record = RunRecord.parse(record_json(a_run(mode)))
    assert (record.mode, record.dry_run) == (mode, dry_run)


def test_times_are_kept_to_the_millisecond_the_record_writes() -> None:
    run = RunResult("r", at(0.1234567), at(1))
    assert run_dict(run)["start"] == "2026-03-14T09:00:00.123+00:00"
    assert RunRecord.of(run).start == at(0.123)


def test_a_format_1_record_still_reads() -> None:
    record = RunRecord.parse(FORMAT_1)
    assert (record.format, record.mode, record.dry_run) == (2, RunMode.DRY_RUN, True)
    assert record.runbooks == ("runbooks",)  # diagnose wrote one directory as a string
    assert (record.command, record.inventory) == ("diagnose", None)
    (result,) = record.results
    assert (result.status, result.steps[0].status) == (Outcome.WOULD_FIX, StepStatus.FAILED)
    assert result.steps[0].end == at(1.25)
    assert RunRecord.parse(record.to_json()) == record  # and it is written as format 2


def test_a_format_1_run_that_was_not_a_dry_run_was_a_fix() -> None:
    data = json.loads(FORMAT_1) | {"dry_run": False}
    assert RunRecord.model_validate(data).mode is RunMode.FIX


def test_a_record_without_a_utc_offset_is_read_as_utc() -> None:
    data = run_dict(a_run()) | {"start": "2026-03-14T09:00:00"}
    assert RunRecord.model_validate(data).start == at(0)


def _broken(change: str) -> str:
    data: dict[str, Any] = run_dict(a_run(), META)
    step = data["results"][1]["steps"][0]
    if change == "status":
        data["results"][1]["status"] = "mended"
    elif change == "missing":
        del step["rc"]
    elif change == "extra":
        step["\x1b[2Jsurprise"] = 1
    elif change == "time":
        step["end"] = "yesterday"
    elif change == "newer":
        data["format"] = RECORD_FORMAT + 1
    elif change == "mode":
        data["mode"] = "dry-run"  # while dry_run says false
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "Invalid JSON"),
        ("[]", "Input should be an object"),
        (b"\xff\xfe", "Invalid JSON"),
        (_broken("status"), "results[1].status: Input should be 'healthy'"),
        (_broken("missing"), "results[1].steps[0].rc: Field required"),
        (_broken("extra"), "results[1].steps[0].'\\x1b[2Jsurprise': Extra inputs"),
        (_broken("time"), "results[1].steps[0].end: Input should be a valid datetime"),
        (_broken("newer"), "format: Input should be 2"),
        (_broken("mode"), "dry_run is False but mode is dry-run"),
    ],
)
def test_an_invalid_record_is_an_input_error_naming_the_file(
    tmp_path: Path, text: str | bytes, problem: str
) -> None:
    path = tmp_path / "record.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError) as caught:
        RunRecord.read(path)
    assert caught.value.path == str(path)
    assert caught.value.message.startswith("cannot read the run record: ")
    assert problem in caught.value.message
    assert str(caught.value).startswith(f"{path}: ")


def test_a_missing_record_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"record\.json: cannot read the run record: No such"):
        RunRecord.read(tmp_path / "record.json")


def test_only_the_first_problems_of_a_record_are_listed() -> None:
    data = run_dict(a_run())
    for result in data["results"]:
        result["status"] = "mended"
    with pytest.raises(InputError) as caught:
        RunRecord.parse(json.dumps(data | {"aborted": "maybe"}))
    message = caught.value.message
    assert message.count("Input should be") == 3
    assert "aborted: " in message
    assert "results[1].status: " in message
    assert message.endswith(" (and 1 more)")  # results[2]


def test_meta_is_typed_too() -> None:
    with pytest.raises(ValidationError, match="inventroy"):
        run_dict(a_run(), {"inventroy": "inv.yml"})


def test_the_schema_accepts_real_records_and_rejects_broken_ones() -> None:
    schema = record_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for record in (every_status_record(), RunRecord.parse(FORMAT_1), RunRecord.of(a_run())):
        assert list(validator.iter_errors(record.to_dict())) == []
    for change in ("status", "missing", "extra", "newer"):
        assert list(validator.iter_errors(json.loads(_broken(change)))), change
    assert list(validator.iter_errors(json.loads(FORMAT_1)))  # the schema is format 2's


def test_the_schema_names_itself_and_requires_every_key() -> None:
    schema = record_json_schema()
    assert schema["title"] == "oorfix run record"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == set(run_dict(a_run()))
    assert schema["properties"]["mode"] == {"$ref": "#/$defs/RunMode"}
    assert schema["$defs"]["RunMode"]["enum"] == ["fix", "dry-run", "detect"]


def test_write_record_writes_the_whole_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run.json"
    write_record(path, record_json(a_run()))
    assert RunRecord.read(path).run_id == "abc123def456"
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
