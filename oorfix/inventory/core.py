"""Ansible-compatible inventories: loading, group_vars/host_vars, variable precedence, selection.

Variable precedence, lowest first, as Ansible ranks it: every group's inline vars (the ``all``
group, then the others by depth: a child beats its parent; at equal depth
``ansible_group_priority``, then the name, decide and the later wins), then ``group_vars/all``,
then the other groups' ``group_vars/`` files in the same order, then the host's inline vars,
then its ``host_vars/`` files. Several sources (repeated ``-i``) are read in order into one
inventory, as Ansible reads them: a later source wins at the same level, and each source's own
group_vars/ and host_vars/ count, a later source's winning. Runbook vars and extra vars are
merged by the caller. Reading one file is ``oorfix.inventory.sources`` (YAML and INI parsers in
``formats``, scripts and ansible-inventory JSON in ``scripts`` and ``listjson``, Ansible Vault
in ``vault``); host patterns are ``oorfix.inventory.patterns``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError
from oorfix.inventory.formats import (
    MAGIC_GROUPS,
    Builder,
    Draft,
    GroupDraft,
    expand_host,
    parse_yaml,
)
from oorfix.inventory.formats import expand_host_range as expand_host_range  # re-exported
from oorfix.inventory.hosts import Host
from oorfix.inventory.patterns import explain_no_match, select_hosts
from oorfix.inventory.patterns import (
    split_pattern as split_pattern,  # re-exported: callers import it here
)
from oorfix.inventory.scripts import is_script
from oorfix.inventory.sources import YAML_SUFFIXES, read_source, read_vars
from oorfix.inventory.vault import NO_KEYS, Keyring
from oorfix.runbook import yamlsource

# What a directory inventory reads, besides scripts (a .json there is left alone: an export
# sits beside the sources it came from and would count twice).
DIRECTORY_SUFFIXES = (".yml", ".yaml", ".ini", "")
IMPLICIT_LOCAL = ("localhost", "127.0.0.1", "::1")  # Ansible's implicit local host names


@dataclass(frozen=True)
class Group:
    """One inventory group: its direct hosts, child groups and own variables."""

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """Hosts in order of first appearance, groups, and what loading noticed; ``path`` is the
    first of the ``sources`` it was loaded from."""

    path: Path
    hosts: dict[str, Host]
    groups: dict[str, Group]
    warnings: tuple[str, ...] = ()
    sources: tuple[Path, ...] = ()

    def group_members(self, name: str) -> set[str]:
        """Names of the hosts in group ``name`` or any group below it; empty if unknown."""
        return {host.name for host in self.hosts.values() if name in host.groups}

    @cached_property
    def group_hosts(self) -> dict[str, tuple[str, ...]]:
        """Each group's hosts in Ansible's order, which its subscripts (``web[0]``) count in:
        the group's own, then those of each level of groups below it in turn."""
        return {name: _ordered_hosts(self.groups, name) for name in self.groups}

    def select(self, pattern: str) -> list[Host]:
        """Hosts matching an Ansible host pattern, in inventory order; [] when none match.

        As in Ansible, ``localhost`` (or ``127.0.0.1``, ``::1``) named in a pattern but absent
        from the inventory is an implicit local host, in no group, never part of ``all``.
        """
        found = select_hosts(pattern, self.hosts, self.group_hosts)
        named = [p for p in split_pattern(pattern) if p in IMPLICIT_LOCAL and p not in self.hosts]
        return found + [_implicit_local(name) for name in dict.fromkeys(named)]

    def select_or_explain(self, pattern: str) -> tuple[list[Host], str | None]:
        """Like ``select``, plus a message for people when nothing matches."""
        hosts = self.select(pattern)
        if hosts:
            return hosts, None
        # "all" and "ungrouped" exist in every inventory, so listing them would tell nothing.
        message = explain_no_match(
            pattern, self.hosts, self.group_hosts, source=self.path, hidden=MAGIC_GROUPS
        )
        return [], message


def load_inventory(path: Path | str, vault: Keyring | None = None) -> Inventory:
    """Load an inventory file, directory, script or host list with its group_vars/ and
    host_vars/; ``vault`` holds the passwords of its encrypted values, if any."""
    return load_inventories([Path(path)], vault)


