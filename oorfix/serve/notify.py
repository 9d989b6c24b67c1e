"""Notifications of what the service did unattended: a fault escalated, mitigated or fixed.

A run's results become ``Notice``s (``notices_of``); a ``Notifier`` delivers each to every
target that wants its event, as a generic JSON webhook, a Slack incoming webhook or a
PagerDuty Events v2 event. Delivery never holds up a job: ``send`` only queues, and one
worker thread posts in order (so PagerDuty sees a trigger before the resolve that follows
it), retrying network errors, 429 and 5xx with backoff. Every delivery, delivered or not, is
handed to ``record`` (the service writes notifications.jsonl and counts it).

Target URLs and routing keys are secrets (a Slack webhook URL is its own credential): they
are read once at start and never appear in a Delivery, an exception or a log line.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.client import HTTPException
from typing import Any, Final, Literal

from oorfix import __version__
from oorfix.errors import InputError
from oorfix.output.record import HostRecord, RunRecord
from oorfix.redact import Redactor
from oorfix.results import Outcome, Phase, RunMode, utcnow
from oorfix.serve.config import Event, Target

log = logging.getLogger("oorfix.serve.notify")

Post = Callable[[str, bytes, Mapping[str, str], float], int]
DeliveryResult = Literal["delivered", "failed", "dropped"]

_EVENTS: Final[Mapping[Outcome, Event]] = {
    Outcome.FAILED: "escalated",
    # A confirmed fault the run left in place (read-only job, window, lock, approval) needs
    # a person as much as a fix that did not hold.
    Outcome.WOULD_FIX: "escalated",
    Outcome.DEFERRED: "escalated",
    Outcome.LOCKED: "escalated",
    Outcome.MITIGATED: "mitigated",
    Outcome.FIXED: "fixed",
}
_MAX_BACKOFF = 30.0
_MAX_ERROR = 300  # an error is a reason for a log line, not a transcript
_MAX_SLACK_DETAIL = 500
_PD_SUMMARY = 1024  # PagerDuty refuses a longer payload.summary
_PD_DEDUP = 255  # and a longer dedup_key
_SLACK_ICONS: Final[Mapping[str, str]] = {
    "escalated": ":rotating_light:",
    "mitigated": ":warning:",
    "fixed": ":white_check_mark:",
}


@dataclass(frozen=True)
class Notice:
    """One host result worth telling someone about, in the words every kind of target uses."""

    event: Event
    run_id: str
    host: str
    runbook: str
    fault: str
    summary: str  # one line
    detail: str = ""  # the escalation message, or the reason
    trigger: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None  # the run on the dashboard

    @property
    def dedup_key(self) -> str:
        """Stable per host and fault: PagerDuty's resolve finds the trigger it closes by it."""
        return dedup_key(self.host, self.fault)


def dedup_key(host: str, fault: str) -> str:
    """The notices' key of a fault on a host."""
    return f"oorfix/{host}/{fault}"[:_PD_DEDUP]


def notices_of(record: RunRecord, public_url: str | None = None) -> list[Notice]:
    """The notices of a run: failed is escalated, mitigated is mitigated, fixed is fixed."""
    url = f"{public_url.rstrip('/')}/runs/{record.run_id}" if public_url else None
    notices = []
    for result in record.results:
        event = _EVENTS.get(result.status)
        # Only a fix run fixes; anything else reporting fixed is not news worth a page.
        if event is None or (event == "fixed" and record.mode is not RunMode.FIX):
            continue
        notices.append(
            Notice(
                event=event,
                run_id=record.run_id,
                host=result.host,
                runbook=result.runbook,
                fault=result.fault,
                summary=_one_line(f"{result.runbook} on {result.host}: {_what(event, result)}"),
                detail=result.escalation or result.error or "",
                trigger=dict(record.trigger or {}),
                url=url,
            )
        )
    return notices


