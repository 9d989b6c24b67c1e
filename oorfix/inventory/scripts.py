"""Executable inventory sources, run as Ansible runs them: ``SCRIPT --list`` and, only when its
JSON has no ``_meta.hostvars``, ``SCRIPT --host H`` for each host.

Each run is bounded in time and output, stdout is parsed as JSON (ansible-inventory's --list
shape, ``oorfix.inventory.listjson``), and a failure names the script, the arguments and what
went wrong, with the tail of its stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError
from oorfix.inventory.formats import Builder
from oorfix.inventory.listjson import read_list
from oorfix.inventory.programs import Finished, ProgramError, run_program
from oorfix.inventory.vault import Keyring

SCRIPT_TIMEOUT = 60.0  # seconds for each run of a script (Ansible waits for ever)
MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024  # bytes of stdout from one run
DATA_SUFFIXES = (".yml", ".yaml", ".ini", ".json")  # read as data even when executable
_MAGIC = (b"#!", b"\x7fELF")


def is_script(path: Path) -> bool:
    """Whether an inventory file is a program to run: executable, not a data file's suffix,
    and a script (``#!``) or a binary; an executable text file without ``#!`` is data, as
    Ansible reads it when running it fails."""
    if path.suffix in DATA_SUFFIXES or not os.access(path, os.X_OK):
        return False
    try:
        with path.open("rb") as handle:
            start = handle.read(4)
    except OSError:
        return False
    return start.startswith(_MAGIC)


def read_script(path: Path, builder: Builder, keyring: Keyring) -> None:
    """Run the inventory script ``path`` and record its groups and hosts in ``builder``."""
    data = _run_json(path, ["--list"])
    meta = data.get("_meta") if isinstance(data, dict) else None
    has_hostvars = isinstance(meta, dict) and "hostvars" in meta
    read_list(data, builder, path, keyring, None if has_hostvars else _host_vars(path))


def _host_vars(path: Path) -> Any:
    def host_vars(host: str) -> Any:
        return _run_json(path, ["--host", host], empty={})

    return host_vars


def _run_json(path: Path, args: list[str], empty: Any = None) -> Any:
    """The JSON a run of the script prints; InventoryError naming the run otherwise."""
    run = " ".join(["inventory script", *args])
    try:
        done = run_program(
            [str(path.absolute()), *args], timeout=SCRIPT_TIMEOUT, limit=MAX_SCRIPT_OUTPUT
        )
    except ProgramError as exc:
        raise InventoryError(f"{run}: {exc}", path) from None
    if done.returncode != 0:
        raise _failed(path, f"{run}: exited with status {done.returncode}", done)
    try:
        text = done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise _failed(path, f"{run}: printed text that is not UTF-8", done) from None
    if empty is not None and not text.strip():
        return empty
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise _failed(path, f"{run}: printed invalid JSON ({where})", done) from None


def _failed(path: Path, message: str, done: Finished) -> InventoryError:
    """The error of a failed run, with the tail of what the script said on stderr."""
    tail = done.stderr_tail()
    return InventoryError(f"{message}; stderr: {tail}" if tail else message, path)
