"""One host's jobs as a task: what a worker needs to plan them again, signed by the controller.

A task carries no runbook text and no secret: the worker reads runbooks, inventory, vault
and ``secret()`` values from its own copy (the site deploys the same files to controllers
and workers), and the ``plan`` digest proves it rendered the very commands the controller
planned (and showed, and had approved). ``known_hosts`` is the digest of the controller's
file, so a worker never trusts other host keys than the controller. Every task is signed
with HMAC-SHA256 under ``OORFIX_WORKER_KEY``, a secret shared by controllers and workers: the
broker is a network input, and a task that is not signed, or is too big, never runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from oorfix.app.settings import RunSettings
from oorfix.errors import InputError

KEY_ENV = "OORFIX_WORKER_KEY"
MAX_TASK = 1 << 20  # bytes of a signed task; a host's task is a few KB
MIN_KEY = 16  # bytes

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


def digest(data: Any) -> str:
    """sha256 of canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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
    """One host's jobs of one run."""

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
        if not all(isinstance(v, str) for v in (task.run_id, task.mode, task.host, task.plan)):
            raise TaskRefused("malformed task: run_id, mode, host and plan must be text")
        return task
