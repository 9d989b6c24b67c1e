"""Ansible host patterns: names, globs, regexes, unions, intersections and exclusions."""

from __future__ import annotations

from pathlib import Path

import pytest

from oorfix.errors import InventoryError
from oorfix.inventory.core import Inventory, load_inventory, split_pattern
from oorfix.inventory.patterns import limit_pattern

INVENTORY = """\
all:
  hosts:
    bastion:
  children:
    gateway:
      children:
        payment_api:
          hosts:
            pg-api-[1:3]:
            pg-api-10:
        db:
          hosts:
            pg-db-[a:b]:
        lb:
          hosts:
            pg-lb-[1:2]:
    standby:
      hosts:
        pg-api-3:
        pg-db-b:
    power:
      hosts:
        pg-pwr-1:
    dc1:
      hosts:
        pg-api-1:
        pg-api-2:
        pg-db-a:
        pg-lb-1:
"""

API = ["pg-api-1", "pg-api-2", "pg-api-3", "pg-api-10"]
DB = ["pg-db-a", "pg-db-b"]
LB = ["pg-lb-1", "pg-lb-2"]
ALL = ["bastion", *API, *DB, *LB, "pg-pwr-1"]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    path = tmp_path_factory.mktemp("patterns") / "hosts.yml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def test_inventory_order_is_first_appearance(inventory: Inventory) -> None:
    assert list(inventory.hosts) == ALL


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # whole inventory
        ("all", ALL),
        ("*", ALL),
        # plain names: a group, a nested parent group, a host, the implicit ungrouped group
        ("payment_api", API),
        ("gateway", [*API, *DB, *LB]),
        ("pg-db-a", ["pg-db-a"]),
        ("ungrouped", ["bastion"]),
        # globs on host names and on group names
        ("pg-api-?", ["pg-api-1", "pg-api-2", "pg-api-3"]),
        ("pg-api-*", API),
        ("pg-*-1", ["pg-api-1", "pg-lb-1", "pg-pwr-1"]),
        ("*_api", API),
        ("pg-db-[ab]", DB),
        ("pg-db-[!a]", ["pg-db-b"]),
        # regexes: Python syntax, anchored at the start as in Ansible
        (r"~pg-api-\d+", API),
        (r"~pg-api-\d$", ["pg-api-1", "pg-api-2", "pg-api-3"]),
        ("~.*-(a|b)$", DB),
        ("~api", []),
        # unions with ':' or ',', always in inventory order and without duplicates
        ("lb:db", [*DB, *LB]),
        ("lb,db", [*DB, *LB]),
        ("db:db:pg-db-a", DB),
        ("power,pg-db-b", ["pg-db-b", "pg-pwr-1"]),
        # intersections and exclusions
        ("payment_api:&standby", ["pg-api-3"]),
        ("gateway:!standby", ["pg-api-1", "pg-api-2", "pg-api-10", "pg-db-a", *LB]),
        ("gateway:&dc1:!pg-lb-1", ["pg-api-1", "pg-api-2", "pg-db-a"]),
        ("standby:!pg-api-*", ["pg-db-b"]),
        ("pg-*:&~.*-1$", ["pg-api-1", "pg-lb-1", "pg-pwr-1"]),
        ("db:!db", []),
        # only & or ! parts start from all, as in Ansible
        ("!gateway", ["bastion", "pg-pwr-1"]),
        ("&standby", ["pg-api-3", "pg-db-b"]),
        # unions first, then intersections, then exclusions, wherever they are written
        ("!standby:payment_api", ["pg-api-1", "pg-api-2", "pg-api-10"]),
        ("&standby:payment_api", ["pg-api-3"]),
        ("!pg-api-1:&dc1:gateway", ["pg-api-2", "pg-db-a", "pg-lb-1"]),
        # whitespace around parts and operators
        (" payment_api : & standby ", ["pg-api-3"]),
        ("gateway , ! dc1 , !standby", ["pg-api-10", "pg-lb-2"]),
        # subscripts of a group's hosts in Ansible's order (here the inventory's); ends included
        ("payment_api[0]", ["pg-api-1"]),
        ("payment_api[-1]", ["pg-api-10"]),
        ("payment_api[1:2]", ["pg-api-2", "pg-api-3"]),
        ("payment_api[2:]", ["pg-api-3", "pg-api-10"]),
        ("payment_api[0:0]", ["pg-api-1"]),
        ("gateway[0]:lb[-1]", ["pg-api-1", "pg-lb-2"]),
        ("gateway:!payment_api[0:2]", ["pg-api-10", *DB, *LB]),
        ("pg-*[0]", ["pg-api-1"]),
        ("payment_api[4]", []),
        ("payment_api[-5]", []),
        # nothing matches: empty, never everything
        ("nothing", []),
        ("nothing*", []),
        ("nothing:!db", []),
        ("", []),
        (" , : ", []),
        ("Payment_API", []),
    ],
)
def test_select(inventory: Inventory, pattern: str, expected: list[str]) -> None:
    assert [host.name for host in inventory.select(pattern)] == expected