def load_inventories(paths: Sequence[Path], vault: Keyring | None = None) -> Inventory:
    """Load several inventory sources into one, in order, as Ansible loads repeated ``-i``."""
    if not paths:
        raise InventoryError("no inventory given")
    keyring = vault or NO_KEYS
    sources = tuple(Path(path) for path in paths)
    builder = Builder(sources[0])
    bases = [base for path in sources if (base := _load_source(path, builder, keyring))]
    # Vars files are matched against the whole inventory, once all sources are read; the
    # same folder twice counts twice, as in Ansible.
    read = {
        base: (
            _read_vars_files(base / "group_vars", builder.groups, "group", builder, keyring),
            _read_vars_files(base / "host_vars", builder.hosts, "host", builder, keyring),
        )
        for base in dict.fromkeys(bases)
    }
    for base in bases:
        for name, variables in read[base][1].items():
            builder.hosts[name].vars.update(variables)
    return _resolve(builder, sources, [read[base][0] for base in bases])


def _load_source(path: Path, builder: Builder, keyring: Keyring) -> Path | None:
    """Read one ``-i`` source into ``builder``; the folder of its vars files, if it has one."""
    if path.is_dir():
        for source in _directory_sources(path):
            read_source(source, builder, keyring)
        return path
    if path.is_file():
        read_source(path, builder, keyring)
        return path.parent
    if "," in str(path):
        _host_list(str(path), builder)
        return None
    raise InventoryError("no such inventory file or directory", path)


def inventory_from_document(doc: yamlsource.Document) -> Inventory:
    """An inventory written inline in another YAML file (Ansible's YAML shape, no vars
    files); errors name that file and line."""
    builder = Builder(doc.path)
    parse_yaml(doc, builder)
    return _resolve(builder, (doc.path,))


def _ordered_hosts(groups: Mapping[str, Group], name: str) -> tuple[str, ...]:
    """Ansible's Group.get_hosts order: breadth first, each level in the order of the one
    above (where Ansible walks a set, and so its own order, below the first level)."""
    levels, seen, frontier = [name], {name}, [name]
    while frontier:
        below = []
        for group in frontier:
            for child in groups[group].children:
                if child not in seen:
                    seen.add(child)
                    below.append(child)
        levels += below
        frontier = below
    return tuple(dict.fromkeys(host for group in levels for host in groups[group].hosts))


def _implicit_local(name: str) -> Host:
    """Ansible's implicit localhost: reached without SSH, in no group."""
    variables = {"ansible_connection": "local", "inventory_hostname": name, "group_names": []}
    return Host(name=name, vars=variables, groups=())


def _host_list(text: str, builder: Builder) -> None:
    """``-i web1,web2:2222,`` as Ansible reads it: the hosts named, ungrouped, no vars files."""
    path = Path(text)
    named = 0
    for token in (part.strip() for part in text.split(",")):
        if token:
            names, port = expand_host(token, (path, None))
            for name in names:
                builder.host(name, "ungrouped", {}, (path, None), port)
            named += len(names)
    if not named:
        raise InventoryError("a host list names no host (write -i host1,host2,)", text)


def _directory_sources(path: Path) -> list[Path]:
    sources = [
        entry
        for entry in sorted(path.iterdir())
        if entry.is_file()
        and not entry.name.startswith(".")
        and not entry.name.endswith("~")
        and (entry.suffix in DIRECTORY_SUFFIXES or is_script(entry))
    ]
    if not sources:
        message = "no inventory file (*.yml, *.yaml, *.ini, a script) in this directory"
        raise InventoryError(message, path)
    return sources


def _read_vars_files(
    folder: Path, drafts: Mapping[str, Draft], noun: str, builder: Builder, keyring: Keyring
) -> dict[str, dict[str, Any]]:
    """The variables of each group's (or host's) files in ``folder``, by name."""
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    used: set[Path] = set()
    for name in drafts:
        for entry in _vars_entries(folder, name):
            used.add(entry)
            for path in _vars_files(entry):
                found.setdefault(name, {}).update(read_vars(path, keyring))
    for entry in sorted(folder.iterdir()):
        if entry not in used and not entry.name.startswith("."):
            builder.warnings.append(f"{entry}: no {noun} of that name in the inventory; ignored")
    return found


def _vars_entries(folder: Path, name: str) -> list[Path]:
    if "/" in name or "\0" in name or name in (".", ".."):
        return []
    candidates = [folder / name, *(folder / f"{name}{suffix}" for suffix in YAML_SUFFIXES)]
    return [path for path in candidates if path.exists()]


def _vars_files(entry: Path) -> list[Path]:
    if not entry.is_dir():
        return [entry]
    return [
        path
        for path in sorted(entry.rglob("*"))
        if path.is_file()
        and path.suffix in ("", *YAML_SUFFIXES)
        and not any(part.startswith(".") for part in path.relative_to(entry).parts)
    ]


