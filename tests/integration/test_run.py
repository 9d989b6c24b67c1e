"""``oorfix run``/``plan``/``validate`` end to end: the real CLI against real sshd lab hosts.

Every test drives ``python -m oorfix`` as a subprocess, parses the ``--json`` run record it
wrote, and checks the lab's own view as well: whether the payment API process runs (by its
pid file) and whether ``GET /health`` answers. Nothing here mocks SSH.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Fleet

pytestmark = pytest.mark.integration

IS_ACTIVE = "systemctl is-active pg-api"


def wait_health(address: str) -> str:
    """The rendered wait_for step of payment-api-crashed for one lab host."""
    return (
        "end=$(( $(date +%s) + 20 )); until curl -fsS -m 5 -o /dev/null -- "
        f"http://{address}:8080/health; do [ $(date +%s) -ge $end ] && exit 1; sleep 1; done"
    )


WHY_STOPPED = (
    "journalctl -u pg-api -n 200 --no-pager"
    " | grep -Ei 'oom|core dump|segfault|killed|exited' || true"
)
START_PG_API = (
    "if command -v systemctl >/dev/null 2>&1; then systemctl start -- pg-api"
    " && systemctl is-active --quiet -- pg-api; else service pg-api start; fi"
)
HEALTHY_API = {"status": "ok", "version": "2.4.1"}


def steps(result: dict[str, Any]) -> list[tuple[str, str, str, str | None, int | None, int]]:
    """The steps of a host result as (phase, name, status, command, rc, attempt)."""
    return [
        (s["phase"], s["name"], s["status"], s["command"], s["rc"], s["attempt"])
        for s in result["steps"]
    ]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def assert_times_in_order(result: dict[str, Any]) -> None:
    """Every step starts before it ends, after the one before it, within the job."""
    previous_end = when(result["start"])
    for step in result["steps"]:
        start, end = when(step["start"]), when(step["end"])
        assert previous_end <= start <= end, step
        previous_end = end
    assert previous_end <= when(result["end"])


def pids_of(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def gone_within(pattern: str, seconds: float) -> bool:
    """Whether no process matches ``pattern`` within ``seconds`` (it may still be dying)."""
    deadline = time.monotonic() + seconds
    while pids_of(pattern):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# 1. Detect, fix, verify; then idempotent -------------------------------------------------


def test_a_crashed_api_is_fixed_verified_and_a_second_run_finds_it_healthy(fleet: Fleet) -> None:
    inventory = fleet.inventory()
    fleet.break_api("pg-api-1")
    assert fleet.health("pg-api-1") is None

    first = fleet.run("payment-api-crashed", "-i", inventory)

    assert first.rc == 0, first.stderr
    assert first.record is not None
    assert (first.record["exit_code"], first.record["dry_run"]) == (0, False)
    assert first.record["runbooks"] == ["payment-api-crashed"]
    assert first.statuses() == {"pg-api-1": "fixed", "pg-api-2": "healthy", "pg-api-3": "healthy"}
    fixed = first.result("pg-api-1")
    assert (fixed["fault"], fixed["error"], fixed["escalation"]) == ("software.crash", None, None)
    assert steps(fixed) == [
        ("detect", "service is active", "failed", IS_ACTIVE, 3, 1),
        ("evidence", "why it stopped", "passed", WHY_STOPPED, 0, 1),
        ("evidence", "memory at the time", "passed", "free -m", 0, 1),
        ("remediate", "service pg-api started", "passed", START_PG_API, 0, 1),
        ("remediate", "the API answers again", "passed", wait_health("127.0.30.2"), 0, 1),
        ("verify", "service is active", "passed", IS_ACTIVE, 0, 1),
    ]
    detect, verify = fixed["steps"][0], fixed["steps"][-1]
    assert (detect["stdout"], detect["reason"]) == (
        "inactive\n",
        "stdout does not match '^active$'",
    )
    assert (verify["stdout"], verify["reason"]) == ("active\n", None)
    assert_times_in_order(fixed)
    for name in ("pg-api-2", "pg-api-3"):
        assert steps(first.result(name)) == [
            ("detect", "service is active", "passed", IS_ACTIVE, 0, 1)
        ]
    # The lab's view: the process is back and the API answers.
    assert fleet.pid("pg-api-1") is not None
    assert fleet.health("pg-api-1") == {**HEALTHY_API, "host": "pg-api-1"}

    second = fleet.run("payment-api-crashed", "-i", inventory)

    assert second.rc == 0, second.stderr
    assert second.statuses() == dict.fromkeys(fleet.names, "healthy")
    for name in fleet.names:
        assert steps(second.result(name)) == [
            ("detect", "service is active", "passed", IS_ACTIVE, 0, 1)
        ]


def test_payment_api_down_restarts_and_waits_for_the_health_url_of_each_host(
    fleet: Fleet,
) -> None:
    inventory = fleet.inventory()
    fleet.break_api("pg-api-2")
    url = f"http://{fleet.address('pg-api-2')}:8080/health"

    run = fleet.run("payment-api-down", "-i", inventory)

    assert run.rc == 0, run.stderr
    assert run.statuses() == {"pg-api-1": "healthy", "pg-api-2": "fixed", "pg-api-3": "healthy"}
    fixed = run.result("pg-api-2")
    assert [(s["phase"], s["name"], s["status"], s["rc"]) for s in fixed["steps"]] == [
        ("detect", "health endpoint answers", "failed", 7),  # curl: connection refused
        ("evidence", "service state", "passed", 0),
        ("evidence", "recent service log", "passed", 0),
        ("remediate", "service pg-api restarted", "passed", 0),
        ("remediate", f"wait for {url} started", "passed", 0),
        ("verify", "health endpoint answers", "passed", 0),
    ]
    curl = f"curl -fsS -m 3 {url}"
    assert (fixed["steps"][0]["command"], fixed["steps"][-1]["command"]) == (curl, curl)
    assert f"curl -fsS -m 5 -o /dev/null -- {url}" in fixed["steps"][4]["command"]
    assert '"status": "ok"' in fixed["steps"][-1]["stdout"]
    assert_times_in_order(fixed)
    assert fleet.health("pg-api-2") == {**HEALTHY_API, "host": "pg-api-2"}


# 2. Dry-run changes nothing ---------------------------------------------------------------


def test_dry_run_on_a_broken_host_plans_the_fix_and_changes_nothing(fleet: Fleet) -> None:
    inventory = fleet.inventory()
    fleet.break_api("pg-api-1")
    before = {name: fleet.snapshot(name) for name in fleet.names}
    pids = {name: fleet.pid(name) for name in fleet.names}

    run = fleet.run("payment-api-crashed", "-i", inventory, "--dry-run")

    assert run.rc == 1, run.stderr
    assert run.record is not None
    assert (run.record["dry_run"], run.record["exit_code"]) == (True, 1)
    assert run.statuses() == {
        "pg-api-1": "would_fix",
        "pg-api-2": "healthy",
        "pg-api-3": "healthy",
    }
    would = run.result("pg-api-1")
    assert steps(would) == [
        ("detect", "service is active", "failed", IS_ACTIVE, 3, 1),
        ("evidence", "why it stopped", "passed", WHY_STOPPED, 0, 1),
        ("evidence", "memory at the time", "passed", "free -m", 0, 1),
        ("remediate", "service pg-api started", "planned", START_PG_API, None, 1),
        ("remediate", "the API answers again", "planned", wait_health("127.0.30.2"), None, 1),
    ]
    planned = would["steps"][-2]
    assert (planned["stdout"], planned["stdout_bytes"], planned["timed_out"]) == ("", 0, False)
    # Byte for byte: every file's path, mode and content, on every host.
    assert {name: fleet.snapshot(name) for name in fleet.names} == before
    assert {name: fleet.pid(name) for name in fleet.names} == pids
    assert fleet.pid("pg-api-1") is None
    assert fleet.health("pg-api-1") is None


def test_dry_run_on_a_healthy_fleet_exits_0_and_changes_nothing(fleet: Fleet) -> None:
    inventory = fleet.inventory()
    before = {name: fleet.snapshot(name) for name in fleet.names}
    pids = {name: fleet.pid(name) for name in fleet.names}

    run = fleet.run("payment-api-crashed", "-i", inventory, "--dry-run")

    assert run.rc == 0, run.stderr
    assert run.record is not None
    assert (run.record["dry_run"], run.record["exit_code"]) == (True, 0)
    assert run.statuses() == dict.fromkeys(fleet.names, "healthy")
    for name in fleet.names:
        assert steps(run.result(name)) == [
            ("detect", "service is active", "passed", IS_ACTIVE, 0, 1)
        ]
    assert {name: fleet.snapshot(name) for name in fleet.names} == before
    assert {name: fleet.pid(name) for name in fleet.names} == pids


# 3. A fix that does not verify: rollback and escalate -------------------------------------

UNFIXABLE = """
    name: marker-never-fixed
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    remediate:
      - name: attempt
        run: touch {{ state_dir }}/attempted
    verify: {retries: 1, delay: 0.2s}
    rollback:
      - name: undo attempt
        run: rm -f {{ state_dir }}/attempted
      - name: note rollback
        run: touch {{ state_dir }}/rolled-back
    escalate:
      message: "marker still missing on {{ host.name }} after a fix attempt"