@pytest.mark.parametrize(
    ("pattern", "parts"),
    [
        ("a:&b, !c", ["a", "&b", "!c"]),
        ("  a  ", ["a"]),
        ("~x[1:2]:b", ["~x[1:2]", "b"]),
        ("a::b,,", ["a", "b"]),
        ("", []),
    ],
)
def test_split_pattern(pattern: str, parts: list[str]) -> None:
    assert split_pattern(pattern) == parts


def test_group_members_are_transitive(inventory: Inventory) -> None:
    assert inventory.group_members("gateway") == {*API, *DB, *LB}
    assert inventory.group_members("all") == set(ALL)
    assert inventory.group_members("standby") == {"pg-api-3", "pg-db-b"}
    assert inventory.group_members("no-such-group") == set()


def test_select_or_explain_returns_hosts_and_no_message(inventory: Inventory) -> None:
    hosts, message = inventory.select_or_explain("standby")
    assert [host.name for host in hosts] == ["pg-api-3", "pg-db-b"]
    assert message is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "paymnet_api",
            "pattern 'paymnet_api' matches no host "
            "(known groups: db, dc1, gateway, lb, payment_api, power, standby); "
            "did you mean 'payment_api'?",
        ),
        (
            "db:&power",
            "pattern 'db:&power' matches no host "
            "(known groups: db, dc1, gateway, lb, payment_api, power, standby)",
        ),
        (
            "pg-db-c",
            "pattern 'pg-db-c' matches no host "
            "(known groups: db, dc1, gateway, lb, payment_api, power, standby); "
            "did you mean 'pg-db-b' or 'pg-db-a'?",
        ),
    ],
)
def test_select_or_explain_explains_an_empty_match(
    inventory: Inventory, pattern: str, message: str
) -> None:
    assert inventory.select_or_explain(pattern) == ([], message)


def test_explain_an_inventory_without_hosts(tmp_path: Path) -> None:
    path = tmp_path / "empty.ini"
    path.write_text("[db]\n")
    assert load_inventory(path).select_or_explain("db") == (
        [],
        f"pattern 'db' matches no host: inventory {path} has no hosts",
    )


def test_a_bad_regex_is_an_inventory_error(inventory: Inventory) -> None:
    with pytest.raises(InventoryError, match=r"bad regular expression in host pattern '~\('"):
        inventory.select("db:~(")


def test_a_host_name_wins_over_a_group_of_the_same_name(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("[web]\nweb\nweb-2\n")
    inventory = load_inventory(path)
    assert [host.name for host in inventory.select("web")] == ["web"]
    assert [host.name for host in inventory.select("web*")] == ["web", "web-2"]
    assert inventory.warnings == ("'web' is both a host and a group",)


def test_a_dash_range_subscript_says_how_to_write_it(inventory: Inventory) -> None:
    with pytest.raises(InventoryError, match=r"write the range as \[0:2\]"):
        inventory.select("payment_api[0-2]")


def test_limit_from_a_file_of_host_names(inventory: Inventory, tmp_path: Path) -> None:
    retry = tmp_path / "site.retry"
    retry.write_text("pg-api-2\n\n# a comment\npg-db-a\n")
    assert [h.name for h in inventory.select(limit_pattern(f"@{retry}"))] == ["pg-api-2", "pg-db-a"]
    assert limit_pattern("db:!pg-db-a") == "db:!pg-db-a"


def test_limit_from_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="--limit: cannot read the host list") as caught:
        limit_pattern(f"@{tmp_path / 'nope'}")
    assert caught.value.path == str(tmp_path / "nope")


def test_localhost_is_implicit_when_named_and_absent(inventory: Inventory) -> None:
    (local,) = inventory.select("localhost")
    assert (local.name, local.groups, local.connection().kind) == ("localhost", (), "local")
    assert "localhost" not in [h.name for h in inventory.select("all")]
    assert [h.name for h in inventory.select("pg-db-a,localhost")] == ["pg-db-a", "localhost"]


def test_a_subscript_counts_a_groups_hosts_in_ansibles_order(tmp_path: Path) -> None:
    # Ansible's order for a group: its own hosts, then its children's, level by level, not the
    # order hosts first appear in; what is selected is still returned in inventory order.
    path = tmp_path / "hosts"
    path.write_text(
        "[db]\nd1\n[web]\nw1\n[prod:children]\nweb\ndb\n[prod]\np1\n[eu:children]\nprod\n"
    )
    inventory = load_inventory(path)
    assert inventory.group_hosts["prod"] == ("p1", "w1", "d1")
    assert inventory.group_hosts["eu"] == ("p1", "w1", "d1")
    assert [h.name for h in inventory.select("prod[0]")] == ["p1"]
    assert [h.name for h in inventory.select("eu[1:]")] == ["d1", "w1"]
    assert [h.name for h in inventory.select("web:prod[0]")] == ["w1", "p1"]
