"""The audit log: one hash-chained JSON line before (intent) and after (result) each change.

``StateDir.path / "audit.log"`` holds one entry a line, in canonical JSON (sorted keys, no
spaces, UTF-8). Every entry names who (``actor``), which run, host, runbook, phase and step,
the rendered command as printed (secrets masked by the caller), and when (``at``, ISO UTC).
A result carries ``rc``, ``status`` and ``intent``: the id of its intent, which is that
entry's hash. ``seq`` counts entries from 1; ``prev`` is the previous entry's ``hash``
(``GENESIS`` for the first); ``hash`` is the sha256 of the entry without its ``hash``.

Appends happen under ``state.mutex("audit")``, so threads and processes never interleave or
fork the chain. An append never fails because of earlier damage: when the last line is
unreadable or edited, the new entry chains to the sha256 of that line's bytes and says
``"after_damage": true``, and ``verify`` still reports the damaged line.

What a chain without a secret key cannot prove: that nothing was cut from the END of the
file, or that someone with write access did not rewrite the whole chain. Ship the log (or
its last hash) elsewhere to anchor it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from oorfix.results import utcnow
from oorfix.safety.state import StateDir

AUDIT_LOG = "audit.log"
MUTEX = "audit"
GENESIS = "0" * 64
_BLOCK = 8192  # tail reads: one block holds the last line of any ordinary log
_KINDS = ("intent", "result")

Entry = dict[str, Any]


def audit_path(state: StateDir) -> Path:
    """Where the audit log of a state directory lives."""
    return state.path / AUDIT_LOG


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The one byte form of an entry, used both on disk and for hashing."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The sha256 of an entry's canonical form without its ``hash`` field."""
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _text(name: str, value: object) -> str:
    """``value`` as plain text that stays valid UTF-8; TypeError for anything but str."""
    if not isinstance(value, str):
        # A Command object would print masked, but only a str proves the caller chose the text.
        raise TypeError(f"audit field {name} must be str, not {type(value).__name__}")
    # Lone surrogates (from undecodable bytes) cannot be written as UTF-8: mark them instead.
    return value.encode("utf-8", "replace").decode("utf-8")


def _iso(moment: datetime) -> str:
    """An aware datetime as ISO text in UTC."""
    if moment.tzinfo is None:
        raise ValueError("the audit clock must return timezone-aware times")
    return moment.astimezone(UTC).isoformat()


def _parse(raw: bytes) -> Entry | None:
    """A line as an entry with the chain fields typed right, else None."""
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(entry, dict):
        return None
    seq = entry.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    chained = isinstance(entry.get("prev"), str) and isinstance(entry.get("hash"), str)
    return entry if chained else None


def _content_problem(entry: Entry, raw: bytes) -> str | None:
    """Why a parsed line is not an entry as oorfix wrote it, or None."""
    if entry_hash(entry) != entry["hash"]:
        return "hash does not match its content (edited?)"
    if canonical(entry) != raw:
        return "not in the form oorfix writes (reformatted or edited?)"
    return None


# --- appending ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tail:
    """What the next entry chains to."""

    prev: str
    seq: int
    damaged: bool = False
    needs_newline: bool = False


def _reverse_lines(fd: int, end: int) -> Iterator[bytes]:
    """The lines of ``fd`` before offset ``end``, last first, read backwards in blocks."""
    carry = b""
    while end > 0:
        start = max(0, end - _BLOCK)
        parts = (os.pread(fd, end - start, start) + carry).split(b"\n")
        carry = parts[0]  # may continue in the block before
        yield from reversed(parts[1:])
        end = start
    yield carry


