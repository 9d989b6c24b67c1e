"""Notifications: notices from run records, payloads of each kind, delivery to a real local
HTTP receiver with retries and backoff, secrets kept out of errors, a full queue, closing.

Nothing here waits on the clock: ``close()`` drains the worker, Events synchronise a post
held open on purpose, and a fake sleep records the backoff instead of sleeping."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oorfix import __version__
from oorfix.errors import InputError
from oorfix.output.record import RunRecord
from oorfix.redact import MASK
from oorfix.results import HostResult, Outcome, Phase, RunMode, RunResult, StepResult, StepStatus
from oorfix.serve.config import Target
from oorfix.serve.notify import (
    Delivery,
    Notice,
    Notifier,
    backoff,
    http_post,
    notices_of,
    pagerduty_payload,
    slack_payload,
    webhook_payload,
)

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETtoken"  # noqa: S105 - a fake
ROUTING_KEY = "R0UTINGKEYsecret0123456789abcdef"
HEADERS = {"Content-Type": "application/json"}


# --- a real HTTP receiver on loopback --------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    body: Any


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers scripted statuses
    (200 once the script is used up); a 3xx answer points at /elsewhere."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with lock:
                    outer.requests.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    status = outer.statuses.popleft() if outer.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", outer.url("/elsewhere"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback stays loopback even where the environment names an HTTP proxy."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- helpers ---------------------------------------------------------------------------


def target(name: str, kind: str = "webhook", **kw: Any) -> Target:
    secret = "routing_key" if kind == "pagerduty" else "url"
    return Target.model_validate({"name": name, "kind": kind, secret: {"env": "UNUSED"}, **kw})


def notice(event: str = "escalated", **kw: Any) -> Notice:
    fields: dict[str, Any] = {
        "event": event,
        "run_id": "abc123def456",
        "host": "pg-api-1",
        "runbook": "payment-api-down",
        "fault": "software.service_interruption",
        "summary": f"payment-api-down on pg-api-1: {event}",
        "detail": "page the payments on-call",
        "trigger": {"source": "alert", "name": "payment-api-down", "fingerprint": "d3e0"},
        "url": "https://oorfix.example/runs/abc123def456",
    }
    return Notice(**{**fields, **kw})


class Recorder:
    """The seams a test replaces: deliveries recorded, sleeps recorded and never slept."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.delays: list[float] = []

    def notifier(self, targets: list[Target], secrets: Mapping[str, str], **kw: Any) -> Notifier:
        return Notifier(
            targets, secrets, sleep=self.delays.append, record=self.deliveries.append, **kw
        )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


# --- notices from run records ---------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def result(host: str, status: Outcome, **kw: Any) -> HostResult:
    return HostResult(host, "api-down", "software.crash", status, started=at(0), ended=at(1), **kw)


def remediated() -> tuple[StepResult, ...]:
    return (StepResult(Phase.REMEDIATE, "restart", StepStatus.PASSED, started=at(0)),)


def record(*results: HostResult, mode: RunMode = RunMode.FIX, **meta: Any) -> RunRecord:
    return RunRecord.of(RunResult("run0001", T0, at(9), mode, results), meta)


LEFT_IN_PLACE = (Outcome.WOULD_FIX, Outcome.DEFERRED, Outcome.LOCKED)


