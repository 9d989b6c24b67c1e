"""The state directory: what oorfix keeps between runs (locks, budgets, run records).

Every read-modify-write of shared state happens inside ``StateDir.mutex(name)``, which
excludes other threads of this process and other processes on this machine. Files are
replaced atomically (write a temporary file, then rename), so a reader outside the mutex
sees either the old or the new content, never half of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 120  # leaves room for suffixes under the usual 255-byte file name limit

# One threading.Lock per mutex file. flock on separately opened fds does exclude threads
# on Linux, but where flock is emulated with per-process POSIX locks (some NFS setups) it
# would not; the thread lock keeps the guarantee independent of the filesystem.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _reset_thread_locks() -> None:
    """Forget thread locks in a forked child: a lock held by a parent thread never frees."""
    global _thread_locks_guard
    _thread_locks.clear()
    _thread_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_reset_thread_locks)


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/oorfix``, or ``~/.local/state/oorfix`` when that is unset."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "oorfix"


def safe_name(name: str) -> str:
    """``name`` as a file name: kept when it is [A-Za-z0-9._-] only, else mapped plus a hash.

    The hash of the original name keeps ``a/b`` and ``a:b`` apart although both map to
    ``a_b``; a leading dot is mapped too, so no name becomes hidden, ``.`` or ``..``; an
    overlong name is cut short (the hash still tells it apart).
    """
    if _SAFE.fullmatch(name) and not name.startswith(".") and len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    mapped = _UNSAFE_CHAR.sub("_", name)[: _MAX_NAME - 11]
    if mapped.startswith("."):
        mapped = "_" + mapped[1:]
    return f"{mapped}_{digest}"


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` by rename, so no reader sees a partial file."""
    # Same directory as the target, so the rename cannot cross file systems.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append_json_line(path: Path, data: object) -> None:
    """Append ``data`` as one JSON line to ``path`` (callers hold the relevant mutex)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(data, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _thread_lock(key: str) -> threading.Lock:
    """The process-wide thread lock for one mutex file."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


class StateDir:
    """One state directory and its parts: ``locks/``, ``budget/`` and ``runs/``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    @property
    def locks(self) -> Path:
        """Per-host remediation locks."""
        return self.path / "locks"

    @property
    def budget(self) -> Path:
        """Remediation budgets, one file per runbook and host."""
        return self.path / "budget"

    @property
    def runs(self) -> Path:
        """Run records."""
        return self.path / "runs"

    def ensure(self) -> None:
        """Create the directory and its parts, private to the user (0o700)."""
        # Only the parents above path get default permissions: they are the user's own.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for directory in (self.path, self.locks, self.budget, self.runs):
            directory.mkdir(mode=0o700, exist_ok=True)

    @contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """Hold an exclusive lock named ``name`` across threads and processes.

        Not re-entrant: taking the same mutex twice in one thread deadlocks. A process
        that dies while holding it releases it (the kernel drops flock with the fd).
        """
        self.ensure()
        lock_path = self.path / f".{safe_name(name)}.lock"
        with _thread_lock(str(lock_path.resolve())):
            # A fresh fd per call: flock belongs to the open file description, so a shared
            # or dup'd fd would let two holders in at once.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the only fd on the description releases the flock