"""


def test_a_fix_that_does_not_verify_is_rolled_back_and_escalated(fleet: Fleet) -> None:
    runbook = fleet.runbook(UNFIXABLE)
    inventory = fleet.inventory()
    state = fleet.state("pg-api-1")

    run = fleet.run(runbook, "-i", inventory, "--limit", "pg-api-1")

    assert run.rc == 1, run.stderr
    assert run.statuses() == {"pg-api-1": "failed"}
    failed = run.result("pg-api-1")
    assert failed["escalation"] == "marker still missing on pg-api-1 after a fix attempt"
    assert failed["error"] == (
        "still faulty after 2 verification attempt(s): ok marker present: exit status 1, expected 0"
    )
    assert steps(failed) == [
        ("detect", "ok marker present", "failed", f"test -f {state}/ok", 1, 1),
        ("remediate", "attempt", "passed", f"touch {state}/attempted", 0, 1),
        ("verify", "ok marker present", "failed", f"test -f {state}/ok", 1, 1),
        ("verify", "ok marker present", "failed", f"test -f {state}/ok", 1, 2),
        ("rollback", "undo attempt", "passed", f"rm -f {state}/attempted", 0, 1),
        ("rollback", "note rollback", "passed", f"touch {state}/rolled-back", 0, 1),
    ]
    assert_times_in_order(failed)
    first_try, second_try = failed["steps"][2], failed["steps"][3]
    assert (when(second_try["start"]) - when(first_try["end"])).total_seconds() >= 0.19
    # The lab's view: the attempt was undone and the rollback really ran on the host.
    assert not (state / "attempted").exists()
    assert (state / "rolled-back").is_file()
    assert not (state / "ok").exists()


# 4. Unreachable and hanging hosts do not hold up the others -------------------------------


def test_unreachable_and_hanging_hosts_become_their_own_results(fleet: Fleet) -> None:
    # A unique sleep length and echo marker find the hanging command among all processes.
    seconds = f"600.{uuid.uuid4().int % 10**6:06d}"
    marker = f"MARKER-{uuid.uuid4().hex}"
    runbook = fleet.runbook(
        f"""
        name: probe-or-hang
        fault: software.service_interruption
        hosts: payment_api
        vars: {{hang: false}}
        detect:
          - name: api answers
            run: curl -fsS -m 3 http://{{{{ api_host }}}}:{{{{ port }}}}/health
            when: not hang
            expect: {{stdout: '"status": *"ok"'}}
          - name: slow probe
            run: sleep {seconds} && echo {marker}
            when: hang
            timeout: 2
        remediate:
          - run: "true"
        """
    )
    ghost = "127.0.30.250"  # on loopback, but no sshd listens there
    inventory = fleet.inventory(
        {"pg-api-2": {"hang": True}},
        hosts=["pg-api-1", "pg-api-2"],
        extra_hosts={"pg-ghost": {**fleet.host_entry("pg-api-3"), "ansible_host": ghost}},
    )
    try:
        run = fleet.run(runbook, "-i", inventory, "--forks", "3")

        assert run.seconds < 60  # a bound against hanging, not a performance test
        assert run.rc == 1, run.stderr  # error means a fault may remain: 1 wins over 3
        assert run.record is not None
        assert run.record["exit_code"] == 1
        assert run.statuses() == {
            "pg-api-1": "healthy",
            "pg-api-2": "error",
            "pg-ghost": "unreachable",
        }
        ghost_result = run.result("pg-ghost")
        assert ghost_result["error"] == f"connection refused by {ghost}:{fleet.port}"
        assert ghost_result["steps"] == []
        hung = run.result("pg-api-2")
        assert steps(hung) == [
            ("detect", "api answers", "skipped", None, None, 1),
            ("detect", "slow probe", "error", f"sleep {seconds} && echo {marker}", 124, 1),
        ]
        assert hung["steps"][1]["timed_out"] is True
        assert "timed out" in hung["steps"][1]["reason"]
        assert hung["error"].startswith("slow probe: timed out after ")
        took = when(hung["steps"][1]["end"]) - when(hung["steps"][1]["start"])
        assert 2 <= took.total_seconds() < 10
        good = run.result("pg-api-1")
        curl = f"curl -fsS -m 3 http://{fleet.address('pg-api-1')}:8080/health"
        assert steps(good) == [
            ("detect", "api answers", "passed", curl, 0, 1),
            ("detect", "slow probe", "skipped", None, None, 1),
        ]
        # Parallel: neither the good host nor the unreachable one waited for the hang.
        assert when(good["end"]) < when(hung["end"])
        assert when(ghost_result["end"]) < when(hung["end"])
        # The host's `timeout` killed the command: nothing is left running on the machine.
        assert gone_within(f"sleep {seconds}", 3), "the timed-out sleep is still running"
        assert not pids_of(marker)
    finally:
        for pid in pids_of(f"sleep {seconds}"):
            subprocess.run(["kill", "-9", str(pid)], check=False)


# 5. Host keys ----------------------------------------------------------------------------

TOUCHY = """
    name: touchy
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: leave a mark
        run: touch {{ state_dir }}/contacted