def test_failed_mitigated_and_fixed_become_notices_and_nothing_else_does() -> None:
    results = [
        result(
            "h-failed",
            Outcome.FAILED,
            steps=remediated(),
            error="still faulty after 2 verification attempt(s)",
            escalation="api down on h-failed: page someone",
        ),
        result("h-mitigated", Outcome.MITIGATED, error="service restored; the cause remains"),
        result("h-fixed", Outcome.FIXED),
    ]
    quiet = [
        result(f"h-{status}", status)
        for status in Outcome
        if status not in (Outcome.FAILED, Outcome.MITIGATED, Outcome.FIXED, *LEFT_IN_PLACE)
    ]
    trigger = {"source": "schedule", "name": "nightly", "job": "job-1"}
    run = record(*results, *quiet, trigger=trigger)
    notices = notices_of(run, "https://oorfix.example/")
    assert [(n.event, n.host) for n in notices] == [
        ("escalated", "h-failed"),
        ("mitigated", "h-mitigated"),
        ("fixed", "h-fixed"),
    ]
    failed, mitigated, fixed = notices
    assert failed.summary == "api-down on h-failed: fix did not hold, escalated"
    assert failed.detail == "api down on h-failed: page someone"  # the escalation first
    assert mitigated.summary == "api-down on h-mitigated: impact gone, the cause remains"
    assert mitigated.detail == "service restored; the cause remains"  # else the reason
    assert fixed.summary == "api-down on h-fixed: fixed"
    assert fixed.detail == ""
    for n in notices:
        assert n.run_id == "run0001"
        assert (n.runbook, n.fault) == ("api-down", "software.crash")
        assert n.url == "https://oorfix.example/runs/run0001"
        assert n.trigger == trigger
        assert n.dedup_key == f"oorfix/{n.host}/software.crash"


def test_a_confirmed_fault_left_in_place_is_escalated_to_a_person() -> None:
    # A read-only job, a closed window, a lock or a missing approval leaves the fault: the
    # on-call must hear of it as much as of a fix that did not hold.
    run = record(*(result(f"h-{status}", status) for status in LEFT_IN_PLACE))
    notices = notices_of(run)
    assert [(n.event, n.host) for n in notices] == [
        ("escalated", f"h-{status}") for status in LEFT_IN_PLACE
    ]
    assert (
        notices[0].summary
        == "api-down on h-would_fix: fault confirmed, left for a person (would_fix)"
    )


def test_a_notice_without_public_url_or_trigger_has_neither() -> None:
    (only,) = notices_of(record(result("h", Outcome.FAILED, error="no remediation")))
    assert only.url is None
    assert only.trigger == {}
    assert only.summary == "api-down on h: fault remains, escalated"  # no fix was tried
    assert only.detail == "no remediation"


def test_fixed_is_news_only_from_a_fix_run() -> None:
    for mode in (RunMode.DRY_RUN, RunMode.DETECT):
        run = record(result("a", Outcome.FIXED), result("b", Outcome.MITIGATED), mode=mode)
        assert [n.event for n in notices_of(run)] == ["mitigated"]


def test_a_fault_cleared_by_another_fix_says_which() -> None:
    run = record(result("a", Outcome.FIXED, explained_by="disk-full"))
    assert notices_of(run)[0].summary == "api-down on a: cleared by the fix of disk-full"


def test_a_summary_is_one_line() -> None:
    run = record(HostResult("h\n\tx", "rb", "f", Outcome.FAILED, started=at(0), ended=at(1)))
    assert notices_of(run)[0].summary == "rb on h x: fault remains, escalated"


# --- payloads ----------------------------------------------------------------------------


def test_webhook_payload_carries_every_field() -> None:
    n = notice("mitigated")
    assert webhook_payload(n) == {
        "version": 1,
        "event": "mitigated",
        "run_id": "abc123def456",
        "host": "pg-api-1",
        "runbook": "payment-api-down",
        "fault": "software.service_interruption",
        "summary": "payment-api-down on pg-api-1: mitigated",
        "detail": "page the payments on-call",
        "trigger": {"source": "alert", "name": "payment-api-down", "fingerprint": "d3e0"},
        "url": "https://oorfix.example/runs/abc123def456",
        "dedup_key": "oorfix/pg-api-1/software.service_interruption",
    }


def test_slack_text_escapes_alert_text_and_links_the_run() -> None:
    n = notice(
        summary="x on h: <!channel> & <https://evil.example|click>",
        detail="line one\nline <@U123> two",
    )
    text = slack_payload(n)["text"]
    first, second = text.split("\n")
    assert first == (
        ":rotating_light: *escalated*: x on h: &lt;!channel&gt; &amp; "
        "&lt;https://evil.example|click&gt; (<https://oorfix.example/runs/abc123def456|run "
        "abc123def456>)"
    )
    assert second == "line one line &lt;@U123&gt; two"
    # The only < and > left are the run's link.
    assert text.count("<") == text.count(">") == 1


