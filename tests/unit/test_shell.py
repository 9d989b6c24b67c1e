"""shell.wrap: the one place commands are quoted, sudo-wrapped and given a host-side budget."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from oorfix.transport.shell import is_timeout_status, seconds, sudo_needed, wrap

NASTY = [
    "echo 'single quoted'",
    "echo it\\'s; echo two",
    "echo $(echo substituted) `echo backticks` $HOME",
    "x'; touch /tmp/oorfix-pwned; echo '",
    'printf "%s\\n" "a  b" \'c\'',
    "echo ünïcode ✓",
    "",
]


def test_wrap_without_sudo() -> None:
    assert wrap("echo hi", timeout=30, sudo=False, kill_grace=5) == (
        "timeout -k 5 30 sh -c 'echo hi'"
    )


def test_wrap_with_sudo_never_prompts() -> None:
    assert wrap("echo hi", timeout=30, sudo=True, kill_grace=5) == (
        "sudo -n -- timeout -k 5 30 sh -c 'echo hi'"
    )


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("sudo", [False, True])
def test_the_shell_receives_the_text_unchanged(text: str, sudo: bool) -> None:
    argv = shlex.split(wrap(text, timeout=1.5, sudo=sudo, kill_grace=0.25))
    prefix = ["sudo", "-n", "--"] if sudo else []
    assert argv == [*prefix, "timeout", "-k", "0.25", "1.5", "sh", "-c", text]


def test_quoting_survives_a_real_shell() -> None:
    text = "echo 'a;b' $(echo c) \"it's\"; x='; echo injected'"
    wrapped = wrap(text, timeout=10, sudo=False, kill_grace=1)
    done = subprocess.run(["/bin/sh", "-c", wrapped], capture_output=True, text=True, check=True)
    assert done.stdout == "a;b c it's\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [(30, "30"), (30.0, "30"), (0.5, "0.5"), (1.25, "1.25"), (0.001, "0.001"), (1e6, "1000000")],
)
def test_seconds_are_plain_decimals(value: float, text: str) -> None:
    assert seconds(value) == text


@pytest.mark.parametrize(("timeout", "grace"), [(0, 5), (-1, 5), (0.0001, 5), (10, 0)])
def test_a_zero_budget_is_refused_not_unlimited(timeout: float, grace: float) -> None:
    # coreutils reads `timeout 0` and `-k 0` as "no limit".
    with pytest.raises(ValueError, match="at least 1 ms"):
        wrap("true", timeout=timeout, sudo=False, kill_grace=grace)


@pytest.mark.parametrize(
    ("rc", "elapsed", "expected"),
    [
        (124, 30.1, True),  # TERM stopped it
        (137, 35.0, True),  # KILL was needed
        (124, 0.2, False),  # the command itself exited 124, long before its budget
        (137, 1.0, False),  # killed -9 by someone else
        (0, 31.0, False),
        (None, 31.0, False),
    ],
)
def test_timeout_status(rc: int | None, elapsed: float, expected: bool) -> None:
    assert is_timeout_status(rc, elapsed=elapsed, timeout=30) is expected


@pytest.mark.parametrize(
    ("sudo", "user", "needed"),
    [
        (True, "oorfix", True),
        (True, "root", False),
        (False, "oorfix", False),
        (False, "root", False),
    ],
)
def test_sudo_is_skipped_for_root(sudo: bool, user: str, needed: bool) -> None:
    assert sudo_needed(sudo, user) is needed