def _read_tail(fd: int) -> _Tail:
    """The hash and seq to chain to, from the last line only (unless it is damaged)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return _Tail(GENESIS, 0)
    ends_clean = os.pread(fd, 1, size - 1) == b"\n"
    lines = _reverse_lines(fd, size - 1 if ends_clean else size)
    last = next(lines)
    entry = _parse(last)
    # A missing final newline is damage too: our writes put line and newline in one write().
    if ends_clean and entry is not None and _content_problem(entry, last) is None:
        return _Tail(entry["hash"], entry["seq"])
    seq = _seq_of_damaged(entry, lines)
    return _Tail(hashlib.sha256(last).hexdigest(), seq, True, not ends_clean)


def _seq_of_damaged(entry: Entry | None, earlier: Iterator[bytes]) -> int:
    """The seq a damaged last line stands for: its own, else counted from a readable one."""
    if entry is not None:
        return int(entry["seq"])
    back = 0
    for back, raw in enumerate(earlier, start=1):
        readable = _parse(raw)
        if readable is not None:
            return int(readable["seq"]) + back
    return back + 1  # no readable line at all: count the lines


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte (O_APPEND puts them at the end)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable, not only its data."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class AuditWhere:
    """What an intent and its result share: which run, host, runbook, phase, step, command."""

    run_id: str
    host: str
    runbook: str
    phase: str
    step: str
    command: str  # as printed: the caller masks secrets

    def fields(self) -> Entry:
        """The fields as entry data, each checked to be text."""
        names = ("run_id", "host", "runbook", "phase", "step", "command")
        return {name: _text(name, getattr(self, name)) for name in names}


class CommandAudit(Protocol):
    """Where a run records each command that may change a host, before and after it runs."""

    def intent(self, where: AuditWhere) -> str:
        """Record the intent; returns its id."""
        ...

    def result(self, where: AuditWhere, rc: int | None, status: str, intent_id: str) -> None:
        """Record how the intent ``intent_id`` ended."""
        ...


class NoAudit:
    """The audit of a run that sends no change (dry-run, diagnose): records nothing."""

    def intent(self, where: AuditWhere) -> str:
        """Nothing to record; an empty id."""
        return ""

    def result(self, where: AuditWhere, rc: int | None, status: str, intent_id: str) -> None:
        """Nothing to record."""


class ChainedAudit:
    """Intent and result entries for one actor (``user@machine``), chained by ``_append``."""

    def __init__(self, actor: str, clock: Callable[[], datetime] = utcnow) -> None:
        self._actor = _text("actor", actor)
        self._clock = clock

    def intent(self, where: AuditWhere) -> str:
        """Record that a command is about to run; returns the entry's id for its result."""
        return self._append({"kind": "intent", **where.fields()})

    def result(self, where: AuditWhere, rc: int | None, status: str, intent_id: str) -> None:
        """Record how the command of intent ``intent_id`` ended (rc None: it never ran)."""
        if rc is not None and (not isinstance(rc, int) or isinstance(rc, bool)):
            raise TypeError(f"audit field rc must be int or None, not {type(rc).__name__}")
        outcome = {
            "rc": rc,
            "status": _text("status", status),
            "intent": _text("intent", intent_id),
        }
        self._append({"kind": "result", **where.fields(), **outcome})

    def _append(self, body: Entry) -> str:
        """Chain ``body`` to the last entry and store it; returns its hash."""
        raise NotImplementedError

    def _entry(self, body: Entry, prev: str, seq: int, damaged: bool = False) -> Entry:
        """``body`` with who, when and the chain fields, as entry ``seq`` after ``prev``."""
        entry: Entry = {**body, "seq": seq, "at": _iso(self._clock())}
        entry.update(actor=self._actor, prev=prev)
        if damaged:
            entry["after_damage"] = True
        entry["hash"] = entry_hash(entry)
        return entry


