"""The lab's package tools: ``dpkg-query`` and ``apt-get`` for the lab's own packages.

The package database is ``$OORFIX_LAB_STATE/packages.json`` and the repository
``$OORFIX_LAB_DIR/repo.json``; only packages listed there exist. Output, error messages and
exit codes follow dpkg and apt (``E: …`` on stderr and exit 100; a downgrade needs
``--allow-downgrades`` under ``-y``; without ``-y`` a downgrade or removal meets apt's
prompt with no terminal and aborts). ``DEBIAN_FRONTEND`` and the usual options
(``-y -q -qq -o … --no-install-recommends --only-upgrade``) are accepted. Installing a
package does not restart its service: the runbook does that.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from dataclasses import dataclass

from oorfix.lab.hardware import (
    candidate,
    compare_versions,
    installed_packages,
    repository,
    set_installed,
)
from oorfix.lab.statefile import HardwareError, HostPaths

ARCH = "amd64"
ARCHIVE = "http://lab.invalid/debian stable/main"
DEFAULT_FORMAT = "${binary:Package}\t${Version}\n"
APT_VALUE_OPTIONS = frozenset(
    {"-o", "-c", "-t", "--option", "--config-file", "--target-release", "--default-release"}
)
WITHOUT_ALLOW = "-y was used without --allow-downgrades"
NO_INFORMATION = "is not installed and no information is available"
NOT_UNDERSTOOD = "is not understood in combination with the other options"
APT_IGNORED = frozenset({
    "--no-install-recommends", "--install-recommends", "--fix-broken", "--fix-missing",
    "--allow-change-held-packages", "--allow-unauthenticated", "--allow-remove-essential",
    "--force-yes", "--no-upgrade", "--show-upgraded", "--auto-remove", "--autoremove",
    "--no-download", "--ignore-missing", "--purge", "--quiet", "--verbose-versions",
})  # fmt: skip


# --- dpkg-query --------------------------------------------------------------------------


def _fields(package: str, version: str) -> dict[str, str]:
    return {
        "Package": package,
        "binary:Package": package,
        "Version": version,
        "Architecture": ARCH,
        "Status": "install ok installed",
        "db:Status-Abbrev": "ii ",
        "db:Status-Status": "installed",
        "Description": f"oorfix lab package {package}",
    }


def expand_format(fmt: str, package: str, version: str) -> str:
    """Expand a ``dpkg-query --showformat``: ``${Field}``, ``${Field;width}``, ``\\n``, ``\\t``."""
    fields = _fields(package, version)

    def field(match: re.Match[str]) -> str:
        """One ``${Field;width}``: right-aligned for a positive width, left for negative."""
        value = fields.get(match.group(1), "")
        width = int(match.group(2) or 0)
        return value.rjust(width) if width > 0 else value.ljust(-width)

    text = re.sub(r"\$\{([^};]+)(?:;(-?\d+))?\}", field, fmt)
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


def _dpkg_args(args: list[str]) -> tuple[str, str, list[str]]:
    mode, fmt, names, i = "", DEFAULT_FORMAT, [], 0
    while i < len(args):
        arg, i = args[i], i + 1
        if arg in ("-W", "--show", "-s", "--status"):
            mode = "show" if arg in ("-W", "--show") else "status"
        elif arg in ("-f", "--showformat") and i < len(args):
            fmt, i = args[i], i + 1
        elif arg.startswith(("-f", "--showformat=")):
            # -f='${Version}' reaches us as "-f=${Version}": the "=" is not part of it
            fmt = arg.removeprefix("--showformat=").removeprefix("-f").removeprefix("=")
        elif arg.startswith("-"):
            raise HardwareError(f"dpkg-query: error: unknown option {arg} (lab: -W, -s, -f)")
        else:
            names.append(arg)
    if not mode:
        raise HardwareError("dpkg-query: error: need an action option (lab: -W, -s)")
    return mode, fmt, names


def dpkg_query(paths: HostPaths, args: list[str]) -> int:
    """``dpkg-query -W [-f=FORMAT] [PKG…]`` and ``dpkg-query -s PKG…`` for lab packages."""
    mode, fmt, patterns = _dpkg_args(args)
    have = installed_packages(paths.state)
    rc = 0
    for pattern in patterns or ["*"]:
        found = sorted(p for p in have if fnmatch.fnmatchcase(p, pattern))
        if not found:
            rc = 1
            if mode == "status":
                _error(f"dpkg-query: package '{pattern}' {NO_INFORMATION}")
            else:
                _error(f"dpkg-query: no packages found matching {pattern}")
        for package in found:
            if mode == "show":
                sys.stdout.write(expand_format(fmt, package, have[package]))
            else:
                print(_status_stanza(package, have[package]))
    return rc


def _error(message: str) -> None:
    print(message, file=sys.stderr)


def _status_stanza(package: str, version: str) -> str:
    keys = ("Package", "Status", "Architecture", "Version", "Description")
    return "\n".join(f"{k}: {_fields(package, version)[k]}" for k in keys) + "\n"


# --- apt-get -----------------------------------------------------------------------------


@dataclass
class AptOptions:
    """The apt-get options the lab honours."""

    yes: bool = False
    quiet: int = 0
    allow_downgrades: bool = False
    only_upgrade: bool = False
    reinstall: bool = False
    simulate: bool = False


LONG_FLAGS = {
    "--yes": "yes",
    "--assume-yes": "yes",
    "--allow-downgrades": "allow_downgrades",
    "--only-upgrade": "only_upgrade",
    "--reinstall": "reinstall",
    "--simulate": "simulate",
    "--just-print": "simulate",
    "--dry-run": "simulate",
    "--recon": "simulate",
    "--no-act": "simulate",
}
SHORT_FLAGS = {"y": "yes", "s": "simulate"}


def _apt_option(opts: AptOptions, arg: str) -> None:
    name = arg.split("=", 1)[0]
    if name in LONG_FLAGS:
        setattr(opts, LONG_FLAGS[name], True)
    elif name == "--quiet":
        opts.quiet = int(arg.split("=", 1)[1]) if "=" in arg else opts.quiet + 1
    elif name not in APT_IGNORED and name not in APT_VALUE_OPTIONS:
        raise HardwareError(f"E: Command line option {name} {NOT_UNDERSTOOD}", 100)


def _apt_short(opts: AptOptions, arg: str) -> None:
    for char in arg[1:]:
        if char == "q":
            opts.quiet += 1
        elif char in SHORT_FLAGS:
            setattr(opts, SHORT_FLAGS[char], True)
        elif char not in "fmudVb":
            message = f"E: Command line option '{char}' [from {arg}] {NOT_UNDERSTOOD}."
            raise HardwareError(message, 100)


def parse_apt(args: list[str]) -> tuple[AptOptions, list[str]]:
    """apt-get's options and its words (operation, then packages)."""
    opts, words, i = AptOptions(), [], 0
    while i < len(args):
        arg, i = args[i], i + 1
        if arg == "--":
            words += args[i:]
            break
        if arg in APT_VALUE_OPTIONS:
            i += 1  # -o Dpkg::Options::=--force-confold, -t stable …: nothing to do here
        elif arg.startswith("--"):
            _apt_option(opts, arg)
        elif arg.startswith("-") and arg[1:2] in ("o", "c", "t"):
            continue  # -oAPT::Foo=bar
        elif arg.startswith("-") and len(arg) > 1:
            _apt_short(opts, arg)
        else:
            words.append(arg)
    opts.yes = opts.yes or opts.quiet >= 2  # apt: quiet level 2 implies -y
    return opts, words


