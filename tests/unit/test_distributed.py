"""The pieces of runs on workers that need no broker: signed tasks, settings, replies."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from oorfix.app.settings import RunSettings
from oorfix.distributed.collector import reply_of
from oorfix.distributed.payload import (
    MAX_AGE_ENV,
    MAX_TASK,
    HostTask,
    TaskRefused,
    digest,
    max_age,
    settings_data,
    settings_from_data,
    worker_key,
)
from oorfix.errors import InputError
from oorfix.output.record import HostRecord

from .test_reports import failed_result, fixed_result

KEY = b"k" * 32
NOW = 1_800_000_000.0


def task(**changes: object) -> HostTask:
    base = HostTask(
        task_id="abc123-0123456789ab",
        issued=NOW,
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


def test_a_task_runs_only_under_its_own_id_and_while_fresh() -> None:
    sent = HostTask.verify(task().sign(KEY), KEY)
    sent.check_delivery("abc123-0123456789ab", NOW + 3599, 3600)
    sent.check_delivery("abc123-0123456789ab", NOW - 299, 3600)  # the worker's clock behind
    with pytest.raises(TaskRefused, match="signed for abc123-0123456789ab: a copy sent again"):
        sent.check_delivery("abc123-ffffffffffff", NOW, 3600)
    with pytest.raises(TaskRefused, match="issued 3601s ago, more than OORFIX_WORKER_MAX_AGE"):
        sent.check_delivery("abc123-0123456789ab", NOW + 3601, 3600)
    with pytest.raises(TaskRefused, match="in the future"):
        sent.check_delivery("abc123-0123456789ab", NOW - 301, 3600)


def test_the_task_id_and_issue_time_are_signed() -> None:
    signed = task().sign(KEY)
    for forged in (
        signed.replace("abc123-0123456789ab", "abc123-ffffffffffff"),
        signed.replace(f'"issued":{NOW}', f'"issued":{NOW + 7200}'),
    ):
        assert forged != signed
        with pytest.raises(TaskRefused, match="bad signature"):
            HostTask.verify(forged, KEY)


@pytest.mark.parametrize("issued", ["1800000000", None, True])
def test_a_task_whose_issue_time_is_not_a_number_is_refused(issued: object) -> None:
    with pytest.raises(TaskRefused, match="issued must be a number"):
        HostTask.verify(task(issued=issued).sign(KEY), KEY)


def test_max_age_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_AGE_ENV, raising=False)
    assert max_age() == 3600
    monkeypatch.setenv(MAX_AGE_ENV, "600")
    assert max_age() == 600
    for bad in ("0", "-5", "soon", "inf", "nan"):
        monkeypatch.setenv(MAX_AGE_ENV, bad)
        with pytest.raises(InputError, match="OORFIX_WORKER_MAX_AGE"):
            max_age()


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


def test_a_password_in_the_state_url_never_travels_in_a_task() -> None:
    settings = RunSettings(state="redis://ops:s3cr%2Ft@redis.example:6380/2?prefix=pay")
    assert settings_data(settings)["state"] == "redis://ops@redis.example:6380/2?prefix=pay"
    assert settings_data(RunSettings(state="redis://:pw@r:6379"))["state"] == "redis://r:6379"
    assert settings_data(RunSettings(state="/var/lib/oorfix"))["state"] == "/var/lib/oorfix"


def test_the_broker_password_from_the_environment_is_quoted_into_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import unquote, urlsplit

    from oorfix.distributed.celeryapp import PASSWORD_ENV, broker_url

    monkeypatch.setenv(PASSWORD_ENV, "p/ss#word@x:1")
    parts = urlsplit(broker_url("redis://redis.example:6379/0"))
    assert (parts.hostname, parts.port, parts.path) == ("redis.example", 6379, "/0")
    assert parts.password is not None
    assert unquote(parts.password) == "p/ss#word@x:1"


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


def test_a_workers_reply_is_trusted_only_with_its_signature_for_its_task() -> None:
    from oorfix.distributed.payload import open_reply, sign_reply

    reply = {"results": [{"host": "pg-api-1", "status": "fixed"}], "worker": "w1"}
    signed = sign_reply(KEY, "run1-000000000001", reply)
    assert open_reply(KEY, "run1-000000000001", signed) == reply
    untrusted = {
        "error": "the result of task run1-000000000001 is not signed with this controller's "
        "OORFIX_WORKER_KEY (a worker with another key, or written by someone else): not trusted"
    }
    forged = [
        reply,  # written to the broker without a signature
        sign_reply(b"x" * 32, "run1-000000000001", reply),  # another key
        {**signed, "reply": {**reply, "worker": "w2"}},  # changed after signing
        {"reply": reply, "mac": 7},
        "SUCCESS",
        None,
    ]
    for result in forged:
        assert open_reply(KEY, "run1-000000000001", result) == untrusted
    # Signed for another task of the run (a result copied over): not this task's.
    other = sign_reply(KEY, "run1-000000000002", reply)
    assert open_reply(KEY, "run1-000000000001", other) == untrusted


@pytest.mark.parametrize(
    ("meta", "reply"),
    [
        ({"status": "SUCCESS", "result": {"results": []}}, {"signed": {"results": []}}),
        ({"status": "REVOKED"}, {"lost": "the task was revoked on the broker, not by this run"}),
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


def test_tasks_waited_for_are_lost_once_the_broker_stops_answering_for_long() -> None:
    from itertools import count

    from oorfix.distributed.collector import Collector

    ticks = count(step=10.0)  # a fake clock: each look is 10 s later than the one before
    collector = Collector(_DeadRedis(), "run1", lost_after=15.0, clock=lambda: next(ticks))
    try:
        slot = collector.watch("run1-000000000001")
        assert slot.done.wait(30), "the slot was never finished"
    finally:
        collector.close()
    assert slot.reply == {"lost": "the broker stopped answering: Connection refused"}


def test_the_plan_digest_covers_what_runs_beyond_the_shown_commands(
    write: Callable[[str, str], Path],
) -> None:
    from oorfix.app.wiring import plan_data
    from oorfix.distributed.payload import plan_digest
    from oorfix.inventory.core import load_inventory
    from oorfix.run.planner import plan_run
    from oorfix.runbook.loader import load_runbook

    base = (
        "name: r\nfault: software.crash\ndetect:\n  - run: test -e /tmp/x\n"
        "remediate:\n  - run: psql -f -\n    stdin: SELECT 1;\n    timeout: 30\n"
    )
    variants = {
        "base": (base, 22),
        "stdin": (base.replace("SELECT 1;", "DROP TABLE payments;"), 22),
        "timeout": (base.replace("timeout: 30", "timeout: 3000"), 22),
        "port": (base, 2222),
    }
    plans = {}
    for name, (text, port) in variants.items():
        runbook = load_runbook(write(f"{name}/r.yml", text))
        inventory = load_inventory(
            write(f"{name}/inv.yml", f"all:\n  hosts:\n    h1: {{ansible_port: {port}}}\n")
        )
        plans[name] = plan_run([runbook], inventory, {})
    shown = {name: plan_data(planned)[0]["steps"] for name, planned in plans.items()}
    assert all(steps == shown["base"] for steps in shown.values())  # the same commands shown
    digests = {name: plan_digest(planned) for name, planned in plans.items()}
    assert len(set(digests.values())) == len(digests)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://ops:s3cret@r:6379/0", "redis://ops:***@r:6379/0"),
        ("redis://:s3cret@r:6379/0?prefix=pay", "redis://:***@r:6379/0?prefix=pay"),
        ("redis://r:6379/0?password=s3cret&db=2", "redis://r:6379/0?password=***&db=2"),
        ("unix:///run/redis.sock?password=s3cret", "unix:///run/redis.sock?password=***"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("redis://ops@r/0", "redis://ops@r/0"),
    ],
)
def test_passwords_are_masked_wherever_the_url_holds_them(url: str, shown: str) -> None:
    from oorfix.safety.redis_client import mask_url

    assert mask_url(url) == shown


def test_workers_need_a_tcp_broker_and_verify_its_tls_certificate() -> None:
    import ssl

    from oorfix.distributed.celeryapp import broker_url, make_app

    with pytest.raises(InputError, match="a redis:// or rediss:// URL"):
        broker_url("unix:///run/redis.sock")
    app = make_app("rediss://broker.example:6380/0")
    try:
        tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        assert (app.conf.broker_use_ssl, app.conf.redis_backend_use_ssl) == (tls, tls)
    finally:
        app.close()
    plain = make_app("redis://broker.example:6379/0")
    try:
        assert not plain.conf.broker_use_ssl
        assert not plain.conf.redis_backend_use_ssl
    finally:
        plain.close()


class _QuietRedis:
    """A Redis that answers and has nothing to say: no task state, no liveness key."""

    def pubsub(self, **_: object) -> _QuietRedis:
        return self

    def psubscribe(self, *_: object) -> None:
        pass

    def get_message(self, **_: object) -> None:
        threading.Event().wait(0.001)  # a real one waits for a message this long, at most

    def pipeline(self, **_: object) -> _QuietRedis:
        self._queued = 0
        return self

    def get(self, _key: str) -> None:
        self._queued += 1

    def exists(self, _key: str) -> None:
        self._queued += 1

    def execute(self) -> list[None]:
        return [None] * self._queued

    def delete(self, *_: object) -> None:
        pass

    def close(self) -> None:
        pass


class _DeadRedis(_QuietRedis):
    """A Redis that stopped answering: every call fails as a lost connection does."""

    def get_message(self, **_: object) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Connection refused")


def test_tasks_no_worker_will_start_are_taken_back_and_end() -> None:
    from itertools import count

    from oorfix.distributed.collector import NO_WORKER, Collector

    taken_back: list[str] = []
    ticks = count(step=1.0)
    collector = Collector(
        _QuietRedis(),
        "run1",
        lost_after=5.0,
        clock=lambda: next(ticks),
        workers_alive=lambda: False,
        take_back=taken_back.append,
    )
    try:
        slot = collector.watch("run1-000000000001")
        assert slot.done.wait(30), "the slot was never finished"
    finally:
        collector.close()
    assert slot.reply == {"error": NO_WORKER}
    assert taken_back == ["run1-000000000001"]


def test_tasks_queued_behind_busy_workers_wait_their_turn() -> None:
    from itertools import count

    from oorfix.distributed.collector import Collector

    asked = threading.Semaphore(0)

    def busy() -> bool:
        asked.release()
        return True  # a worker answers: every one of them is busy with other hosts

    ticks = count(step=1.0)
    taken_back: list[str] = []
    collector = Collector(_QuietRedis(), "run1", 5.0, lambda: next(ticks), busy, taken_back.append)
    try:
        slot = collector.watch("run1-000000000001")
        for _ in range(3):  # asked again and again, as long as nothing is heard
            assert asked.acquire(timeout=30), "the workers were never asked"
    finally:
        collector.close()
    assert not slot.done.is_set()
    assert taken_back == []
