"""Ansible-compatible inventories: YAML and INI files, group_vars/host_vars, host selection.

Variable precedence, lowest first: the ``all`` group, then the other groups by depth (a child
beats its parent; at equal depth ``ansible_group_priority``, then the name, decide and the
later wins), then the host's own variables. A group's ``group_vars`` files layer on top of
its inline vars and a host's ``host_vars`` files on top of its inline vars. (Ansible itself
ranks every group_vars file above every inline group var; per group is easier to predict.)
Runbook vars and extra vars are merged by the caller. Host patterns live in ``oorfix.patterns``.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oorfix import yamlsource
from oorfix.errors import InventoryError, YamlError
from oorfix.hosts import Host
from oorfix.patterns import explain_no_match, select_hosts
from oorfix.patterns import split_pattern as split_pattern  # re-exported: callers import it here

YAML_SUFFIXES = (".yml", ".yaml", ".json")
DIRECTORY_SUFFIXES = (".yml", ".yaml", ".ini", "")  # what a directory inventory loads
GROUP_KEYS = ("hosts", "children", "vars")
MAGIC_GROUPS = ("all", "ungrouped")
MAX_RANGE_HOSTS = 10_000

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?")
_RANGE = re.compile(r"\[([^\]]*)\]")

Where = tuple[Path, int | None]


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
        """Hosts matching an Ansible host pattern, in inventory order; [] when none match."""
        return select_hosts(pattern, self.hosts, self.groups)

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


def expand_host_range(pattern: str) -> list[str]:
    """Expand Ansible host ranges (``api[1:3]``, ``db-[a:c]``, ``n[01:10:2]``), or ValueError."""
    match = _RANGE.search(pattern)
    head = pattern if match is None else pattern[: match.start()]
    if "[" in head or "]" in head:
        raise ValueError(f"unbalanced bracket in host name {pattern!r}")
    if match is None:
        return [pattern]
    items = _range_items(match.group(1))
    rest = expand_host_range(pattern[match.end() :])
    if len(items) * len(rest) > MAX_RANGE_HOSTS:
        raise ValueError(f"host range {pattern!r} expands to more than {MAX_RANGE_HOSTS} hosts")
    return [head + item + tail for item in items for tail in rest]


def _range_items(spec: str) -> list[str]:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ValueError(f"bad host range [{spec}]: expected [start:end] or [start:end:step]")
    start, end = parts[0] or "0", parts[1]
    step = parts[2] if len(parts) == 3 else "1"
    if not step.isdigit() or int(step) == 0:
        raise ValueError(f"bad host range [{spec}]: the step must be a positive number")
    if start.isdigit() and end.isdigit():
        return _number_range(spec, start, end, int(step))
    letters = string.ascii_letters
    if len(start) == 1 == len(end) and start in letters and end in letters:
        if letters.index(start) > letters.index(end):
            raise ValueError(f"bad host range [{spec}]: start is after end")
        return list(letters[letters.index(start) : letters.index(end) + 1 : int(step)])
    raise ValueError(f"bad host range [{spec}]: expected two numbers or two letters")


def _number_range(spec: str, start: str, end: str, step: int) -> list[str]:
    width = len(start) if start.startswith("0") and len(start) > 1 else 0
    if width and len(end) != width:
        raise ValueError(f"bad host range [{spec}]: zero-padded start and end must be as long")
    if int(start) > int(end):
        raise ValueError(f"bad host range [{spec}]: start is after end")
    if (int(end) - int(start)) // step >= MAX_RANGE_HOSTS:
        raise ValueError(f"bad host range [{spec}]: more than {MAX_RANGE_HOSTS} hosts")
    return [str(n).zfill(width) for n in range(int(start), int(end) + 1, step)]


def _expand_host(token: str, where: Where) -> tuple[list[str], dict[str, Any]]:
    """Host names and port variable of an inventory host entry like ``api[1:3]:2222``."""
    name, port = token, None
    if _RANGE.sub("", token).count(":") == 1:  # more colons: an IPv6 address, not a port
        name, port = token.rsplit(":", 1)
        if not port.isdigit():
            raise InventoryError(f"bad port {port!r} in host {token!r}", *where)
    if not name:
        raise InventoryError(f"empty host name in {token!r}", *where)
    try:
        names = expand_host_range(name)
    except ValueError as exc:
        raise InventoryError(str(exc), *where) from None
    return names, ({"ansible_port": port} if port else {})


@dataclass
class _Draft:
    where: Where
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class _GroupDraft(_Draft):
    hosts: dict[str, None] = field(default_factory=dict)
    children: dict[str, Where] = field(default_factory=dict)


class _Builder:
    """Collects groups and hosts from every source before they are resolved."""

    def __init__(self, path: Path):
        self.groups: dict[str, _GroupDraft] = {}
        self.hosts: dict[str, _Draft] = {}
        self.warnings: list[str] = []
        for name in MAGIC_GROUPS:
            self.group(name, (path, None))

    def group(self, name: str, where: Where) -> _GroupDraft:
        return self.groups.setdefault(name, _GroupDraft(where))

    def host(self, name: str, group: str, variables: Mapping[str, Any], where: Where) -> None:
        self.hosts.setdefault(name, _Draft(where)).vars.update(variables)
        self.group(group, where).hosts[name] = None

    def child(self, parent: str, child: str, where: Where) -> None:
        self.group(parent, where).children.setdefault(child, where)
        self.group(child, where)


def load_inventory(path: Path) -> Inventory:
    """Load an inventory file or directory with its group_vars/ and host_vars/."""
    path = Path(path)
    if path.is_dir():
        sources, base = _directory_sources(path), path
    elif path.is_file():
        sources, base = [path], path.parent
    else:
        raise InventoryError("no such inventory file or directory", path)
    builder = _Builder(path)
    for source in sources:
        _parse_source(source, builder)
    _layer_vars_files(base / "group_vars", builder.groups, "group", builder.warnings)
    _layer_vars_files(base / "host_vars", builder.hosts, "host", builder.warnings)
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
        return yamlsource.load_text(text, path)
    except YamlError as exc:
        raise InventoryError(exc.message, exc.path, exc.line) from None


def _parse_source(path: Path, builder: _Builder) -> None:
    text = _read_text(path)
    if path.suffix in YAML_SUFFIXES or _looks_like_yaml(text):
        _YamlParser(_load_yaml(text, path), builder).parse()
    else:
        _IniParser(path, builder).parse(text)


def _looks_like_yaml(text: str) -> bool:
    # An extensionless "hosts" file may hold YAML; its first line then reads "all:" or "---".
    for raw in text.split("\n"):
        line = raw.strip()
        if line and line[0] not in "#;":
            return line.startswith(("---", "{")) or (line.endswith(":") and line[0] != "[")
    return False


class _YamlParser:
    """Reads the Ansible YAML form: ``group: {hosts: {h: vars}, children: {...}, vars: {...}}``."""

    def __init__(self, doc: yamlsource.Document, builder: _Builder):
        self.doc = doc
        self.builder = builder

    def error(self, loc: tuple[Any, ...], message: str) -> InventoryError:
        return InventoryError(message, self.doc.path, self.doc.line_of(loc))

    def where(self, loc: tuple[Any, ...]) -> Where:
        return self.doc.path, self.doc.line_of(loc)

    def parse(self) -> None:
        data = self.doc.data
        if data is not None and not isinstance(data, dict):
            raise self.error((), f"an inventory must be a mapping of groups, not a {_kind(data)}")
        for key, body in (data or {}).items():
            self.group((key,), body, None)

    def group(self, loc: tuple[Any, ...], body: Any, parent: str | None) -> None:
        name = str(loc[-1])
        self.builder.group(name, self.where(loc))
        if parent is not None:
            self.builder.child(parent, name, self.where(loc))
        if body is None:
            return
        if not isinstance(body, dict):
            raise self.error(loc, f"group {name!r} must be a mapping, not a {_kind(body)}")
        for key in body:
            if key not in GROUP_KEYS:
                allowed = ", ".join(GROUP_KEYS)
                raise self.error((*loc, key), f"unknown key {key!r} in group {name!r} ({allowed})")
        variables = self.mapping(loc, "vars", body)
        self.builder.groups[name].vars.update((str(k), v) for k, v in variables.items())
        for key, value in self.mapping(loc, "hosts", body).items():
            self.host((*loc, "hosts", key), value, name)
        for key, value in self.mapping(loc, "children", body).items():
            self.group((*loc, "children", key), value, name)

    def mapping(self, loc: tuple[Any, ...], key: str, body: dict[Any, Any]) -> dict[Any, Any]:
        value = body.get(key)
        if value is None or isinstance(value, dict):
            return value or {}
        hint = " (write each host as 'name:', not '- name')" if key == "hosts" else ""
        message = f"{key!r} of group {str(loc[-1])!r} must be a mapping, not a {_kind(value)}{hint}"
        raise self.error((*loc, key), message)

    def host(self, loc: tuple[Any, ...], value: Any, group: str) -> None:
        if value is not None and not isinstance(value, dict):
            message = f"host {str(loc[-1])!r} must map to a mapping of vars or nothing, not a "
            raise self.error(loc, message + _kind(value))
        names, port = _expand_host(str(loc[-1]), self.where(loc))
        variables = {**port, **{str(k): v for k, v in (value or {}).items()}}
        for name in names:
            self.builder.host(name, group, variables, self.where(loc))


def _kind(value: Any) -> str:
    kinds = {list: "list", dict: "mapping", str: "string", bool: "boolean", int: "number"}
    return kinds.get(type(value), type(value).__name__)


class _IniParser:
    """Reads the Ansible INI form: ``[group]``, ``[group:vars]``, ``[group:children]``."""

    def __init__(self, path: Path, builder: _Builder):
        self.path = path
        self.builder = builder
        self.section, self.kind = "ungrouped", "hosts"
        # [group:vars] may come before [group]; the group must be defined by the end of the file.
        self.pending: dict[str, tuple[Where, dict[str, str]]] = {}

    def parse(self, text: str) -> None:
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.strip()
            if line and line[0] not in "#;":
                self.line(line, (self.path, number))
        for group, (where, variables) in self.pending.items():
            if group not in self.builder.groups:
                raise InventoryError(f"[{group}:vars] is for a group never defined", *where)
            self.builder.groups[group].vars.update(variables)

    def line(self, line: str, where: Where) -> None:
        if line.startswith("["):
            self.header(line, where)
        elif self.kind == "hosts":
            self.host(line, where)
        elif self.kind == "vars":
            self.pending[self.section][1].update([_ini_variable(line, self.section, where)])
        else:
            self.child(line, where)

    def header(self, line: str, where: Where) -> None:
        match = _SECTION.fullmatch(line)
        if match is None:
            message = f"bad section header {line!r}: expected [group], [group:vars] or "
            raise InventoryError(message + "[group:children] with no spaces", *where)
        self.section, self.kind = match.group(1), match.group(2) or "hosts"
        if self.kind not in ("hosts", "vars", "children"):
            message = f"unknown section type {self.kind!r} in {line}: expected vars or children"
            raise InventoryError(message, *where)
        if self.kind == "vars":
            self.pending.setdefault(self.section, (where, {}))
        else:
            self.builder.group(self.section, where)

    def host(self, line: str, where: Where) -> None:
        tokens = _split_line(line, where)
        names, variables = _expand_host(tokens[0], where)
        for token in tokens[1:]:
            key, equals, value = token.partition("=")
            if not equals or not key:
                message = f"expected key=value after the host name, got {token!r}"
                raise InventoryError(message, *where)
            variables[key] = value
        for name in names:
            self.builder.host(name, self.section, variables, where)

    def child(self, line: str, where: Where) -> None:
        tokens = _split_line(line, where)
        if len(tokens) != 1:
            message = f"expected one group name per line in [{self.section}:children]"
            raise InventoryError(f"{message}, got {line!r}", *where)
        self.builder.child(self.section, tokens[0], where)


def _split_line(line: str, where: Where) -> list[str]:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise InventoryError(f"cannot split {line!r}: {exc}", *where) from None
    if not tokens or not tokens[0]:
        raise InventoryError(f"expected a name, got {line!r}", *where)
    return tokens


def _ini_variable(line: str, group: str, where: Where) -> tuple[str, str]:
    key, equals, value = (part.strip() for part in line.partition("="))
    if not equals or not key or any(c.isspace() for c in key):
        raise InventoryError(f"expected key=value in [{group}:vars], got {line!r}", *where)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            words = shlex.split(value)
        except ValueError:
            words = []
        value = words[0] if len(words) == 1 else value
    return key, value


def _layer_vars_files(
    folder: Path, drafts: Mapping[str, _Draft], noun: str, warnings: list[str]
) -> None:
    if not folder.is_dir():
        return
    used: set[Path] = set()
    for name, draft in drafts.items():
        for entry in _vars_entries(folder, name):
            used.add(entry)
            for path in _vars_files(entry):
                draft.vars.update(_read_vars(path))
    for entry in sorted(folder.iterdir()):
        if entry not in used and not entry.name.startswith("."):
            warnings.append(f"{entry}: no {noun} of that name in the inventory; ignored")


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
        message = f"a vars file must be a mapping of names to values, not a {_kind(doc.data)}"
        raise InventoryError(message, path, doc.line_of(()))
    return {str(key): value for key, value in doc.data.items()}


def _resolve(builder: _Builder, path: Path) -> Inventory:
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
        hosts[name] = _make_host(name, builder.hosts[name], ordered, layers)
    final = {
        name: Group(name, tuple(draft.hosts), tuple(draft.children), dict(draft.vars))
        for name, draft in groups.items()
    }
    builder.warnings += [f"{name!r} is both a host and a group" for name in hosts if name in final]
    return Inventory(path=path, hosts=hosts, groups=final, warnings=tuple(builder.warnings))


def _adopt_orphans(groups: dict[str, _GroupDraft]) -> None:
    # Ansible makes every group without a parent a child of "all".
    has_parent = {child for draft in groups.values() for child in draft.children}
    for name, draft in groups.items():
        if name != "all" and name not in has_parent:
            groups["all"].children.setdefault(name, draft.where)


def _check_cycles(groups: dict[str, _GroupDraft]) -> None:
    done: set[str] = set()
    for name in groups:
        _visit(groups, name, [], done)


def _visit(groups: dict[str, _GroupDraft], name: str, trail: list[str], done: set[str]) -> None:
    if name in done:
        return
    if name in trail:
        cycle = " -> ".join([*trail[trail.index(name) :], name])
        raise InventoryError(f"groups form a cycle: {cycle}", *groups[trail[-1]].children[name])
    for child in groups[name].children:
        _visit(groups, child, [*trail, name], done)
    done.add(name)


def _parents(groups: dict[str, _GroupDraft]) -> dict[str, list[str]]:
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


def _priority(name: str, draft: _GroupDraft) -> int:
    value = draft.vars.get("ansible_group_priority", 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        message = f"group {name!r}: ansible_group_priority {value!r} is not a number"
        raise InventoryError(message, *draft.where) from None


def _memberships(builder: _Builder) -> dict[str, set[str]]:
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
    name: str, draft: _Draft, groups: list[str], group_vars: list[dict[str, Any]]
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