def test_slack_text_without_url_or_detail_is_one_line() -> None:
    assert slack_payload(notice("fixed", url=None, detail="")) == {
        "text": ":white_check_mark: *fixed*: payment-api-down on pg-api-1: fixed"
    }


def test_slack_keeps_a_long_detail_short() -> None:
    text = slack_payload(notice(detail="y" * 5000))["text"]
    assert len(text.split("\n")[1]) == 500


def test_pagerduty_triggers_escalations_and_mitigations() -> None:
    escalated = pagerduty_payload(notice("escalated", summary="s" * 2000), ROUTING_KEY)
    assert escalated == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "oorfix/pg-api-1/software.service_interruption",
        "payload": {
            "summary": "s" * 1024,
            "source": "pg-api-1",
            "severity": "critical",
            "component": "payment-api-down",
            "group": "software.service_interruption",
            "class": "escalated",
            "custom_details": {
                "run_id": "abc123def456",
                "runbook": "payment-api-down",
                "fault": "software.service_interruption",
                "detail": "page the payments on-call",
                "trigger": {"source": "alert", "name": "payment-api-down", "fingerprint": "d3e0"},
                "url": "https://oorfix.example/runs/abc123def456",
            },
        },
        "links": [
            {"href": "https://oorfix.example/runs/abc123def456", "text": "oorfix run abc123def456"}
        ],
    }
    mitigated = pagerduty_payload(notice("mitigated", url=None), ROUTING_KEY)
    assert mitigated["event_action"] == "trigger"
    assert mitigated["payload"]["severity"] == "warning"
    assert "links" not in mitigated


