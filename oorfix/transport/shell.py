"""The one place a command is quoted, run privileged and given a budget the host enforces.

Every transport runs ``wrap(command.text, ...)`` and nothing else, so local and SSH runs
see the same shell, the same quoting and the same limits:

    timeout -k 5 30 sh -c '<the command, quoted>'
    timeout -k 5 30 sudo -n -u root -- systemctl restart payment-api     (privileged)

* ``timeout`` (coreutils) runs on the host itself, so a command that overruns its budget is
  stopped there even when the connection is gone: a client-side timeout alone leaves the
  remote process running (docs/pitfalls.md §4). At ``timeout`` seconds it sends TERM to the
  command's whole process group; ``kill_grace`` seconds later it sends KILL.
* Exit status 124 means the budget ran out and TERM stopped the command; 137 (128 + KILL)
  means TERM was ignored and KILL was needed. A command may exit 124 or 137 by itself, so a
  transport only calls a result timed out when the status is one of these AND the command
  ran for at least its budget (see ``is_timeout_status``).
* A command that ``limits_itself`` (a batch of checks, whose watchdog holds every check and
  the whole batch to their budgets) runs as ``sh -c`` alone: the host is spared one exec.
* A privileged step runs its own command under sudo, not ``timeout`` or a shell: a sudoers
  allowlist of the exact commands a runbook needs (``NOPASSWD: /usr/bin/systemctl restart
  payment-api``) then matches, where allowing ``timeout`` would allow everything. So the
  time limit stays outside sudo: sudo relays the TERM to the command; a privileged command
  that ignores TERM outlives the KILL, which reaches only sudo. A command with shell syntax
  still needs ``sh -c`` under sudo (and so ``/bin/sh`` in sudoers).
* ``sudo -n`` never prompts: without a rule it fails at once with "sudo: a password is
  required" instead of hanging on a prompt (docs/pitfalls.md §9). With a become password, the
  password is the first line of standard input, read by the login user's shell and handed to
  ``sudo -S -v`` alone; the command itself then runs under ``sudo -n`` on the ticket that
  made, and never sees the password, which never appears on a command line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# Exit statuses of coreutils `timeout`: TERM stopped the command / KILL was needed.
TIMEOUT_STATUS = 124
TIMEOUT_KILLED_STATUS = 128 + 9


def seconds(value: float) -> str:
    """A duration as `timeout` reads it: plain decimal, no exponent, at most ms precision."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


# A command made of plain words only (no quoting, expansion, redirection, globbing or
# assignment) means the same run directly as through `sh -c`, when its first word is a
# program, not a shell builtin or keyword (or echo/printf, whose builtins differ). `true`
# and `false` are programs too, and mean the same either way. `%` is plain outside `${}`
# (`date +%s`); `=` only after the first word, where it cannot be an assignment.
_PLAIN_WORDS = re.compile(r"^[A-Za-z0-9_./:,+@%-]+( +[A-Za-z0-9_./:,+@%=-]+)*$")
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
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
        # bash's own: they would see the batch's shell's names (see run/batch_script.py).
        "bind",
        "builtin",
        "caller",
        "compgen",
        "complete",
        "compopt",
        "coproc",
        "declare",
        "dirs",
        "disown",
        "enable",
        "function",
        "help",
        "history",
        "let",
        "logout",
        "mapfile",
        "popd",
        "pushd",
        "readarray",
        "select",
        "shopt",
        "source",
        "suspend",
        "time",
        "typeset",
    ]
)


def plain_words(text: str) -> str | None:
    """``text`` as plain words one space apart (see _PLAIN_WORDS), or None."""
    stripped = text.strip(" \t\n")  # sh's blanks only: not \r, not U+00A0
    if not _PLAIN_WORDS.match(stripped):
        return None
    return " ".join(stripped.split())


