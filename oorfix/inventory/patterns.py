"""Ansible host patterns: names, globs, ``~`` regexes, unions, intersections and exclusions.

Evaluated as Ansible's inventory manager evaluates them: unions first, then intersections, then
exclusions; a part matches every group whose name it matches (all of each group's hosts, in
Ansible's order: the group's own, then each level of groups below it), and host names too when
it matches no group or is a glob or regex; a subscript (``web[0]``, ``web[1:3]``) picks from
that list. So ``web[0]`` is the host Ansible picks. The hosts selected are then returned in
inventory order (Ansible returns them in pattern order, and in an order of its own sets below
a group's children), so a run's order never depends on how its pattern is written.

A pattern is evaluated against an inventory's hosts and groups only, so this module never
imports ``oorfix.inventory.core``: the inventory depends on patterns, not the other way round.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from oorfix.errors import InventoryError
from oorfix.inventory.hosts import Host

MAX_LISTED_GROUPS = 20  # more would bury the message; the rest are only counted
_GLOB_CHARS = "?*["
_SEPARATOR = re.compile(r"[,:](?![^\[]*\])")  # a ',' or ':' that is not inside [...]
# ``web[0]``, ``web[-1]``, ``web[1:3]`` (both ends included), ``web[1:]``: as in Ansible, a
# bracket of digits only is a subscript of the hosts matched, never a glob character class.
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_HOST_TOO = ".?*["  # a part with one of these (or a regex) matches host names even beside groups

# Each group's hosts in Ansible's order (its own, then its descendants level by level).
GroupHosts = Mapping[str, Sequence[str]]


def split_pattern(pattern: str) -> list[str]:
    """Split a host pattern at ',' and ':' outside brackets into stripped, non-empty parts."""
    return [part.strip() for part in _SEPARATOR.split(pattern) if part.strip()]


def limit_pattern(limit: str) -> str:
    """``--limit``: a host pattern, or ``@FILE`` of host names one per line (a retry file)."""
    if not limit.startswith("@"):
        return limit
    path = Path(limit[1:]).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InventoryError(f"--limit: cannot read the host list: {why}", path) from None
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise InventoryError("--limit: the host list names no host", path)
    return ",".join(names)


def select_hosts(pattern: str, hosts: Mapping[str, Host], groups: GroupHosts) -> list[Host]:
    """Hosts matching an Ansible host pattern, in the order of ``hosts``; [] when none match.

    ``groups`` maps each group, in inventory order, to its hosts in Ansible's order.
    """
    names = _evaluate(split_pattern(pattern), hosts, groups)
    return [host for name, host in hosts.items() if name in names]


def explain_no_match(
    pattern: str,
    hosts: Mapping[str, Host],
    groups: GroupHosts,
    *,
    source: Path,
    hidden: Collection[str] = (),
) -> str:
    """Tell people why ``pattern`` matched no host in ``source``, with close names to try."""
    if not hosts:
        return f"pattern {pattern!r} matches no host: inventory {source} has no hosts"
    listed = sorted(name for name in groups if name not in hidden)
    known = ", ".join(listed[:MAX_LISTED_GROUPS]) or "none"
    if len(listed) > MAX_LISTED_GROUPS:
        known += f" and {len(listed) - MAX_LISTED_GROUPS} more"
    message = f"pattern {pattern!r} matches no host (known groups: {known})"
    guesses = _guesses(pattern, hosts, groups)
    return f"{message}; did you mean {' or '.join(guesses)}?" if guesses else message


def _evaluate(parts: list[str], hosts: Mapping[str, Host], groups: GroupHosts) -> set[str]:
    """Names of the hosts that the split pattern ``parts`` selects."""
    # Ansible's order: unions, then intersections, then exclusions; only & or ! means all.
    plain = [part for part in parts if part[0] not in "&!"]
    selected: set[str] = set()
    for part in plain or (["all"] if parts else []):
        # As in Ansible, a host's own name is never read as a group, glob or subscript.
        selected.update([part] if part in hosts else _match(part, hosts, groups))
    for part in parts:
        if part[0] == "&":
            selected &= set(_match(part[1:].strip(), hosts, groups))
    for part in parts:
        if part[0] == "!":
            selected -= set(_match(part[1:].strip(), hosts, groups))
    return selected


def _match(part: str, hosts: Mapping[str, Host], groups: GroupHosts) -> list[str]:
    """The hosts one part matches by group, name, glob or regex, then its subscript, as
    Ansible lists them (duplicates kept: a subscript counts them, as Ansible's does)."""
    subscript = None if part.startswith("~") or part in hosts else _SUBSCRIPT.match(part)
    if subscript is None:
        return _match_name(part, hosts, groups)
    base, index, start, separator, end = subscript.groups()
    if separator == "-":
        raise InventoryError(f"host pattern {part!r}: write the range as [{start}:{end}]")
    matched = _match_name(base, hosts, groups)
    if index is not None:
        position = int(index)
        # Past the end: no host, as `ansible PATTERN` lists (a playbook of Ansible's fails).
        return [matched[position]] if -len(matched) <= position < len(matched) else []
    last = int(end) if end else len(matched) - 1
    return matched[int(start) : last + 1]


def _match_name(part: str, hosts: Mapping[str, Host], groups: GroupHosts) -> list[str]:
    """The hosts of every group whose name ``part`` matches, then the hosts whose own name it
    matches when it matches no group or is a glob or regex: Ansible's list."""
    regex = _compile_part(part)
    named = [name for name in groups if regex.match(name)]
    found = [host for name in named for host in groups[name]]
    if not named or part.startswith("~") or any(c in part for c in _HOST_TOO):
        found += [name for name in hosts if regex.match(name)]
    return found


def _compile_part(part: str) -> re.Pattern[str]:
    """The regex for a ``~regex`` or glob part; InventoryError when it does not compile."""
    try:
        return re.compile(part[1:] if part.startswith("~") else fnmatch.translate(part))
    except re.error as exc:
        raise InventoryError(f"bad regular expression in host pattern {part!r}: {exc}") from None


def _guesses(pattern: str, hosts: Mapping[str, Host], groups: GroupHosts) -> list[str]:
    """Quoted group or host names close to the plain parts of ``pattern`` that match nothing."""
    names = [*groups, *hosts]
    guesses: list[str] = []
    for part in split_pattern(pattern):
        word = part.lstrip("&!").strip()
        # Globs and regexes are deliberate; only a mistyped plain name deserves a suggestion.
        if word.startswith("~") or any(c in word for c in _GLOB_CHARS):
            continue
        if _match(word, hosts, groups):
            continue
        guesses += [repr(name) for name in difflib.get_close_matches(word, names, n=2, cutoff=0.75)]
    return list(dict.fromkeys(guesses))
