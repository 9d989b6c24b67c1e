"""`make demo`: lab hosts on loopback, a crashed payment API, found and fixed by oorfix.

Starts three payment API hosts behind a real sshd, kills the API on one of them the way
the OOM killer would, then runs oorfix three times: a dry-run that shows the plan, the real
run that fixes and verifies, and a second run that finds the fleet healthy. The lab is
torn down at the end, whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console

from oorfix.lab import services
from oorfix.lab.lab import Lab, payment_hosts

RUNBOOKS = ("payment-api-crashed", "payment-api-down")
BROKEN = "pg-api-2"


def _health(address: str) -> str:
    try:
        with urllib.request.urlopen(f"http://{address}:8080/health", timeout=2) as reply:
            return str(json.loads(reply.read())["status"])
    except OSError as exc:
        return f"down ({getattr(exc, 'reason', exc)})"


def _show_fleet(console: Console, lab: Lab) -> None:
    for host in lab.hosts.values():
        console.print(f"  {host.name:<9} {host.address:<12} health: {_health(host.address)}")


def _oorfix(
    console: Console, args: list[str], lab: Lab, inventory: Path, record: Path
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "oorfix", "run", *RUNBOOKS, "-i", str(inventory)]
    argv += ["--known-hosts", str(lab.known_hosts), "--json", str(record), *args]
    console.rule(f"[bold]$ oorfix run {' '.join(RUNBOOKS)} {' '.join(args)}".rstrip())
    done = subprocess.run(argv, check=False)
    console.print(f"exit code {done.returncode}")
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def main() -> None:
    """Run the demo end to end."""
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory(prefix="oorfix-demo-") as tmp:
        directory = Path(tmp)
        with Lab(directory, payment_hosts(directory, 3)) as lab:
            inventory = lab.write_inventory(directory / "inventory.yml")
            console.rule("[bold]lab: three payment API hosts, each a real sshd address")
            _show_fleet(console, lab)
            console.print(f"\n[red]injecting software.crash on {BROKEN}[/]: OOM-kill of pg-api")
            services.crash(services.Unit(lab.hosts[BROKEN].state, "pg-api"))
            _show_fleet(console, lab)
            _oorfix(console, ["--dry-run"], lab, inventory, directory / "dry.json")
            record = _oorfix(console, ["-v"], lab, inventory, directory / "fix.json")
            _oorfix(console, [], lab, inventory, directory / "again.json")
            console.rule("[bold]the lab's own view after the fix")
            _show_fleet(console, lab)
            fixed = [r["host"] for r in record["results"] if r["status"] == "fixed"]
            console.print(f"fixed by oorfix: {', '.join(fixed) or 'nothing'}")
            if fixed != [BROKEN] or _health(lab.hosts[BROKEN].address) != "ok":
                sys.exit("demo failed: the injected fault was not fixed")


if __name__ == "__main__":
    main()