def test_pagerduty_resolves_a_fix_by_the_same_dedup_key() -> None:
    assert pagerduty_payload(notice("fixed"), ROUTING_KEY) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": pagerduty_payload(notice("escalated"), ROUTING_KEY)["dedup_key"],
    }


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert [backoff(n) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


# --- delivery to a real receiver ------------------------------------------------------


def test_each_kind_is_posted_as_json_with_our_user_agent(receiver: Receiver, rec: Recorder) -> None:
    targets = [
        target("hook"),
        target("chat", "slack"),
        target("pager", "pagerduty", events_url=receiver.url("/v2/enqueue")),
    ]
    secrets = {
        "hook.url": receiver.url("/hook"),
        "chat.url": receiver.url(SECRET_PATH),
        "pager.routing_key": ROUTING_KEY,
    }
    notifier = rec.notifier(targets, secrets)
    sent = notice("escalated")
    notifier.send(sent)
    notifier.close()
    assert [r.path for r in receiver.requests] == ["/hook", SECRET_PATH, "/v2/enqueue"]
    for got in receiver.requests:
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"] == f"oorfix/{__version__}"
    hook, chat, pager = (r.body for r in receiver.requests)
    assert hook == webhook_payload(sent)
    assert chat == slack_payload(sent)
    assert pager == pagerduty_payload(sent, ROUTING_KEY)
    assert [
        (d.target, d.kind, d.result, d.attempts, d.status, d.error) for d in rec.deliveries
    ] == [
        ("hook", "webhook", "delivered", 1, 200, ""),
        ("chat", "slack", "delivered", 1, 200, ""),
        ("pager", "pagerduty", "delivered", 1, 200, ""),
    ]
    assert rec.delays == []


def test_deliveries_keep_the_order_notices_were_sent(receiver: Receiver, rec: Recorder) -> None:
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    for i in range(20):
        notifier.send(notice(run_id=f"run{i:02d}"))
    notifier.close()
    assert [r.body["run_id"] for r in receiver.requests] == [f"run{i:02d}" for i in range(20)]


def test_a_target_gets_only_the_events_it_is_on_and_only_when_named(
    receiver: Receiver, rec: Recorder
) -> None:
    targets = [target("pages", on=["escalated"]), target("all")]
    secrets = {"pages.url": receiver.url("/pages"), "all.url": receiver.url("/all")}
    notifier = rec.notifier(targets, secrets)
    notifier.send(notice("escalated"))
    notifier.send(notice("fixed"))
    notifier.send(notice("escalated"), only=["all"])
    notifier.send(notice("escalated"), only=[])  # a job that names no target
    notifier.send(notice("fixed"), only=["pages"])  # named, but not on fixed
    notifier.close()
    assert [(r.path, r.body["event"]) for r in receiver.requests] == [
        ("/pages", "escalated"),
        ("/all", "escalated"),
        ("/all", "fixed"),
        ("/all", "escalated"),
    ]
    assert len(rec.deliveries) == 4


def test_a_5xx_is_retried_after_a_second(receiver: Receiver, rec: Recorder) -> None:
    receiver.statuses.extend([500])
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    notifier.send(notice())
    notifier.close()
    assert len(receiver.requests) == 2
    (delivery,) = rec.deliveries
    assert (delivery.result, delivery.attempts, delivery.status, delivery.error) == (
        "delivered",
        2,
        200,
        "",
    )
    assert rec.delays == [1.0]


def test_429_and_5xx_are_retried_until_the_attempts_run_out(
    receiver: Receiver, rec: Recorder
) -> None:
    receiver.statuses.extend([429, 502, 503, 500, 200])
    notifier = rec.notifier([target("hook", attempts=4)], {"hook.url": receiver.url("/hook")})
    notifier.send(notice())
    notifier.close()
    assert len(receiver.requests) == 4
    (delivery,) = rec.deliveries
    assert (delivery.result, delivery.attempts, delivery.status, delivery.error) == (
        "failed",
        4,
        500,
        "HTTP 500",
    )
    assert rec.delays == [1.0, 2.0, 4.0]


def test_a_4xx_gives_up_at_once(receiver: Receiver, rec: Recorder) -> None:
    receiver.statuses.extend([400])
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    notifier.send(notice())
    notifier.close()
    assert len(receiver.requests) == 1
    (delivery,) = rec.deliveries
    assert (delivery.result, delivery.attempts, delivery.status, delivery.error) == (
        "failed",
        1,
        400,
        "HTTP 400",
    )
    assert rec.delays == []


def test_a_redirect_is_not_followed_and_not_retried(receiver: Receiver, rec: Recorder) -> None:
    receiver.statuses.extend([302])
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    notifier.send(notice())
    notifier.close()
    assert [r.path for r in receiver.requests] == ["/hook"]  # never /elsewhere
    (delivery,) = rec.deliveries
    assert (delivery.result, delivery.status, delivery.error) == ("failed", 302, "HTTP 302")


@pytest.mark.parametrize(
    ("attempts", "delays"),
    [
        (1, []),
        (5, [1.0, 2.0, 4.0, 8.0]),
        (8, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
    ],
)
def test_a_refused_connection_is_retried_with_backoff_then_fails(
    closed_port: int,
    rec: Recorder,
    caplog: pytest.LogCaptureFixture,
    attempts: int,
    delays: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{closed_port}{SECRET_PATH}?token=QUERYSECRET"
    notifier = rec.notifier([target("chat", "slack", attempts=attempts)], {"chat.url": url})
    notifier.send(notice())
    notifier.close()
    (delivery,) = rec.deliveries
    assert (delivery.result, delivery.attempts, delivery.status) == ("failed", attempts, None)
    assert delivery.error == "Connection refused"
    assert rec.delays == delays
    assert "SECRET" not in json.dumps(delivery.to_json())
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize(
    "message",
    [
        f"cannot reach http://127.0.0.1:1{SECRET_PATH}",
        f"POST {SECRET_PATH} failed",
        "routing key R0UTINGKEYsecret0123456789abcdef refused",
    ],
)
def test_an_error_quoting_a_secret_is_masked(
    rec: Recorder, caplog: pytest.LogCaptureFixture, message: str
) -> None:
    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        raise OSError(message)

    targets = [target("chat", "slack", attempts=2), target("pager", "pagerduty", attempts=1)]
    secrets = {"chat.url": f"http://127.0.0.1:1{SECRET_PATH}", "pager.routing_key": ROUTING_KEY}
    notifier = rec.notifier(targets, secrets, post=post)
    notifier.send(notice())
    notifier.close()
    assert [d.result for d in rec.deliveries] == ["failed", "failed"]
    for delivery in rec.deliveries:
        assert MASK in delivery.error
        assert "SECRET" not in delivery.error
        assert "secret" not in delivery.error
    assert "SECRET" not in caplog.text


def test_a_bad_url_fails_without_retry_and_without_quoting_it(rec: Recorder) -> None:
    secrets = {"a.url": f"ftp://files.example{SECRET_PATH}", "b.url": "http://h:99999/SECRETx"}
    notifier = rec.notifier([target("a"), target("b")], secrets)
    notifier.send(notice())
    notifier.close()
    assert [(d.result, d.attempts) for d in rec.deliveries] == [("failed", 1), ("failed", 1)]
    assert rec.deliveries[0].error == "ValueError: not an http(s) URL"
    assert all("SECRET" not in d.error for d in rec.deliveries)
    assert rec.delays == []


def test_a_full_queue_drops_and_records_the_notice(rec: Recorder) -> None:
    entered, release = threading.Event(), threading.Event()
    posted: list[str] = []

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        posted.append(json.loads(body)["run_id"])
        entered.set()
        release.wait()
        return 200

    notifier = Notifier(
        [target("hook")],
        {"hook.url": "http://127.0.0.1:1/"},
        post=post,
        record=rec.deliveries.append,
        max_queue=1,
    )
    notifier.send(notice(run_id="first"))
    assert entered.wait(10)  # the worker holds "first": the queue is empty again
    notifier.send(notice(run_id="second"))  # queued
    notifier.send(notice(run_id="third"))  # the queue is full
    assert [(d.run_id, d.result, d.attempts) for d in rec.deliveries] == [("third", "dropped", 0)]
    assert rec.deliveries[0].error == "queue full (1 waiting)"
    release.set()
    notifier.close()
    assert posted == ["first", "second"]
    assert [(d.run_id, d.result) for d in rec.deliveries[1:]] == [
        ("first", "delivered"),
        ("second", "delivered"),
    ]


def test_send_after_close_drops_and_never_raises(receiver: Receiver, rec: Recorder) -> None:
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    notifier.close()
    notifier.send(notice())
    notifier.close()  # twice is fine
    assert receiver.requests == []
    assert [(d.result, d.error) for d in rec.deliveries] == [("dropped", "notifier closed")]


def test_close_delivers_what_is_queued(receiver: Receiver, rec: Recorder) -> None:
    receiver.statuses.extend([503, 503])
    notifier = rec.notifier([target("hook")], {"hook.url": receiver.url("/hook")})
    for i in range(3):
        notifier.send(notice(run_id=f"run{i}"))
    notifier.close()
    assert [(d.run_id, d.result, d.attempts) for d in rec.deliveries] == [
        ("run0", "delivered", 3),
        ("run1", "delivered", 1),
        ("run2", "delivered", 1),
    ]


def test_close_out_of_time_drops_the_queue_and_stops_retrying(rec: Recorder) -> None:
    entered, release = threading.Event(), threading.Event()

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        entered.set()
        release.wait()
        return 503

    notifier = rec.notifier(
        [target("hook", attempts=5)], {"hook.url": "http://127.0.0.1:1/"}, post=post
    )
    notifier.send(notice(run_id="held"))
    notifier.send(notice(run_id="queued"))
    assert entered.wait(10)
    notifier.close(timeout=0)  # the worker is held: nothing more can be delivered in time
    assert [(d.run_id, d.result) for d in rec.deliveries] == [("queued", "dropped")]
    release.set()
    notifier.close()  # joins the worker
    held = rec.deliveries[1]
    assert (held.run_id, held.result, held.attempts, held.status) == ("held", "failed", 1, 503)
    assert held.error == "HTTP 503; notifier closed, not retried"
    assert rec.delays == []


def test_a_failing_recorder_stops_no_delivery(receiver: Receiver) -> None:
    seen: list[str] = []

    def record(delivery: Delivery) -> None:
        seen.append(delivery.run_id)
        raise RuntimeError("disk full")

    notifier = Notifier([target("hook")], {"hook.url": receiver.url("/hook")}, record=record)
    notifier.send(notice(run_id="one"))
    notifier.send(notice(run_id="two"))
    notifier.close()
    assert seen == ["one", "two"]
    assert len(receiver.requests) == 2


def test_a_target_without_its_secret_is_refused() -> None:
    with pytest.raises(ValueError, match=r"hook\.url"):
        Notifier([target("hook")], {})


def test_delivery_json_names_every_field() -> None:
    delivery = Delivery("hook", "webhook", "fixed", "h", "rb", "run1", "delivered", 1, 200, "")
    data = delivery.to_json()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "target",
        "kind",
        "event",
        "host",
        "runbook",
        "run_id",
        "result",
        "attempts",
        "status",
        "error",
        "time",
    }


# --- http_post --------------------------------------------------------------------------


def test_http_post_returns_the_status_of_an_error_too(receiver: Receiver) -> None:
    receiver.statuses.extend([404, 204])
    assert http_post(receiver.url("/a"), b"{}", HEADERS, 5.0) == 404
    assert http_post(receiver.url("/b"), b'{"x": 1}', HEADERS, 5.0) == 204
    assert [(r.path, r.body) for r in receiver.requests] == [("/a", {}), ("/b", {"x": 1})]


def test_http_post_raises_oserror_when_nothing_listens(closed_port: int) -> None:
    with pytest.raises(OSError, match="refused"):
        http_post(f"http://127.0.0.1:{closed_port}/", b"{}", HEADERS, 5.0)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://h/x", "http:///nohost", "http://h:99999/", "hook"]
)
def test_http_post_refuses_what_is_not_http(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        http_post(url, b"{}", HEADERS, 5.0)


def test_http_post_sends_url_credentials_as_basic_auth(receiver: Receiver) -> None:
    url = f"http://user:p%40ss@127.0.0.1:{receiver.port}/hook"
    assert http_post(url, b"{}", HEADERS, 5.0) == 200
    (got,) = receiver.requests
    assert got.headers["Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


# --- from_config ------------------------------------------------------------------------


def test_from_config_reads_each_secret_once(
    receiver: Receiver, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OORFIX_TEST_HOOK", receiver.url("/hook"))
    monkeypatch.setenv("OORFIX_TEST_PD", ROUTING_KEY)
    targets = [
        Target.model_validate(
            {"name": "hook", "kind": "webhook", "url": {"env": "OORFIX_TEST_HOOK"}}
        ),
        Target.model_validate(
            {
                "name": "pd",
                "kind": "pagerduty",
                "routing_key": {"env": "OORFIX_TEST_PD"},
                "events_url": receiver.url("/enqueue"),
            }
        ),
    ]
    notifier = Notifier.from_config(targets, record=rec.deliveries.append)
    monkeypatch.delenv("OORFIX_TEST_HOOK")  # read at start, not at delivery
    notifier.send(notice())
    notifier.close()
    assert [r.path for r in receiver.requests] == ["/hook", "/enqueue"]
    assert receiver.requests[1].body["routing_key"] == ROUTING_KEY
    assert [d.result for d in rec.deliveries] == ["delivered", "delivered"]


def test_from_config_names_the_target_of_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OORFIX_TEST_NOPE", raising=False)
    hook = Target.model_validate(
        {"name": "hook", "kind": "slack", "url": {"env": "OORFIX_TEST_NOPE"}}
    )
    with pytest.raises(InputError, match=r"notify target hook: .*\$OORFIX_TEST_NOPE"):
        Notifier.from_config([hook])


def test_from_config_refuses_a_url_that_is_not_http_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OORFIX_TEST_HOOK", f"hooks.slack.com{SECRET_PATH}")
    hook = Target.model_validate(
        {"name": "hook", "kind": "slack", "url": {"env": "OORFIX_TEST_HOOK"}}
    )
    with pytest.raises(InputError) as caught:
        Notifier.from_config([hook])
    assert str(caught.value) == "notify target hook: $OORFIX_TEST_HOOK is not an http(s) URL"
