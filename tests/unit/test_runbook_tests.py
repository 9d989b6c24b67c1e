"""`oorfix test`: runbook scenarios through the real engine against scripted hosts.

The worked example (runbooks/tests/payment-api-down.test.yml) must pass as shipped, and a
copy of it must fail, saying what differed, when its runbook is broken. Everything else runs
on small runbooks and test files written to tmp_path.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from oorfix.cli import main
from oorfix.cli.test import run_scenario
from oorfix.errors import RunbookError
from oorfix.results import (
    HostResult,
    Outcome,
    Phase,
    RunMode,
    RunResult,
    StepResult,
    StepStatus,
)
from oorfix.runbook.loader import LoadedRunbook, load_runbooks
from oorfix.testing import suites
from oorfix.testing.checks import differences
from oorfix.testing.models import Expect
from oorfix.testing.scripted import Script
from oorfix.testing.suites import load_suite

from .test_reports import schema_errors, xml_root

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_RUNBOOK = REPO / "runbooks" / "payment-api-down.yml"
EXAMPLE_TEST = REPO / "runbooks" / "tests" / "payment-api-down.test.yml"

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

# A small runbook on group `web`: one check, one fix step, a rollback, an escalation message.
SVC = """
name: svc-down
fault: software.service_interruption
hosts: web
detect:
  - name: svc answers
    run: check-svc
remediate:
  - name: restart svc
    run: restart-svc
    sudo: true
verify: {retries: 2, delay: 1s}
rollback:
  - name: undo restart
    run: undo-svc
escalate:
  message: "svc on {{ host.name }} still down"
