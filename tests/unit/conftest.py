"""Fixtures for engine unit tests: runbooks and inventories written to tmp files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from oorfix.inventory.core import Inventory, load_inventory
from oorfix.runbook.loader import LoadedRunbook, load_runbook

INVENTORY = """
all:
  children:
    payment_api:
      hosts:
        api-1: {ssh_host: 127.0.0.2}
        api-2: {ssh_host: 127.0.0.3}
    lb:
      hosts:
        lb-1: {ssh_host: 127.0.0.4}
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented text to a file under tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture
def inventory(write: Callable[[str, str], Path]) -> Inventory:
    """A small inventory: two API hosts and a load balancer."""
    return load_inventory(write("inventory.yml", INVENTORY))


@pytest.fixture
def runbook(write: Callable[[str, str], Path]) -> Callable[[str], LoadedRunbook]:
    """Load a runbook from YAML text."""

    def _load(text: str) -> LoadedRunbook:
        return load_runbook(write("runbook.yml", text))

    return _load
