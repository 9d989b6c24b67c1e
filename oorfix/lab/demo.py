"""`make demo`: the guide's case study, replayed on the lab and fixed by oorfix.

A bank's payment system stops at 10:00: one API server's power supply fluctuates, a software
module rejects payments, and the clearing network is slow and drops packets. The demo starts
the lab (a small payment gateway of real sshd hosts in network namespaces), injects the three
faults at once, shows what the lab sees, then runs oorfix: a dry-run to plan the fix, the
real run that fixes and verifies in order (power, then software, then network), and a second
run that finds the fleet healthy. The lab is torn down at the end, whatever happens.
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


def _oorfix(console: Console, lab: Lab, runbooks: list[str], args: list[str]) -> dict[str, Any]:
    record = lab.directory / f"run-{time.monotonic_ns()}.json"
    argv = [
        sys.executable,
        "-m",
        "oorfix",
        "run",
        *runbooks,
        "-i",
        str(lab.directory / "inventory.yml"),
    ]
    argv += ["--known-hosts", str(lab.known_hosts), "--limit", "payment_api", "--json", str(record)]
    console.rule(f"[bold]$ oorfix run {' '.join(runbooks)} --limit payment_api {' '.join(args)}")
    started = time.monotonic()
    done = subprocess.run([*argv, *args], check=False)
    console.print(f"exit code {done.returncode} after {time.monotonic() - started:.1f}s")
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def case_study(console: Console, directory: Path) -> bool:
    """Run the case study in a namespaced lab; True when every fault was fixed."""
    with Lab(directory, default_topology(directory, 3), namespaced=True) as lab:
        lab.write_inventory(directory / "inventory.yml")
        console.rule("[bold]09:59 the payment gateway runs")
        _show_fleet(console, lab)
        console.rule("[bold red]10:00 three faults at once")
        for host, fault_id, _ in CASE_STUDY:
            console.print(f"  {host}: {fault_id} ({faults.inject(lab, host, fault_id).what})")
        _show_fleet(console, lab)
        runbooks = [runbook for _, _, runbook in CASE_STUDY]
        _oorfix(console, lab, runbooks, ["--dry-run", "-q"])
        record = _oorfix(console, lab, runbooks, ["-v"])
        _oorfix(console, lab, runbooks, ["-q"])
        console.rule("[bold]the lab's own view after oorfix")
        _show_fleet(console, lab)
        gone = all(faults.FAULTS[f].gone(lab, lab.hosts[h]) for h, f, _ in CASE_STUDY)
        fixed = sorted(
            {(r["host"], r["runbook"]) for r in record["results"] if r["status"] == "fixed"}
        )
        console.print(f"fixed and verified by oorfix: {', '.join(f'{h} ({r})' for h, r in fixed)}")
        return gone


def crash_demo(console: Console, directory: Path) -> bool:
    """Without root: a crashed payment API on loopback hosts, found and fixed."""
    with Lab(directory, payment_hosts(directory, 3)) as lab:
        lab.write_inventory(directory / "inventory.yml")
        console.print("[yellow]not root: no network namespaces, so the reduced demo runs[/]")
        services.crash(services.Unit(lab.hosts["pg-api-2"].state, "pg-api"))
        _oorfix(console, lab, ["payment-api-crashed"], ["-v"])
        _oorfix(console, lab, ["payment-api-crashed"], ["-q"])
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