"""


def test_an_unknown_host_key_is_refused_before_any_command(fleet: Fleet) -> None:
    runbook, inventory = fleet.runbook(TOUCHY), fleet.inventory()
    known_hosts = fleet.tmp / "known_hosts"
    known_hosts.write_text("")
    logins = fleet.logins()

    run = fleet.run(runbook, "-i", inventory, "--limit", "pg-api-1", known_hosts=known_hosts)

    assert run.rc == 3, run.stderr
    assert run.statuses() == {"pg-api-1": "unreachable"}
    refused = run.result("pg-api-1")
    address = fleet.address("pg-api-1")
    assert refused["error"].startswith(f"host key for [{address}]:{fleet.port} is not known")
    assert f"ssh-keyscan -p {fleet.port} {address} >> {known_hosts}" in refused["error"]
    assert "--accept-new-host-keys" in refused["error"]
    assert refused["steps"] == []
    assert not (fleet.state("pg-api-1") / "contacted").exists()
    assert fleet.logins() == logins  # refused before logging in
    assert known_hosts.read_text() == ""


def _other_key_line(fleet: Fleet, name: str) -> str:
    key = fleet.tmp / "other_host_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "impostor", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    kind, base64 = key.with_suffix(".pub").read_text().split()[:2]
    return f"[{fleet.address(name)}]:{fleet.port} {kind} {base64}\n"


@pytest.mark.parametrize("accept_new", [False, True], ids=["strict", "accept-new"])
def test_a_changed_host_key_is_always_refused(fleet: Fleet, accept_new: bool) -> None:
    runbook, inventory = fleet.runbook(TOUCHY), fleet.inventory()
    known_hosts = fleet.tmp / "known_hosts"
    known_hosts.write_text(_other_key_line(fleet, "pg-api-1"))
    listed = known_hosts.read_text()
    flags = ["--accept-new-host-keys"] if accept_new else []
    logins = fleet.logins()

    run = fleet.run(
        runbook, "-i", inventory, "--limit", "pg-api-1", *flags, known_hosts=known_hosts
    )

    assert run.rc == 3, run.stderr
    assert run.statuses() == {"pg-api-1": "unreachable"}
    refused = run.result("pg-api-1")
    host_key_name = f"[{fleet.address('pg-api-1')}]:{fleet.port}"
    assert refused["error"].startswith(f"host key for {host_key_name} has changed")
    assert "man-in-the-middle" in refused["error"]
    assert f"ssh-keygen -R '{host_key_name}' -f {known_hosts}" in refused["error"]
    assert refused["steps"] == []
    assert not (fleet.state("pg-api-1") / "contacted").exists()
    assert fleet.logins() == logins
    assert known_hosts.read_text() == listed  # never rewritten, never appended to


def test_accept_new_host_keys_trusts_and_remembers_an_unknown_key(fleet: Fleet) -> None:
    runbook, inventory = fleet.runbook(TOUCHY), fleet.inventory()
    known_hosts = fleet.tmp / "known_hosts"
    known_hosts.write_text("")

    first = fleet.run(
        runbook,
        "-i",
        inventory,
        "--limit",
        "pg-api-1",
        "--accept-new-host-keys",
        known_hosts=known_hosts,
    )

    assert first.rc == 0, first.stderr
    assert first.statuses() == {"pg-api-1": "healthy"}
    assert (fleet.state("pg-api-1") / "contacted").is_file()
    address = fleet.address("pg-api-1")
    remembered = f"[{address}]:{fleet.port} {fleet.lab.sshd.host_pubkey}\n"
    assert known_hosts.read_text() == remembered
    # Shown and recorded: the fingerprint on stderr and as a note of the host's result.
    [note] = [n for n in first.result("pg-api-1")["notes"] if "new host key" in n]
    fingerprint = note.split()[5]
    assert fingerprint.startswith("SHA256:")
    assert fingerprint in first.stderr
    # Remembered for real: a strict run now trusts the key, and appends nothing.
    second = fleet.run(runbook, "-i", inventory, "--limit", "pg-api-1", known_hosts=known_hosts)
    assert second.rc == 0, second.stderr
    assert second.statuses() == {"pg-api-1": "healthy"}
    assert known_hosts.read_text() == remembered


# 6. Injection ----------------------------------------------------------------------------


def test_a_shell_metacharacter_in_a_service_name_is_refused_by_the_service_action(
    fleet: Fleet,
) -> None:
    pwned = fleet.tmp / f"pwned-{uuid.uuid4().hex}"
    evil = f"x; touch {pwned}"
    inventory = fleet.inventory({"pg-api-1": {"service": evil}})
    logins = fleet.logins()

    run = fleet.run("payment-api-crashed", "-i", inventory, "--limit", "pg-api-1")

    # The service action validates names offline, before any host is contacted.
    assert run.rc == 2, run.stderr
    assert "runbooks/payment-api-crashed.yml:" in run.stderr
    assert f"service name {evil!r} has characters not allowed here" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.record is None
    assert fleet.logins() == logins
    assert not pwned.exists()


CRASHED_CHECKS_ONLY = """
    name: crashed-checks-by-hand
    fault: software.crash
    hosts: payment_api
    vars: {service: pg-api}
    detect:
      - name: service is active
        run: systemctl is-active {{ service }}
        expect: {rc: [0, 3], stdout: "^active$"}
    evidence:
      - name: journal
        run: journalctl -u {{ service }} -n 20 --no-pager
    remediate:
      - name: start by hand
        run: systemctl start {{ service }}
