"""One rule for what a test needs from the machine: skip where it is missing, fail in CI.

``make test`` (and so CI) sets ``OORFIX_REQUIRE_<RESOURCE>=1`` for every resource the suite
must exercise, so a missing sshd, browser or network-namespace capability fails the run
there instead of skipping it silently.
"""

from __future__ import annotations

import os

import pytest

RESOURCES = ("SSHD", "BROWSER", "NETNS", "ALERTMANAGER", "REDIS")


def require(resource: str, available: bool, why: str) -> None:
    """Return when ``available``; else fail if ``OORFIX_REQUIRE_<RESOURCE>=1``, else skip."""
    if resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}: one of {', '.join(RESOURCES)}")
    if available:
        return
    variable = f"OORFIX_REQUIRE_{resource}"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{why} and {variable}=1")
    pytest.skip(why)
