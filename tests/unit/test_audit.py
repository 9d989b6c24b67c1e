"""The audit log: entries and their chain, real thread and process races, tampering found at
the exact line, appends after damage, and `oorfix audit verify`."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.cli.audit import audit as audit_cli
from oorfix.redact import Command, Redactor
from oorfix.safety import audit as audit_module
from oorfix.safety.audit import (
    GENESIS,
    AuditLog,
    AuditWhere,
    VerifyResult,
    canonical,
    entry_hash,
    verify,
)
from oorfix.safety.state import StateDir
from tests.unit.shared import run_all

T0 = datetime(2024, 5, 1, 9, 42, 5, tzinfo=UTC)
ACTOR = "ops@bastion-1"
WORKERS = 4
PAIRS_PER_WORKER = 25  # 50 entries per worker


class FakeClock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


@pytest.fixture
def log(state: StateDir) -> AuditLog:
    return AuditLog(state, ACTOR, clock=FakeClock())


def change(log: AuditLog, run_id: str = "run-1", step: str = "restart", rc: int = 0) -> str:
    """One intent and its result, as the step executor writes them; returns the intent id."""
    where = AuditWhere(
        run_id, "pg-api-1", "nginx-down", "remediate", step, "systemctl restart nginx"
    )
    intent_id = log.intent(where)
    log.result(where, rc=rc, status="ok" if rc == 0 else "failed", intent_id=intent_id)
    return intent_id


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def sealed(entry: dict[str, Any]) -> bytes:
    """An entry with its hash recomputed, as a forger who read this module would write it."""
    entry = {**entry, "hash": entry_hash(entry)}
    return canonical(entry) + b"\n"


@pytest.fixture
def six(log: AuditLog) -> Path:
    """A log of six entries: three intent/result pairs."""
    for n in range(3):
        change(log, step=f"step-{n}")
    return log.path


# --- entries and their chain -------------------------------------------------------------


def test_an_intent_and_its_result_carry_who_what_where_when(log: AuditLog) -> None:
    intent_id = change(log, rc=3)
    intent, result = entries(log.path)
    assert intent == {
        "seq": 1,
        "at": "2024-05-01T09:42:06+00:00",
        "kind": "intent",
        "actor": ACTOR,
        "run_id": "run-1",
        "host": "pg-api-1",
        "runbook": "nginx-down",
        "phase": "remediate",
        "step": "restart",
        "command": "systemctl restart nginx",
        "prev": GENESIS,
        "hash": intent_id,
    }
    assert {k: result[k] for k in ("seq", "kind", "rc", "status", "intent", "prev")} == {
        "seq": 2,
        "kind": "result",
        "rc": 3,
        "status": "failed",
        "intent": intent_id,
        "prev": intent_id,
    }
    assert result["at"] == "2024-05-01T09:42:07+00:00"
    assert "after_damage" not in intent
    assert "after_damage" not in result


def test_each_hash_is_the_sha256_of_the_canonical_entry_without_it(log: AuditLog) -> None:
    change(log)
    for raw in log.path.read_bytes().splitlines():
        entry = json.loads(raw)
        body = {k: v for k, v in entry.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry["hash"] == hashlib.sha256(text.encode()).hexdigest()
        assert raw == canonical(entry)  # the line on disk is the canonical form itself


def test_the_log_is_private_to_the_user(log: AuditLog) -> None:
    change(log)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_a_result_may_record_a_command_that_never_ran(log: AuditLog) -> None:
    where = AuditWhere("run-1", "h", "rb", "remediate", "s", "reboot")
    intent_id = log.intent(where)
    log.result(where, rc=None, status="error", intent_id=intent_id)
    assert entries(log.path)[1]["rc"] is None
    assert verify(log.path).ok


@pytest.mark.parametrize(
    "field",
    ["run_id", "host", "runbook", "phase", "step", "command"],
)
def test_only_text_is_accepted_so_a_command_object_never_slips_in(
    log: AuditLog, field: str
) -> None:
    where: dict[str, Any] = dict.fromkeys(("run_id", "host", "runbook", "phase", "step"), "x")
    where["command"] = "true"
    where[field] = Command("curl -u admin:hunter22", Redactor.of(["hunter22"]))
    with pytest.raises(TypeError, match=f"audit field {field} must be str"):
        log.intent(AuditWhere(**where))
    assert not log.path.exists()


def test_rc_must_be_an_int_or_none(log: AuditLog) -> None:
    where = AuditWhere("run-1", "h", "rb", "remediate", "s", "true")
    intent_id = log.intent(where)
    with pytest.raises(TypeError, match="rc must be int or None"):
        log.result(where, rc=True, status="ok", intent_id=intent_id)


def test_text_that_is_not_utf8_is_marked_not_lost(log: AuditLog) -> None:
    log.intent(AuditWhere("run-1", "h", "rb", "remediate", "s", "echo caf\udce9 — ünïcode"))
    assert entries(log.path)[0]["command"] == "echo caf? — ünïcode"
    assert "ünïcode".encode() in log.path.read_bytes()  # kept as UTF-8, not \u escapes
    assert verify(log.path).ok


def test_a_clock_without_time_zone_is_refused(state: StateDir) -> None:
    naive = AuditLog(state, ACTOR, clock=lambda: datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.intent(AuditWhere("run-1", "h", "rb", "remediate", "s", "true"))


def test_an_append_reads_only_the_tail(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(300):
        change(log, step=f"step-{n}")
    assert log.path.stat().st_size > 20 * audit_module._BLOCK
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        read.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    change(log, step="one-more")
    assert 0 < sum(read) <= 2 * (audit_module._BLOCK + 1)
    assert verify(log.path) == VerifyResult(True, 602)


def test_a_last_line_longer_than_a_block_is_read_across_blocks(log: AuditLog) -> None:
    long_command = "echo " + "x" * (3 * audit_module._BLOCK)
    for _ in range(2):
        log.intent(AuditWhere("run-1", "h", "rb", "remediate", "s", long_command))
    assert [e["seq"] for e in entries(log.path)] == [1, 2]
    assert verify(log.path).ok


# --- races -------------------------------------------------------------------------------


def assert_complete_chain(path: Path, expected: int) -> None:
    """Verify passes, seq runs 1..N, and every result answers an intent written before it."""
    assert verify(path) == VerifyResult(True, expected)
    logged = entries(path)
    assert [e["seq"] for e in logged] == list(range(1, expected + 1))
    seen: set[str] = set()
    for entry in logged:
        if entry["kind"] == "intent":
            seen.add(entry["hash"])
        else:
            assert entry["intent"] in seen


def test_threads_appending_at_once_keep_one_chain(state: StateDir) -> None:
    threads_n, pairs = 8, 25
    start = threading.Barrier(threads_n)

    def work(n: int) -> None:
        log = AuditLog(state, f"thread-{n}@host")
        start.wait(timeout=60)
        for i in range(pairs):
            change(log, run_id=f"t{n}", step=f"s{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert_complete_chain(state.path / "audit.log", threads_n * pairs * 2)


def _append_from_process(state_path: str, worker: int, barrier: Barrier) -> None:
    """One process of the race: PAIRS_PER_WORKER intent/result pairs, as fast as it can."""
    log = AuditLog(StateDir(Path(state_path)), f"worker-{worker}@host")
    barrier.wait(timeout=120)
    for i in range(PAIRS_PER_WORKER):
        change(log, run_id=f"w{worker}", step=f"s{i}")


def test_processes_appending_at_once_keep_one_chain(state: StateDir) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [
        ctx.Process(target=_append_from_process, args=(str(state.path), n, barrier))
        for n in range(WORKERS)
    ]
    run_all(procs)
    total = WORKERS * PAIRS_PER_WORKER * 2
    assert_complete_chain(state.path / "audit.log", total)
    by_actor = {e["actor"] for e in entries(state.path / "audit.log")}
    assert by_actor == {f"worker-{n}@host" for n in range(WORKERS)}


# --- tampering, found at the exact line --------------------------------------------------


def edit_field(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[2])
    entry["command"] = "true"
    lines[2] = canonical(entry) + b"\n"
    return lines


def delete_line(lines: list[bytes]) -> list[bytes]:
    del lines[3]
    return lines


def reorder_lines(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def forge_with_recomputed_hash(lines: list[bytes]) -> list[bytes]:
    """A well-formed entry chained to line 3: only line 5, which followed line 3, breaks."""
    third = json.loads(lines[2])
    forged = {**third, "seq": 4, "kind": "intent", "command": "rm -rf /", "prev": third["hash"]}
    return [*lines[:3], sealed(forged), *lines[3:]]


def forge_and_renumber(lines: list[bytes]) -> list[bytes]:
    """As above, and every later line renumbered and resealed: the next prev still breaks."""
    lines = forge_with_recomputed_hash(lines)
    for index in range(4, len(lines)):
        entry = json.loads(lines[index])
        lines[index] = sealed({**entry, "seq": index + 1})
    return lines


def forge_unchained(lines: list[bytes]) -> list[bytes]:
    forged = {**json.loads(lines[1]), "seq": 3, "command": "rm -rf /", "prev": GENESIS}
    return [*lines[:2], sealed(forged), *lines[2:]]


def truncate_last_line(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1][:40]
    return lines


def garbage_line(lines: list[bytes]) -> list[bytes]:
    lines[1] = b"oops, an editor was here\n"
    return lines


def json_not_an_entry(lines: list[bytes]) -> list[bytes]:
    lines[1] = b'{"seq": "2"}\n'
    return lines


def reformat_line(lines: list[bytes]) -> list[bytes]:
    lines[4] = json.dumps(json.loads(lines[4]), indent=None).encode() + b"\n"
    return lines


def remove_first_line(lines: list[bytes]) -> list[bytes]:
    return lines[1:]


def replace_first_with_a_fresh_chain(lines: list[bytes]) -> list[bytes]:
    lines[0] = sealed({**json.loads(lines[0]), "prev": "1" * 64})
    return lines


def result_for_a_made_up_intent(lines: list[bytes]) -> list[bytes]:
    """The last result re-pointed at an intent that was never written, properly sealed."""
    last = json.loads(lines[-1])
    lines[-1] = sealed({**last, "intent": "f" * 64})
    return lines


TAMPERING: list[tuple[Callable[[list[bytes]], list[bytes]], int, str]] = [
    (edit_field, 3, "line 3: hash does not match its content (edited?)"),
    (delete_line, 4, "line 4: seq 5 after 3 (line removed or reordered?)"),
    (reorder_lines, 3, "line 3: seq 4 after 2 (line removed or reordered?)"),
    (forge_with_recomputed_hash, 5, "line 5: seq 4 after 4 (line inserted or reordered?)"),
    (forge_and_renumber, 5, "line 5: prev does not match line 4's hash"),
    (forge_unchained, 3, "line 3: prev does not match line 2's hash"),
    (truncate_last_line, 6, "line 6: truncated: no newline at the end"),
    (garbage_line, 2, "line 2: not JSON"),
    (json_not_an_entry, 2, "line 2: not an audit entry"),
    (reformat_line, 5, "line 5: not in the form oorfix writes"),
    (remove_first_line, 1, "line 1: seq 2 after 0 (line removed or reordered?)"),
    (replace_first_with_a_fresh_chain, 1, "line 1: prev is not the start of a chain"),
    (result_for_a_made_up_intent, 6, "line 6: result for intent 'fff"),
]


@pytest.mark.parametrize(
    ("tamper", "line", "reason"), TAMPERING, ids=[t[0].__name__ for t in TAMPERING]
)
def test_tampering_is_found_at_its_line(
    six: Path, tamper: Callable[[list[bytes]], list[bytes]], line: int, reason: str
) -> None:
    assert verify(six) == VerifyResult(True, 6)
    write_lines(six, tamper(lines_of(six)))
    result = verify(six)
    assert (result.ok, result.first_bad, result.entries) == (False, line, line - 1)
    assert result.reason is not None
    assert result.reason.startswith(reason)


def test_cutting_whole_lines_from_the_end_is_beyond_a_keyless_chain(six: Path) -> None:
    # Documented limit: anchor the last hash elsewhere to catch this.
    write_lines(six, lines_of(six)[:4])
    assert verify(six) == VerifyResult(True, 4)


def test_verify_reads_only_up_to_the_given_size(six: Path) -> None:
    size = six.stat().st_size
    with six.open("ab") as handle:
        handle.write(b'{"half an append')
    assert verify(six, size) == VerifyResult(True, 6)
    assert not verify(six).ok


def test_an_empty_log_is_intact(tmp_path: Path) -> None:
    (tmp_path / "audit.log").write_bytes(b"")
    assert verify(tmp_path / "audit.log") == VerifyResult(True, 0)


# --- appending after damage --------------------------------------------------------------


def test_an_append_after_a_cut_line_starts_a_new_line_and_says_so(six: Path, log: AuditLog) -> None:
    cut = lines_of(six)[-1][:40]
    write_lines(six, [*lines_of(six)[:-1], cut])
    change(log, step="after")
    raw = lines_of(six)
    assert raw[5] == cut + b"\n"  # the damaged bytes are kept as they were
    after = json.loads(raw[6])
    assert after["after_damage"] is True
    assert after["prev"] == hashlib.sha256(cut).hexdigest()
    assert after["seq"] == 7
    assert "after_damage" not in json.loads(raw[7])  # the chain carries on normally
    result = verify(six)
    assert (result.ok, result.first_bad, result.reason) == (False, 6, "line 6: not JSON")


def test_an_append_after_an_edited_last_line_chains_to_its_bytes(six: Path, log: AuditLog) -> None:
    lines = lines_of(six)
    edited = json.loads(lines[-1])
    edited["status"] = "ok, honest"
    lines[-1] = canonical(edited) + b"\n"
    write_lines(six, lines)
    log.intent(AuditWhere("run-2", "h", "rb", "remediate", "s", "true"))
    after = entries(six)[-1]
    assert (after["seq"], after["after_damage"]) == (7, True)
    assert after["prev"] == hashlib.sha256(lines[-1][:-1]).hexdigest()
    assert verify(six).first_bad == 6


def test_seq_is_counted_past_unreadable_lines(six: Path, log: AuditLog) -> None:
    with six.open("ab") as handle:
        handle.write(b"junk\nmore junk\n")
    log.intent(AuditWhere("run-2", "h", "rb", "remediate", "s", "true"))
    last = json.loads(lines_of(six)[-1])
    assert (last["seq"], last["after_damage"]) == (9, True)
    assert verify(six).first_bad == 7


def test_a_log_of_nothing_but_junk_still_takes_appends(log: AuditLog) -> None:
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b"junk\n\n")
    log.intent(AuditWhere("run-2", "h", "rb", "remediate", "s", "true"))
    last = json.loads(lines_of(log.path)[-1])
    assert (last["seq"], last["prev"]) == (3, hashlib.sha256(b"").hexdigest())


# --- the command line --------------------------------------------------------------------


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(audit_cli, ["verify", *args])


def test_cli_says_the_chain_is_intact(six: Path, state: StateDir) -> None:
    result = run_cli("--state-dir", str(state.path))
    assert result.exit_code == 0, result.output
    assert result.output == f"audit log {six}: 6 entries, chain intact\n"


def test_cli_reports_the_first_problem_and_exits_1(six: Path, state: StateDir) -> None:
    write_lines(six, delete_line(lines_of(six)))
    result = run_cli("--state-dir", str(state.path))
    assert result.exit_code == 1
    assert result.output == (
        f"audit log {six}: line 4: seq 5 after 3 (line removed or reordered?)"
        " (3 intact entries before it)\n"
    )


def test_cli_checks_a_copy_given_with_file(six: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.log"
    copy.write_bytes(six.read_bytes())
    assert run_cli("--file", str(copy)).exit_code == 0
    write_lines(copy, garbage_line(lines_of(copy)))
    result = run_cli("--file", str(copy))
    assert result.exit_code == 1
    assert "line 2: not JSON" in result.output


def test_cli_defaults_to_the_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    change(AuditLog(StateDir(tmp_path / "xdg" / "oorfix"), ACTOR))
    result = run_cli()
    assert result.exit_code == 0
    assert "2 entries, chain intact" in result.output


def test_cli_with_no_log_has_nothing_to_verify(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "empty"))
    assert result.exit_code == 0
    assert result.output == f"no audit log at {tmp_path / 'empty' / 'audit.log'}\n"


def test_cli_exits_2_when_the_log_cannot_be_read(state: StateDir) -> None:
    (state.path / "audit.log").mkdir(parents=True)
    result = run_cli("--state-dir", str(state.path))
    assert result.exit_code == 2
    assert "cannot read the audit log" in result.output
