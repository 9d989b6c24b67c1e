"""Every command's options: a shared option reads the same wherever it appears, and the
commands that contact hosts accept the same run options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from oorfix.app.settings import DEFAULTS, RunSettings
from oorfix.cli import COMMANDS, main
from oorfix.cli.options import OPTIONS, RUN_OPTIONS

# validate's -i is optional there: it only adds rendering against an inventory when given.
EXEMPT = {("validate", "inventory_paths")}


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every leaf command of ``group``, by its full name."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from commands(command, f"{full} ")
        else:
            yield full, command


def described(option: click.Option) -> tuple[object, ...]:
    default = option.default
    return (tuple(option.opts), tuple(option.secondary_opts), default, option.help, option.count)


def options_of(command: click.Command) -> dict[str, click.Option]:
    return {p.name or "": p for p in command.params if isinstance(p, click.Option)}


ALL = dict(commands(main))


def test_every_command_is_walked() -> None:
    assert {"run", "diagnose", "plan", "validate", "catalog", "audit verify", "report"} <= set(ALL)


def test_a_shared_option_is_the_same_everywhere() -> None:
    seen: dict[str, tuple[str, tuple[object, ...]]] = {}
    for name, command in ALL.items():
        for dest, option in options_of(command).items():
            if (name, dest) in EXEMPT or dest == "help":
                continue
            first = seen.setdefault(dest, (name, described(option)))
            assert described(option) == first[1], f"--{dest}: {name} differs from {first[0]}"


def test_every_option_named_like_a_shared_one_is_the_shared_one() -> None:
    shared_dests = {}
    for key in OPTIONS:

        @OPTIONS[key]
        def probe() -> None: ...

        (param,) = click.command()(probe).params
        shared_dests[param.name] = described(param)  # type: ignore[arg-type]
    for name, command in ALL.items():
        for dest, option in options_of(command).items():
            if dest in shared_dests and (name, dest) not in EXEMPT:
                assert described(option) == shared_dests[dest], f"{name} --{dest}"


@pytest.mark.parametrize("name", ["run", "diagnose"])
def test_commands_that_contact_hosts_take_every_run_option(name: str) -> None:
    dests = set(options_of(ALL[name]))
    wanted = {
        "inventory_paths", "vault_password_files", "vault_ids", "limit", "extra", "forks",
        "ssh_config", "known_hosts", "accept_new_host_keys", "connect_timeout", "json_path",
        "junit_path",
        "verbose", "quiet", "serial", "max_fail_percent", "yes", "force", "state_dir", "state",
            "lock_ttl", "workers",
    }  # fmt: skip
    assert len(RUN_OPTIONS) == len(wanted)
    assert wanted <= dests


@pytest.mark.parametrize("name", ["run", "diagnose", "plan", "validate", "inventory"])
def test_every_command_that_loads_an_inventory_takes_the_vault_options(name: str) -> None:
    assert {"inventory_paths", "vault_password_files", "vault_ids"} <= set(options_of(ALL[name]))


def test_defaults_come_from_the_run_settings() -> None:
    run = options_of(ALL["run"])
    assert run["forks"].default == RunSettings().forks == DEFAULTS.forks
    assert run["connect_timeout"].default == RunSettings().connect_timeout
    assert run["lock_ttl"].default == RunSettings().lock_ttl
    assert tuple(map(Path, run["inventory_paths"].default)) == RunSettings().inventory_paths


def test_the_state_dir_has_one_help_text() -> None:
    helps = {options_of(c)["state_dir"].help for c in ALL.values() if "state_dir" in options_of(c)}
    assert len(helps) == 1


def test_the_help_summaries_are_the_commands_own() -> None:
    # --help lists commands without importing them, from summaries kept beside their paths.
    context = click.Context(main)
    for name, (_, summary) in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None, name
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert summary == own, name