def _resolve(
    builder: Builder,
    sources: tuple[Path, ...],
    group_files: Sequence[Mapping[str, dict[str, Any]]] = (),
) -> Inventory:
    """The inventory of everything read; ``group_files`` holds each source's group_vars/."""
    groups = builder.groups
    _adopt_orphans(groups)
    _check_cycles(groups)
    parents = _parents(groups)
    depths: dict[str, int] = {}
    rank = {
        name: (_depth(name, parents, depths), _priority(name, draft), name)
        for name, draft in groups.items()
    }
    hosts: dict[str, Host] = {}
    for name, direct in _memberships(builder).items():
        ordered = sorted(_ancestors(direct, parents), key=rank.__getitem__)
        layers = [groups[group].vars for group in ordered]
        # Ansible: group_vars/all of every source, then each source's files of the others.
        layers += [files["all"] for files in group_files if "all" in files]
        layers += [
            files[group]
            for files in group_files
            for group in ordered
            if group != "all" and group in files
        ]
        hosts[name] = _make_host(name, builder.hosts[name], ordered, layers)
    final = {
        name: Group(
            name,
            tuple(draft.hosts),
            tuple(draft.children),
            _merged([draft.vars, *(files.get(name, {}) for files in group_files)]),
        )
        for name, draft in groups.items()
    }
    builder.warnings += [f"{name!r} is both a host and a group" for name in hosts if name in final]
    return Inventory(
        path=sources[0],
        hosts=hosts,
        groups=final,
        warnings=tuple(builder.warnings),
        sources=sources,
    )


def _merged(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def _adopt_orphans(groups: dict[str, GroupDraft]) -> None:
    # Ansible makes every group without a parent a child of "all".
    has_parent = {child for draft in groups.values() for child in draft.children}
    for name, draft in groups.items():
        if name != "all" and name not in has_parent:
            groups["all"].children.setdefault(name, draft.where)


def _check_cycles(groups: dict[str, GroupDraft]) -> None:
    done: set[str] = set()
    for name in groups:
        _visit(groups, name, [], done)


def _visit(groups: dict[str, GroupDraft], name: str, trail: list[str], done: set[str]) -> None:
    if name in done:
        return
    if name in trail:
        cycle = " -> ".join([*trail[trail.index(name) :], name])
        raise InventoryError(f"groups form a cycle: {cycle}", *groups[trail[-1]].children[name])
    for child in groups[name].children:
        _visit(groups, child, [*trail, name], done)
    done.add(name)


def _parents(groups: dict[str, GroupDraft]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {name: [] for name in groups}
    for name, draft in groups.items():
        for child in draft.children:
            parents[child].append(name)
    return parents


def _depth(name: str, parents: dict[str, list[str]], memo: dict[str, int]) -> int:
    # Ansible's depth is the longest path from "all", so a group nested deeper always wins.
    if name not in memo:
        memo[name] = 1 + max((_depth(p, parents, memo) for p in parents[name]), default=-1)
    return memo[name]


def _priority(name: str, draft: GroupDraft) -> int:
    value = draft.vars.get("ansible_group_priority", 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        message = f"group {name!r}: ansible_group_priority {value!r} is not a number"
        raise InventoryError(message, *draft.where) from None


def _memberships(builder: Builder) -> dict[str, set[str]]:
    # Ansible's rule: "ungrouped" holds exactly the hosts that are in no other group.
    member_of: dict[str, set[str]] = {name: set() for name in builder.hosts}
    for group, draft in builder.groups.items():
        for host in draft.hosts:
            member_of[host].add(group)
    ungrouped = builder.groups["ungrouped"].hosts
    for host, groups in member_of.items():
        if groups - set(MAGIC_GROUPS):
            ungrouped.pop(host, None)
            groups.discard("ungrouped")
        else:
            ungrouped[host] = None
            groups.add("ungrouped")
    return member_of


def _make_host(
    name: str, draft: Draft, groups: list[str], group_vars: list[dict[str, Any]]
) -> Host:
    variables: dict[str, Any] = {}
    for layer in [*group_vars, draft.vars]:
        variables.update(layer)
    variables["inventory_hostname"] = name
    variables["inventory_hostname_short"] = name.split(".")[0]
    variables["group_names"] = sorted(group for group in groups if group not in MAGIC_GROUPS)
    host = Host(name=name, vars=variables, groups=tuple(groups))
    try:
        host.connection()
    except ValueError as exc:
        raise InventoryError(f"host {name!r}: {exc}", *draft.where) from None
    return host


def _ancestors(groups: set[str], parents: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(groups)
    while todo:
        group = todo.pop()
        if group not in found:
            found.add(group)
            todo += parents[group]
    return found
