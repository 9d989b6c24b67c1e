"""One host's jobs as a task: what a worker needs to plan them again, signed by the controller.

A task carries no runbook text and no secret: the worker reads runbooks, inventory, vault
and ``secret()`` values from its own copy (the site deploys the same files to controllers
and workers), and the ``plan`` digest proves it rendered the very commands the controller
planned (and showed, and had approved). ``known_hosts`` is the digest of the controller's
file, so a worker never trusts other host keys than the controller. Every task is signed
with HMAC-SHA256 under ``OORFIX_WORKER_KEY``, a secret shared by controllers and workers: the
broker is a network input, and a task that is not signed, or is too big, never runs.

Whoever can write to the broker can also copy a signed task. So a task is bound to its Celery
id and its issue time, both signed: a worker refuses a task delivered under another id than
the one signed (a copy sent again under a new id), or issued more than
``OORFIX_WORKER_MAX_AGE`` seconds ago (default an hour: a copy replayed later, or a task left
queued by a controller that died), and claims each id once, for longer than that, so the
same copy never runs twice.

A worker's reply comes back through the broker too, so it is signed the same way, bound to
its task id (``sign_reply``): a result written there by anyone else is the host's error,
never its success.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from oorfix.app.settings import RunSettings
from oorfix.app.wiring import plan_data
from oorfix.errors import InputError
from oorfix.inventory.hosts import HostConnection
from oorfix.run.planner import PlannedJob
from oorfix.safety.redis_client import without_password

KEY_ENV = "OORFIX_WORKER_KEY"
MAX_TASK = 1 << 20  # bytes of a signed task; a host's task is a few KB
MIN_KEY = 16  # bytes
MAX_AGE_ENV = "OORFIX_WORKER_MAX_AGE"
DEFAULT_MAX_AGE = 3600.0  # seconds; tasks are sent as their hosts start, not queued for long
CLOCK_SKEW = 300.0  # seconds a controller's clock may be ahead of a worker's

# The settings a worker plans and runs with; the rest are the controller's alone.
_SENT = (
    "runbooks",
    "runbook_dir",
    "inventory_paths",
    "vault_password_files",
    "vault_ids",
    "extra",
    "known_hosts",
    "ssh_config",
    "connect_timeout",
    "yes",
    "force",
    "state_dir",
    "state",
    "lock_ttl",
)


class TaskRefused(Exception):
    """A task a worker must not run: unsigned, forged, malformed or too big."""


def worker_key() -> bytes:
    """The shared signing key from the environment; InputError when missing or short."""
    key = os.environ.get(KEY_ENV, "").encode()
    if len(key) < MIN_KEY:
        raise InputError(
            f"runs on workers need {KEY_ENV}: a secret of at least {MIN_KEY} bytes shared "
            "by controllers and workers (it signs every task)"
        )
    return key


def max_age() -> float:
    """Seconds after its issue a task is still run (``OORFIX_WORKER_MAX_AGE``)."""
    text = os.environ.get(MAX_AGE_ENV, "")
    if not text:
        return DEFAULT_MAX_AGE
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise InputError(f"{MAX_AGE_ENV}={text!r}: a number of seconds above 0")
    return value


def settings_data(settings: RunSettings) -> dict[str, Any]:
    """The settings a worker needs, as JSON-ready data."""
    data = asdict(settings)
    out: dict[str, Any] = {}
    for name in _SENT:
        value = data[name]
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) for v in value]
        elif name == "state" and value is not None:
            # The broker keeps tasks: a password in --state stays with the controller, and
            # workers take theirs from OORFIX_STATE_PASSWORD.
            value = without_password(value)
        out[name] = value
    return out


def settings_from_data(data: dict[str, Any]) -> RunSettings:
    """RunSettings from ``settings_data``; TaskRefused for anything else."""
    known = {f.name: f for f in fields(RunSettings)}
    if set(data) - set(_SENT):
        raise TaskRefused(f"unexpected settings {sorted(set(data) - set(_SENT))}")
    values: dict[str, Any] = {}
    try:
        for name, value in data.items():
            kind = str(known[name].type)
            if name in ("inventory_paths", "vault_password_files"):
                values[name] = tuple(Path(v) for v in value)
            elif name in ("runbooks", "extra", "vault_ids"):
                values[name] = tuple(str(v) for v in value)
            elif "Path" in kind:
                values[name] = None if value is None else Path(value)
            else:
                values[name] = value
        return RunSettings(**values)
    except (TypeError, ValueError) as exc:
        raise TaskRefused(f"bad settings: {exc}") from None


def _reply_mac(key: bytes, task_id: str, reply: Any) -> str:
    body = json.dumps(reply, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = f"{task_id}\n{body}".encode("utf-8", "surrogatepass")
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def sign_reply(key: bytes, task_id: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A worker's reply to ``task_id``, signed for the controller."""
    return {"reply": reply, "mac": _reply_mac(key, task_id, reply)}


