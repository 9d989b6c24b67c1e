"""Inventory sources besides YAML and INI files: scripts, ansible-inventory JSON, plugin configs
refused, and several ``-i`` merged in order."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.app.loading import settings_inventory
from oorfix.app.settings import RunSettings
from oorfix.cli import main
from oorfix.errors import InventoryError
from oorfix.inventory import scripts
from oorfix.inventory.core import Inventory, load_inventories, load_inventory
from oorfix.inventory.listjson import is_list_shape
from oorfix.inventory.vault import Keyring, PasswordSource, encrypt
from oorfix.redact import SecretText
from oorfix.run.validate import validate_paths


def write(root: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        if name in executable:
            path.chmod(0o755)


def shape(inventory: Inventory) -> dict[str, Any]:
    """Each host's groups and own variables (derived ones left out)."""
    derived = {"inventory_hostname", "inventory_hostname_short", "group_names"}
    return {
        name: (host.groups, {k: v for k, v in host.vars.items() if k not in derived})
        for name, host in inventory.hosts.items()
    }


LISTED = {
    "_meta": {
        "hostvars": {"w1": {"port": 8080, "tags": ["a"]}, "d1": {}, "ghost": {"x": 1}},
        "profile": "inventory_legacy",
    },
    "all": {"children": ["ungrouped", "prod"], "vars": {"site": "lon"}},
    "prod": {"children": ["web", "db"]},
    "web": {"hosts": ["w1", "w2:2222"], "vars": {"tier": "front"}},
    "db": {"hosts": ["d1"]},
    "ungrouped": {"hosts": ["lonely"]},
}


def listed_script(data: dict[str, Any], log: Path | None = None) -> str:
    """A script that prints ``data`` for --list and, per host, what --host asks for."""
    record = f'echo "$@" >> {log}\n' if log else ""
    return (
        f"#!/bin/sh\n{record}"
        'if [ "$1" = "--list" ]; then\n'
        f"cat <<'EOF'\n{json.dumps(data)}\nEOF\n"
        'else printf \'{"asked": "%s"}\' "$2"; fi\n'
    )


# --- ansible-inventory's --list JSON -----------------------------------------------------


def test_ansible_inventory_json_is_read_in_its_own_shape(tmp_path: Path) -> None:
    write(tmp_path, {"inv.json": json.dumps(LISTED)})
    inventory = load_inventory(tmp_path / "inv.json")
    assert shape(inventory) == {
        "w1": (
            ("all", "prod", "web"),
            {"site": "lon", "tier": "front", "port": 8080, "tags": ["a"]},
        ),
        # A name in the list shape is taken as written: no host:port, as Ansible's script plugin.
        "w2:2222": (("all", "prod", "web"), {"site": "lon", "tier": "front"}),
        "d1": (("all", "prod", "db"), {"site": "lon"}),
        "lonely": (("all", "ungrouped"), {"site": "lon"}),
    }  # and "ghost", only in _meta.hostvars, is in no group: not a host, as in Ansible
    assert list(inventory.groups["all"].children) == ["ungrouped", "prod"]


def test_the_yaml_shape_written_as_json_stays_the_yaml_shape(tmp_path: Path) -> None:
    data = {"all": {"hosts": {"h1:2200": {"x": "yes"}}, "children": {"web": {"hosts": {}}}}}
    write(tmp_path, {"inv.json": json.dumps(data)})
    inventory = load_inventory(tmp_path / "inv.json")
    assert shape(inventory) == {"h1": (("all", "ungrouped"), {"ansible_port": 2200, "x": "yes"})}


@pytest.mark.parametrize(
    ("data", "listed"),
    [
        ({"_meta": {}}, True),
        ({"web": ["w1"]}, True),
        ({"web": {"hosts": ["w1"]}}, True),
        ({"web": {"children": ["db"]}}, True),
        ({"web": {"hosts": {"w1": None}}}, False),
        ({"web": {}}, False),
        ([], False),
    ],
)
def test_the_two_json_shapes_are_told_apart(data: Any, listed: bool) -> None:
    assert is_list_shape(data) is listed


