"""Import boundaries, checked in a fresh interpreter: what never loads paramiko or fabric.

``oorfix validate`` contacts no host, so it must not pay for (or depend on) the SSH stack;
the engine, planner and executor work against the Transport protocol and only
``open_transport`` loads the SSH transport, when an SSH host is actually opened.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SSH_STACK = ("paramiko", "fabric", "invoke")
REPORT = f"import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {SSH_STACK!r}))"


def ssh_modules_after(code: str) -> list[str]:
    """The paramiko/fabric/invoke modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert isinstance(loaded, list)
    return loaded


def test_validate_never_imports_paramiko() -> None:
    assert sorted((REPO / "runbooks").glob("*.yml")), "nothing to validate"
    code = (
        "from click.testing import CliRunner\n"
        "from oorfix.cli import main\n"
        "r = CliRunner().invoke(main, ['validate', 'runbooks/', 'inventory/'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    assert ssh_modules_after(code) == []


@pytest.mark.parametrize("module", ["oorfix.run.engine", "oorfix.run.planner", "oorfix.run.steps"])
def test_the_engine_side_never_imports_paramiko(module: str) -> None:
    assert ssh_modules_after(f"import {module}") == []


def test_a_local_transport_never_imports_paramiko() -> None:
    code = (
        "from oorfix.inventory.hosts import HostConnection\n"
        "from oorfix.redact import Command\n"
        "from oorfix.transport import ConnectOptions, open_transport\n"
        "t = open_transport(HostConnection('l', 'localhost', kind='local'), ConnectOptions())\n"
        "t.connect()\n"
        "assert t.run(Command('true'), timeout=10).rc == 0\n"
        "t.close()\n"
    )
    assert ssh_modules_after(code) == []


def test_the_check_sees_paramiko_when_an_ssh_host_is_opened() -> None:
    # The control: the same check does see the SSH stack once an SSH transport exists.
    code = (
        "from oorfix.inventory.hosts import HostConnection\n"
        "from oorfix.transport import ConnectOptions, open_transport\n"
        "open_transport(HostConnection('s', '127.0.0.1', kind='ssh'), ConnectOptions())\n"
    )
    assert "paramiko" in ssh_modules_after(code)
