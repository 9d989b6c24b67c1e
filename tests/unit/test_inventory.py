"""Loading Ansible YAML and INI inventories, group_vars/host_vars and variable precedence."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from oorfix.errors import InventoryError
from oorfix.inventory.core import Inventory, expand_host_range, load_inventory

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def load(root: Path, files: dict[str, str], source: str) -> Inventory:
    write(root, files)
    return load_inventory(root / source)


def summary(inventory: Inventory) -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    return {name: (host.groups, dict(host.vars)) for name, host in inventory.hosts.items()}


YAML_FORM = """\
all:
  hosts:
    bastion:
      ansible_host: 192.0.2.10
  vars:
    ansible_user: oorfix
    motd: welcome to pg
  children:
    gateway:
      children:
        payment_api:
          hosts:
            pg-api-[01:02]:
          vars:
            service: pg-api
        db:
          hosts:
            pg-db-a:
              ansible_host: 10.0.1.1
              note: primary db
            pg-db-b:
              ansible_host: 10.0.1.2
              ansible_port: 2222
          vars:
            service: postgresql
    standby:
      hosts:
        pg-db-b:
"""

INI_FORM = """\
# hosts before the first section are ungrouped
bastion ansible_host=192.0.2.10

[all:vars]
ansible_user=oorfix
motd="welcome to pg"

[gateway:children]
payment_api
db   # an inline comment

[payment_api]
pg-api-[01:02]

[payment_api:vars]
service = pg-api

[db]
; a comment in the other INI style
pg-db-a ansible_host=10.0.1.1 note='primary db'
pg-db-b:2222 ansible_host=10.0.1.2

[db:vars]
service=postgresql

