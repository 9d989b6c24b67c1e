"""Engine outcomes over a scripted fake transport: exact commands in, outcomes out."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from oorfix.inventory.core import Inventory
from oorfix.results import ExitCode, HostResult, Outcome, Phase, RunMode, RunResult, StepStatus
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import LoadedRunbook
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import OpenGate

from .fakes import Reply, Script, fake_factory, make_engine

RUNBOOK = """
name: api-down
fault: software.service_interruption
hosts: payment_api
vars: {port: 8080}
detect:
  - name: health
    run: check-health {{ port }}
evidence:
  - run: collect-logs
remediate:
  - run: restart-api
verify: {retries: 2, delay: 1s}
rollback:
  - run: undo-restart
escalate:
  message: "api still down on {{ host.name }}"
"""

Sent = list[tuple[str, str, bool]]


def run(
    inventory: Inventory,
    loaded: LoadedRunbook,
    scripts: dict[str, Script],
    mode: RunMode = RunMode.FIX,
    limit: str | None = None,
    extra: dict[str, str] | None = None,
    batch_detect: bool = True,
) -> tuple[RunResult, Sent]:
    sent: Sent = []
    planned = plan_run([loaded], inventory, extra or {}, limit)
    options = EngineOptions(forks=4, mode=mode, sleep=lambda _: None, batch_detect=batch_detect)
    engine = make_engine(inventory, ConnectionPool(fake_factory(scripts, sent)), options)
    return engine.run([p.job for p in planned]), sent


def commands(sent: Sent, host: str) -> list[str]:
    return [
        text.split(" ", 1)[0] if "sh -c" not in text else text for h, text, _ in sent if h == host
    ]


@pytest.fixture
def api_down(runbook: Callable[[str], LoadedRunbook]) -> LoadedRunbook:
    return runbook(RUNBOOK)


# One host, the api-down runbook: what the host answers -> what was sent, the outcome, and
# how the reason starts.
OUTCOMES = [
    pytest.param(
        Script().on("check-health"),
        ["check-health 8080"],
        (Outcome.HEALTHY, None, ExitCode.OK),
        id="healthy host: only detect",
    ),
    pytest.param(
        Script()
        .on("check-health", Reply(rc=7))
        .on("collect-logs")
        .on("restart-api", Reply(rc=1, stderr="unit not found"))
        .on("undo"),
        ["check-health 8080", "collect-logs", "restart-api", "undo-restart"],
        (
            Outcome.FAILED,
            "remediation step 'restart-api' failed: exit status 1, expected 0",
            ExitCode.FAULT,
        ),
        id="failed remediation: no verify, rollback",
    ),
    pytest.param(
        Script().on("check-health", Reply(rc=124, timed_out=True)),
        ["check-health 8080"],
        (Outcome.ERROR, "health: timed out after", ExitCode.FAULT),
        id="detect timeout: an error, not a fault",
    ),
    pytest.param(
        # Nothing is remediated on a reading that means nothing.
        Script().on("check-health", Reply(rc=None)),
        ["check-health 8080"],
        (Outcome.ERROR, "health: no exit status (the session ended without one)", ExitCode.FAULT),
        id="no exit status: an error, not a fault",
    ),
    pytest.param(
        Script().on("check-health", Reply(rc=7)).on("collect").on("restart").on("undo"),
        ["check-health 8080", "collect-logs", "restart-api"]
        + ["check-health 8080"] * 3
        + ["undo-restart"],
        (
            Outcome.FAILED,
            "still faulty after 3 verification attempt(s): health: exit status 7, expected 0",
            ExitCode.FAULT,
        ),
        id="fix does not verify: attempts named, rollback",
    ),
]


@pytest.mark.parametrize(("script", "sent_commands", "ending"), OUTCOMES)
def test_outcomes(
    inventory: Inventory,
    api_down: LoadedRunbook,
    script: Script,
    sent_commands: list[str],
    ending: tuple[Outcome, str | None, ExitCode],
) -> None:
    result, sent = run(inventory, api_down, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert [text for _, text, _ in sent] == sent_commands
    outcome, reason, exit_code = ending
    assert (host.status, result.exit_code()) == (outcome, exit_code)
    if reason is None:
        assert host.error is None
    else:
        assert (host.error or "").startswith(reason)


def test_fault_is_fixed_and_verified(inventory: Inventory, api_down: LoadedRunbook) -> None:
    script = (
        Script()
        .on("check-health", Reply(rc=7), Reply(rc=7), Reply(rc=0))
        .on("collect-logs", Reply(stdout="log line"))
        .on("restart-api")
    )
    result, sent = run(inventory, api_down, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.FIXED
    assert [t for _, t, _ in sent] == [
        "check-health 8080",
        "collect-logs",
        "restart-api",
        "check-health 8080",
        "check-health 8080",
    ]
    assert [(s.phase, s.status, s.attempt) for s in host.steps] == [
        (Phase.DETECT, StepStatus.FAILED, 1),
        (Phase.EVIDENCE, StepStatus.PASSED, 1),
        (Phase.REMEDIATE, StepStatus.PASSED, 1),
        (Phase.VERIFY, StepStatus.FAILED, 1),
        (Phase.VERIFY, StepStatus.PASSED, 2),
    ]
    assert host.steps[1].stdout.text == "log line"
    assert host.error is None
    assert result.exit_code() is ExitCode.OK


def test_dry_run_sends_no_mutating_command(inventory: Inventory, api_down: LoadedRunbook) -> None:
    script = Script().on("check-health", Reply(rc=7)).on("collect-logs")
    result, sent = run(inventory, api_down, {"api-1": script}, mode=RunMode.DRY_RUN, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.WOULD_FIX
    assert [t for _, t, _ in sent] == ["check-health 8080", "collect-logs"]
    planned = [s for s in host.steps if s.status is StepStatus.PLANNED]
    assert [(s.phase, s.command) for s in planned] == [(Phase.REMEDIATE, "restart-api")]
    assert result.exit_code() is ExitCode.FAULT


def test_fix_that_does_not_verify_rolls_back_and_escalates(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    script = (
        Script().on("check-health", Reply(rc=7)).on("collect-logs").on("restart-api").on("undo")
    )
    result, sent = run(inventory, api_down, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.FAILED
    verify = [s for s in host.steps if s.phase is Phase.VERIFY]
    assert [s.attempt for s in verify] == [1, 2, 3]  # retries: 2 -> three attempts
    assert [t for _, t, _ in sent][-1] == "undo-restart"
    assert host.escalation == "api still down on api-1"
    assert host.error is not None
    assert result.exit_code() is ExitCode.FAULT


def test_unreachable_host_does_not_stop_others(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    scripts = {
        "api-1": Script(unreachable="connection refused"),
        "api-2": Script().on("check-health"),
    }
    result, _ = run(inventory, api_down, scripts)
    assert [(r.host, r.status) for r in result.results] == [
        ("api-1", Outcome.UNREACHABLE),
        ("api-2", Outcome.HEALTHY),
    ]
    assert result.results[0].error == "connection refused"
    assert result.exit_code() is ExitCode.UNREACHABLE


def test_lost_connection_during_fix_is_an_error(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    script = (
        Script().on("check-health", Reply(rc=7)).on("collect-logs").on("restart", Reply(lost=True))
    )
    result, _ = run(inventory, api_down, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.ERROR
    assert host.error == "connection to api-1 lost: connection reset; effect unknown"
    # The step that was running when the link dropped is in the record, with its command.
    assert [(s.phase, s.status, s.command) for s in host.steps][-1] == (
        Phase.REMEDIATE,
        StepStatus.ERROR,
        "restart-api",
    )
    assert host.escalation == "api still down on api-1"


def test_timed_out_fix_is_judged_by_verification(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    script = (
        Script()
        .on("check-health", Reply(rc=7), Reply(rc=0))
        .on("collect-logs")
        .on("restart-api", Reply(rc=None, timed_out=True))
    )
    result, _ = run(inventory, api_down, {"api-1": script}, limit="api-1")
    host = result.results[0]
    assert host.status is Outcome.FIXED
    assert any("timed out" in note for note in host.notes)


def test_register_when_and_on(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: vip
        fault: hardware.power
        hosts: api-1
        detect:
          - run: psu-status
            register: psu
            expect: {stdout: "^ok$"}
        evidence:
          - run: echo {{ psu.stdout }}
          - run: never-run
            when: psu.rc != 0
        remediate:
          - run: move-vip {{ host.name }}
            on: lb
        verify: {retries: 0}
        """
    )
    script = Script().on("psu-status", Reply(stdout="degraded\n"), Reply(stdout="ok\n")).on("echo")
    scripts = {"api-1": script, "lb-1": Script().on("move-vip")}
    result, sent = run(inventory, loaded, scripts)
    host = result.results[0]
    assert host.status is Outcome.FIXED
    assert sent == [
        ("api-1", "psu-status", False),
        ("api-1", "echo degraded", False),
        ("lb-1", "move-vip api-1", False),
        ("api-1", "psu-status", False),
    ]
    skipped = [s for s in host.steps if s.status is StepStatus.SKIPPED]
    assert [s.name for s in skipped] == ["never-run"]
    assert [s.host for s in host.steps if s.phase is Phase.REMEDIATE] == ["lb-1"]


