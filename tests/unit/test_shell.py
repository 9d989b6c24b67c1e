"""shell.wrap: the one place commands are quoted, run privileged and given a host-side budget."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from oorfix.transport.shell import Become, is_timeout_status, privileged, seconds, wrap

NASTY = [
    "echo 'single quoted'",
    "echo it\\'s; echo two",
    "echo $(echo substituted) `echo backticks` $HOME",
    "x'; touch /tmp/oorfix-pwned; echo '",
    'printf "%s\\n" "a  b" \'c\'',
    "echo ünïcode ✓",
    "",
]


def test_wrap_without_become() -> None:
    assert wrap("echo hi", timeout=30, kill_grace=5) == "timeout -k 5 30 sh -c 'echo hi'"


def test_a_command_that_limits_itself_runs_in_a_shell_alone() -> None:
    # A batch of checks, whose watchdog holds it to its budget: no `timeout` to exec.
    assert wrap("echo hi", timeout=30, kill_grace=5, limits_itself=True) == "sh -c 'echo hi'"
    with pytest.raises(ValueError, match="login user"):
        wrap("echo hi", timeout=30, kill_grace=5, become=Become(), limits_itself=True)


def test_sudo_runs_the_command_itself_and_never_prompts() -> None:
    # What sudo runs is the step's own command, so a sudoers allowlist of exact commands
    # matches; the time limit stays outside, where it needs no rule.
    assert wrap("systemctl restart pg-api", timeout=30, kill_grace=5, become=Become()) == (
        "timeout -k 5 30 sudo -n -u root -- systemctl restart pg-api"
    )


def test_sudo_runs_a_shell_only_for_shell_syntax() -> None:
    wrapped = wrap("pg_isready && echo ok", timeout=30, kill_grace=5, become=Become(user="pg"))
    assert shlex.split(wrapped) == [
        *("timeout", "-k", "5", "30", "sudo", "-n", "-u", "pg", "--"),
        *("sh", "-c", "pg_isready && echo ok"),
    ]


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("become", [None, Become(), Become(user="it's; x")])
def test_the_shell_receives_the_text_unchanged(text: str, become: Become | None) -> None:
    argv = shlex.split(wrap(text, timeout=1.5, kill_grace=0.25, become=become))
    prefix = [] if become is None else ["sudo", "-n", "-u", become.user, "--"]
    assert argv == ["timeout", "-k", "0.25", "1.5", *prefix, "sh", "-c", text]


def test_a_become_password_is_never_on_the_command_line() -> None:
    become = Become(password="hunter2; rm -rf /")  # noqa: S106 (a test value)
    wrapped = wrap("id -u", timeout=30, kill_grace=5, become=become)
    assert "hunter2" not in wrapped
    assert become.stdin(b"data\n") == b"hunter2; rm -rf /\ndata\n"
    assert become.stdin(None) == b"hunter2; rm -rf /\n"
    assert Become().stdin(b"x") == b"x"  # no password: the input is the command's alone
    assert "hunter2" not in repr(become)


def test_su_is_run_from_root_and_refuses_a_password() -> None:
    wrapped = wrap("whoami", timeout=30, kill_grace=5, become=Become(user="pg", method="su"))
    assert shlex.split(wrapped)[4:] == ["su", "-s", "/bin/sh", "-c", "whoami", "pg"]
    with pytest.raises(ValueError, match="needs a terminal"):
        Become(method="su", password="x")  # noqa: S106 (a test value)
    with pytest.raises(ValueError, match="'doas' is not supported"):
        Become(method="doas")


def _fake_sudo(tmp_path: Path) -> Path:
    """A `sudo` on PATH that checks -S's password against $ACCEPTED and runs -n's argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -S ]; then IFS= read -r given; [ "$given" = "$ACCEPTED" ]; exit $?; fi\n'
        'while [ "$1" != -- ]; do shift; done; shift; exec "$@"\n'
    )
    sudo.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("password", "rc"), [("right pw", 0), ("wrong", 1)])
def test_the_password_goes_to_sudo_and_the_input_to_the_command(
    tmp_path: Path, password: str, rc: int
) -> None:
    # The real sudo is exercised against a throwaway user in the integration tests; this
    # checks the shell plumbing: who reads which line of standard input.
    bin_dir = _fake_sudo(tmp_path)
    become = Become(password=password)
    wrapped = wrap("cat", timeout=10, kill_grace=1, become=become)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ACCEPTED": "right pw"}
    done = subprocess.run(
        ["/bin/sh", "-c", wrapped],
        input=become.stdin(b"the step's input\n"),
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == rc
    if rc == 0:
        assert done.stdout == b"the step's input\n"  # and never the password
    else:
        assert done.stdout == b""
        assert b"sudo refused the become password for root" in done.stderr


def test_quoting_survives_a_real_shell() -> None:
    text = "echo 'a;b' $(echo c) \"it's\"; x='; echo injected'"
    wrapped = wrap(text, timeout=10, kill_grace=1)
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
        wrap("true", timeout=timeout, kill_grace=grace)


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
    ("become", "user", "needed"),
    [
        (Become(), "oorfix", True),
        (Become(), "root", False),
        (Become(user="postgres"), "root", True),
        (Become(user="postgres"), "postgres", False),
        (None, "oorfix", False),
    ],
)
def test_become_is_skipped_for_its_own_user(become: Become | None, user: str, needed: bool) -> None:
    assert (privileged(become, user) is not None) is needed
