"""Every option that several commands share, declared once: same flags, default and help.

Defaults come from ``RunSettings`` (``oorfix.app.settings``), the one place they live. A test
walks every command and checks that a shared option reads the same wherever it appears.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from oorfix.app.settings import DEFAULT_RUNBOOKS, DEFAULTS
from oorfix.safety.state import default_state_dir

F = TypeVar("F", bound=Callable[..., Any])
PathType = click.Path(path_type=Path)

OPTIONS: dict[str, Callable[[F], F]] = {
    "inventory": click.option(
        "-i",
        "--inventory",
        "inventory_paths",
        type=PathType,
        multiple=True,
        default=DEFAULTS.inventory_paths,
        show_default=True,
        help="inventory file, directory, script or host list; repeat to merge several in order",
    ),
    "vault_password_file": click.option(
        "--vault-password-file",
        "vault_password_files",
        type=PathType,
        multiple=True,
        help="Ansible Vault password: the file's first line, or what it prints if executable",
    ),
    "vault_id": click.option(
        "--vault-id",
        "vault_ids",
        multiple=True,
        metavar="[LABEL@]FILE",
        help="a vault id's password file (repeatable; a vault's 1.2 label picks its password)",
    ),
    "dry_run": click.option(
        "--dry-run", is_flag=True, help="change nothing: show the changes a fix would make"
    ),
    "limit": click.option("-l", "--limit", help="host pattern to narrow the hosts to"),
    "extra_vars": click.option(
        "-e", "--extra-vars", "extra", multiple=True, help="key=value or @file.yml; wins over all"
    ),
    "forks": click.option(
        "-f",
        "--forks",
        default=DEFAULTS.forks,
        show_default=True,
        type=click.IntRange(1, 500),
        help="hosts worked on at once",
    ),
    "ssh_config": click.option(
        "-F",
        "--ssh-config",
        type=PathType,
        help="ssh_config file read instead of ~/.ssh/config (like ssh -F)",
    ),
    "known_hosts": click.option("--known-hosts", type=PathType, help="default: ~/.ssh/known_hosts"),
    "accept_new_host_keys": click.option(
        "--accept-new-host-keys", is_flag=True, help="trust and remember unknown host keys"
    ),
    "connect_timeout": click.option(
        "--connect-timeout",
        default=DEFAULTS.connect_timeout,
        show_default=True,
        type=click.FloatRange(0.1),
        help="seconds to connect, see the SSH banner and log in",
    ),
    "json": click.option(
        "--json", "json_path", type=PathType, help="write the JSON record here ('-': stdout)"
    ),
    "junit": click.option("--junit", "junit_path", type=PathType, help="write JUnit XML here"),
    "verbose": click.option("-v", "--verbose", count=True, help="-v steps, -vv commands"),
    "quiet": click.option("-q", "--quiet", is_flag=True, help="only the summary"),
    "serial": click.option(
        "--serial", help="remediate in batches: N hosts or P% (wins over the runbooks)"
    ),
    "max_fail_percent": click.option(
        "--max-fail-percent",
        type=click.FloatRange(0, 100),
        help="stop starting hosts once failed hosts exceed this share",
    ),
    "yes": click.option("-y", "--yes", is_flag=True, help="approve runbooks that require approval"),
    "force": click.option(
        "--force", is_flag=True, help="fix outside the runbooks' maintenance windows"
    ),
    "state_dir": click.option(
        "--state-dir",
        type=PathType,
        default=default_state_dir,
        show_default="$XDG_STATE_HOME/oorfix",
        help="where host locks, budgets, the audit log and run history are kept",
    ),
    "state": click.option(
        "--state",
        envvar="OORFIX_STATE",
        metavar="URL",
        help=(
            "state shared by a team: redis://[user@]host:port/db (password from "
            "OORFIX_STATE_PASSWORD; env OORFIX_STATE); wins over --state-dir"
        ),
    ),
    "workers": click.option(
        "--workers",
        envvar="OORFIX_WORKERS",
        metavar="URL",
        help=(
            "run the hosts on `oorfix worker`s behind this Redis (redis://host:port/db; "
            "password from OORFIX_WORKERS_PASSWORD; tasks signed with OORFIX_WORKER_KEY)"
        ),
    ),
    "lock_ttl": click.option(
        "--lock-ttl",
        default=DEFAULTS.lock_ttl,
        show_default=True,
        type=click.FloatRange(1),
        help="seconds a host lock lasts without a heartbeat",
    ),
    "runbook_dir": click.option(
        "--runbooks",
        "runbook_dir",
        type=PathType,
        default=DEFAULT_RUNBOOKS,
        show_default=True,
        help="the directory of runbooks (run: where runbook names are looked up)",
    ),
}

# What decrypts Ansible Vault values: every command that loads an inventory takes these.
VAULT_OPTIONS = ("vault_password_file", "vault_id")

# What every command that contacts hosts accepts, in the order --help lists them.
RUN_OPTIONS = (
    "inventory",
    *VAULT_OPTIONS,
    "limit",
    "extra_vars",
    "forks",
    "ssh_config",
    "known_hosts",
    "accept_new_host_keys",
    "connect_timeout",
    "json",
    "junit",
    "verbose",
    "quiet",
    "serial",
    "max_fail_percent",
    "yes",
    "force",
    "state_dir",
    "state",
    "lock_ttl",
    "workers",
)


def shared(*names: str) -> Callable[[F], F]:
    """Apply the named shared options (listed top to bottom as in --help)."""

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = OPTIONS[name](func)
        return func

    return decorate