@dataclass(frozen=True)
class Change:
    """One package apt-get changes: ``old`` empty for a new install."""

    package: str
    old: str
    new: str

    @property
    def kind(self) -> str:
        """new, upgrade, downgrade or reinstall."""
        if not self.old:
            return "new"
        order = compare_versions(self.new, self.old)
        return "upgrade" if order > 0 else "downgrade" if order < 0 else "reinstall"


def _say(opts: AptOptions, *lines: str) -> None:
    if opts.quiet < 2:
        print("\n".join(lines))


def _plan(paths: HostPaths, specs: list[str], opts: AptOptions) -> list[Change]:
    repo, have, changes = repository(paths.lab), installed_packages(paths.state), []
    for spec in specs:
        name, _, version = spec.partition("=")
        name = name.split("/", 1)[0]  # pkg/release: the lab has one release
        if not repo.get(name):
            raise HardwareError(f"E: Unable to locate package {name}", 100)
        if version and version not in repo[name]:
            raise HardwareError(f"E: Version '{version}' for '{name}' was not found", 100)
        target, current = version or candidate(repo[name]), have.get(name, "")
        if opts.only_upgrade and not current:
            _say(opts, f"Skipping {name}, it is not installed and only upgrades are requested.")
        elif current == target and not opts.reinstall:
            _say(opts, f"{name} is already the newest version ({target}).")
        else:
            changes.append(Change(name, current, target))
    return changes


def _summary(changes: list[Change], removed: int = 0) -> list[str]:
    lines, count = [], dict.fromkeys(("new", "upgrade", "downgrade", "reinstall"), 0)
    titles = {"new": "The following NEW packages will be installed:"}
    titles |= {"upgrade": "The following packages will be upgraded:"}
    titles |= {"downgrade": "The following packages will be DOWNGRADED:"}
    for kind, title in titles.items():
        names = [c.package for c in changes if c.kind == kind]
        lines += [title, "  " + " ".join(names)] if names else []
    for change in changes:
        count[change.kind] += 1
    text = f"{count['upgrade']} upgraded, {count['new']} newly installed, "
    text += f"{count['downgrade']} downgraded, " if count["downgrade"] else ""
    text += f"{count['reinstall']} reinstalled, " if count["reinstall"] else ""
    return [*lines, text + f"{removed} to remove and 0 not upgraded."]