def test_old_forms_of_a_group_are_read_as_ansible_reads_them(tmp_path: Path) -> None:
    data = {"web": ["w1", "w2"], "solo": {"a": 1}, "_meta": {"hostvars": {}}}
    write(tmp_path, {"inv.json": json.dumps(data)})
    found = shape(load_inventory(tmp_path / "inv.json"))
    assert found["w2"] == (("all", "web"), {})
    # A group object without hosts, vars or children is a host of that name, with those vars.
    assert found["solo"] == (("all", "solo"), {"a": 1})


def test_vault_and_unsafe_values_in_json_read_as_ansible_wrote_them(tmp_path: Path) -> None:
    hostvars = {
        "h1": {
            "key": {"__ansible_vault": encrypt(b"s3cret", b"pw")},
            "raw": {"__ansible_unsafe": "{{ not a template }}"},
        }
    }
    write(
        tmp_path,
        {"inv.json": json.dumps({"g": {"hosts": ["h1"]}, "_meta": {"hostvars": hostvars}})},
    )
    ring = Keyring([PasswordSource("default", tmp_path / "pw")])
    (tmp_path / "pw").write_text("pw\n")
    variables = load_inventory(tmp_path / "inv.json", ring).hosts["h1"].vars
    assert (variables["key"], variables["raw"]) == ("s3cret", "{{ not a template }}")
    assert type(variables["key"]) is SecretText
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.json")
    assert caught.value.location_message() == (
        f"{tmp_path}/inv.json: the __ansible_vault value of host 'h1' variable 'key' needs "
        "--vault-password-file or --vault-id"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"_meta": []}, "'_meta' must be an object, not a list"),
        ({"_meta": {"hostvars": []}}, "'_meta.hostvars' must be an object, not a list"),
        ({"web": {"hosts": {"w1": {}}, "children": []}}, "'hosts' of group 'web' must be a list"),
        ({"web": {"hosts": [5]}}, "'hosts' of group 'web' lists 5: not a name"),
        ({"web": {"children": "db"}, "_meta": {}}, "'children' of group 'web' must be a list"),
        ({"web": {"hosts": [], "vars": []}}, "'vars' of group 'web' must be an object"),
        ({"web": 5, "_meta": {}}, "group 'web' must be an object or a list, not a number"),
        (
            {"web": ["w1"], "_meta": {"hostvars": {"w1": 1}}},
            "host 'w1': variables must be an object, not a number",
        ),
    ],
)
def test_a_bad_json_inventory_says_what_is_wrong(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    write(tmp_path, {"inv.json": json.dumps(data)})
    with pytest.raises(InventoryError, match=message.replace("(", r"\(")) as caught:
        load_inventory(tmp_path / "inv.json")
    assert caught.value.path == str(tmp_path / "inv.json")


# --- scripts -----------------------------------------------------------------------------


def test_a_script_is_run_with_list(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    write(tmp_path, {"inv.sh": listed_script(LISTED, log)}, executable=("inv.sh",))
    inventory = load_inventory(tmp_path / "inv.sh")
    assert shape(inventory) == shape(load_inventory_json(tmp_path, LISTED))
    assert log.read_text() == "--list\n"  # _meta.hostvars given: no --host


def load_inventory_json(tmp_path: Path, data: dict[str, Any]) -> Inventory:
    write(tmp_path, {"same.json": json.dumps(data)})
    return load_inventory(tmp_path / "same.json")


def test_without_hostvars_a_script_is_asked_for_each_host(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    data = {"web": {"hosts": ["w1", "w2"]}}
    write(tmp_path, {"inv": listed_script(data, log)}, executable=("inv",))
    inventory = load_inventory(tmp_path / "inv")
    assert inventory.hosts["w2"].vars["asked"] == "w2"
    assert log.read_text().splitlines() == ["--list", "--host w1", "--host w2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "echo starting >&2; echo 'KeyError: region' >&2; exit 3",
            "inventory script --list: exited with status 3; stderr: starting | KeyError: region",
        ),
        ("echo '{not json'", "inventory script --list: printed invalid JSON (Expecting property"),
        ("echo '[1]'", "inventory JSON must be an object of groups, not a list"),
        ("printf '\\377'", "inventory script --list: printed text that is not UTF-8"),
        ("sleep 30", "inventory script --list: it did not exit within 0.5 s (killed)"),
        ("yes", "inventory script --list: it printed more than 1000 bytes (killed)"),
    ],
)
def test_a_failing_script_names_itself_and_what_went_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    monkeypatch.setattr(scripts, "SCRIPT_TIMEOUT", 0.5)
    monkeypatch.setattr(scripts, "MAX_SCRIPT_OUTPUT", 1000)
    write(tmp_path, {"inv.py": f"#!/bin/sh\n{body}\n"}, executable=("inv.py",))
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.py")
    assert caught.value.location_message().startswith(f"{tmp_path}/inv.py: {message}")


def test_a_failing_host_query_names_the_host(tmp_path: Path) -> None:
    body = '[ "$1" = "--list" ] && echo \'{"web": ["w1"]}\' || exit 4'
    write(tmp_path, {"inv": f"#!/bin/sh\n{body}\n"}, executable=("inv",))
    with pytest.raises(InventoryError, match="inventory script --host w1: exited with status 4"):
        load_inventory(tmp_path / "inv")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("inv.yml", "web:\n  hosts:\n    w1:\n"),
        ("inv.ini", "[web]\nw1\n"),
        ("hosts", "[web]\nw1\n"),  # no #!: executable by accident, read as data
    ],
)
def test_an_executable_data_file_is_read_as_data(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, {name: text}, executable=(name,))
    assert list(load_inventory(tmp_path / name).hosts) == ["w1"]