def direct_argv(text: str) -> str | None:
    """``text`` as words to exec without a shell (saves one exec per check), or None."""
    words = plain_words(text)
    if words is None or words.split(" ", 1)[0] in _SHELL_WORDS:
        return None
    return words


BECOME_METHODS = ("sudo", "su")
# What the login user's shell prints when sudo refuses the become password (stderr, exit 1).
PASSWORD_REFUSED = "oorfix: sudo refused the become password"  # noqa: S105 (a message)


@dataclass(frozen=True)
class Become:
    """How a privileged step runs: as ``user`` through ``method``, with a password or none."""

    user: str = "root"
    method: str = "sudo"
    password: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in BECOME_METHODS:
            raise ValueError(f"become method {self.method!r} is not supported (sudo or su)")
        if self.method == "su" and self.password is not None:
            # su reads a password only from a terminal; oorfix runs commands without one.
            raise ValueError(
                "become method su cannot take a password (it needs a terminal): use sudo"
            )

    def stdin(self, given: bytes | None) -> bytes | None:
        """The command's standard input, after the password line when there is one."""
        if self.password is None or self.method != "sudo":
            return given
        return self.password.encode() + b"\n" + (given or b"")


def privileged(become: Become | None, login_user: str) -> Become | None:
    """What a step that asks for ``become`` needs: nothing when it already runs as that user."""
    # Besides being pointless, sudo to the login user itself would reset PATH to secure_path.
    if become is None or become.user == login_user:
        return None
    return become


def _argv(text: str) -> str:
    """``text`` as the words sudo runs: the command itself when it is plain words."""
    return direct_argv(text) or f"sh -c {shlex.quote(text)}"


def _privileged(text: str, become: Become) -> str:
    """The command line that runs ``text`` as ``become.user``, without a time limit."""
    user = shlex.quote(become.user)
    if become.method == "su":
        return f"su -s /bin/sh -c {shlex.quote(text)} {user}"
    command = f"sudo -n -u {user} -- {_argv(text)}"
    if become.password is None:
        return command
    # `read` and `printf` are shell builtins: the password reaches sudo through a pipe only.
    # No `exec` for the second sudo: the ticket -v made is keyed to the parent process (there
    # is no terminal), and exec would change the parent from this shell to `timeout`.
    script = (
        "IFS= read -r p; "
        "printf '%s\\n' \"$p\" | sudo -S -p '' -v 2>/dev/null || "
        f"{{ echo {shlex.quote(PASSWORD_REFUSED + ' for ' + become.user)} >&2; exit 1; }}; "
        f"p=; {command}"
    )
    return f"sh -c {shlex.quote(script)}"


def wrap(
    text: str,
    *,
    timeout: float,
    kill_grace: float,
    become: Become | None = None,
    limits_itself: bool = False,
) -> str:
    """The shell command line that runs ``text`` under a host-enforced budget (its own, when
    it ``limits_itself``)."""
    # `timeout 0` and `-k 0` mean "no limit" to coreutils: refuse rather than run unbounded.
    if timeout < 0.001:
        raise ValueError(f"timeout must be at least 1 ms, not {timeout!r}")
    if kill_grace < 0.001:
        raise ValueError(f"kill_grace must be at least 1 ms, not {kill_grace!r}")
    if limits_itself and become is not None:
        raise ValueError("a command that limits itself runs as the login user")
    inner = f"sh -c {shlex.quote(text)}" if become is None else _privileged(text, become)
    if limits_itself:
        return inner  # one exec fewer on the host: a `timeout` per batch shows in its CPU
    return f"timeout -k {seconds(kill_grace)} {seconds(timeout)} {inner}"


def is_timeout_status(rc: int | None, *, elapsed: float, timeout: float) -> bool:
    """Whether ``rc`` after ``elapsed`` seconds means the host stopped the command."""
    # Measured by the caller, elapsed covers the remote run, so it is never short of the budget
    # when `timeout` fired; a command that exits 124 early on its own is not a timeout.
    return rc in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS) and elapsed >= timeout