def _confirm(opts: AptOptions, needs_prompt: bool) -> None:
    if needs_prompt and not opts.yes:
        # apt asks; with no terminal its read meets end of file, and it aborts
        print("Do you want to continue? [Y/n] Abort.")
        raise HardwareError("", 1)  # apt has said it all


def _unpack(paths: HostPaths, changes: list[Change], opts: AptOptions) -> None:
    for n, change in enumerate(changes, 1):
        _say(opts, f"Get:{n} {ARCHIVE} {ARCH} {change.package} {ARCH} {change.new} [1,234 kB]")
    _say(opts, f"Fetched {1234 * len(changes):,} kB in 0s (12.3 MB/s)")
    for change in changes:
        if change.kind == "new":
            print(f"Selecting previously unselected package {change.package}.")
        print("(Reading database ... 41234 files and directories currently installed.)")
        print(f"Preparing to unpack .../{change.package}_{change.new}_{ARCH}.deb ...")
        if change.kind == "downgrade":
            _error(f"dpkg: warning: downgrading {change.package} from {change.old} to {change.new}")
        over = f" over ({change.old})" if change.old else ""
        print(f"Unpacking {change.package} ({change.new}){over} ...")
        set_installed(paths.state, change.package, change.new)
    for change in changes:
        print(f"Setting up {change.package} ({change.new}) ...")


def _install(paths: HostPaths, specs: list[str], opts: AptOptions) -> int:
    changes = _plan(paths, specs, opts)
    _say(opts, *_summary(changes))
    downgrades = any(c.kind == "downgrade" for c in changes) and not opts.simulate
    _confirm(opts, downgrades)
    if downgrades and not opts.allow_downgrades:
        raise HardwareError(f"E: Packages were downgraded and {WITHOUT_ALLOW}.", 100)
    if opts.simulate:
        for c in changes:
            old = f"[{c.old}] " if c.old else ""
            print(f"Inst {c.package} {old}({c.new} lab:stable [{ARCH}])")
        print("\n".join(f"Conf {c.package} ({c.new} lab:stable [{ARCH}])" for c in changes))
    elif changes:
        _unpack(paths, changes, opts)
    return 0


def _remove(paths: HostPaths, specs: list[str], opts: AptOptions, purge: bool) -> int:
    repo, have, targets = repository(paths.lab), installed_packages(paths.state), []
    for name in (spec.partition("=")[0] for spec in specs):
        if name in have:
            targets.append(name)
        elif name in repo:
            print(f"Package '{name}' is not installed, so not removed")
        else:
            raise HardwareError(f"E: Unable to locate package {name}", 100)
    names = " ".join(name + "*" * purge for name in targets)  # apt stars packages to purge
    listing = ["The following packages will be REMOVED:", f"  {names}"] if targets else []
    _say(opts, *listing, *_summary([], len(targets)))
    _confirm(opts, bool(targets) and not opts.simulate)
    for name in targets:
        if opts.simulate:
            print(f"Remv {name} [{have[name]}]")
            continue
        print(f"Removing {name} ({have[name]}) ...")
        set_installed(paths.state, name, None)
    return 0


def _upgrade(paths: HostPaths, opts: AptOptions) -> int:
    repo, have = repository(paths.lab), installed_packages(paths.state)
    _say(opts, "Calculating upgrade...")
    newer = {p: candidate(repo[p]) for p in have if repo.get(p)}
    specs = [p for p, v in newer.items() if compare_versions(v, have[p]) > 0]
    if specs:
        return _install(paths, specs, opts)
    _say(opts, *_summary([]))
    return 0


def apt_get(paths: HostPaths, args: list[str]) -> int:
    """``apt-get [OPTIONS] install|remove|purge|update|upgrade [PKG[=VERSION]…]``."""
    opts, words = parse_apt(args)
    if not words:
        raise HardwareError(
            "E: No operation given (lab: install, remove, purge, update, upgrade)", 100
        )
    operation, specs = words[0], words[1:]
    if operation == "update":
        _say(opts, f"Hit:1 {ARCHIVE.split()[0]} stable InRelease", "Reading package lists...")
        return 0
    if operation not in ("install", "remove", "purge", "upgrade", "dist-upgrade", "full-upgrade"):
        raise HardwareError(f"E: Invalid operation {operation}", 100)
    _say(opts, "Reading package lists...", "Building dependency tree...")
    _say(opts, "Reading state information...")
    if operation in ("remove", "purge"):
        return _remove(paths, specs, opts, purge=operation == "purge")
    if operation != "install":
        return _upgrade(paths, opts)
    return _install(paths, specs, opts)