def _what(event: Event, result: HostRecord) -> str:
    if event == "escalated":
        if result.status is not Outcome.FAILED:
            return f"fault confirmed, left for a person ({result.status})"
        tried = any(s.phase is Phase.REMEDIATE for s in result.steps)
        return "fix did not hold, escalated" if tried else "fault remains, escalated"
    if event == "mitigated":
        return "impact gone, the cause remains"
    if result.explained_by:
        return f"cleared by the fix of {result.explained_by}"
    return "fixed"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- HTTP ------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the payload (and a routing key) somewhere nobody configured:
    # declining it makes urllib raise HTTPError with the 3xx status, returned as it is.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` to an http(s) URL; its status (an error status too), OSError if unsent."""
    # Messages never quote the URL: it is a secret.
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    try:
        _ = parts.port  # before a socket is made: no OverflowError from connect()
    except ValueError:
        raise ValueError("not an http(s) URL: bad port") from None  # its text quotes the URL
    sent = dict(headers)
    if parts.username is not None:
        # urllib would read user:password@ as a host and quote it in its error.
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        sent["Authorization"] = f"Basic {token}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    request = urllib.request.Request(url, body, sent, method="POST")  # noqa: S310 - checked
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(1 << 16)  # drain, so the connection closes cleanly
            return int(response.status)
    except urllib.error.HTTPError as exc:
        try:
            return int(exc.code)
        finally:
            exc.close()  # it holds the response's socket
    except HTTPException as exc:
        # A garbled or cut response is a network error, retried like one.
        raise OSError(f"bad HTTP response ({type(exc).__name__})") from None