def test_hostile_inventory_value_is_quoted(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: quoting
        fault: software.crash
        hosts: api-1
        detect:
          - run: systemctl is-active {{ service }}
        """
    )
    scripts = {"api-1": Script().on("^systemctl is-active ")}
    result, sent = run(inventory, loaded, scripts, extra={"service": "x; touch /tmp/pwned"})
    assert sent == [("api-1", "systemctl is-active 'x; touch /tmp/pwned'", False)]
    assert result.results[0].status is Outcome.HEALTHY


def test_sudo_is_passed_to_the_transport(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: restart
        fault: software.crash
        hosts: api-1
        detect: [{run: probe}]
        remediate:
          - service: {name: pg-api, state: restarted, manager: systemd}
            sudo: true
        verify: {retries: 0}
        """
    )
    script = Script().on("probe", Reply(rc=3), Reply(rc=0)).on("^systemctl restart")
    _, sent = run(inventory, loaded, {"api-1": script})
    assert sent[1] == (
        "api-1",
        "systemctl restart -- pg-api && systemctl is-active --quiet -- pg-api",
        True,
    )


def test_secret_values_are_redacted(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: secret
        fault: software.crash
        hosts: api-1
        vars: {api_token: s3cr3t-value}
        detect:
          - run: probe --token {{ api_token }}
        """
    )
    script = Script().on(
        "probe", Reply(rc=1, stdout="bad token s3cr3t-value", stderr="s3cr3t-value")
    )
    result, sent = run(inventory, loaded, {"api-1": script})
    step = result.results[0].steps[0]
    assert sent[0][1] == "probe --token s3cr3t-value"  # the host gets the real value
    assert "s3cr3t-value" not in (step.command or "")
    assert "s3cr3t-value" not in step.stdout.text
    assert "s3cr3t-value" not in step.stderr.text


def test_abort_starts_no_new_step_and_no_rollback(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    sent: Sent = []
    planned = plan_run([api_down], inventory, {}, "api-1")
    scripts = {"api-1": Script().on("check-health", Reply(rc=7)).on("collect-logs")}

    class AbortAfterDetect:
        def job_started(self, job: object) -> None: ...
        def job_finished(self, result: object) -> None: ...
        def step_finished(self, job: object, step: object) -> None:
            engine.abort()  # Ctrl-C while the first step runs

    pool = ConnectionPool(fake_factory(scripts, sent))
    engine = Engine(EngineParts(inventory, pool, OpenGate(), NoAudit(), AbortAfterDetect()))
    result = engine.run([p.job for p in planned])
    host = result.results[0]
    assert [t for _, t, _ in sent] == ["check-health 8080"]  # no evidence, fix or rollback
    assert host.status is Outcome.ERROR
    assert host.error == "interrupted by the operator after detect; no further step was run"
    assert result.aborted
    assert result.exit_code() is ExitCode.ABORTED


def test_jobs_not_started_after_abort_are_recorded_as_skipped(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    sent: Sent = []
    planned = plan_run([api_down], inventory, {})
    engine = make_engine(inventory, ConnectionPool(fake_factory({}, sent)), EngineOptions(forks=1))
    engine.abort()
    result = engine.run([p.job for p in planned])
    assert [(r.host, r.status) for r in result.results] == [
        ("api-1", Outcome.SKIPPED),
        ("api-2", Outcome.SKIPPED),
    ]
    assert sent == []


def test_lost_on_host_does_not_blame_the_job_host(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: drain
        fault: hardware.component
        hosts: payment_api
        detect: [{run: probe}]
        remediate:
          - run: drain {{ host.name }}
            on: lb
        verify: {retries: 0}
        """
    )
    scripts = {
        "api-1": Script().on("probe", Reply(rc=1)),
        "api-2": Script().on("probe", Reply(rc=1), Reply(rc=0)),
        "lb-1": Script().on("drain api-1", Reply(lost=True)).on("drain api-2"),
    }
    result, sent = run(inventory, loaded, scripts)
    first, second = result.results
    assert first.status is Outcome.FAILED
    assert first.steps[1].host == "lb-1"
    assert first.steps[1].reason == ("connection to lb-1 lost: connection reset; effect unknown")
    # lb-1's dead connection was dropped from the pool: the next job reconnects and works.
    assert second.status is Outcome.FIXED
    assert ("lb-1", "drain api-2", False) in sent