def test_a_directory_runs_its_scripts_beside_its_files(tmp_path: Path) -> None:
    files = {"inv/10-static.ini": "[web]\nw1\n", "inv/20-dynamic.py": listed_script(LISTED)}
    write(tmp_path, files, executable=("inv/20-dynamic.py",))
    inventory = load_inventory(tmp_path / "inv")
    assert list(inventory.hosts) == ["w1", "w2:2222", "d1", "lonely"]
    assert inventory.hosts["w1"].vars["port"] == 8080


# --- inventory plugins -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aws_ec2.yml", "inventory.yaml", "hosts"])
def test_an_inventory_plugin_config_is_refused_with_the_bridge(tmp_path: Path, name: str) -> None:
    write(tmp_path, {name: "# dynamic\nplugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n"})
    path = tmp_path / name
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.location_message() == (
        f"{path}:2: inventory plugin 'amazon.aws.aws_ec2' is not supported: oorfix reads "
        f"inventories as data; run `ansible-inventory -i {path} --list > inv.json`, then give "
        "oorfix `-i inv.json`"
    )


# --- several -i --------------------------------------------------------------------------


SITE_A = {
    "a/hosts.ini": """
        [web]
        w1 who=a-inline
        w2
        [web:vars]
        tier=a
        [all:vars]
        everywhere=a
    """,
    "a/group_vars/web.yml": "from_files: a\nweb_file_a: 1\n",
    "a/group_vars/all.yml": "all_file: a\n",
    "a/host_vars/w1.yml": "host_file: a\n",
}
SITE_B = {
    "b/hosts.yml": """
        all:
          vars: {everywhere: b}
          children:
            web:
              vars: {tier: b}
              hosts:
                w1: {who: b-inline}
                w3:
            db:
              hosts: {d1: }
    """,
    "b/group_vars/web.yml": "from_files: b\n",
    "b/host_vars/w1.yml": "host_file: b\n",
}


def test_several_sources_merge_in_order_as_ansible_merges_them(tmp_path: Path) -> None:
    write(tmp_path, {**SITE_A, **SITE_B})
    inventory = load_inventories([tmp_path / "a" / "hosts.ini", tmp_path / "b"])
    assert list(inventory.hosts) == ["w1", "w2", "w3", "d1"]
    assert list(inventory.groups["web"].hosts) == ["w1", "w2", "w3"]
    assert inventory.sources == (tmp_path / "a" / "hosts.ini", tmp_path / "b")
    w1 = shape(inventory)["w1"][1]
    assert w1 == {
        "everywhere": "b",  # the later source's inline vars win at the same level
        "tier": "b",
        "all_file": "a",  # each source's group_vars/ and host_vars/ count
        "from_files": "b",  # a later source's files win
        "web_file_a": 1,
        "who": "b-inline",
        "host_file": "b",
    }
    assert shape(inventory)["d1"][1] == {"everywhere": "b", "all_file": "a"}


