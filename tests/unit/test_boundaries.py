"""Import boundaries: which package may import which, and what never loads the SSH stack.

The direction of imports between packages is the architecture (ARCHITECTURE.md): the base
modules at the bottom, the runbook language and inventories above them, then transports, the
safety controls, the run, output, and the command line on top. ``oorfix validate`` contacts no
host, so it must not pay for (or depend on) the SSH stack; the engine works against the
Transport protocol and only ``open_transport`` loads the SSH transport, when an SSH host is
actually opened.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SSH_STACK = ("paramiko", "fabric", "invoke")
# A module oorfix merely deferred (a stand-in, see oorfix.transport) was never imported.
REPORT = (
    "import sys; print(sorted(m for m, v in sys.modules.items() "
    f"if m.split('.')[0] in {SSH_STACK!r} and type(v).__name__ != '_Deferred'))"
)


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


def test_paramiko_comes_without_invoke_until_a_match_exec_needs_it() -> None:
    # paramiko's ssh_config reader imports invoke only to run `Match exec`; it waits.
    opened = ssh_modules_after("import oorfix.transport.ssh")
    assert "paramiko" in opened
    assert [m for m in opened if m.startswith("invoke.")] == []
    used = ssh_modules_after("import oorfix.transport.ssh, paramiko.config as c\nc.invoke.run")
    assert "invoke.context" in used


# --- the direction of imports between packages -----------------------------------------

BASE = frozenset({"errors", "results", "redact", "catalog"})
# Package -> the packages it may import ("base": errors, results, redact, catalog).
ALLOWED = {
    "base": {"base"},
    "runbook": {"base"},
    "inventory": {"base", "runbook"},
    "transport": {"base", "inventory"},
    "safety": {"base", "runbook"},
    "run": {"base", "runbook", "inventory", "transport", "safety"},
    "diagnosis": {"base", "runbook", "inventory", "run"},
    "testing": {"base", "runbook", "inventory", "transport", "run"},
    "output": {"base", "runbook", "inventory", "run", "safety", "diagnosis"},
    "lab": {"base", "inventory", "transport"},
    "app": {"base", "runbook", "inventory", "transport", "safety", "run", "diagnosis", "output"},
    "serve": {"base", "runbook", "inventory", "safety", "run", "diagnosis", "output", "app"},
    "distributed": {"base", "runbook", "inventory", "safety", "run", "output", "app"},
    "cli": {
        "app",
        "distributed",
        "serve",
        "base",
        "runbook",
        "inventory",
        "transport",
        "safety",
        "run",
        "output",
        "lab",
        "diagnosis",
        "testing",
    },
}
# Only the transport package itself may name the SSH transport modules.
TRANSPORT_INSIDE = (
    "oorfix.transport.ssh",
    "oorfix.transport.known_hosts",
    "oorfix.transport.jump",
    "oorfix.transport.links",
    "oorfix.transport.ssh_config_file",
    "oorfix.transport.known_hosts_file",
    "oorfix.transport.hostcert",
)
# The package's own entry points sit above everything: the lazy public API and `python -m`.
TOP = frozenset({"oorfix", "oorfix.__main__"})


def package_of(module: str) -> str:
    """``oorfix.run.engine`` -> ``run``; the base modules -> ``base``."""
    parts = module.split(".")
    return "base" if len(parts) < 2 or parts[1] in BASE else parts[1]


def imports_of(path: Path) -> list[str]:
    """The oorfix modules a source file imports (``from oorfix import x`` names ``oorfix.x``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "oorfix":
                names += [f"oorfix.{alias.name}" for alias in node.names]
            elif node.module.startswith("oorfix."):
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("oorfix.")]
    return [n for n in names if n != "oorfix.__version__"]


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, by dotted name."""
    found = []
    for path in sorted((REPO / "oorfix").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def violations() -> list[str]:
    """Every import that goes against ALLOWED or reaches into the SSH transport."""
    bad = []
    for name, path in modules():
        if name in TOP:
            continue
        source = package_of(name)
        for target in imports_of(path):
            if package_of(target) not in ALLOWED[source] | {source}:
                bad.append(f"{name} ({source}) imports {target} ({package_of(target)})")
            inside = target in TRANSPORT_INSIDE or target.startswith(
                tuple(f"{m}." for m in TRANSPORT_INSIDE)
            )  # whole names: oorfix.transport.sshconfig is not oorfix.transport.ssh
            if inside and source != "transport":
                bad.append(f"{name} imports {target}: use oorfix.transport.open_transport")
    return bad


def test_every_package_is_in_the_table() -> None:
    packages = {package_of(name) for name, _ in modules() if name not in TOP}
    assert packages == set(ALLOWED)


def test_imports_point_one_way() -> None:
    assert violations() == []


def test_the_check_catches_an_import_against_the_direction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: a safety module that imports the engine is reported.
    fake = tmp_path / "oorfix" / "safety"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from oorfix.run.engine import Engine\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert violations() == ["oorfix.safety.bad (safety) imports oorfix.run.engine (run)"]


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_the_version_and_help_load_no_command(flag: str) -> None:
    # Commands are imported when used: `oorfix --version` and `--help` pay for none of them.
    code = (
        "import sys\n"
        "from oorfix.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('oorfix.run', 'oorfix.output', 'oorfix.cli.run', 'pydantic', 'paramiko')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_commands_that_share_nothing_never_import_redis_or_celery() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from oorfix.cli import main\n"
        "r = CliRunner().invoke(main, ['validate', 'runbooks/', 'inventory/'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'celery', 'kombu')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