"""


@pytest.mark.parametrize(
    ("how", "template"),
    [("inventory", "x; touch {path}"), ("extra-vars", "$(touch {path})`touch {path}`")],
)
def test_host_values_in_run_commands_are_quoted_and_run_nothing(
    fleet: Fleet, how: str, template: str
) -> None:
    pwned = fleet.tmp / f"pwned-{uuid.uuid4().hex}"
    evil = template.format(path=pwned)
    runbook = fleet.runbook(CRASHED_CHECKS_ONLY)
    if how == "inventory":
        inventory, extra = fleet.inventory({"pg-api-1": {"service": evil}}), []
    else:
        inventory, extra = fleet.inventory(), ["-e", f"service={evil}"]

    run = fleet.run(runbook, "-i", inventory, "--limit", "pg-api-1", *extra)

    # The quoted name is one unknown unit: detect finds it inactive, the start fails (rc 5).
    assert run.rc == 1, run.stderr
    assert run.statuses() == {"pg-api-1": "failed"}
    quoted = "'" + evil.replace("'", "'\"'\"'") + "'"
    assert steps(run.result("pg-api-1")) == [
        ("detect", "service is active", "failed", f"systemctl is-active {quoted}", 3, 1),
        ("evidence", "journal", "passed", f"journalctl -u {quoted} -n 20 --no-pager", 0, 1),
        ("remediate", "start by hand", "failed", f"systemctl start {quoted}", 5, 1),
    ]
    assert not pwned.exists()
    assert fleet.pid("pg-api-1") is not None  # the real unit was never touched


UNNAMED_CHECK = """
    name: token-check
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - run: test {{ api_token }} = expected-token
"""


def test_a_secret_used_in_a_command_is_masked_in_every_output(fleet: Fleet) -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    runbook = fleet.runbook(UNNAMED_CHECK)
    inventory = fleet.inventory({"pg-api-1": {"api_token": secret}})

    run = fleet.run(runbook, "-i", inventory, "--limit", "pg-api-1", "-vv")
    plan = fleet.oorfix("plan", runbook, "-i", inventory, "--limit", "pg-api-1", record=False)

    assert run.rc == 1, run.stderr
    assert run.record is not None
    detect = run.result("pg-api-1")["steps"][0]
    assert (detect["command"], detect["rc"]) == ("test ******** = expected-token", 1)
    assert plan.rc == 0, plan.stderr
    leaks = {
        "record": secret in json.dumps(run.record),
        "run output": secret in run.stdout + run.stderr,
        "plan output": secret in plan.stdout + plan.stderr,
    }
    assert leaks == dict.fromkeys(leaks, False)


# 7. Bad input exits 2 before any host is contacted ----------------------------------------

TYPO = """
    name: typo
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: leave a mark
        run: touch {{ state_dir }}/contacted
      - name: misspelt
        rn: echo hello
