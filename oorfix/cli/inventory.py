"""`oorfix inventory`: the inventory as oorfix reads it, in ansible-inventory's shapes.

So an SRE can compare oorfix's reading with ``ansible-inventory`` and debug a pattern:
``--list`` (groups, children and ``_meta.hostvars``), ``--graph``, ``--host H`` (its variables
and the connection oorfix would open) and ``--hosts PATTERN`` (the names, one per line).
Secret-named and vault-decrypted values are masked, as everywhere oorfix prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from oorfix.app.loading import settings_inventory
from oorfix.cli.common import input_errors_exit, settings_from, warn
from oorfix.cli.options import VAULT_OPTIONS, shared
from oorfix.errors import InputError
from oorfix.inventory.core import Inventory
from oorfix.inventory.patterns import limit_pattern
from oorfix.redact import MASK, mask_secret_values
from oorfix.run.variables import is_secret_name

# Variables oorfix (like Ansible) derives for every host; ansible-inventory does not list them.
DERIVED = frozenset({"inventory_hostname", "inventory_hostname_short", "group_names"})


def masked(variables: Mapping[str, Any]) -> dict[str, Any]:
    """A host's own variables with secrets (by name, or vault-decrypted) masked and derived
    ones left out."""
    return {
        key: MASK if is_secret_name(key) else mask_secret_values(value)
        for key, value in variables.items()
        if key not in DERIVED
    }


def as_list(inventory: Inventory) -> dict[str, Any]:
    """ansible-inventory --list's shape: groups with hosts and children, and _meta.hostvars
    (hosts with variables only, and Ansible's profile name, so the two outputs diff clean)."""
    hostvars = {n: shown for n, h in inventory.hosts.items() if (shown := masked(h.vars))}
    data: dict[str, Any] = {"_meta": {"hostvars": hostvars, "profile": "inventory_legacy"}}
    for name, group in inventory.groups.items():
        entry: dict[str, Any] = {}
        if group.hosts:
            entry["hosts"] = list(group.hosts)
        if group.children:
            entry["children"] = list(group.children)
        if entry or name == "all":
            data[name] = entry
    return data


def graph(inventory: Inventory, group: str = "all", depth: int = 0) -> Iterator[str]:
    """ansible-inventory --graph's lines: ``@group:`` above its children and hosts."""
    indent = "  |" * depth
    yield f"{indent}--@{group}:" if depth else f"@{group}:"
    entry = inventory.groups[group]
    for child in entry.children:
        yield from graph(inventory, child, depth + 1)
    for host in entry.hosts:
        yield f"{indent}  |--{host}"


def host_detail(inventory: Inventory, name: str, ssh_config: Path | None = None) -> dict[str, Any]:
    """A host's variables and the connection oorfix would open to it: for SSH, as resolved
    through ssh_config (``ssh_config``: the run's -F), with where each value came from."""
    host = inventory.hosts.get(name)
    if host is None:
        raise InputError(f"no host {name!r} in the inventory", inventory.path)
    conn = host.connection()
    if conn.kind != "ssh":
        connection = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(conn).items()
        }
        return {**masked(host.vars), "_oorfix_connection": connection}
    # Imported here: paramiko (which parses ssh_config) loads only for an SSH host.
    from oorfix.transport.sshconfig import resolve

    resolution = resolve(conn, ssh_config)
    connection = {
        "kind": conn.kind,
        **resolution.endpoint.describe(),
        "ssh_config": str(resolution.config) if resolution.config is not None else None,
        "warnings": [str(note) for note in resolution.notes],
    }
    return {**masked(host.vars), "_oorfix_connection": connection}


@click.command()
@shared("inventory", *VAULT_OPTIONS, "ssh_config")
@click.option("--list", "as_json", is_flag=True, help="every group and host, as JSON")
@click.option("--graph", "as_graph", is_flag=True, help="the group tree")
@click.option("--host", "host_name", help="one host's variables and connection, as JSON")
@click.option("--hosts", "pattern", help="the hosts a pattern (or @FILE) selects, one per line")
@input_errors_exit
def inventory(
    as_json: bool, as_graph: bool, host_name: str | None, pattern: str | None, **sources: Any
) -> None:
    """Show the inventory as oorfix reads it (compare with ansible-inventory)."""
    chosen = [as_json, as_graph, host_name is not None, pattern is not None]
    if sum(chosen) != 1:
        raise InputError("give exactly one of --list, --graph, --host H or --hosts PATTERN")
    loaded = settings_inventory(settings_from(sources))  # every -i, vault values decrypted
    for warning in loaded.warnings:
        warn(warning)
    if as_json:
        # As ansible-inventory prints it: keys sorted, four spaces.
        click.echo(json.dumps(as_list(loaded), indent=4, sort_keys=True, default=str))
    elif as_graph:
        click.echo("\n".join(graph(loaded)))
    elif host_name is not None:
        detail = host_detail(loaded, host_name, sources.get("ssh_config"))
        for note in detail["_oorfix_connection"].get("warnings", []):
            warn(note)
        click.echo(json.dumps(detail, indent=2, default=str))
    elif pattern is not None:
        for host in loaded.select(limit_pattern(pattern)):
            click.echo(host.name)
