"""Privileged steps through a real sudo, as a throwaway user allowed only one runbook's commands.

The user is created for the module (useradd, a password set with chpasswd) and removed
afterwards with its sudoers file. It logs in over a real sshd with a key; its sudoers rule
allows exactly the runbook's fix command, nothing else (no ``timeout``, no shell), which is
what least privilege in production looks like.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab.sshd import SshdServer
from tests.integration.conftest import CliRun, require_sshd, run_cli

PASSWORD = "Corr3ct horse; $(battery) 'staple'"  # noqa: S105 (shell metacharacters on purpose)
SUDOERS_DIR = Path("/etc/sudoers.d")


@dataclass
class Throwaway:
    """A user, its sshd, where its fix writes, and a scratch directory for runs."""

    user: str
    sshd: SshdServer
    target: Path  # the directory the runbook's fix writes into (root-owned)
    work: Path
    sudoers: Path

    def allow(self, rule: str) -> None:
        """Replace the user's sudoers rule, checked with visudo before it is used."""
        self.sudoers.write_text(f"{self.user} ALL=(root) {rule}\n")
        self.sudoers.chmod(0o440)
        subprocess.run(["visudo", "-c", "-q", "-f", str(self.sudoers)], check=True)

    def reset(self) -> None:
        """Remove what an earlier run's fix made."""
        (self.target / "fixed").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Throwaway]:
    """A throwaway login user with a password and a sudoers file; removed afterwards."""
    require_sshd()
    if os.geteuid() != 0 or shutil.which("sudo") is None or shutil.which("useradd") is None:
        pytest.skip("needs root, sudo and useradd to make a throwaway user")
    user = f"oorfixbt{os.getpid() % 100000}"
    # Readable by the user: sshd reads the authorized key as the user.
    base = Path(tempfile.mkdtemp(prefix="oorfix-become-", dir="/tmp"))
    base.chmod(0o755)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
    sudoers = SUDOERS_DIR / f"oorfix-test-{user}"
    try:
        subprocess.run(["chpasswd"], input=f"{user}:{PASSWORD}\n", text=True, check=True)
        target = base / "target"
        target.mkdir(mode=0o755)
        sshd = SshdServer(base / "sshd", ("127.0.0.61",), user=user)
        with sshd:
            (sshd.directory).chmod(0o755)
            (base / "work").mkdir()
            yield Throwaway(user, sshd, target, base / "work", sudoers)
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", user], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _runbook(box: Throwaway) -> Path:
    fixed = box.target / "fixed"
    path = box.work / "make-fixed.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: make-fixed
            fault: software.crash
            hosts: all
            detect:
              - name: marker present
                run: test -e {fixed}
            remediate:
              - name: create the marker as root
                run: /usr/bin/touch {fixed}
                sudo: true
            verify: {{retries: 0}}
            """
        )
    )
    return path


def _inventory(box: Throwaway, **host_vars: str) -> Path:
    entry = {
        "ansible_host": box.sshd.addresses[0],
        "ansible_port": box.sshd.port,
        "ansible_user": box.user,
        "ansible_ssh_private_key_file": str(box.sshd.client_key),
        **host_vars,
    }
    lines = "".join(f"          {k}: {v!r}\n" for k, v in entry.items())
    path = box.work / "inventory.yml"
    path.write_text(f"all:\n  hosts:\n    box:\n{lines}")
    return path


def _run(box: Throwaway, *extra: str, env: dict[str, str] | None = None) -> CliRun:
    record = box.work / "record.json"
    record.unlink(missing_ok=True)
    argv = [
        "run",
        str(_runbook(box)),
        "-i",
        str(box.work / "inventory.yml"),
        "--known-hosts",
        str(box.sshd.known_hosts),
        "--state-dir",
        str(box.work / "state"),
        "--json",
        str(record),
        *extra,
    ]
    old = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        return run_cli(argv, record)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _steps(run: CliRun) -> list[dict[str, Any]]:
    assert run.record is not None, run.stderr
    steps: list[dict[str, Any]] = run.record["results"][0]["steps"]
    return steps


def _brief(run: CliRun) -> list[tuple[Any, ...]]:
    """Each step's name, status, stderr and command, for a failure message."""
    return [(s["name"], s.get("rc"), s.get("stderr"), s.get("command")) for s in _steps(run)]


def _status(run: CliRun) -> str:
    assert run.record is not None, run.stderr
    status: str = run.record["results"][0]["status"]
    return status


def _artifacts(box: Throwaway, run: CliRun) -> str:
    """Everything the run left behind or printed, as one text to search for the password."""
    texts = [run.stdout, run.stderr]
    for path in (box.work / "state").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    texts.append((box.work / "record.json").read_text())
    return "\n".join(texts)


def test_a_nopasswd_allowlist_of_the_exact_command_is_enough(throwaway: Throwaway) -> None:
    box = throwaway
    box.reset()
    box.allow(f"NOPASSWD: /usr/bin/touch {box.target / 'fixed'}")
    _inventory(box)
    run = _run(box)
    assert _status(run) == "fixed", _brief(run)
    assert (box.target / "fixed").stat().st_uid == 0  # made by root, through sudo


def test_a_command_outside_the_allowlist_is_refused_at_once(throwaway: Throwaway) -> None:
    box = throwaway
    box.reset()
    box.allow("NOPASSWD: /usr/bin/id")
    _inventory(box)
    run = _run(box)
    assert _status(run) == "failed"
    steps = _steps(run)
    assert any("a password is required" in (s.get("stderr") or "") for s in steps), steps
    assert not (box.target / "fixed").exists()


def test_a_become_password_from_the_inventory_works_and_is_never_kept(
    throwaway: Throwaway,
) -> None:
    box = throwaway
    box.reset()
    box.allow(f"/usr/bin/touch {box.target / 'fixed'}")  # a password is required
    _inventory(box, ansible_become_password=PASSWORD)
    run = _run(box)
    assert _status(run) == "fixed", _brief(run)
    assert (box.target / "fixed").stat().st_uid == 0
    assert PASSWORD not in _artifacts(box, run)


def test_a_become_password_from_the_environment_works(throwaway: Throwaway) -> None:
    box = throwaway
    box.reset()
    box.allow(f"/usr/bin/touch {box.target / 'fixed'}")
    _inventory(box, oorfix_become_secret="env:OORFIX_TEST_BECOME")  # noqa: S106
    run = _run(box, env={"OORFIX_TEST_BECOME": PASSWORD})
    assert _status(run) == "fixed", _brief(run)
    assert PASSWORD not in _artifacts(box, run)


def test_a_wrong_become_password_is_a_clear_refusal(throwaway: Throwaway) -> None:
    box = throwaway
    box.reset()
    box.allow(f"/usr/bin/touch {box.target / 'fixed'}")
    _inventory(box, ansible_become_password="not the password")  # noqa: S106
    run = _run(box)
    assert _status(run) == "failed"
    steps = _steps(run)
    refused = [s for s in steps if "sudo refused the become password" in (s.get("stderr") or "")]
    assert refused, steps
    assert not refused[0].get("timed_out")
    assert not (box.target / "fixed").exists()
    assert "not the password" not in _artifacts(box, run)


def test_the_plan_marks_privileged_steps(throwaway: Throwaway) -> None:
    box = throwaway
    _inventory(box)
    record = box.work / "plan.json"
    run = run_cli(["plan", str(_runbook(box)), "-i", str(box.work / "inventory.yml")], record)
    assert run.rc == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if "create the marker" in line]
    assert lines, run.stdout
    assert lines[0].rstrip().endswith("as root"), run.stdout
