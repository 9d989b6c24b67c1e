"""Thin, typed calls of iproute2 (``ip``, ``tc``) for the lab's data plane.

Every command is an argv list (never a shell) run to completion; a failure becomes a
``NetworkError`` naming the command and what it printed on stderr.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from oorfix.lab.topology import NETNS_PREFIX

COMMAND_TIMEOUT = 30.0  # a bound against a hung tool, far above any ip/tc call


class NetworkError(RuntimeError):
    """A data-plane command failed, or the lab network cannot do what was asked."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``argv`` and return its stdout; raise NetworkError when it fails and ``check``."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetworkError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        raise NetworkError(
            f"{' '.join(argv)} failed with status {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def succeeds(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> bool:
    """Whether ``argv`` exits 0 (its output is discarded)."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ip(ns: str, *args: str, check: bool = True) -> str:
    """``ip -n NS ARGS``: an ip command applied inside namespace ``ns``."""
    return run(["ip", "-n", ns, *args], check=check)


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    """``ip -j -n NS ARGS`` parsed; an empty answer is an empty list."""
    text = run(["ip", "-j", "-n", ns, *args]).strip()
    return list(json.loads(text)) if text else []


def in_ns(ns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that it runs inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def namespaces() -> list[str]:
    """Every named network namespace (``ip netns list``), ours or not."""
    lines = run(["ip", "netns", "list"]).splitlines()
    return [line.split()[0] for line in lines if line.strip()]


def lab_namespaces() -> list[str]:
    """The named namespaces that carry the lab's prefix."""
    return [ns for ns in namespaces() if ns.startswith(NETNS_PREFIX)]


def add_namespace(ns: str) -> None:
    """Create namespace ``ns`` unless it exists."""
    if ns not in namespaces():
        run(["ip", "netns", "add", ns])


def delete_namespace(ns: str) -> None:
    """Delete namespace ``ns`` (its links and their veth peers go with it)."""
    if ns in namespaces():
        run(["ip", "netns", "delete", ns])


def sysctl(ns: str, *settings: str) -> None:
    """Set sysctls inside ``ns``; ``-e``: a key this kernel lacks (no IPv6) is not an error."""
    run(in_ns(ns, ["sysctl", "-q", "-e", "-w", *settings]))


def link_names(ns: str) -> set[str]:
    """The names of the links in namespace ``ns``."""
    return {str(link["ifname"]) for link in ip_json(ns, "link", "show")}


def veth(ns: str, name: str, peer_ns: str, peer: str) -> None:
    """A veth pair created straight inside its two namespaces (never in the root one)."""
    if name not in link_names(ns):
        ip(ns, "link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_ns)


def bridge(ns: str, name: str) -> None:
    """A bridge in ``ns`` (without STP, so ports forward at once), up."""
    if name not in link_names(ns):
        ip(ns, "link", "add", name, "type", "bridge", "stp_state", "0")
    ip(ns, "link", "set", name, "up")


def route_lines(ns: str, *selector: str) -> list[str]:
    """``ip route show SELECTOR`` in ``ns``, one route a line."""
    return [line for line in ip(ns, "route", "show", *selector).splitlines() if line.strip()]


def gateway_of(route: str) -> str | None:
    """The ``via`` address of one line of ``ip route`` output."""
    words = route.split()
    return words[words.index("via") + 1] if "via" in words[:-1] else None


def has_qdisc(ns: str, dev: str, kind: str) -> bool:
    """Whether ``dev`` in ``ns`` has a root qdisc of ``kind``."""
    qdiscs = json.loads(run(["tc", "-n", ns, "-j", "qdisc", "show", "dev", dev]) or "[]")
    return any(q.get("kind") == kind and q.get("root") for q in qdiscs)