[standby]
pg-db-b
"""

COMMON = {"ansible_user": "oorfix", "motd": "welcome to pg"}
EXPECTED = {
    "bastion": (
        ("all", "ungrouped"),
        {
            **COMMON,
            "ansible_host": "192.0.2.10",
            "inventory_hostname": "bastion",
            "inventory_hostname_short": "bastion",
            "group_names": [],
        },
    ),
    "pg-api-01": (
        ("all", "gateway", "payment_api"),
        {
            **COMMON,
            "service": "pg-api",
            "inventory_hostname": "pg-api-01",
            "inventory_hostname_short": "pg-api-01",
            "group_names": ["gateway", "payment_api"],
        },
    ),
    "pg-db-a": (
        ("all", "gateway", "db"),
        {
            **COMMON,
            "service": "postgresql",
            "ansible_host": "10.0.1.1",
            "note": "primary db",
            "inventory_hostname": "pg-db-a",
            "inventory_hostname_short": "pg-db-a",
            "group_names": ["db", "gateway"],
        },
    ),
    "pg-db-b": (
        ("all", "gateway", "standby", "db"),
        {
            **COMMON,
            "service": "postgresql",
            "ansible_host": "10.0.1.2",
            "ansible_port": 2222,
            "inventory_hostname": "pg-db-b",
            "inventory_hostname_short": "pg-db-b",
            "group_names": ["db", "gateway", "standby"],
        },
    ),
}


@pytest.mark.parametrize(("source", "text"), [("hosts.yml", YAML_FORM), ("hosts.ini", INI_FORM)])
def test_yaml_and_ini_forms_give_the_same_hosts(tmp_path: Path, source: str, text: str) -> None:
    inventory = load(tmp_path, {source: text}, source)
    hosts = summary(inventory)
    assert list(hosts) == ["bastion", "pg-api-01", "pg-api-02", "pg-db-a", "pg-db-b"]
    assert {name: hosts[name] for name in EXPECTED} == EXPECTED
    assert inventory.groups["gateway"].children == ("payment_api", "db")
    assert inventory.groups["db"].hosts == ("pg-db-a", "pg-db-b")
    assert inventory.groups["db"].vars == {"service": "postgresql"}
    assert inventory.groups["ungrouped"].hosts == ("bastion",)
    assert inventory.path == tmp_path / source
    assert inventory.warnings == ()


def test_the_example_inventories_agree() -> None:
    yaml_form = load_inventory(REPO / "inventory" / "example.yml")
    ini_form = load_inventory(REPO / "inventory" / "example.ini")
    assert summary(yaml_form) == summary(ini_form)
    assert [host.name for host in yaml_form.select("payment_api:&standby")] == ["pg-api-3"]
    replica = yaml_form.hosts["pg-db-b"]
    assert replica.vars["pg_role"] == "replica"
    assert replica.vars["standby"] is True
    assert yaml_form.hosts["pg-pwr-1"].connection().port == 2222
    assert yaml_form.warnings == ()


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("api[1:3]", ["api1", "api2", "api3"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("web[01:10:3]", ["web01", "web04", "web07", "web10"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("n[9:11]", ["n9", "n10", "n11"]),
        ("r[1:2]-[a:b].dc1", ["r1-a.dc1", "r1-b.dc1", "r2-a.dc1", "r2-b.dc1"]),
        ("x[y:B]", ["xy", "xz", "xA", "xB"]),
        ("plain.example.com", ["plain.example.com"]),
    ],
)
def test_expand_host_range(pattern: str, names: list[str]) -> None:
    assert expand_host_range(pattern) == names


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("h[3:1]", "bad host range [3:1]: start is after end"),
        ("h[c:a]", "bad host range [c:a]: start is after end"),
        ("h[01:100]", "bad host range [01:100]: zero-padded start and end must be as long"),
        ("h[1:]", "bad host range [1:]: expected [start:end] or [start:end:step]"),
        ("h[1]", "bad host range [1]: expected [start:end] or [start:end:step]"),
        ("h[1:2:0]", "bad host range [1:2:0]: the step must be a positive number"),
        ("h[a:3]", "bad host range [a:3]: expected two numbers or two letters"),
        ("h[1:2", "unbalanced bracket in host name 'h[1:2'"),
        ("h]1", "unbalanced bracket in host name 'h]1'"),
        ("h[0:99999]", "bad host range [0:99999]: more than 10000 hosts"),
        ("h[0:999]-[0:99]", "host range 'h[0:999]-[0:99]' expands to more than 10000 hosts"),
    ],
)
def test_bad_host_ranges(pattern: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        expand_host_range(pattern)
    assert str(caught.value) == message


def test_ini_host_port_applies_to_a_whole_range(tmp_path: Path) -> None:
    inventory = load(tmp_path, {"hosts": "[api]\napi[1:2]:2200 ansible_user=ops\n"}, "hosts")
    assert [
        (h.name, h.vars["ansible_port"], h.vars["ansible_user"]) for h in inventory.select("api")
    ] == [
        ("api1", 2200, "ops"),
        ("api2", 2200, "ops"),
    ]


def test_ini_vars_section_may_come_before_its_group(tmp_path: Path) -> None:
    text = '[db:vars]\nservice=\'postgres ql\'\nempty=\nq="a" "b"\n[db:hosts]\npg-db-a\n'
    host = load(tmp_path, {"hosts.ini": text}, "hosts.ini").hosts["pg-db-a"]
    assert (host.vars["service"], host.vars["empty"], host.vars["q"]) == (
        "postgres ql",
        "",
        "ab",  # Python's adjacent literals, as Ansible reads them
    )


# INI values are typed as Ansible types them: a Python literal when they are one, else text.
INI_VALUES = [
    ("2222", 2222),
    ("1.5", 1.5),
    ("False", False),
    ("None", None),
    ("[1, 'b']", [1, "b"]),
    ("{'k': 1}", {"k": 1}),
    ("'quoted'", "quoted"),
    ("true", "true"),  # not a Python literal: Ansible keeps the text too
    ("0755", "0755"),
    ("yes", "yes"),
    ("C:\\new", "C:\\new"),
    ("__import__('os')", "__import__('os')"),  # literals only: nothing is ever run
    ("", ""),
]


@pytest.mark.parametrize(("written", "value"), INI_VALUES)
def test_ini_values_are_typed_as_ansible_types_them(
    tmp_path: Path, written: str, value: object
) -> None:
    text = f'[db]\npg-db-a v="{written}"\n[db:vars]\nw={written}\n'
    host = load(tmp_path, {"hosts.ini": text}, "hosts.ini").hosts["pg-db-a"]
    assert (host.vars["v"], host.vars["w"]) == (value, value)


def test_an_ini_port_is_a_number(tmp_path: Path) -> None:
    text = "[db]\npg-db-a:2200\npg-db-b ansible_port=2222\n"
    hosts = load(tmp_path, {"hosts.ini": text}, "hosts.ini").hosts
    assert [hosts[h].vars["ansible_port"] for h in ("pg-db-a", "pg-db-b")] == [2200, 2222]
    assert hosts["pg-db-b"].connection().port == 2222


def test_yaml_groups_at_top_level_and_null_bodies(tmp_path: Path) -> None:
    text = "db:\n  hosts:\n    pg-db-a:\nlb:\nall:\n  vars:\n    x: 1\n"
    inventory = load(tmp_path, {"hosts.yaml": text}, "hosts.yaml")
    assert inventory.hosts["pg-db-a"].groups == ("all", "db")
    assert inventory.hosts["pg-db-a"].vars["x"] == 1
    assert inventory.groups["all"].children == ("ungrouped", "db", "lb")
    assert inventory.group_members("lb") == set()


def test_a_host_in_several_places_merges_and_keeps_first_position(tmp_path: Path) -> None:
    text = "[a]\nh2 x=1\nh1\n[b]\nh1 y=2\nh2 x=3\n"
    inventory = load(tmp_path, {"hosts": text}, "hosts")
    assert list(inventory.hosts) == ["h2", "h1"]
    assert (inventory.hosts["h2"].vars["x"], inventory.hosts["h1"].vars["y"]) == (3, 2)
    assert inventory.hosts["h1"].vars["group_names"] == ["a", "b"]


PRECEDENCE = """\
all:
  vars: {v_all: all, v1: all, v2: all, v3: all, v4: all}
  children:
    parent:
      vars: {v1: parent, v2: parent, v3: parent}
      children:
        child:
          vars: {v2: child, v3: child}
          hosts:
            h1: {v3: host}
