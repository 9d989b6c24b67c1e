"""The one place a command is quoted, sudo-wrapped and given a budget the host enforces.

Every transport runs ``wrap(command.text, ...)`` and nothing else, so local and SSH runs
see the same shell, the same quoting and the same limits:

    sudo -n -- timeout -k 5 30 sh -c '<the command, quoted>'

* ``timeout`` (coreutils) runs on the host itself, so a command that overruns its budget is
  stopped there even when the connection is gone: a client-side timeout alone leaves the
  remote process running (docs/pitfalls.md §4). At ``timeout`` seconds it sends TERM to the
  command's whole process group; ``kill_grace`` seconds later it sends KILL.
* Exit status 124 means the budget ran out and TERM stopped the command; 137 (128 + KILL)
  means TERM was ignored and KILL was needed. A command may exit 124 or 137 by itself, so a
  transport only calls a result timed out when the status is one of these AND the command
  ran for at least its budget (see ``is_timeout_status``).
* ``sudo -n`` never prompts: without a password-less rule it fails at once with
  "sudo: a password is required" instead of hanging on a prompt (docs/pitfalls.md §9). sudo wraps
  ``timeout`` (not the other way round) so the budget is enforced with root's rights.
"""

from __future__ import annotations

import re
import shlex

# Exit statuses of coreutils `timeout`: TERM stopped the command / KILL was needed.
TIMEOUT_STATUS = 124
TIMEOUT_KILLED_STATUS = 128 + 9


def seconds(value: float) -> str:
    """A duration as `timeout` reads it: plain decimal, no exponent, at most ms precision."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


# A command made of plain words only (no quoting, expansion, redirection, globbing or
# assignment) means the same run directly as through `sh -c`, when its first word is a
# program, not a shell builtin or keyword (or echo/printf, whose builtins differ).
_PLAIN_WORDS = re.compile(r"^[A-Za-z0-9_./:,+@-]+( +[A-Za-z0-9_./:,+@-]+)*$")
_SHELL_WORDS = frozenset(
    [
        ".",
        ":",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "for",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "then",
        "times",
        "trap",
        "true",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    ]
)


def direct_argv(text: str) -> str | None:
    """``text`` as words to exec without a shell (saves one exec per check), or None."""
    stripped = text.strip()
    if not _PLAIN_WORDS.match(stripped) or stripped.split(" ", 1)[0] in _SHELL_WORDS:
        return None
    return " ".join(stripped.split())


def wrap(text: str, *, timeout: float, sudo: bool, kill_grace: float) -> str:
    """The shell command line that runs ``text`` under a host-enforced budget."""
    # `timeout 0` and `-k 0` mean "no limit" to coreutils: refuse rather than run unbounded.
    if timeout < 0.001:
        raise ValueError(f"timeout must be at least 1 ms, not {timeout!r}")
    if kill_grace < 0.001:
        raise ValueError(f"kill_grace must be at least 1 ms, not {kill_grace!r}")
    limited = f"timeout -k {seconds(kill_grace)} {seconds(timeout)} sh -c {shlex.quote(text)}"
    return f"sudo -n -- {limited}" if sudo else limited


def sudo_needed(sudo: bool, user: str) -> bool:
    """Whether a step that asks for sudo needs it: not when the login user is already root."""
    # Besides being pointless, sudo as root would reset PATH to secure_path.
    return sudo and user != "root"


def is_timeout_status(rc: int | None, *, elapsed: float, timeout: float) -> bool:
    """Whether ``rc`` after ``elapsed`` seconds means the host stopped the command."""
    # Measured by the caller, elapsed covers the remote run, so it is never short of the budget
    # when `timeout` fired; a command that exits 124 early on its own is not a timeout.
    return rc in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS) and elapsed >= timeout
