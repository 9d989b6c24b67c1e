"""The lab's state files: JSON objects written atomically and updated under a lock.

Lab tools run as separate processes on several hosts at once and share the lab-wide files
(``power.json``, ``repo.json``), so every change is a read-modify-write under an exclusive
``flock`` and every write replaces the file in one rename: a reader sees the old state or
the new one, never half of either.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]


class HardwareError(Exception):
    """A lab tool or operation refused: the message is for the user, ``rc`` the exit code."""

    def __init__(self, message: str, rc: int = 1):
        super().__init__(message)
        self.rc = rc


@dataclass(frozen=True)
class HostPaths:
    """Where one lab host's state and the lab-wide state live."""

    state: Path
    lab: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HostPaths:
        """From ``OORFIX_LAB_STATE`` and ``OORFIX_LAB_DIR`` (default: the lab of ``hosts/NAME``)."""
        state = Path(env.get("OORFIX_LAB_STATE", "."))
        lab = env.get("OORFIX_LAB_DIR")
        return cls(state, Path(lab) if lab else state.resolve().parent.parent)


def read_json(path: Path, default: Callable[[], Json]) -> Json:
    """The JSON object in ``path``, or ``default()`` when the file does not exist."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return default()
    if not isinstance(data, dict):
        raise HardwareError(f"{path}: not a JSON object")
    return data


def write_json(path: Path, data: Json) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def updating(path: Path, default: Callable[[], Json]) -> Iterator[Json]:
    """Read-modify-write ``path`` under an exclusive lock; written back when the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_json(path, default)
        yield data
        write_json(path, data)
