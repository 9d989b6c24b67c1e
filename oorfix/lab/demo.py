"""`make demo`: the guide's case study, replayed on the lab and fixed by oorfix.

A bank's payment system stops at 10:00: one API server's power supply fluctuates, a software
module rejects payments, and the clearing network is slow and drops packets. The demo starts
the lab (a small payment gateway of real sshd hosts in network namespaces), injects the three
faults at once, shows what the lab sees, then runs `oorfix diagnose --fix` over every fault
runbook: it tests every hypothesis on every host, names the root causes (with the hypothesis
table), fixes them in causal order with re-checks, and re-diagnoses until the fleet
converges; a second `diagnose` then finds only the mitigated causes (the carrier's slow path,
the sagging feed A), which stay escalated. The lab is torn down at the end, whatever happens.
Without root there are no namespaces, and a reduced demo (a crashed API) runs instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from oorfix.lab import faults, hardware, network, services
from oorfix.lab.lab import Lab, payment_hosts
from oorfix.lab.topology import default_topology

REPO_RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
CASE_STUDY = (
    ("pg-api-1", "environment.power_fluctuation", "rack-voltage-unstable"),
    ("pg-api-2", "software.compatibility", "payment-api-version"),
    ("pg-api-3", "network.latency", "clearing-path-slow"),
)


def _payment(lab: Lab, name: str) -> str:
    host = lab.hosts[name]
    address = host.data_address(lab.namespaced)
    argv = ["curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]
    argv.append(f"http://{address}:8080/pay")
    done = subprocess.run(_in_host(lab, name, argv), capture_output=True, text=True, check=False)
    return {"200": "accepted", "502": "REJECTED"}.get(done.stdout, f"no answer ({done.stdout})")


def _in_host(lab: Lab, name: str, argv: list[str]) -> list[str]:
    return lab.net.host_exec(lab.hosts[name], argv) if lab.net is not None else argv


def _clearing(lab: Lab, name: str) -> str:
    if lab.net is None:
        return "-"
    try:
        seconds = network.clearing_latency(lab.net, lab.hosts[name])
    except network.NetworkError:
        return "UNREACHABLE"
    return f"{seconds:.2f}s" + (" SLOW" if seconds > network.LATENCY_THRESHOLD else "")


def _show_fleet(console: Console, lab: Lab) -> None:
    console.print("  host       power   payment    clearing round trip")
    for name in ("pg-api-1", "pg-api-2", "pg-api-3"):
        host = lab.hosts[name]
        power = "ok" if hardware.power_ok(lab.directory, host.rack) else "UNSTABLE"
        console.print(f"  {name:<10} {power:<7} {_payment(lab, name):<10} {_clearing(lab, name)}")


def _oorfix(console: Console, lab: Lab, command: list[str], args: list[str]) -> dict[str, Any]:
    """Run one oorfix command against the lab, show it, and return its run record."""
    record = lab.directory / f"run-{time.monotonic_ns()}.json"
    inventory = ["-i", str(lab.directory / "inventory.yml"), "--known-hosts", str(lab.known_hosts)]
    shown = " ".join([*command, *args])
    console.rule(f"[bold]$ oorfix {shown}")
    started = time.monotonic()
    argv = [sys.executable, "-m", "oorfix", *command, *inventory, "--json", str(record), *args]
    done = subprocess.run(argv, check=False)
    console.print(f"exit code {done.returncode} after {time.monotonic() - started:.1f}s")
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def case_study(console: Console, directory: Path) -> bool:
    """Run the case study in a namespaced lab; True when it was diagnosed and converged."""
    with Lab(directory, default_topology(directory, 3), namespaced=True) as lab:
        lab.write_inventory(directory / "inventory.yml")
        console.rule("[bold]09:59 the payment gateway runs")
        _show_fleet(console, lab)
        console.rule("[bold red]10:00 three faults at once")
        for host, fault_id, _ in CASE_STUDY:
            console.print(f"  {host}: {fault_id} ({faults.inject(lab, host, fault_id).what})")
        _show_fleet(console, lab)
        runbooks = ["--runbooks", str(REPO_RUNBOOKS)]
        fixed = _oorfix(console, lab, ["diagnose", *runbooks], ["--fix", "--yes", "-q"])
        again = _oorfix(console, lab, ["diagnose", *runbooks], ["-q"])
        console.rule("[bold]the lab's own view after oorfix")
        _show_fleet(console, lab)
        gone = all(faults.FAULTS[f].gone(lab, lab.hosts[h]) for h, f, _ in CASE_STUDY)
        diagnosis = fixed["diagnosis"] or {}
        converged = diagnosis.get("converged") is True
        # Mitigated (exit 4): service restored, the carrier's path and feed A still escalated.
        settled = again["exit_code"] in (0, 4) and fixed["exit_code"] in (0, 4)
        roots = sorted(
            {
                (i["root_cause"], h["host"])
                for h in diagnosis.get("hosts", [])
                for i in h["incidents"]
            }
        )
        console.print(f"root causes found: {', '.join(f'{f} on {h}' for f, h in roots)}")
        console.print(f"converged: {converged}; second diagnose exit code {again['exit_code']}")
        return gone and converged and settled


def crash_demo(console: Console, directory: Path) -> bool:
    """Without root: a crashed payment API on loopback hosts, found and fixed."""
    with Lab(directory, payment_hosts(directory, 3)) as lab:
        lab.write_inventory(directory / "inventory.yml")
        console.print("[yellow]not root: no network namespaces, so the reduced demo runs[/]")
        services.crash(services.Unit(lab.hosts["pg-api-2"].state, "pg-api"))
        command = ["run", "payment-api-crashed", "--limit", "payment_api"]
        _oorfix(console, lab, command, ["-v"])
        _oorfix(console, lab, command, ["-q"])
        return faults.FAULTS["software.crash"].gone(lab, lab.hosts["pg-api-2"])


def main() -> None:
    """Run the demo end to end."""
    console = Console(highlight=False)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oorfix-demo-") as tmp:
        run = case_study if network.available() else crash_demo
        ok = run(console, Path(tmp))
    console.rule(f"demo finished in {time.monotonic() - started:.0f}s")
    if not ok:
        sys.exit("demo failed: a fault is still there")


if __name__ == "__main__":
    main()
