"""Ansible-compatible inventories: loading, group_vars/host_vars, variable precedence, selection.

Variable precedence, lowest first: the ``all`` group, then the other groups by depth (a child
beats its parent; at equal depth ``ansible_group_priority``, then the name, decide and the
later wins), then the host's own variables. A group's ``group_vars`` files layer on top of
its inline vars and a host's ``host_vars`` files on top of its inline vars. (Ansible itself
ranks every group_vars file above every inline group var; per group is easier to predict.)
Runbook vars and extra vars are merged by the caller. The YAML and INI parsers live in
``oorfix.inventory.formats``, host patterns in ``oorfix.inventory.patterns``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError, YamlError
from oorfix.inventory.formats import (
    MAGIC_GROUPS,
    Builder,
    Draft,
    GroupDraft,
    expand_host,
    kind_of,
    looks_like_yaml,
    parse_ini,
    parse_yaml,
)
from oorfix.inventory.formats import expand_host_range as expand_host_range  # re-exported
from oorfix.inventory.hosts import Host
from oorfix.inventory.patterns import explain_no_match, select_hosts
from oorfix.inventory.patterns import (
    split_pattern as split_pattern,  # re-exported: callers import it here
)
from oorfix.runbook import yamlsource

YAML_SUFFIXES = (".yml", ".yaml", ".json")
DIRECTORY_SUFFIXES = (".yml", ".yaml", ".ini", "")  # what a directory inventory loads
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
    """Hosts in order of first appearance, groups, and what loading noticed."""

    path: Path
    hosts: dict[str, Host]
    groups: dict[str, Group]
    warnings: tuple[str, ...] = ()

    def group_members(self, name: str) -> set[str]:
        """Names of the hosts in group ``name`` or any group below it; empty if unknown."""
        return {host.name for host in self.hosts.values() if name in host.groups}

    def select(self, pattern: str) -> list[Host]:
        """Hosts matching an Ansible host pattern, in inventory order; [] when none match.

        As in Ansible, ``localhost`` (or ``127.0.0.1``, ``::1``) named in a pattern but absent
        from the inventory is an implicit local host, in no group, never part of ``all``.
        """
        found = select_hosts(pattern, self.hosts, self.groups)
        named = [p for p in split_pattern(pattern) if p in IMPLICIT_LOCAL and p not in self.hosts]
        return found + [_implicit_local(name) for name in dict.fromkeys(named)]

    def select_or_explain(self, pattern: str) -> tuple[list[Host], str | None]:
        """Like ``select``, plus a message for people when nothing matches."""
        hosts = self.select(pattern)
        if hosts:
            return hosts, None
        # "all" and "ungrouped" exist in every inventory, so listing them would tell nothing.
        message = explain_no_match(
            pattern, self.hosts, self.groups, source=self.path, hidden=MAGIC_GROUPS
        )
        return [], message


def load_inventory(path: Path) -> Inventory:
    """Load an inventory file or directory with its group_vars/ and host_vars/."""
    path = Path(path)
    if path.is_dir():
        sources, base = _directory_sources(path), path
    elif path.is_file():
        sources, base = [path], path.parent
    elif "," in str(path):
        return _host_list(str(path))
    else:
        raise InventoryError("no such inventory file or directory", path)
    builder = Builder(path)
    for source in sources:
        _parse_source(source, builder)
    # Ansible ranks every group_vars/ file above every group's inline vars, while a host's
    # host_vars/ file simply lies over its inline vars.
    group_files = _read_vars_files(base / "group_vars", builder.groups, "group", builder.warnings)
    host_files = _read_vars_files(base / "host_vars", builder.hosts, "host", builder.warnings)
    for name, variables in host_files.items():
        builder.hosts[name].vars.update(variables)
    return _resolve(builder, path, group_files)


def inventory_from_document(doc: yamlsource.Document) -> Inventory:
    """An inventory written inline in another YAML file (Ansible's YAML shape, no vars
    files); errors name that file and line."""
    builder = Builder(doc.path)
    parse_yaml(doc, builder)
    return _resolve(builder, doc.path)


def _implicit_local(name: str) -> Host:
    """Ansible's implicit localhost: reached without SSH, in no group."""
    variables = {"ansible_connection": "local", "inventory_hostname": name, "group_names": []}
    return Host(name=name, vars=variables, groups=())


def _host_list(text: str) -> Inventory:
    """``-i web1,web2:2222,`` as Ansible reads it: the hosts named, ungrouped, no vars files."""
    path = Path(text)
    builder = Builder(path)
    for token in (part.strip() for part in text.split(",")):
        if token:
            names, variables = expand_host(token, (path, None))
            for name in names:
                builder.host(name, "ungrouped", variables, (path, None))
    if not builder.hosts:
        raise InventoryError("a host list names no host (write -i host1,host2,)", text)
    return _resolve(builder, path)


def _directory_sources(path: Path) -> list[Path]:
    sources = [
        entry
        for entry in sorted(path.iterdir())
        if entry.is_file()
        and not entry.name.startswith(".")
        and not entry.name.endswith("~")
        and entry.suffix in DIRECTORY_SUFFIXES
    ]
    if not sources:
        raise InventoryError("no inventory file (*.yml, *.yaml, *.ini) in this directory", path)
    return sources


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > yamlsource.MAX_FILE_BYTES:
            raise InventoryError(f"file is larger than {yamlsource.MAX_FILE_BYTES} bytes", path)
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror or exc}", path) from None


def _load_yaml(text: str, path: Path) -> yamlsource.Document:
    try:
        return yamlsource.load_text(text, path, yaml11=True)
    except YamlError as exc:
        raise InventoryError(exc.message, exc.path, exc.line) from None


def _parse_source(path: Path, builder: Builder) -> None:
    text = _read_text(path)
    if path.suffix in YAML_SUFFIXES or looks_like_yaml(text):
        parse_yaml(_load_yaml(text, path), builder)
    else:
        parse_ini(path, text, builder)


def _read_vars_files(
    folder: Path, drafts: Mapping[str, Draft], noun: str, warnings: list[str]
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
                found.setdefault(name, {}).update(_read_vars(path))
    for entry in sorted(folder.iterdir()):
        if entry not in used and not entry.name.startswith("."):
            warnings.append(f"{entry}: no {noun} of that name in the inventory; ignored")
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


def _read_vars(path: Path) -> dict[str, Any]:
    doc = _load_yaml(_read_text(path), path)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        message = f"a vars file must be a mapping of names to values, not a {kind_of(doc.data)}"
        raise InventoryError(message, path, doc.line_of(()))
    return {str(key): value for key, value in doc.data.items()}


def _resolve(
    builder: Builder, path: Path, group_files: Mapping[str, dict[str, Any]] | None = None
) -> Inventory:
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
        files = group_files or {}
        layers = [groups[group].vars for group in ordered]
        layers += [files[group] for group in ordered if group in files]
        hosts[name] = _make_host(name, builder.hosts[name], ordered, layers)
    final = {
        name: Group(
            name,
            tuple(draft.hosts),
            tuple(draft.children),
            {**draft.vars, **(group_files or {}).get(name, {})},
        )
        for name, draft in groups.items()
    }
    builder.warnings += [f"{name!r} is both a host and a group" for name in hosts if name in final]
    return Inventory(path=path, hosts=hosts, groups=final, warnings=tuple(builder.warnings))


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