def test_the_order_of_sources_decides(tmp_path: Path) -> None:
    write(tmp_path, {**SITE_A, **SITE_B})
    inventory = load_inventories([tmp_path / "b", tmp_path / "a" / "hosts.ini"])
    assert list(inventory.hosts) == ["w1", "w3", "d1", "w2"]
    w1 = shape(inventory)["w1"][1]
    assert (w1["everywhere"], w1["tier"], w1["who"]) == ("a", "a", "a-inline")
    assert (w1["from_files"], w1["host_file"]) == ("a", "a")


def test_vars_files_match_groups_from_any_source(tmp_path: Path) -> None:
    write(tmp_path, {"a/hosts.ini": "[web]\nw1\n", "b/hosts.ini": "[db]\nd1\n"})
    write(tmp_path, {"a/group_vars/db.yml": "from_a: yes\n"})
    inventory = load_inventories([tmp_path / "a/hosts.ini", tmp_path / "b/hosts.ini"])
    assert inventory.hosts["d1"].vars["from_a"] is True
    assert inventory.warnings == ()


def test_a_host_list_merges_with_files(tmp_path: Path) -> None:
    write(tmp_path, {"hosts.ini": "[web]\nw1 x=1\n"})
    inventory = load_inventories([tmp_path / "hosts.ini", Path("w1:2222,extra:2200,")])
    assert shape(inventory) == {
        "w1": (("all", "web"), {"x": 1}),  # its port comes too late, as in Ansible
        "extra": (("all", "ungrouped"), {"ansible_port": 2200}),
    }


def test_a_port_counts_where_a_host_is_first_named(tmp_path: Path) -> None:
    # Ansible sets ansible_port from host:port when it creates the host, never after; a
    # variable written out (ansible_port=) is a variable like any other.
    text = "[a]\nh1:2201\nh2\nh3:2203 ansible_port=2303\n[b]\nh1:2299\nh2:2202\n"
    write(tmp_path, {"hosts.ini": text})
    ports = {
        n: h.vars.get("ansible_port")
        for n, h in load_inventory(tmp_path / "hosts.ini").hosts.items()
    }
    assert ports == {"h1": 2201, "h2": None, "h3": 2303}


def test_the_settings_and_the_cli_take_several_inventories(tmp_path: Path) -> None:
    write(tmp_path, {**SITE_A, **SITE_B})
    sources = (tmp_path / "a" / "hosts.ini", tmp_path / "b")
    assert list(settings_inventory(RunSettings(inventory_paths=sources)).hosts) == [
        "w1",
        "w2",
        "w3",
        "d1",
    ]
    result = CliRunner().invoke(
        main, ["inventory", "-i", str(sources[0]), "-i", str(sources[1]), "--hosts", "web:db"]
    )
    assert (result.exit_code, result.output.split()) == (0, ["w1", "w2", "w3", "d1"])


def test_no_source_is_an_input_error() -> None:
    with pytest.raises(InventoryError, match="no inventory given"):
        load_inventories([])


def test_validate_reads_vault_values_and_merges_its_inventories(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("pw\n")
    envelope = textwrap.indent(encrypt(b"s3cret", b"pw"), " " * 8)
    write(tmp_path, {"a.yml": "all:\n  hosts:\n    h1:\n      key: !vault |\n" + envelope})
    write(tmp_path, {"b.ini": "[web]\nh2\n"})
    ring = Keyring.from_options([tmp_path / "pw"], [])
    assert validate_paths([tmp_path / "a.yml"], [tmp_path / "a.yml", tmp_path / "b.ini"], ring) == (
        "ok: 0 runbook(s), 2 inventory(ies) with 3 host(s)"
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "a.yml")])
    assert result.exit_code == 2
    assert "a.yml:4: a !vault value needs --vault-password-file or --vault-id" in result.output
