"""The settings of a run, with every default in one place; cheap to import (no engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from oorfix.safety.state import default_state_dir

DEFAULT_INVENTORY = Path("inventory")
DEFAULT_RUNBOOKS = Path("runbooks")


@dataclass(frozen=True)
class RunSettings:
    """What to run, where and how carefully; every default of a run is here."""

    runbooks: tuple[str, ...] = ()  # files, directories, or names found in runbook_dir
    runbook_dir: Path = DEFAULT_RUNBOOKS
    inventory_paths: tuple[Path, ...] = (DEFAULT_INVENTORY,)  # repeated -i, merged in order
    vault_password_files: tuple[Path, ...] = ()  # Ansible Vault passwords (run if executable)
    vault_ids: tuple[str, ...] = ()  # [LABEL@]FILE
    limit: str | None = None
    extra: tuple[str, ...] = ()
    forks: int = 10
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts
    accept_new_host_keys: bool = False
    ssh_config: Path | None = None  # -F, like ssh -F; default: ~/.ssh/config if it exists
    connect_timeout: float = 10.0
    serial: str | None = None  # N hosts or P%; wins over the runbooks
    max_fail_percent: float | None = None  # wins over the runbooks
    yes: bool = False  # approve runbooks that require approval
    force: bool = False  # fix outside the runbooks' maintenance windows
    state_dir: Path = field(default_factory=default_state_dir)
    state: str | None = None  # redis://… shared by a team (or a directory); wins over state_dir
    lock_ttl: float = 900.0
    workers: str | None = None  # redis://… of Celery workers that run the hosts' jobs


DEFAULTS = RunSettings(state_dir=Path("$XDG_STATE_HOME/oorfix"))