class AuditLog(ChainedAudit):
    """The audit log of a state directory: one file, appended under the directory's mutex."""

    def __init__(self, state: StateDir, actor: str, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(actor, clock)
        self._state = state

    @property
    def path(self) -> Path:
        """The log file."""
        return audit_path(self._state)

    @property
    def where(self) -> str:
        """Where the log lives, for messages."""
        return str(self.path)

    def exists(self) -> bool:
        """Whether the log file exists."""
        return self.path.exists()

    def verify(self) -> VerifyResult:
        """``verify_state`` of this log's state directory."""
        return verify_state(self._state)

    def export(self, out: BinaryIO) -> int:
        """Copy the log up to a size no append is halfway through; the lines copied."""
        with self._state.mutex(MUTEX):
            size = self.path.stat().st_size
        count = 0
        with self.path.open("rb") as handle:
            for raw in _lines(handle, size):
                out.write(raw)
                count += 1
        return count

    def _append(self, body: Entry) -> str:
        """Chain ``body`` to the last entry and append it durably; returns its hash."""
        with self._state.mutex(MUTEX):
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                tail = _read_tail(fd)
                entry = self._entry(body, tail.prev, tail.seq + 1, tail.damaged)
                prefix = b"\n" if tail.needs_newline else b""  # keep a cut line apart from ours
                _write_all(fd, prefix + canonical(entry) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        return str(entry["hash"])


# --- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``: ``entries`` counts the intact entries before any damage."""

    ok: bool
    entries: int
    first_bad: int | None = None  # 1-based line number
    reason: str | None = None


class _Chain:
    """The state of a walk along the chain: the last hash and seq, and unanswered intents."""

    def __init__(self) -> None:
        self.prev = GENESIS
        self.seq = 0
        self.open_intents: set[str] = set()  # only those without a result yet: bounded memory

    def check(self, number: int, raw: bytes) -> str | None:
        """Why line ``number`` breaks the chain, or None (and the chain moves on)."""
        if not raw.endswith(b"\n"):
            return "truncated: no newline at the end (write cut short?)"
        line = raw[:-1]
        entry = _parse(line)
        if entry is None:
            return "not JSON" if not _is_json(line) else "not an audit entry (seq, prev, hash)"
        problem = (
            _content_problem(entry, line)
            or self._link_problem(number, entry)
            or self._intent_problem(entry)
        )
        if problem is None:
            self.prev, self.seq = entry["hash"], entry["seq"]
        return problem

    def _link_problem(self, number: int, entry: Entry) -> str | None:
        """Why an entry does not follow the previous one, or None."""
        seq = entry["seq"]
        if seq != self.seq + 1:
            hint = "line removed or reordered?" if seq > self.seq else "line inserted or reordered?"
            return f"seq {seq} after {self.seq} ({hint})"
        if entry["prev"] != self.prev:
            if number == 1:
                return "prev is not the start of a chain (lines removed from the start?)"
            return f"prev does not match line {number - 1}'s hash (line removed or reordered?)"
        return None

    def _intent_problem(self, entry: Entry) -> str | None:
        """Why an entry's kind or intent link is wrong, or None (and track open intents)."""
        kind = entry.get("kind")
        if kind == "intent":
            self.open_intents.add(entry["hash"])
            return None
        if kind != "result":
            return f"kind {kind!r} is neither intent nor result"
        intent = entry.get("intent")
        if not isinstance(intent, str) or intent not in self.open_intents:
            return f"result for intent {intent!r}, which no earlier line left open"
        self.open_intents.discard(intent)
        return None


def _is_json(raw: bytes) -> bool:
    """Whether ``raw`` parses as JSON at all."""
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _lines(handle: BinaryIO, end: int) -> Iterator[bytes]:
    """The lines of ``handle`` up to byte ``end``, streamed, the last one cut at ``end``."""
    remaining = end
    for raw in handle:
        if remaining <= 0:
            return
        yield raw[:remaining]
        remaining -= len(raw)


def verify_lines(lines: Iterable[bytes]) -> VerifyResult:
    """Walk a log's lines (each with its newline) once; report the first broken or edited one."""
    chain = _Chain()
    number = 0
    for number, raw in enumerate(lines, start=1):
        problem = chain.check(number, raw)
        if problem is not None:
            return VerifyResult(False, number - 1, number, f"line {number}: {problem}")
    return VerifyResult(True, number)


def verify(path: Path, end: int | None = None) -> VerifyResult:
    """Walk the log file once and report its first broken or edited line.

    Only the first ``end`` bytes are read (default: the size when opened), so lines
    appended meanwhile are not half-read; ``verify_state`` takes that size under the mutex.
    """
    with Path(path).open("rb") as handle:
        limit = os.fstat(handle.fileno()).st_size if end is None else end
        return verify_lines(_lines(handle, limit))


def verify_state(state: StateDir) -> VerifyResult:
    """``verify`` the log of a state directory, up to its size between two appends."""
    path = audit_path(state)
    with state.mutex(MUTEX):  # only long enough to see a size no append is halfway through
        size = path.stat().st_size
    return verify(path, size)
