"""Ansible inventory file formats: the YAML and INI parsers, host ranges, and the drafts they fill.

The parsers only record what one file says into a ``Builder``; ``oorfix.inventory.core`` reads the
files, layers group_vars/host_vars and resolves the drafts into an ``Inventory``.
"""

from __future__ import annotations

import ast
import re
import shlex
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError
from oorfix.redact import mark_secret
from oorfix.runbook import yamlsource

GROUP_KEYS = ("hosts", "children", "vars")
MAGIC_GROUPS = ("all", "ungrouped")
MAX_RANGE_HOSTS = 10_000

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?")
_RANGE = re.compile(r"\[([^\]]*)\]")
_YAML_KEY = re.compile(r"[A-Za-z_][\w.-]*:\s")

Where = tuple[Path, int | None]


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


def expand_host(token: str, where: Where) -> tuple[list[str], dict[str, Any]]:
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
    return names, ({"ansible_port": int(port)} if port else {})


@dataclass
class Draft:
    """A host (or group) as the sources describe it: where first seen and its variables."""

    where: Where
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupDraft(Draft):
    """A group as the sources describe it, with its direct hosts and child groups."""

    hosts: dict[str, None] = field(default_factory=dict)
    children: dict[str, Where] = field(default_factory=dict)


class Builder:
    """Collects groups and hosts from every source before they are resolved."""

    def __init__(self, path: Path):
        self.groups: dict[str, GroupDraft] = {}
        self.hosts: dict[str, Draft] = {}
        self.warnings: list[str] = []
        # Set while a vault-encrypted source is read: every value it sets is then a secret.
        self.secret = False
        for name in MAGIC_GROUPS:
            self.group(name, (path, None))
        self.child("all", "ungrouped", (path, None))  # Ansible's first child of "all"

    def group(self, name: str, where: Where) -> GroupDraft:
        """The draft of group ``name``, created on first mention."""
        return self.groups.setdefault(name, GroupDraft(where))

    def host(
        self,
        name: str,
        group: str,
        variables: Mapping[str, Any],
        where: Where,
        port: Mapping[str, Any] | None = None,
    ) -> None:
        """Add host ``name`` to ``group`` and merge in its variables. ``port`` (written
        ``name:port``) counts only where the host is first named: Ansible gives a host its
        port when it creates it and ignores the port of a later mention."""
        draft = self.hosts.get(name)
        if draft is None:
            draft = self.hosts[name] = Draft(where, self._own(port or {}))
        draft.vars.update(self._own(variables))
        self.group(group, where).hosts[name] = None

    def host_vars(self, name: str, variables: Mapping[str, Any]) -> None:
        """Merge variables into known host ``name`` (a later source wins)."""
        self.hosts[name].vars.update(self._own(variables))

    def group_vars(self, name: str, variables: Mapping[str, Any]) -> None:
        """Merge variables into known group ``name`` (a later source wins)."""
        self.groups[name].vars.update(self._own(variables))

    def _own(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        if self.secret:
            return {str(key): mark_secret(value) for key, value in variables.items()}
        return {str(key): value for key, value in variables.items()}

    def child(self, parent: str, child: str, where: Where) -> None:
        """Make group ``child`` a child of group ``parent``."""
        self.group(parent, where).children.setdefault(child, where)
        self.group(child, where)


def looks_like_yaml(text: str) -> bool:
    """Whether an inventory file without a YAML suffix holds YAML rather than INI."""
    # An extensionless "hosts" file may hold YAML; its first line then reads "all:", "---" or
    # "plugin: NAME" (a key, a colon and a space: never an INI host, whose port has no space).
    for raw in text.split("\n"):
        line = raw.strip()
        if line and line[0] not in "#;":
            if line.startswith(("---", "{")) or _YAML_KEY.match(line):
                return True
            return line.endswith(":") and line[0] != "["
    return False


def parse_yaml(doc: yamlsource.Document, builder: Builder) -> None:
    """Record the groups and hosts of a YAML inventory document in ``builder``."""
    _YamlParser(doc, builder).parse()


def parse_ini(path: Path, text: str, builder: Builder) -> None:
    """Record the groups and hosts of an INI inventory file's text in ``builder``."""
    _IniParser(path, builder).parse(text)


def plugin_refusal(plugin: Any, path: Path) -> str:
    """Why an inventory plugin's config (``plugin: aws_ec2``) is refused, and the way round."""
    # As in Ansible's YAML inventory plugin, a top-level `plugin:` key is a plugin's config,
    # never a group. oorfix runs no plugins; Ansible can turn one into data oorfix reads.
    return (
        f"inventory plugin {str(plugin)!r} is not supported: oorfix reads inventories as data; "
        f"run `ansible-inventory -i {path} --list > inv.json`, then give oorfix `-i inv.json`"
    )


def kind_of(value: Any) -> str:
    """How an error message names the type of a YAML value: list, mapping, string..."""
    kinds = {list: "list", dict: "mapping", str: "string", bool: "boolean", int: "number"}
    return kinds.get(type(value), type(value).__name__)


class _YamlParser:
    """Reads the Ansible YAML form: ``group: {hosts: {h: vars}, children: {...}, vars: {...}}``."""

    def __init__(self, doc: yamlsource.Document, builder: Builder):
        self.doc = doc
        self.builder = builder

    def error(self, loc: tuple[Any, ...], message: str) -> InventoryError:
        return InventoryError(message, self.doc.path, self.doc.line_of(loc))

    def where(self, loc: tuple[Any, ...]) -> Where:
        return self.doc.path, self.doc.line_of(loc)

    def parse(self) -> None:
        data = self.doc.data
        if data is not None and not isinstance(data, dict):
            raise self.error((), f"an inventory must be a mapping of groups, not a {kind_of(data)}")
        if data and "plugin" in data:
            raise self.error(("plugin",), plugin_refusal(data["plugin"], self.doc.path))
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
            raise self.error(loc, f"group {name!r} must be a mapping, not a {kind_of(body)}")
        for key in body:
            if key not in GROUP_KEYS:
                allowed = ", ".join(GROUP_KEYS)
                raise self.error((*loc, key), f"unknown key {key!r} in group {name!r} ({allowed})")
        self.builder.group_vars(name, self.mapping(loc, "vars", body))
        for key, value in self.mapping(loc, "hosts", body).items():
            self.host((*loc, "hosts", key), value, name)
        for key, value in self.mapping(loc, "children", body).items():
            self.group((*loc, "children", key), value, name)

    def mapping(self, loc: tuple[Any, ...], key: str, body: dict[Any, Any]) -> dict[Any, Any]:
        value = body.get(key)
        if isinstance(value, str) and key in ("hosts", "children"):
            return {value: None}  # Ansible reads `hosts: web1` as one host
        if value is None or isinstance(value, dict):
            return value or {}
        hint = " (write each host as 'name:', not '- name')" if key == "hosts" else ""
        what = kind_of(value)
        message = f"{key!r} of group {str(loc[-1])!r} must be a mapping, not a {what}{hint}"
        raise self.error((*loc, key), message)

    def host(self, loc: tuple[Any, ...], value: Any, group: str) -> None:
        if not isinstance(loc[-1], str):
            message = f"host name {loc[-1]!r} is a {kind_of(loc[-1])}: quote it ('{loc[-1]}')"
            raise self.error(loc, message)
        if value is not None and not isinstance(value, dict):
            message = f"host {str(loc[-1])!r} must map to a mapping of vars or nothing, not a "
            raise self.error(loc, message + kind_of(value))
        names, port = expand_host(str(loc[-1]), self.where(loc))
        variables = {str(k): v for k, v in (value or {}).items()}
        for name in names:
            self.builder.host(name, group, variables, self.where(loc), port)


class _IniParser:
    """Reads the Ansible INI form: ``[group]``, ``[group:vars]``, ``[group:children]``."""

    def __init__(self, path: Path, builder: Builder):
        self.path = path
        self.builder = builder
        self.section, self.kind = "ungrouped", "hosts"
        # [group:vars] may come before [group]; the group must be defined by the end of the file.
        self.pending: dict[str, tuple[Where, dict[str, Any]]] = {}

    def parse(self, text: str) -> None:
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.strip()
            if line and line[0] not in "#;":
                self.line(line, (self.path, number))
        for group, (where, variables) in self.pending.items():
            if group not in self.builder.groups:
                raise InventoryError(f"[{group}:vars] is for a group never defined", *where)
            self.builder.group_vars(group, variables)

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
        names, port = expand_host(tokens[0], where)
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            key, equals, value = token.partition("=")
            if not equals or not key:
                message = f"expected key=value after the host name, got {token!r}"
                raise InventoryError(message, *where)
            variables[key] = ini_value(value)
        for name in names:
            self.builder.host(name, self.section, variables, where, port)

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


def ini_value(text: str) -> Any:
    """A value as Ansible's INI inventories read it: a Python literal when it is one (``2222``,
    ``False``, ``[1, 2]``, ``'quoted'``, ``None``), else the text as written (``true``, ``0755``).

    ``ast.literal_eval`` builds literals only and runs nothing; Ansible reads the same way, so a
    shared inventory means the same to both (``openshift_schedulable=False`` is false, not the
    truthy string ``"False"``).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an invalid escape in a quoted Windows path
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _ini_variable(line: str, group: str, where: Where) -> tuple[str, Any]:
    key, equals, value = (part.strip() for part in line.partition("="))
    if not equals or not key or any(c.isspace() for c in key):
        raise InventoryError(f"expected key=value in [{group}:vars], got {line!r}", *where)
    return key, ini_value(value)