"""
UNDEFINED = """
    name: undefined
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: leave a mark
        run: touch {{ state_dir }}/contacted
    remediate:
      - name: uses a name nobody defined
        run: echo {{ nope }}
"""


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("text", "needle", "message"),
    [
        (TYPO, "rn: echo", "detect[1].rn: unknown key"),
        (UNDEFINED, "{{ nope }}", "remediate[0].run: undefined variable nope"),
    ],
    ids=["typo-key", "undefined-variable"],
)
def test_bad_runbooks_exit_2_with_path_and_line_before_contacting_a_host(
    fleet: Fleet, text: str, needle: str, message: str
) -> None:
    runbook, inventory = fleet.runbook(text), fleet.inventory()
    logins = fleet.logins()

    run = fleet.run(runbook, "-i", inventory)

    assert run.rc == 2, run.stderr
    line = _line_of(runbook, needle)
    assert f"{runbook}:{line}: {message}" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.record is None
    assert fleet.logins() == logins
    for name in fleet.names:
        assert not (fleet.state(name) / "contacted").exists()


# 8. A limit that matches nothing is a no-op ----------------------------------------------


@pytest.mark.parametrize("limit", ["nothing*", "payment_api:!pg-api-*"])
def test_a_limit_matching_nothing_is_a_no_op_with_a_message(fleet: Fleet, limit: str) -> None:
    inventory = fleet.inventory()
    logins = fleet.logins()

    run = fleet.run("payment-api-crashed", "-i", inventory, "--limit", limit)

    assert run.rc == 0, run.stderr
    assert "nothing to do" in run.stderr
    assert repr(limit) in run.stderr
    assert "Traceback" not in run.stderr
    assert fleet.logins() == logins


def test_an_empty_limit_is_a_no_op_not_all_hosts(fleet: Fleet) -> None:
    inventory = fleet.inventory()
    logins = fleet.logins()

    run = fleet.run("payment-api-crashed", "-i", inventory, "--limit", "", "--dry-run")

    assert run.rc == 0, run.stderr
    assert fleet.logins() == logins, "hosts were contacted"
    assert run.record is not None
    assert (run.record["results"], run.record["exit_code"]) == ([], 0)
    assert "nothing to do" in run.stderr


# 9. validate and plan are offline --------------------------------------------------------


def test_validate_accepts_the_repository_runbooks_and_inventory(fleet: Fleet) -> None:
    found = (Path(__file__).parents[2] / "runbooks").rglob("*.yml")
    # Test scenarios and the site catalogue live beside the runbooks, but are not runbooks.
    runbooks = [p for p in found if not p.name.endswith(".test.yml") and p.name != "catalog.yml"]

    run = fleet.oorfix("validate", "runbooks/", "inventory/", record=False)

    assert run.rc == 0, run.stderr
    assert run.stdout.startswith(f"ok: {len(runbooks)} runbook(s), 1 inventory(ies) with ")
    assert run.stderr == ""


def test_plan_prints_every_rendered_command_per_host_without_contacting_one(
    fleet: Fleet,
) -> None:
    inventory = fleet.inventory()
    logins = fleet.logins()
    fleet.break_api("pg-api-3")  # plan must not notice, let alone fix it

    run = fleet.oorfix("plan", "payment-api-down", "-i", inventory, record=False)

    assert run.rc == 0, run.stderr
    text = run.stdout
    for name in fleet.names:
        url = f"http://{fleet.address(name)}:8080/health"
        assert f"{name} payment-api-down (software.service_interruption)" in text
        assert f"$ curl -fsS -m 3 {url}\n" in text
        assert f"curl -fsS -m 5 -o /dev/null -- {url};" in text
    assert text.count("$ systemctl status pg-api --no-pager --lines=0 || true\n") == 3
    assert fleet.logins() == logins
    assert fleet.pid("pg-api-3") is None