# --- deliveries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One notice to one target: as notifications.jsonl records it and metrics count it."""

    target: str
    kind: str
    event: str
    host: str
    runbook: str
    run_id: str
    result: DeliveryResult  # dropped: the queue was full or the notifier closed
    attempts: int
    status: int | None  # the last HTTP status, None when none came back
    error: str  # why it was not delivered; never the URL or a secret
    time: str = field(default_factory=lambda: utcnow().isoformat(timespec="milliseconds"))

    def to_json(self) -> dict[str, Any]:
        """The delivery as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    target: Target
    notice: Notice


class Notifier:
    """Delivers notices to targets from one worker thread; ``send`` never blocks or raises."""

    def __init__(  # noqa: PLR0913 - targets, their secrets, and the seams tests replace
        self,
        targets: Sequence[Target],
        secrets: Mapping[str, str],
        *,
        post: Post = http_post,
        sleep: Callable[[float], None] = time.sleep,
        record: Callable[[Delivery], None] = lambda d: None,
        max_queue: int = 1000,
    ) -> None:
        self.targets = tuple(targets)
        self._secrets = dict(secrets)
        for target in self.targets:
            key = _secret_key(target)
            if key not in self._secrets:
                raise ValueError(f"notify target {target.name}: no secret {key!r} given")
        self._redact = Redactor.of(_secret_variants(self._secrets.values()))
        self._post = post
        self._sleep = sleep
        self._record = record
        self._max_queue = max_queue
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._abandoned = False  # close() ran out of time: no more retries
        self._worker: threading.Thread | None = None

    @classmethod
    def from_config(
        cls,
        targets: Sequence[Target],
        *,
        post: Post = http_post,
        sleep: Callable[[float], None] = time.sleep,
        record: Callable[[Delivery], None] = lambda d: None,
        max_queue: int = 1000,
    ) -> Notifier:
        """A notifier whose secrets are read now; InputError naming the target if one is not."""
        secrets: dict[str, str] = {}
        for target in targets:
            secret = target.url if target.kind != "pagerduty" else target.routing_key
            assert secret is not None  # Target's validation requires it
            try:
                value = secret.read()
            except InputError as exc:
                raise InputError(f"notify target {target.name}: {exc.message}", exc.path) from None
            url = value if target.kind != "pagerduty" else target.events_url
            if not _is_http(url):
                where = secret.where() if target.kind != "pagerduty" else "events_url"
                raise InputError(f"notify target {target.name}: {where} is not an http(s) URL")
            secrets[_secret_key(target)] = value
        return cls(targets, secrets, post=post, sleep=sleep, record=record, max_queue=max_queue)

    def send(self, notice: Notice, only: Sequence[str] | None = None) -> None:
        """Queue ``notice`` for every target that wants its event (and is in ``only``)."""
        for target in self.targets:
            if notice.event not in target.on or (only is not None and target.name not in only):
                continue
            item = _Item(target, notice)
            with self._cond:
                why = "notifier closed" if self._closed else None
                if why is None and len(self._queue) >= self._max_queue:
                    why = f"queue full ({self._max_queue} waiting)"
                if why is None:
                    self._queue.append(item)
                    self._start()
                    self._cond.notify()
            if why is not None:
                log.warning("notification to %s dropped: %s", target.name, why)
                self._done(_delivery(item, "dropped", 0, None, why))

    def close(self, timeout: float | None = None) -> None:
        """Accept no more; deliver what is queued (retries included); wait for the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if not worker.is_alive():
                return
        # Out of time: what is still queued is dropped, and the delivery under way retries no
        # more (a 30 s backoff must not hold up the service's stop).
        with self._cond:
            self._abandoned = True
            left = list(self._queue)
            self._queue.clear()
        for item in left:
            self._done(_delivery(item, "dropped", 0, None, "notifier closed before delivery"))

    # --- the worker ----------------------------------------------------------------------

    def _start(self) -> None:
        # Called under the lock: the thread starts with the first notice, not before.
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="oorfix-notify", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
            try:
                delivery = self._deliver(item)
            except Exception as exc:  # a bug here must not stop every later notification
                log.exception("notification to %s: internal error", item.target.name)
                delivery = _delivery(
                    item, "failed", 0, None, f"internal error: {type(exc).__name__}"
                )
            self._done(delivery)

    def _deliver(self, item: _Item) -> Delivery:
        target = item.target
        url, body, headers = self._request(item)
        status: int | None = None
        error = ""
        attempts = 0
        for attempt in range(1, target.attempts + 1):
            if attempt > 1:
                if self._abandoned:
                    error += "; notifier closed, not retried"
                    break
                self._sleep(backoff(attempt - 1))
            attempts = attempt
            retry = True
            try:
                status = self._post(url, body, headers, target.timeout)
            except OSError as exc:
                status, error = None, self._why(exc)
            except Exception as exc:  # a bad URL: no retry will make it good
                status, error, retry = None, self._why(exc), False
            else:
                if 200 <= status < 300:
                    return _delivery(item, "delivered", attempts, status, "")
                error = f"HTTP {status}"
                retry = status == 429 or status >= 500
            if not retry:
                break
        log.warning(
            "notification to %s (%s) failed after %d attempt(s): %s",
            target.name,
            target.kind,
            attempts,
            error,
        )
        return _delivery(item, "failed", attempts, status, error)

    def _request(self, item: _Item) -> tuple[str, bytes, dict[str, str]]:
        target, notice = item.target, item.notice
        secret = self._secrets[_secret_key(target)]
        if target.kind == "pagerduty":
            url, payload = target.events_url, pagerduty_payload(notice, secret)
        elif target.kind == "slack":
            url, payload = secret, slack_payload(notice)
        else:
            url, payload = secret, webhook_payload(notice)
        headers = {"Content-Type": "application/json", "User-Agent": f"oorfix/{__version__}"}
        return url, json.dumps(payload).encode("utf-8"), headers

    def _why(self, exc: BaseException) -> str:
        """An exception as a short reason with every secret masked."""
        return self._redact(_reason(exc))[:_MAX_ERROR]

    def _done(self, delivery: Delivery) -> None:
        if delivery.result == "delivered":
            log.info("notified %s of %s on %s", delivery.target, delivery.event, delivery.host)
        try:
            self._record(delivery)
        except Exception:  # recording is the service's; a failure there stops nothing here
            log.exception("a notification delivery could not be recorded")


