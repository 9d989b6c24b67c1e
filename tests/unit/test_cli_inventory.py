"""`oorfix inventory`: the inventory as oorfix reads it, in ansible-inventory's shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from oorfix.cli import main

INVENTORY = """
all:
  vars: {ansible_user: ops, db_password: hunter22}
  children:
    web:
      hosts:
        w1: {ansible_host: 10.0.0.1, ansible_port: 2222}
        w2:
    db:
      hosts:
        d1:
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["inventory", *args])
    return result.exit_code, result.output


def test_list_has_ansible_inventorys_shape(write: Callable[[str, str], Path]) -> None:
    path = write("inv.yml", INVENTORY)
    code, out = invoke("-i", str(path), "--list")
    data = json.loads(out)
    assert code == 0
    assert data["web"] == {"hosts": ["w1", "w2"]}
    assert data["all"]["children"] == ["ungrouped", "web", "db"]  # Ansible's order
    assert data["_meta"]["hostvars"]["w1"] == {
        "ansible_user": "ops",
        "db_password": "********",  # secret-named values never printed
        "ansible_host": "10.0.0.1",
        "ansible_port": 2222,
    }
    assert "hunter22" not in out


def test_graph_draws_the_group_tree(write: Callable[[str, str], Path]) -> None:
    code, out = invoke("-i", str(write("inv.yml", INVENTORY)), "--graph")
    assert code == 0
    lines = ["@all:", "  |--@ungrouped:", "  |--@web:", "  |  |--w1", "  |  |--w2", "  |--@db:"]
    assert out.splitlines()[:6] == lines


def test_host_shows_its_connection(write: Callable[[str, str], Path]) -> None:
    code, out = invoke("-i", str(write("inv.yml", INVENTORY)), "--host", "w1")
    assert code == 0
    connection = json.loads(out)["_oorfix_connection"]
    assert (connection["address"], connection["port"], connection["user"]) == (
        "10.0.0.1",
        2222,
        "ops",
    )


def test_hosts_lists_what_a_pattern_selects(write: Callable[[str, str], Path]) -> None:
    code, out = invoke("-i", str(write("inv.yml", INVENTORY)), "--hosts", "web[-1]:db")
    assert (code, out.split()) == (0, ["w2", "d1"])


def test_an_unknown_host_or_no_choice_is_an_input_error(write: Callable[[str, str], Path]) -> None:
    path = str(write("inv.yml", INVENTORY))
    code, out = invoke("-i", path, "--host", "nope")
    assert code == 2
    assert "no host 'nope' in the inventory" in out
    assert invoke("-i", path)[0] == 2