"""

# Fixes only on weekdays 02:00-04:00 UTC.
WINDOWED_SVC = SVC.replace(
    "hosts: web\n",
    'hosts: web\nwindows: [{days: mon-fri, start: "02:00", end: "04:00", timezone: UTC}]\n',
)

TWO_HOSTS = "inventory: {all: {children: {web: {hosts: {web-1: {}, web-2: {}}}}}}\n"


def oorfix(*args: str) -> Result:
    """Run the oorfix CLI in-process."""
    return CliRunner().invoke(main, list(args))


def write_suite(tmp_path: Path, test_text: str, runbook_text: str = SVC) -> Path:
    """Write the runbook `svc.yml` and the test file `svc.test.yml` beside it."""
    (tmp_path / "svc.yml").write_text(textwrap.dedent(runbook_text).lstrip("\n"))
    path = tmp_path / "svc.test.yml"
    path.write_text(textwrap.dedent(test_text).lstrip("\n"))
    return path


def json_run(*args: str) -> tuple[int, dict[str, Any]]:
    """`oorfix test ARGS --json -`: the exit code and the JSON record printed to stdout."""
    result = oorfix("test", *args, "--json", "-")
    data: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, data


def scenario(data: dict[str, Any], name: str) -> dict[str, Any]:
    """One scenario of a JSON record, by name."""
    found: list[dict[str, Any]] = [s for s in data["scenarios"] if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in data["scenarios"]]
    return found[0]


def example_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The worked example copied into tmp_path, laid out as in the repository."""
    (tmp_path / "runbooks" / "tests").mkdir(parents=True)
    runbook = tmp_path / "runbooks" / EXAMPLE_RUNBOOK.name
    test = tmp_path / "runbooks" / "tests" / EXAMPLE_TEST.name
    shutil.copyfile(EXAMPLE_RUNBOOK, runbook)
    shutil.copyfile(EXAMPLE_TEST, test)
    return runbook, test


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` in the file."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))


# --- the worked example ------------------------------------------------------------------


def test_the_example_suite_passes() -> None:
    result = oorfix("test", str(EXAMPLE_TEST))
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert " 0 failed" in result.output
    assert "pass payment-api-down: a hung API is restarted and verified" in result.output


def test_an_unchanged_copy_of_the_example_passes(tmp_path: Path) -> None:
    # The baseline of the tests below: only the edit they make breaks the copy.
    _, test = example_copy(tmp_path)
    code, data = json_run(str(test))
    assert code == 0
    assert data["failed"] == 0
    assert data["passed"] == len(data["scenarios"]) >= 6


# --- a broken runbook fails, saying what differed ----------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "unscripted", "not_matched"),
    [
        (  # the restart became a start
            "state: restarted",
            "state: started",
            "unscripted command on test-host (step 'service pg-api started'): ",
            "no command matching 'systemctl restart -- pg-api' was sent",
        ),
        (  # the unit's name is wrong
            "service: pg-api\n",
            "service: pg_api\n",
            "unscripted command on test-host (step 'service pg_api restarted'): ",
            "no command matching '^systemctl status pg-api' was sent",
        ),
    ],
    ids=["restart-became-start", "service-renamed"],
)
def test_a_wrong_command_is_unscripted_and_named(
    tmp_path: Path, old: str, new: str, unscripted: str, not_matched: str
) -> None:
    runbook, test = example_copy(tmp_path)
    edit(runbook, old, new)
    code, data = json_run(str(test))
    assert code == 1
    problems = scenario(data, "a hung API is restarted and verified")["problems"]
    assert any(p.startswith(unscripted) for p in problems), problems
    assert any(p.startswith(not_matched) for p in problems), problems
    assert "test-host: outcome error, expected fixed" in " ".join(problems)


def test_the_console_names_the_failing_scenario_and_the_unscripted_command(
    tmp_path: Path,
) -> None:
    runbook, test = example_copy(tmp_path)
    edit(runbook, "state: restarted", "state: started")
    result = oorfix("test", str(test))
    assert result.exit_code == 1
    assert f"FAIL payment-api-down: a hung API is restarted and verified ({test})" in (
        result.output
    )
    assert "systemctl start -- pg-api" in result.output
    assert "passed, 2 failed" in result.output


def test_without_verification_a_useless_fix_is_reported_as_fixed(tmp_path: Path) -> None:
    runbook, test = example_copy(tmp_path)
    edit(runbook, '  - wait_for: {url: "{{ health_url }}", timeout: 20s}\n', "")
    edit(runbook, "verify: {retries: 5, delay: 2s}", "verify: {checks: []}")
    code, data = json_run(str(test), "-k", "does not help")
    assert code == 1
    (only,) = data["scenarios"]
    assert only["outcomes"] == {"test-host": "fixed"}
    assert "test-host: outcome fixed, expected failed" in only["problems"]
    assert any(p.startswith("escalation does not match") for p in only["problems"])


def test_an_extra_mutating_step_is_an_unscripted_command(tmp_path: Path) -> None:
    runbook, test = example_copy(tmp_path)
    edit(
        runbook,
        "    sudo: true\n  - wait_for:",
        "    sudo: true\n  - name: clear the cache\n"
        "    run: rm -rf /var/cache/pg-api\n    sudo: true\n  - wait_for:",
    )
    code, data = json_run(str(test))
    assert code == 1
    problems = scenario(data, "a hung API is restarted and verified")["problems"]
    assert problems[0] == (
        "unscripted command on test-host (step 'clear the cache'): rm -rf /var/cache/pg-api"
    )
    # A dry-run sends no fix step, scripted or not: that scenario still passes.
    assert scenario(data, "a dry-run plans the restart and sends nothing that changes the host")[
        "passed"
    ]


def test_a_changed_escalation_message_does_not_match(tmp_path: Path) -> None:
    runbook, test = example_copy(tmp_path)
    edit(runbook, "still fails its health check after a restart", "is down")
    code, data = json_run(str(test))
    assert code == 1
    assert [s["name"] for s in data["scenarios"] if not s["passed"]] == [
        "a restart that does not help is escalated"
    ]
    (problem,) = scenario(data, "a restart that does not help is escalated")["problems"]
    assert problem == (
        "escalation does not match 'still fails its health check after a restart': "
        "'payment API on test-host is down'"
    )


# --- dry-run and detect never change a host ------------------------------------------------


def test_a_dry_run_scenario_sends_no_fix(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: a dry-run
            mode: dry-run
            replies: [{step: svc answers, rc: 1}]
            expect: {outcome: would_fix, sent: ["^check-svc$"], not_sent: [restart, undo]}
          - name: detect only
            mode: detect
            replies: [{step: svc answers, rc: 1}]
            expect: {not_sent: [restart, undo]}
        """,
    )
    code, data = json_run(str(path))
    assert code == 0, data
    for item in data["scenarios"]:
        assert [s["command"] for s in item["sent"]] == ["check-svc"]


def _one_step_run(mode: RunMode, status: StepStatus, phase: Phase = Phase.REMEDIATE) -> RunResult:
    step = StepResult(phase=phase, name="restart svc", status=status)
    host = HostResult(
        host="web-1", runbook="svc-down", fault="f", status=Outcome.WOULD_FIX, steps=(step,)
    )
    return RunResult(run_id="r1", started=T0, ended=T0, mode=mode, results=(host,))


@pytest.mark.parametrize("mode", [RunMode.DRY_RUN, RunMode.DETECT])
@pytest.mark.parametrize("phase", [Phase.REMEDIATE, Phase.ROLLBACK, Phase.ESCALATE])
def test_the_read_only_guard_reports_a_fix_step_that_ran(mode: RunMode, phase: Phase) -> None:
    run = _one_step_run(mode, StepStatus.PASSED, phase)
    assert differences(Expect(), run, Script([])) == [
        f"web-1: {mode} ran the {phase} step 'restart svc'"
    ]


@pytest.mark.parametrize(
    ("mode", "status", "phase"),
    [
        (RunMode.DRY_RUN, StepStatus.PLANNED, Phase.REMEDIATE),  # planned, not sent
        (RunMode.DRY_RUN, StepStatus.PASSED, Phase.DETECT),  # a check may run
        (RunMode.FIX, StepStatus.PASSED, Phase.REMEDIATE),  # a fix run fixes
    ],
)
def test_the_read_only_guard_allows_what_may_run(
    mode: RunMode, status: StepStatus, phase: Phase
) -> None:
    assert differences(Expect(), _one_step_run(mode, status, phase), Script([])) == []


# --- bad test files are input errors --------------------------------------------------------

BAD_FILES = [
    (
        "unknown-key",
        """
        runbook: svc-down
        scenarios:
          - name: a
            expect: {outcome: healthy}
            bogus: 1
        """,
        5,
        "scenarios[0].bogus: unknown key",
    ),
    (
        "rule-without-step-or-command",
        """
        runbook: svc-down
        scenarios:
          - name: a
            replies:
              - rc: 0
            expect: {outcome: healthy}
        """,
        5,
        "scenarios[0].replies[0]: a reply rule needs `step` or `command` (or both)",
    ),
    (
        "then-and-rc",
        """
        runbook: svc-down
        scenarios:
          - name: a
            replies:
              - step: svc answers
                rc: 0
                then: [{rc: 1}]
            expect: {outcome: healthy}
        """,
        5,
        "scenarios[0].replies[0]: give either `then` or rc, not both",
    ),
    (
        "invalid-regex-in-rule",
        """
        runbook: svc-down
        scenarios:
          - name: a
            replies:
              - command: "check ("
            expect: {outcome: healthy}
        """,
        5,
        "scenarios[0].replies[0].command: invalid regular expression: missing )",
    ),
    (
        "invalid-regex-in-expect",
        """
        runbook: svc-down
        scenarios:
          - name: a
            expect:
              not_sent: ["(("]
        """,
        5,
        "scenarios[0].expect.not_sent: invalid regular expression",
    ),
    (
        "duplicate-scenario-names",
        """
        runbook: svc-down
        scenarios:
          - name: same
            expect: {outcome: healthy}
          - name: same
            expect: {outcome: healthy}
        """,
        2,
        "scenarios: scenario names must differ: same",
    ),
    (
        "unknown-runbook",
        """
        runbook: no-such-runbook
        scenarios:
          - name: a
            expect: {outcome: healthy}
        """,
        1,
        "runbook: no runbook 'no-such-runbook' beside this file, in the folder above it, "
        "or in runbooks/",
    ),
    (
        "at-without-zone",
        """
        runbook: svc-down
        scenarios:
          - name: a
            at: "2024-05-01T02:30:00"
            expect: {outcome: healthy}
        """,
        4,
        "scenarios[0].at: give the time with its zone",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_a_bad_test_file_is_an_input_error_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, message: str
) -> None:
    # Relative paths: a runbook name is looked up in tmp_path only, never in its parents.
    monkeypatch.chdir(tmp_path)
    write_suite(tmp_path, text)
    result = oorfix("test", "svc.test.yml")
    assert result.exit_code == 2, result.output
    assert f"error: svc.test.yml:{line}: {message}" in result.output


def test_every_error_of_every_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_suite(tmp_path, "runbook: svc-down\nscenarios: [{name: a, expect: {}, x: 1}]\n")
    Path("other.test.yml").write_text("runbook: svc-down\nscenarios: []\n")
    result = oorfix("test", ".")
    assert result.exit_code == 2
    assert "other.test.yml:2: scenarios:" in result.output
    assert "svc.test.yml:2: scenarios[0].x: unknown key" in result.output
    assert "pass" not in result.output  # nothing ran


def test_an_at_without_zone_is_an_input_error_even_when_not_selected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: healthy
            replies: [{step: svc answers}]
            expect: {outcome: healthy}
          - name: bad time
            at: "2024-05-01T02:30:00"
            expect: {outcome: healthy}
        """,
    )
    result = oorfix("test", "svc.test.yml", "-k", "healthy")
    assert result.exit_code == 2, result.output


def test_a_runbook_name_is_not_searched_for_in_the_filesystem_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[Path | None] = []

    def spy(targets: list[Path | str], folder: Path | None = None) -> list[LoadedRunbook]:
        searched.append(folder)
        if folder is not None and not folder.is_relative_to(tmp_path):
            # Do not really scan outside tmp_path: answer as a search that found nothing.
            raise RunbookError(f"no runbook file or runbook named {targets[0]!r}", folder)
        return load_runbooks(targets, folder)

    monkeypatch.setattr(suites, "load_runbooks", spy)
    path = write_suite(
        tmp_path,
        "runbook: no-such-runbook\nscenarios: [{name: a, expect: {outcome: healthy}}]\n",
    )
    with pytest.raises(RunbookError, match="beside this file, in the folder above it"):
        load_suite(path)
    assert tmp_path in searched
    assert Path("/") not in searched


# --- JSON and JUnit -------------------------------------------------------------------------

ONE_OK_ONE_WRONG = """
runbook: svc-down
scenarios:
  - name: healthy is left alone
    replies: [{step: svc answers}]
    expect: {outcome: healthy, not_sent: [restart]}
  - name: wrongly expected fixed
    replies: [{step: svc answers}]
    expect: {outcome: fixed}
"""


def test_json_has_scenarios_problems_outcomes_sent_and_coverage(tmp_path: Path) -> None:
    path = write_suite(tmp_path, ONE_OK_ONE_WRONG)
    code, data = json_run(str(path))
    assert code == 1
    assert (data["passed"], data["failed"]) == (1, 1)
    good, bad = data["scenarios"]
    assert good == {
        "file": str(path),
        "runbook": "svc-down",
        "name": "healthy is left alone",
        "passed": True,
        "problems": [],
        "outcomes": {"test-host": "healthy"},
        "sent": [{"host": "test-host", "step": "svc answers", "command": "check-svc"}],
        "seconds": good["seconds"],
    }
    assert bad["passed"] is False
    assert bad["problems"] == ["test-host: outcome healthy, expected fixed"]
    assert data["coverage"] == [
        {
            "runbook": "svc-down",
            "phases_not_reached": ["remediate", "rollback", "verify"],
            "steps_not_reached": [],
        }
    ]


def test_json_to_stdout_keeps_the_console_out_of_it(tmp_path: Path) -> None:
    path = write_suite(tmp_path, ONE_OK_ONE_WRONG)
    result = oorfix("test", str(path), "--json", "-")
    json.loads(result.stdout)  # nothing else on stdout
    assert "FAIL svc-down: wrongly expected fixed" in result.stderr


def test_junit_has_a_testcase_per_scenario_and_a_failure(tmp_path: Path) -> None:
    path = write_suite(tmp_path, ONE_OK_ONE_WRONG)
    junit = tmp_path / "out" / "junit.xml"
    result = oorfix("test", str(path), "--junit", str(junit))
    assert result.exit_code == 1
    text = junit.read_text()
    root = xml_root(text)
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (str(path), "2", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"healthy is left alone", "wrongly expected fixed"}
    assert all(c.get("classname") == "svc-down" for c in cases.values())
    assert cases["healthy is left alone"].find("failure") is None
    failure = cases["wrongly expected fixed"].find("failure")
    assert failure is not None
    assert failure.get("message") == "test-host: outcome healthy, expected fixed"
    assert failure.text == "test-host: outcome healthy, expected fixed"
    assert schema_errors(text) == []


# --- -k ---------------------------------------------------------------------------------------


def test_k_selects_scenarios_by_name_substring(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: alpha healthy
            replies: [{step: svc answers}]
            expect: {outcome: healthy}
          - name: healthy alpha again
            replies: [{step: svc answers}]
            expect: {outcome: healthy}
          - name: beta fails
            replies: [{step: svc answers}]
            expect: {outcome: fixed}
        """,
    )
    code, data = json_run(str(path), "-k", "alpha")
    assert code == 0
    assert [s["name"] for s in data["scenarios"]] == ["alpha healthy", "healthy alpha again"]
    code, data = json_run(str(path), "-k", "beta")
    assert code == 1
    assert [s["name"] for s in data["scenarios"]] == ["beta fails"]
    assert json_run(str(path))[0] == 1


# --- coverage -------------------------------------------------------------------------------

FIXED_AND_HEALTHY = """
runbook: svc-down
scenarios:
  - name: healthy
    replies: [{step: svc answers}]
    expect: {outcome: healthy}
  - name: fixed
    replies:
      - {step: svc answers, then: [{rc: 1}, {rc: 0}]}
      - {step: restart svc}
    expect: {outcome: fixed, not_sent: [undo]}
"""

FAILED_AND_ROLLED_BACK = """
  - name: rolled back
    replies:
      - {step: svc answers, rc: 1}
      - {step: restart svc}
      - {step: undo restart}
    expect: {outcome: failed, sent: [restart-svc, undo-svc], escalation: "svc on test-host"}
"""


def test_coverage_names_a_rollback_no_scenario_reaches(tmp_path: Path) -> None:
    path = write_suite(tmp_path, FIXED_AND_HEALTHY)
    result = oorfix("test", str(path))
    assert result.exit_code == 0, result.output
    assert "coverage svc-down: phases not reached: rollback\n" in result.output


def test_coverage_of_a_fully_covered_runbook(tmp_path: Path) -> None:
    path = write_suite(tmp_path, FIXED_AND_HEALTHY + FAILED_AND_ROLLED_BACK)
    result = oorfix("test", str(path))
    assert result.exit_code == 0, result.output
    assert "coverage svc-down: every phase and step reached" in result.output


def test_coverage_counts_only_the_selected_scenarios(tmp_path: Path) -> None:
    path = write_suite(tmp_path, FIXED_AND_HEALTHY + FAILED_AND_ROLLED_BACK)
    code, data = json_run(str(path), "-k", "healthy")
    assert code == 0
    assert data["coverage"][0]["phases_not_reached"] == ["remediate", "rollback", "verify"]


# --- replies, hosts, unreachable, timeouts, lost connections, windows -----------------------


def test_then_gives_replies_in_turn_and_the_last_repeats(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: never recovers
            replies:
              - step: svc answers
                then: [{rc: 1, stdout: first}, {rc: 1, stdout: last}]
              - {step: restart svc}
              - {step: undo restart}
            expect: {outcome: failed}
          - name: recovers on the second verify
            replies:
              - step: svc answers
                then: [{rc: 1, stdout: a}, {rc: 1, stdout: b}, {rc: 0, stdout: c}]
              - {step: restart svc}
            expect: {outcome: fixed, registered: {svc answers: "^c$"}}
        """,
    )
    suite = load_suite(path)
    result, run = run_scenario(suite, 0, tmp_path / "state-0")
    assert result.problems == ()
    outputs = [s.stdout.text for s in run.results[0].steps if s.name == "svc answers"]
    assert outputs == ["first", "last", "last", "last"]  # detect, then 1 + 2 retries
    result, run = run_scenario(suite, 1, tmp_path / "state-1")
    assert result.problems == ()
    outputs = [s.stdout.text for s in run.results[0].steps if s.name == "svc answers"]
    assert outputs == ["a", "b", "c"]


def test_host_restricts_a_rule_to_one_host(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        "runbook: svc-down\n"
        + TWO_HOSTS
        + """
scenarios:
  - name: only web-1 is down
    replies:
      - {step: svc answers, host: web-1, then: [{rc: 1}, {rc: 0}]}
      - {step: svc answers}
      - {step: restart svc, host: web-1}
    expect: {outcome: {web-1: fixed, web-2: healthy}}
""",
    )
    code, data = json_run(str(path))
    assert code == 0, data
    (only,) = data["scenarios"]
    assert [s["host"] for s in only["sent"] if s["step"] == "restart svc"] == ["web-1"]
    assert sorted(s["host"] for s in only["sent"] if s["step"] == "svc answers") == [
        "web-1",
        "web-1",
        "web-2",
    ]


def test_a_rule_for_another_host_leaves_the_command_unscripted(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        "runbook: svc-down\n"
        + TWO_HOSTS
        + """
scenarios:
  - name: web-2 has no rule
    replies:
      - {step: svc answers, host: web-1}
    expect: {outcome: healthy}
""",
    )
    code, data = json_run(str(path))
    assert code == 1
    (only,) = data["scenarios"]
    assert "unscripted command on web-2 (step 'svc answers'): check-svc" in only["problems"]
    assert only["outcomes"] == {"web-1": "healthy", "web-2": "error"}


def test_unreachable_timeout_and_lost_connections(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: unreachable
            unreachable: [test-host]
            expect: {outcome: unreachable}
          - name: timeout
            replies: [{step: svc answers, timeout: true}]
            expect: {outcome: error, error: "timed out", not_sent: [restart]}
          - name: lost
            replies: [{step: svc answers, lost: true}]
            expect: {outcome: error, not_sent: [restart]}
          - name: wrongly expects healthy when unreachable
            unreachable: [test-host]
            expect: {outcome: healthy}
        """,
    )
    code, data = json_run(str(path))
    assert code == 1
    assert {s["name"]: s["outcomes"]["test-host"] for s in data["scenarios"]} == {
        "unreachable": "unreachable",
        "timeout": "error",
        "lost": "error",
        "wrongly expects healthy when unreachable": "unreachable",
    }
    assert [s["name"] for s in data["scenarios"] if not s["passed"]] == [
        "wrongly expects healthy when unreachable"
    ]
    assert scenario(data, "unreachable")["sent"] == []
    (problem,) = scenario(data, "wrongly expects healthy when unreachable")["problems"]
    assert problem.startswith("test-host: outcome unreachable, expected healthy")


WINDOWED = """
runbook: svc-down
scenarios:
  - name: outside the window
    force: false
    at: "2024-05-01T12:30:00+00:00"
    replies: [{step: svc answers, rc: 1}]
    expect: {outcome: deferred, not_sent: [restart]}
  - name: inside the window
    force: false
    at: "2024-05-01T04:30:00+02:00"
    replies:
      - {step: svc answers, then: [{rc: 1}, {rc: 0}]}
      - {step: restart svc}
    expect: {outcome: fixed, sent: [check-svc, restart-svc, check-svc]}
  - name: forced outside the window
    at: "2024-05-04T12:30:00+00:00"
    replies:
      - {step: svc answers, then: [{rc: 1}, {rc: 0}]}
      - {step: restart svc}
    expect: {outcome: fixed}
"""


def test_at_and_a_maintenance_window(tmp_path: Path) -> None:
    path = write_suite(tmp_path, WINDOWED, WINDOWED_SVC)
    code, data = json_run(str(path))
    assert code == 0, data
    assert {s["name"]: s["outcomes"]["test-host"] for s in data["scenarios"]} == {
        "outside the window": "deferred",
        "inside the window": "fixed",
        "forced outside the window": "fixed",
    }


def test_at_is_what_the_window_gate_sees(tmp_path: Path) -> None:
    # Swapping the times swaps the outcomes: `at`, not the real clock, decides.
    swapped = WINDOWED.replace("2024-05-01T12:30:00+00:00", "SWAP").replace(
        "2024-05-01T04:30:00+02:00", "2024-05-01T12:30:00+00:00"
    )
    path = write_suite(tmp_path, swapped.replace("SWAP", "2024-05-01T02:30:00Z"), WINDOWED_SVC)
    code, data = json_run(str(path))
    assert code == 1
    assert scenario(data, "outside the window")["problems"][0].startswith(
        "unscripted command on test-host (step 'restart svc')"
    )
    assert scenario(data, "inside the window")["outcomes"] == {"test-host": "deferred"}


# --- test files are not runbooks ------------------------------------------------------------


def test_validate_does_not_read_test_files_as_runbooks(tmp_path: Path) -> None:
    write_suite(tmp_path, ONE_OK_ONE_WRONG)
    result = oorfix("validate", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "ok: 1 runbook(s)" in result.output


def test_a_variable_the_test_hosts_lack_is_an_error_of_the_test_file(tmp_path: Path) -> None:
    runbook = SVC.replace("escalate:", "escalate:\n  # needs `rack`\n", 1)
    runbook = runbook.replace('message: "', 'message: "rack {{ rack }}: ', 1)
    assert "{{ rack }}" in runbook
    path = write_suite(
        tmp_path,
        """
        runbook: svc-down
        scenarios:
          - name: healthy
            replies: [{step: svc answers}]
            expect: {outcome: healthy}
        """,
        runbook,
    )
    result = oorfix("test", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:1: the runbook does not render for this test's hosts: " in result.output
    assert "escalate.message: undefined variable: 'rack' is undefined" in result.output
    assert "pass" not in result.output  # found before anything ran