def backoff(retry: int) -> float:
    """Seconds to wait before retry ``retry`` (1, 2, ...): 1, 2, 4 ... at most 30."""
    return min(2.0 ** (retry - 1), _MAX_BACKOFF)


def _delivery(
    item: _Item, result: DeliveryResult, attempts: int, status: int | None, error: str
) -> Delivery:
    notice = item.notice
    return Delivery(
        target=item.target.name,
        kind=item.target.kind,
        event=notice.event,
        host=notice.host,
        runbook=notice.runbook,
        run_id=notice.run_id,
        result=result,
        attempts=attempts,
        status=status,
        error=error,
    )


def _reason(exc: BaseException) -> str:
    # URLError wraps the socket's error; its own text adds nothing but "<urlopen error ...>".
    inner: object = exc
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        inner = exc.reason
    if isinstance(inner, TimeoutError):
        return "timed out"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    text = str(inner)
    name = type(inner).__name__
    return f"{name}: {text}" if text else name


def _secret_key(target: Target) -> str:
    return f"{target.name}.routing_key" if target.kind == "pagerduty" else f"{target.name}.url"


def _secret_variants(values: Iterable[str]) -> list[str]:
    """Each secret, and for a URL the parts that carry its key (path, query, credentials),
    as written and percent-decoded: an error text may quote the request line or a netloc."""
    found: list[str] = []
    for value in values:
        found.append(value)
        parts = urllib.parse.urlsplit(value)
        if parts.scheme and parts.netloc:
            target = f"{parts.path}?{parts.query}" if parts.query else parts.path
            pieces = [target, parts.path, parts.query, parts.password or "", parts.username or ""]
            found += pieces + [urllib.parse.unquote(p) for p in pieces]
    return found


def _is_http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# --- payloads ----------------------------------------------------------------------------


def webhook_payload(notice: Notice) -> dict[str, Any]:
    """The generic webhook's JSON (format version 1)."""
    return {
        "version": 1,
        "event": notice.event,
        "run_id": notice.run_id,
        "host": notice.host,
        "runbook": notice.runbook,
        "fault": notice.fault,
        "summary": notice.summary,
        "detail": notice.detail,
        "trigger": dict(notice.trigger),
        "url": notice.url,
        "dedup_key": notice.dedup_key,
    }


def slack_escape(text: str) -> str:
    """Text Slack shows as written: no link, mention or channel from ``<...>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming webhook message: the summary, a link to the run, the detail."""
    line = f"{_SLACK_ICONS[notice.event]} *{notice.event}*: {slack_escape(notice.summary)}"
    if notice.url:
        # Inside <url|text>, '|' and '>' would end the link early.
        href = slack_escape(notice.url.replace("|", "%7C"))
        line += f" (<{href}|run {slack_escape(notice.run_id.replace('|', ''))}>)"
    detail = _one_line(notice.detail)
    if detail:
        if len(detail) > _MAX_SLACK_DETAIL:
            detail = detail[: _MAX_SLACK_DETAIL - 1] + "…"
        line += "\n" + slack_escape(detail)
    return {"text": line}


def pagerduty_payload(notice: Notice, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events v2 event: escalated and mitigated trigger, fixed resolves."""
    if notice.event == "fixed":
        # A resolve needs nothing more: PagerDuty ignores a payload on it.
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": notice.dedup_key,
        }
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": notice.dedup_key,
        "payload": {
            "summary": notice.summary[:_PD_SUMMARY],
            "source": notice.host,
            "severity": "critical" if notice.event == "escalated" else "warning",
            "component": notice.runbook,
            "group": notice.fault,
            "class": notice.event,
            "custom_details": {
                "run_id": notice.run_id,
                "runbook": notice.runbook,
                "fault": notice.fault,
                "detail": notice.detail,
                "trigger": dict(notice.trigger),
                "url": notice.url,
            },
        },
    }
    if notice.url:
        event["links"] = [{"href": notice.url, "text": f"oorfix run {notice.run_id}"}]
    return event
