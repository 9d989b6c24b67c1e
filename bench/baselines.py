"""The baselines, run by the benchmark in their own virtualenv (`.venv-bench`), one
subprocess per measurement, exactly as a user of each tool would write them.

    python bench/baselines.py fabric-script HOSTS.json
    python bench/baselines.py fabric-exec HOSTS.json

HOSTS.json: {"hosts": [[address, port], ...], "user": ..., "key": ..., "known_hosts": ...,
"checks": [command, ...]}. Prints {"hosts_ok": n, "checks_ok": n} after validating every
host's output: each check's exit status, and its marker, must come back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _group(spec: dict[str, Any]) -> Any:
    from fabric import ThreadingGroup

    hosts = [f"{spec['user']}@{address}:{port}" for address, port in spec["hosts"]]
    group = ThreadingGroup(*hosts, connect_kwargs={"key_filename": [spec["key"]]})
    for connection in group:
        connection.client.load_host_keys(spec["known_hosts"])
    return group


def _script(checks: list[str]) -> str:
    """All checks as one script, each one's status after a marker the checks cannot print."""
    parts = [
        f'( {check} ) >/dev/null 2>&1; echo "@@check {i} $?"' for i, check in enumerate(checks)
    ]
    return "; ".join(parts)


def fabric_script(spec: dict[str, Any]) -> dict[str, int]:
    """fabric's ThreadingGroup, one script of every check per host."""
    group = _group(spec)
    try:
        results = group.run(_script(spec["checks"]), hide=True, warn=True)
    finally:
        group.close()
    hosts_ok = checks_ok = 0
    for result in results.values():
        lines = [line for line in result.stdout.splitlines() if line.startswith("@@check ")]
        good = [line for line in lines if line.endswith(" 0")]
        checks_ok += len(good)
        hosts_ok += len(good) == len(spec["checks"])
    return {"hosts_ok": hosts_ok, "checks_ok": checks_ok}


def fabric_exec(spec: dict[str, Any]) -> dict[str, int]:
    """fabric's ThreadingGroup, one exec per check on every host (what a user writes first)."""
    group = _group(spec)
    per_host: dict[str, int] = {}
    try:
        for check in spec["checks"]:
            for connection, result in group.run(check, hide=True, warn=True).items():
                per_host[connection.host] = per_host.get(connection.host, 0) + (result.exited == 0)
    finally:
        group.close()
    good = [n for n in per_host.values() if n == len(spec["checks"])]
    return {"hosts_ok": len(good), "checks_ok": sum(per_host.values())}


TOOLS = {"fabric-script": fabric_script, "fabric-exec": fabric_exec}


if __name__ == "__main__":
    tool, path = sys.argv[1], Path(sys.argv[2])
    print(json.dumps(TOOLS[tool](json.loads(path.read_text()))))