def open_reply(key: bytes, task_id: str, signed: object) -> dict[str, Any]:
    """The reply inside ``signed`` if a worker with the key signed it for ``task_id``, else an
    error reply saying so (the result in the broker was not the worker's)."""
    if isinstance(signed, dict) and isinstance(signed.get("reply"), dict):
        mac = signed.get("mac")
        expected = _reply_mac(key, task_id, signed["reply"])
        if isinstance(mac, str) and hmac.compare_digest(mac.encode(), expected.encode()):
            reply: dict[str, Any] = signed["reply"]
            return reply
    return {
        "error": f"the result of task {task_id} is not signed with this controller's "
        f"{KEY_ENV} (a worker with another key, or written by someone else): not trusted"
    }


def digest(data: Any) -> str:
    """sha256 of canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def plan_digest(planned: Sequence[PlannedJob]) -> str:
    """What a worker must plan exactly as the controller did: the rendered commands (as shown
    and approved), each runbook's whole definition (a step's input, conditions and time
    limit, the windows, approval and budget) and how each host is reached."""
    return digest(
        {
            "plan": plan_data(planned),
            "runbooks": {
                p.job.runbook_name: p.job.runbook.model_dump(mode="json") for p in planned
            },
            "hosts": {p.job.host.name: _reached(p.job.host.connection()) for p in planned},
        }
    )


def _reached(conn: HostConnection) -> list[Any]:
    key = None if conn.key_file is None else str(conn.key_file)
    config = None if conn.ssh_config is None else str(conn.ssh_config)
    return [conn.kind, conn.address, conn.port, conn.user, key, [*conn.ssh_args], config]


def file_digest(path: Path | None) -> str | None:
    """sha256 of a file's bytes; None when there is no such file."""
    if path is None:
        return None
    try:
        return hashlib.sha256(path.expanduser().read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class HostTask:
    """One host's jobs of one run, as one Celery task."""

    task_id: str  # the Celery task id it is sent under
    issued: float  # when the controller sent it, seconds since the epoch
    run_id: str
    mode: str  # a RunMode value
    host: str
    runbooks: list[str]  # the host's jobs, in order
    approved: list[str]  # runbooks requiring approval that the controller's operator approved
    settings: dict[str, Any]
    plan: str  # digest of the host's rendered plan on the controller
    known_hosts: str | None  # digest of the controller's known_hosts file

    def sign(self, key: bytes) -> str:
        """The task as signed text: ``<hmac hex>.<json>``."""
        body = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        return f"{mac}.{body}"

    @classmethod
    def verify(cls, signed: object, key: bytes) -> HostTask:
        """The task in ``signed`` if its signature holds; TaskRefused otherwise."""
        if not isinstance(signed, str):
            raise TaskRefused("not a signed task")
        if len(signed) > MAX_TASK:
            raise TaskRefused(f"task over {MAX_TASK} bytes")
        mac, dot, body = signed.partition(".")
        expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        if not dot or not hmac.compare_digest(mac.encode(), expected.encode()):
            raise TaskRefused("bad signature (is OORFIX_WORKER_KEY the controller's?)")
        try:
            data = json.loads(body)
            task = cls(**data)
        except (ValueError, TypeError) as exc:
            raise TaskRefused(f"malformed task: {exc}") from None
        texts = (task.task_id, task.run_id, task.mode, task.host, task.plan)
        if not all(isinstance(v, str) for v in texts):
            raise TaskRefused("malformed task: task_id, run_id, mode, host and plan must be text")
        if isinstance(task.issued, bool) or not isinstance(task.issued, int | float):
            raise TaskRefused("malformed task: issued must be a number")
        return task

    def check_delivery(self, task_id: str, now: float, oldest: float) -> None:
        """TaskRefused unless this task came under its own id and at most ``oldest`` seconds
        after it was issued (``now`` on the worker's clock)."""
        if task_id != self.task_id:
            raise TaskRefused(
                f"delivered as {task_id}, signed for {self.task_id}: a copy sent again"
            )
        age = now - self.issued
        if age > oldest:
            raise TaskRefused(
                f"issued {age:.0f}s ago, more than {MAX_AGE_ENV}={oldest:g}: "
                "replayed, or left queued by a controller that stopped"
            )
        if age < -CLOCK_SKEW:
            raise TaskRefused(f"issued {-age:.0f}s in the future: is this worker's clock right?")
