"""`oorfix lab up|inject|status|down` as a user runs them, on loopback hosts (no namespaces)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import require

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def oorfix(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "oorfix", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def lab_pids(directory: Path) -> list[int]:
    """Every pid the lab recorded: services and sshds."""
    files = [*directory.glob("hosts/*/run/*.pid"), *directory.glob("sshd-*/sshd.pid")]
    return [int(f.read_text().split()[0]) for f in files]


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    require("SSHD", Path("/usr/sbin/sshd").exists(), "/usr/sbin/sshd is not installed")
    directory = tmp_path / "lab"
    yield directory
    oorfix("lab", "down", "--dir", str(directory))


def test_lab_lifecycle_from_the_command_line(lab_dir: Path) -> None:
    up = oorfix("lab", "up", "--dir", str(lab_dir), "--hosts", "2", "--no-netns")
    assert up.returncode == 0, up.stderr
    inventory = lab_dir / "inventory.yml"
    assert f"inventory:   {inventory}" in up.stdout
    pids = lab_pids(lab_dir)
    assert len(pids) == 6  # two APIs, the standby's API, the balancer, the database, sshd
    assert all(alive(p) for p in pids)

    again = oorfix("lab", "up", "--dir", str(lab_dir))
    assert (again.returncode, again.stdout.splitlines()[0]) == (
        0,
        f"the lab in {lab_dir} is already up",
    )
    assert lab_pids(lab_dir) == pids

    inject = oorfix("lab", "inject", "--dir", str(lab_dir), "pg-api-1", "software.crash")
    assert inject.returncode == 0, inject.stderr
    assert "injected software.crash into pg-api-1" in inject.stdout
    status = oorfix("lab", "status", "--dir", str(lab_dir))
    assert "fault software.crash on pg-api-1" in status.stdout
    assert status.stdout.rstrip().endswith("present")

    record = lab_dir / "run.json"
    run = oorfix("run", "payment-api-crashed", "-i", str(inventory), "--known-hosts",
                 str(lab_dir / "known_hosts"), "--json", str(record))  # fmt: skip
    assert run.returncode == 0, run.stderr
    statuses = {r["host"]: r["status"] for r in json.loads(record.read_text())["results"]}
    assert statuses == {"pg-api-1": "fixed", "pg-api-2": "healthy"}
    assert oorfix("lab", "status", "--dir", str(lab_dir)).stdout.rstrip().endswith("gone")

    down = oorfix("lab", "down", "--dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert not any(alive(p) for p in pids + lab_pids(lab_dir))
    gone = oorfix("lab", "status", "--dir", str(lab_dir))
    assert gone.returncode == 2
    assert "no lab is running" in gone.stderr


@pytest.mark.parametrize(
    ("host", "fault", "message"),
    [
        ("pg-api-1", "network.outage", "network.outage needs the lab's network namespaces"),
        ("nosuch", "software.crash", "no lab host 'nosuch'"),
        ("pg-api-1", "software.nope", "unknown fault id 'software.nope'"),
        ("lb-1", "software.crash", "software.crash is injected into a host of role api or standby"),
    ],
)
def test_lab_inject_refuses_what_it_cannot_do(
    lab_dir: Path, host: str, fault: str, message: str
) -> None:
    up = oorfix("lab", "up", "--dir", str(lab_dir), "--hosts", "1", "--no-netns")
    assert up.returncode == 0, up.stderr
    done = oorfix("lab", "inject", "--dir", str(lab_dir), host, fault)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
