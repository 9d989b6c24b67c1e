"""The pieces of runs on workers that need no broker: signed tasks, settings, replies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from oorfix.app.settings import RunSettings
from oorfix.distributed.collector import reply_of
from oorfix.distributed.payload import (
    MAX_TASK,
    HostTask,
    TaskRefused,
    digest,
    settings_data,
    settings_from_data,
    worker_key,
)
from oorfix.errors import InputError
from oorfix.output.record import HostRecord

from .test_reports import failed_result, fixed_result

KEY = b"k" * 32


def task(**changes: object) -> HostTask:
    base = HostTask(
        run_id="abc123",
        mode="fix",
        host="pg-api-1",
        runbooks=["payment-api-down"],
        approved=[],
        settings=settings_data(RunSettings()),
        plan="0" * 64,
        known_hosts=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_signed_task_verifies_and_round_trips() -> None:
    sent = task(approved=["drain"], known_hosts="f" * 64)
    assert HostTask.verify(sent.sign(KEY), KEY) == sent


@pytest.mark.parametrize(
    ("signed", "why"),
    [
        (task().sign(b"x" * 32), "bad signature"),
        (task().sign(KEY).replace('"pg-api-1"', '"pg-db-1"'), "bad signature"),
        ("no dot at all", "bad signature"),
        (42, "not a signed task"),
        ("a" * (MAX_TASK + 1), "over"),
    ],
)
def test_forged_or_oversized_tasks_are_refused(signed: object, why: str) -> None:
    with pytest.raises(TaskRefused, match=why):
        HostTask.verify(signed, KEY)


def test_a_signed_task_with_unknown_fields_is_refused() -> None:
    import hashlib
    import hmac

    body = '{"evil": 1}'
    mac = hmac.new(KEY, body.encode(), hashlib.sha256).hexdigest()
    with pytest.raises(TaskRefused, match="malformed task"):
        HostTask.verify(f"{mac}.{body}", KEY)


def test_settings_travel_and_come_back_typed() -> None:
    settings = RunSettings(
        runbooks=("runbooks/",),
        inventory_paths=(Path("inv/a.yml"), Path("inv/b.ini")),
        extra=("x=1",),
        known_hosts=Path("/etc/kh"),
        state="redis://s:6379/0",
        yes=True,
        lock_ttl=60.0,
    )
    back = settings_from_data(settings_data(settings))
    for name in ("runbooks", "inventory_paths", "extra", "known_hosts", "state", "yes", "lock_ttl"):
        assert getattr(back, name) == getattr(settings, name)
    assert back.workers is None  # a worker never sends on to other workers
    assert back.forks == RunSettings().forks


def test_settings_a_task_may_not_carry_are_refused() -> None:
    with pytest.raises(TaskRefused, match="unexpected settings"):
        settings_from_data({**settings_data(RunSettings()), "workers": "redis://x"})


def test_the_key_must_be_set_and_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OORFIX_WORKER_KEY", raising=False)
    with pytest.raises(InputError, match="OORFIX_WORKER_KEY"):
        worker_key()
    monkeypatch.setenv("OORFIX_WORKER_KEY", "short")
    with pytest.raises(InputError, match="at least 16 bytes"):
        worker_key()
    monkeypatch.setenv("OORFIX_WORKER_KEY", "s" * 16)
    assert worker_key() == b"s" * 16


def test_digest_is_of_content_not_key_order() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_host_results_come_back_from_their_records() -> None:
    for result in (fixed_result("api-1"), failed_result()):
        record = HostRecord.of(result)
        data = record.model_dump(mode="json")
        assert HostRecord.of(HostRecord.model_validate(data).result()) == record


@pytest.mark.parametrize(
    ("meta", "reply"),
    [
        ({"status": "SUCCESS", "result": {"results": []}}, {"results": []}),
        ({"status": "REVOKED"}, {"skipped": "not started: the run was interrupted"}),
        (
            {"status": "FAILURE", "result": {"exc_type": "WorkerLostError", "exc_message": "9"}},
            {"lost": "worker lost: its process died while the job ran"},
        ),
        (
            {"status": "FAILURE", "result": {"exc_type": "KeyError", "exc_message": "'x'"}},
            {"error": "worker error: KeyError: 'x'"},
        ),
    ],
)
def test_task_states_become_replies(meta: dict[str, object], reply: dict[str, object]) -> None:
    assert reply_of(meta) == reply