def test_escalate_always_reports_a_verified_fix(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: humid
        fault: environment.humidity_dust
        hosts: api-1
        detect: [{run: probe}]
        remediate: [{run: drain}]
        verify: {retries: 0}
        escalate: {message: "facilities: check {{ host.name }}", always: true}
        """
    )
    scripts = {"api-1": Script().on("probe", Reply(rc=1), Reply(rc=0)).on("drain")}
    result, _ = run(inventory, loaded, scripts)
    host = result.results[0]
    assert (host.status, host.escalation) == (Outcome.FIXED, "facilities: check api-1")


def test_dry_run_plans_steps_that_depend_on_planned_ones(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: plans
        fault: software.crash
        hosts: api-1
        detect: [{run: probe}]
        remediate:
          - run: stop-it
            register: stopped
          - run: start-it --after {{ stopped.rc }}
            when: stopped.rc == 0
        """
    )
    scripts = {"api-1": Script().on("probe", Reply(rc=1))}
    result, sent = run(inventory, loaded, scripts, mode=RunMode.DRY_RUN)
    steps = [(s.status, s.command, s.reason) for s in result.results[0].steps[1:]]
    assert steps == [
        (StepStatus.PLANNED, "stop-it", None),
        (
            StepStatus.PLANNED,
            "start-it --after '<stopped.rc at run time>'",
            "when: stopped.rc == 0",
        ),
    ]
    assert [t for _, t, _ in sent] == ["probe"]


