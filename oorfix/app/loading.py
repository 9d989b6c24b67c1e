"""Runbooks, inventory and ``-e`` values in, the rendered plan out: offline, no host contacted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oorfix.app.settings import RunSettings
from oorfix.errors import InputError
from oorfix.inventory.core import Inventory, load_inventories
from oorfix.inventory.patterns import limit_pattern
from oorfix.inventory.vault import Keyring
from oorfix.run.planner import PlannedJob, plan_run
from oorfix.runbook.loader import LoadedRunbook, load_runbooks
from oorfix.runbook.yamlsource import load_file


@dataclass(frozen=True)
class Loaded:
    """A run's inventory and rendered plan, with what the caller should tell the user."""

    inventory: Inventory
    planned: list[PlannedJob]
    warnings: tuple[str, ...]
    empty_because: str | None  # why nothing is planned, in the inventory's words


def load_and_plan(settings: RunSettings) -> Loaded:
    """Load the settings' runbooks and inventory and render every job; InputError if bad."""
    loaded = load_runbooks(settings.runbooks, settings.runbook_dir)
    inventory = settings_inventory(settings)
    planned = plan_run(loaded, inventory, parse_extra_vars(settings.extra), settings.limit)
    why = None if planned else _explain_empty(inventory, loaded, settings.limit)
    warnings = (*inventory.warnings, *check_connections(settings, planned))
    return Loaded(inventory, planned, warnings, why)


def check_connections(settings: RunSettings, planned: Sequence[PlannedJob]) -> list[str]:
    """Resolve how every planned SSH host is reached (ssh_config, jump hosts) before any is
    contacted: a bad setting is an InputError now; the warnings are returned."""
    hosts = {p.job.host.name: p.job.host for p in planned}
    hosts |= {t.name: t for p in planned for s in p.steps for t in s.targets}
    conns = [host.connection() for host in hosts.values()]
    ssh = [conn for conn in conns if conn.kind == "ssh"]
    if not ssh:
        return []
    # Imported here: paramiko (which parses ssh_config) loads only when SSH hosts are planned.
    from oorfix.transport.sshconfig import check_hosts

    return check_hosts(ssh, settings.ssh_config)


def settings_inventory(settings: RunSettings) -> Inventory:
    """Every ``-i`` source merged in order, vault values decrypted with the settings' passwords."""
    keyring = Keyring.from_options(settings.vault_password_files, settings.vault_ids)
    return load_inventories(settings.inventory_paths, keyring)


def parse_extra_vars(values: Sequence[str]) -> dict[str, Any]:
    """``-e key=value`` and ``-e @file.yml`` into one mapping (later wins)."""
    extra: dict[str, Any] = {}
    for value in values:
        if value.startswith("@"):
            doc = load_file(Path(value[1:]))
            if not isinstance(doc.data, dict):
                raise InputError("extra vars file must be a mapping", value[1:], 1)
            for key in doc.data:
                if not isinstance(key, str) or not key.isidentifier():
                    raise InputError(
                        f"{key!r} is not a variable name", value[1:], doc.line_of((key,))
                    )
            extra.update(doc.data)
        elif "=" in value and value.split("=", 1)[0].isidentifier():
            key, _, text = value.partition("=")
            extra[key] = text
        else:
            raise InputError(f"-e {value!r}: expected key=value or @file.yml")
    return extra


def _explain_empty(inventory: Inventory, loaded: Sequence[LoadedRunbook], limit: str | None) -> str:
    """Why no runbook has a host: the pattern that matched nothing, in the inventory's words."""
    if limit:
        hosts, why = inventory.select_or_explain(limit_pattern(limit))
        if not hosts and why:
            return f"--limit {why}"
    reasons = []
    for item in loaded:
        _, why = inventory.select_or_explain(item.runbook.hosts)
        reasons.append(f"{item.name}: hosts {why}" if why else f"{item.name}: outside --limit")
    return "; ".join(reasons)