"""


def test_precedence_all_parent_child_host(tmp_path: Path) -> None:
    host = load(tmp_path, {"hosts.yml": PRECEDENCE}, "hosts.yml").hosts["h1"]
    assert {key: host.vars[key] for key in ("v_all", "v1", "v2", "v3", "v4")} == {
        "v_all": "all",
        "v1": "parent",
        "v2": "child",
        "v3": "host",
        "v4": "all",
    }
    assert host.groups == ("all", "parent", "child")


def test_precedence_among_groups_of_equal_and_different_depth(tmp_path: Path) -> None:
    # beta beats alpha (same depth, later name) whatever the file order; deep beats zeta
    # (deeper) even though zeta sorts later; deep's depth is its longest path from all.
    text = """\
    [beta]
    h1
    [alpha]
    h1
    [zeta]
    h1
    [top:children]
    middle
    [middle:children]
    deep
    [deep]
    h1
    [all:children]
    deep
    [beta:vars]
    same=beta
    deep=beta
    [alpha:vars]
    same=alpha
    deep=alpha
    [zeta:vars]
    deep=zeta
    [deep:vars]
    deep=deep
    """
    host = load(tmp_path, {"hosts": text}, "hosts").hosts["h1"]
    assert (host.vars["same"], host.vars["deep"]) == ("beta", "deep")
    assert host.groups == ("all", "alpha", "beta", "top", "zeta", "middle", "deep")


def test_ansible_group_priority_breaks_ties_at_equal_depth(tmp_path: Path) -> None:
    text = "[alpha]\nh1\n[beta]\nh1\n[alpha:vars]\nansible_group_priority=5\nv=alpha\n"
    text += "[beta:vars]\nv=beta\n"
    assert load(tmp_path, {"hosts": text}, "hosts").hosts["h1"].vars["v"] == "alpha"


def test_group_vars_files_rank_above_every_inline_group_var(tmp_path: Path) -> None:
    # Ansible's order: inline group vars (by depth) < group_vars/ files (by depth) < inline
    # host vars < host_vars/ files.
    files = {
        "hosts.yml": PRECEDENCE,
        "group_vars/all.yml": "v4: all-file\n",
        "group_vars/parent.yaml": "v1: parent-file\nv2: parent-file\n",
        "group_vars/child/10-main.yml": "v3: child-file\nv5: child-file\n",
        "group_vars/child/20-more": "v5: child-dir-later\n",
        "host_vars/h1.json": '{"v3": "host-file", "v6": "host-file"}',
    }
    host = load(tmp_path, files, "hosts.yml").hosts["h1"]
    assert {key: host.vars[key] for key in ("v1", "v2", "v3", "v4", "v5", "v6")} == {
        "v1": "parent-file",  # the file beats parent's inline vars
        "v2": "parent-file",  # even the child's inline vars lose to the parent's file
        "v3": "host-file",
        "v4": "all-file",
        "v5": "child-dir-later",
        "v6": "host-file",
    }


def test_vars_files_keep_yaml_types(tmp_path: Path) -> None:
    files = {
        "hosts": "[db]\npg-db-a.dc1.example.com\n",
        "group_vars/db": "pg_port: 5432\nreplicas: [pg-db-b]\nmode: '0755'\n",
        "host_vars/pg-db-a.dc1.example.com": "primary: true\n",
    }
    host = load(tmp_path, files, "hosts").hosts["pg-db-a.dc1.example.com"]
    assert (host.vars["pg_port"], host.vars["replicas"], host.vars["mode"]) == (
        5432,
        ["pg-db-b"],
        "0755",
    )
    assert host.vars["primary"] is True
    assert host.vars["inventory_hostname_short"] == "pg-db-a"


def test_vars_files_for_unknown_names_are_warned_about(tmp_path: Path) -> None:
    files = {
        "hosts.ini": "[db]\npg-db-a\n",
        "group_vars/dbb.yml": "x: 1\n",
        "group_vars/.hidden.yml": "x: 1\n",
        "host_vars/pg-db-z.yml": "x: 1\n",
    }
    inventory = load(tmp_path, files, "hosts.ini")
    assert inventory.warnings == (
        f"{tmp_path}/group_vars/dbb.yml: no group of that name in the inventory; ignored",
        f"{tmp_path}/host_vars/pg-db-z.yml: no host of that name in the inventory; ignored",
    )
    assert "x" not in inventory.hosts["pg-db-a"].vars


def test_a_directory_merges_its_inventory_files_in_name_order(tmp_path: Path) -> None:
    files = {
        "inv/10-hosts.yml": "db:\n  hosts:\n    pg-db-a:\n      x: yaml\n",
        "inv/20-more.ini": "[db]\npg-db-a x=ini\n[lb]\npg-lb-1\n",
        "inv/hosts": "[power]\npg-pwr-1\n",
        "inv/README.md": "# not an inventory = at all\n",
        "inv/notes.txt": "[broken\n",
        "inv/old.json": "[broken\n",
        "inv/group_vars/db.yml": "y: from-group-vars\n",
        "inv/host_vars/pg-lb-1.yml": "z: from-host-vars\n",
    }
    inventory = load(tmp_path, files, "inv")
    assert list(inventory.hosts) == ["pg-db-a", "pg-lb-1", "pg-pwr-1"]
    assert inventory.hosts["pg-db-a"].vars["x"] == "ini"
    assert inventory.hosts["pg-db-a"].vars["y"] == "from-group-vars"
    assert inventory.hosts["pg-lb-1"].vars["z"] == "from-host-vars"


def test_an_extensionless_yaml_inventory_is_read_as_yaml(tmp_path: Path) -> None:
    text = "# production\nall:\n  hosts:\n    pg-api-1:\n      ansible_port: 2201\n"
    host = load(tmp_path, {"hosts": text}, "hosts").hosts["pg-api-1"]
    assert host.vars["ansible_port"] == 2201


def test_magic_variables_win_over_inventory_vars(tmp_path: Path) -> None:
    text = "[db]\npg-db-a inventory_hostname=spoof group_names=x\n"
    host = load(tmp_path, {"hosts": text}, "hosts").hosts["pg-db-a"]
    assert (host.vars["inventory_hostname"], host.vars["group_names"]) == ("pg-db-a", ["db"])


@pytest.mark.parametrize(
    ("files", "source", "message"),
    [
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n[db vars]\n"},
            "hosts.ini",
            "hosts.ini:3: bad section header '[db vars]': expected [group], [group:vars] or "
            "[group:children] with no spaces",
            id="ini-bad-header",
        ),
        pytest.param(
            {"hosts.ini": "[db:hostvars]\n"},
            "hosts.ini",
            "hosts.ini:1: unknown section type 'hostvars' in [db:hostvars]: "
            "expected vars or children",
            id="ini-bad-section-type",
        ),
        pytest.param(
            {"hosts.ini": "# db\n[db]\npg-db-a ansible_host\n"},
            "hosts.ini",
            "hosts.ini:3: expected key=value after the host name, got 'ansible_host'",
            id="ini-bad-host-var",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n\n[db:vars]\nservice postgresql\n"},
            "hosts.ini",
            "hosts.ini:5: expected key=value in [db:vars], got 'service postgresql'",
            id="ini-bad-group-var",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n[dbb:vars]\nx=1\n"},
            "hosts.ini",
            "hosts.ini:3: [dbb:vars] is for a group never defined",
            id="ini-vars-for-unknown-group",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a motd='unclosed\n"},
            "hosts.ini",
            'hosts.ini:2: cannot split "pg-db-a motd=\'unclosed": No closing quotation',
            id="ini-unclosed-quote",
        ),
        pytest.param(
            {"hosts.ini": "[db:children]\npg db\n"},
            "hosts.ini",
            "hosts.ini:2: expected one group name per line in [db:children], got 'pg db'",
            id="ini-bad-child",
        ),
        pytest.param(
            {"hosts": "[db]\npg-db-[c:a]\n"},
            "hosts",
            "hosts:2: bad host range [c:a]: start is after end",
            id="ini-bad-range",
        ),
        pytest.param(
            {"hosts": "[db]\npg-db-a:ssh\n"},
            "hosts",
            "hosts:2: bad port 'ssh' in host 'pg-db-a:ssh'",
            id="ini-bad-port",
        ),
        pytest.param(
            {"hosts.yml": "all:\n  children:\n    db:\n      hosts:\n        - pg-db-a\n"},
            "hosts.yml",
            "hosts.yml:4: 'hosts' of group 'db' must be a mapping, not a list "
            "(write each host as 'name:', not '- name')",
            id="yaml-hosts-list",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  hosts:\n    pg-db-a:\n  var:\n    x: 1\n"},
            "hosts.yml",
            "hosts.yml:4: unknown key 'var' in group 'db' (hosts, children, vars)",
            id="yaml-unknown-group-key",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  hosts:\n    pg-db-a:\n    pg-db-a:\n"},
            "hosts.yml",
            "hosts.yml:4: duplicate key 'pg-db-a'",
            id="yaml-duplicate-key",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  hosts:\n    pg-db-a: [x]\n"},
            "hosts.yml",
            "hosts.yml:3: host 'pg-db-a' must map to a mapping of vars or nothing, not a list",
            id="yaml-host-vars-list",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  vars: x=1\n"},
            "hosts.yml",
            "hosts.yml:2: 'vars' of group 'db' must be a mapping, not a string",
            id="yaml-vars-string",
        ),
        pytest.param(
            {"hosts.yml": "db: [pg-db-a]\n"},
            "hosts.yml",
            "hosts.yml:1: group 'db' must be a mapping, not a list",
            id="yaml-group-list",
        ),
        pytest.param(
            {"hosts.yml": "- db\n"},
            "hosts.yml",
            "hosts.yml:1: an inventory must be a mapping of groups, not a list",
            id="yaml-not-a-mapping",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  hosts:\n    pg-db-[1:x]:\n"},
            "hosts.yml",
            "hosts.yml:3: bad host range [1:x]: expected two numbers or two letters",
            id="yaml-bad-range",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  hosts: {pg-db-a: {x: 1}\n"},
            "hosts.yml",
            "hosts.yml:3: invalid YAML: expected ',' or '}', but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param(
            {"hosts.ini": "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n"},
            "hosts.ini",
            "hosts.ini:6: groups form a cycle: a -> b -> c -> a",
            id="cycle",
        ),
        pytest.param(
            {"hosts.yml": "db:\n  children:\n    db:\n"},
            "hosts.yml",
            "hosts.yml:3: groups form a cycle: db -> db",
            id="self-cycle",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n\n[db:vars]\nansible_port=ssh\n"},
            "hosts.ini",
            "hosts.ini:2: host 'pg-db-a': port 'ssh' is not a number",
            id="bad-port-from-group-vars",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n", "group_vars/db.yml": "- x\n"},
            "hosts.ini",
            "group_vars/db.yml:1: a vars file must be a mapping of names to values, not a list",
            id="vars-file-list",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n", "host_vars/pg-db-a.yml": "a: 1\na: 2\n"},
            "hosts.ini",
            "host_vars/pg-db-a.yml:2: duplicate key 'a'",
            id="vars-file-duplicate",
        ),
        pytest.param(
            {"hosts.ini": "[db]\npg-db-a\n[db:vars]\nansible_group_priority=high\n"},
            "hosts.ini",
            "hosts.ini:1: group 'db': ansible_group_priority 'high' is not a number",
            id="bad-priority",
        ),
        pytest.param(
            {"inv/README.md": "hello\n"},
            "inv",
            "inv: no inventory file (*.yml, *.yaml, *.ini, a script) in this directory",
            id="empty-directory",
        ),
        pytest.param(
            {}, "missing.yml", "missing.yml: no such inventory file or directory", id="missing"
        ),
    ],
)
def test_errors_name_the_file_and_line(
    tmp_path: Path, files: dict[str, str], source: str, message: str
) -> None:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, files, source)
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_a_non_utf8_file_is_an_inventory_error(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_bytes(b"[db]\npg-db-\xff\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "hosts")
    assert str(caught.value) == f"{tmp_path}/hosts: not UTF-8 text (invalid start byte at byte 11)"


# Ansible reads inventories and their vars files as YAML 1.1; runbooks stay YAML 1.2.
@pytest.mark.parametrize(
    ("written", "value"),
    [("yes", True), ("no", False), ("On", True), ("off", False), ("0755", 493), ("'no'", "no")],
)
def test_yaml_inventories_read_as_ansible_reads_them(
    tmp_path: Path, written: str, value: object
) -> None:
    text = f"db:\n  hosts:\n    pg-db-a:\n      v: {written}\n"
    assert load(tmp_path, {"hosts.yml": text}, "hosts.yml").hosts["pg-db-a"].vars["v"] == value


def test_hosts_as_a_string_is_one_host(tmp_path: Path) -> None:
    inventory = load(tmp_path, {"hosts.yml": "db:\n  hosts: pg-db-a\n"}, "hosts.yml")
    assert [h.name for h in inventory.select("db")] == ["pg-db-a"]


def test_an_unquoted_number_as_a_host_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"hosts.yml:3: host name 10 is a number: quote it"):
        load(tmp_path, {"hosts.yml": "db:\n  hosts:\n    10:\n"}, "hosts.yml")


def test_a_host_with_a_connection_oorfix_does_not_speak_still_loads(tmp_path: Path) -> None:
    text = "win:\n  hosts:\n    w1: {ansible_connection: winrm}\ndb:\n  hosts:\n    pg-db-a:\n"
    inventory = load(tmp_path, {"hosts.yml": text}, "hosts.yml")
    assert inventory.hosts["w1"].connection().kind == "winrm"
    assert [h.name for h in inventory.select("db")] == ["pg-db-a"]


def test_a_comma_list_is_an_inventory_of_its_hosts(tmp_path: Path) -> None:
    inventory = load_inventory(Path("web1,web2:2222,"))
    assert [h.name for h in inventory.select("all")] == ["web1", "web2"]
    assert inventory.hosts["web2"].connection().port == 2222
    assert inventory.hosts["web1"].groups == ("all", "ungrouped")


def test_a_comma_list_without_a_host_is_refused() -> None:
    with pytest.raises(InventoryError, match="names no host"):
        load_inventory(Path(",,"))