def test_a_tripped_breaker_stops_the_fixes_of_hosts_already_running(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    # Ordered by events, not by timing: api-1's fix fails only once api-2 has started, and
    # api-2's fault is confirmed only once api-1 has its outcome (and so tripped the breaker).
    api2_started, api1_done = threading.Event(), threading.Event()

    class SignalApi1Done:
        def job_started(self, job: object) -> None: ...
        def step_finished(self, job: object, step: object) -> None: ...
        def job_finished(self, result: HostResult) -> None:
            if result.host == "api-1":
                api1_done.set()

    sent: Sent = []
    scripts = {
        "api-1": Script().on("check-health", Reply(rc=7)).on("collect")
        .on("restart", Reply(rc=1, wait_for=api2_started)).on("undo"),
        "api-2": Script().on("check-health", Reply(rc=7, arrived=api2_started, wait_for=api1_done))
        .on("collect").on("restart"),
    }  # fmt: skip
    planned = plan_run([api_down], inventory, {})
    options = EngineOptions(forks=2, max_fail_percent=0, sleep=lambda _: None)
    pool = ConnectionPool(fake_factory(scripts, sent))
    engine = Engine(EngineParts(inventory, pool, OpenGate(), NoAudit(), SignalApi1Done()), options)
    result = engine.run([p.job for p in planned])
    first, second = result.results
    assert first.status is Outcome.FAILED
    assert second.status is Outcome.DEFERRED
    assert second.error is not None
    assert second.error.startswith("fix not started: circuit breaker: 1 of 2 hosts failed")
    assert ("api-2", "restart-api", False) not in sent


def test_a_shortage_on_this_machine_is_never_blamed_on_the_host(
    inventory: Inventory, api_down: LoadedRunbook
) -> None:
    scripts = {
        "api-1": Script(shortage="the controller has too many open files"),
        "api-2": Script().on("check-health"),
    }
    result, _ = run(inventory, api_down, scripts)
    first, second = result.results
    assert (first.status, first.error) == (
        Outcome.ERROR,
        "api-1: the controller has too many open files",
    )
    assert second.status is Outcome.HEALTHY  # the others carry on


def test_stdin_is_a_line_of_text(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        """
        name: login
        fault: software.crash
        hosts: api-1
        detect:
          - run: check-login
            stdin: "{{ token }}"
        vars: {token: s3cr3t-value}
        """
    )
    planned = plan_run([loaded], inventory, {})
    (step,) = planned[0].steps
    assert step.command.stdin == b"s3cr3t-value\n"  # `read -r token` gets it and succeeds
