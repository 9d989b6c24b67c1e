"""oorfix reads inventories as Ansible does: checked against ansible-core itself.

For each inventory below, written in tmp_path, ``ansible-inventory -i X --list`` (ansible-core
2.19, a test dependency) and ``oorfix inventory -i X --list`` must print the same groups,
children, hosts and host variables, and ``ansible PATTERN --list-hosts`` and
``oorfix inventory --hosts PATTERN`` the same hosts. Both run as subprocesses, Ansible from
this virtualenv's bin with no config file and HOME in tmp_path.

What is normalised, and why (every other difference fails the test):

- Presentation of ``--list`` only: Ansible leaves ``all``'s own hosts, hosts without
  variables and empty groups out and adds ``_meta.profile``; oorfix lists ``all``'s own hosts
  and every host. Both are reduced to the same picture.
- Secrets: oorfix masks secret-named values (``db_password``) and every value that came out
  of a vault; Ansible prints a ``!vault`` value as ``{"__ansible_vault": ciphertext}`` and a
  vault-encrypted file's values in clear. Both sides are masked the same way, and the
  decrypted values are checked separately, against the plaintext Ansible encrypted.
- Host order of ``--hosts``: oorfix returns the hosts a pattern selects in inventory order,
  Ansible in the order of the pattern's parts (and of its own sets below a group's children),
  so the hosts are compared as sets; which host a subscript picks is Ansible's exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.cli import main
from oorfix.inventory import vault
from oorfix.inventory.core import load_inventories
from oorfix.inventory.vault import Keyring
from oorfix.redact import MASK
from oorfix.run.variables import is_secret_name

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
TIMEOUT = 60.0
PASSWORD = "compat suite password"  # noqa: S105 (the suite's own vault)
DERIVED = {"inventory_hostname", "inventory_hostname_short", "group_names"}


@dataclass
class Tools:
    """Runs ansible and oorfix alike: hermetic environment, files under one folder."""

    root: Path
    env: dict[str, str]
    password_file: Path

    def ansible(self, tool: str, *args: str | Path) -> str:
        done = self.ansible_run(tool, *args)
        assert done.returncode == 0, f"{tool} {args}: {done.stderr}"
        return done.stdout

    def ansible_run(self, tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / tool), *map(str, args)],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def oorfix(self, *args: str | Path) -> str:
        done = self.oorfix_run(*args)
        assert done.returncode == 0, f"oorfix inventory {args}: {done.stderr}"
        return done.stdout

    def oorfix_run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oorfix", "inventory", *map(str, args)],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def write(self, folder: str, files: Mapping[str, str], scripts: tuple[str, ...] = ()) -> Path:
        base = self.root / folder
        for name, text in files.items():
            path = base / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
            if name in scripts:
                path.chmod(0o755)
        return base

    def encrypt_string(self, plaintext: str, label: str | None = None) -> str:
        """``ansible-vault encrypt_string``'s envelope of ``plaintext``."""
        keys = ["--vault-id", f"{label}@{self.password_file}"] if label else []
        keys = keys or ["--vault-password-file", str(self.password_file)]
        out = self.ansible("ansible-vault", "encrypt_string", *keys, plaintext, "--name", "x")
        return textwrap.dedent(out.split("!vault |\n", 1)[1])


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    if not (BIN / "ansible-inventory").exists():
        pytest.fail("ansible-core is a test dependency: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("compat")
    home = root / "home"
    home.mkdir()
    config = root / "ansible.cfg"
    config.write_text("")  # no /etc/ansible/ansible.cfg, no ~/.ansible.cfg
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OORFIX_"))}
    env.update(
        HOME=str(home),
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(home / ".ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        # A source Ansible cannot parse is an error, never a quiet empty inventory.
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
        LC_ALL="C.UTF-8",
    )
    password_file = root / "vault-pass"
    password_file.write_text(PASSWORD + "\n")
    return Tools(root, env, password_file)


# --- normalising both --list outputs to one picture ---------------------------------------


def _masked(value: Any) -> Any:
    """Ansible's printed vault values as oorfix prints them."""
    if isinstance(value, dict):
        if value.keys() == {"__ansible_vault"}:
            return MASK
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def picture(listed: dict[str, Any], secret: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Groups (hosts, children) and host variables as both tools mean them; ``secret`` names
    the variables that came from a vault-encrypted file, which oorfix masks."""
    groups = {}
    for name, body in listed.items():
        if name == "_meta":
            continue
        entry = {k: body[k] for k in ("hosts", "children") if body.get(k) and k != "vars"}
        if name == "all":
            entry.pop("hosts", None)
        if entry:
            groups[name] = entry
    hostvars = {}
    for host, variables in listed.get("_meta", {}).get("hostvars", {}).items():
        shown = {
            key: MASK if is_secret_name(key) or key in secret else _masked(value)
            for key, value in variables.items()
        }
        if shown:
            hostvars[host] = shown
    return {"groups": groups, "hostvars": hostvars}


@dataclass
class Case:
    """One inventory: its files, the -i sources, and what the comparison must know."""

    files: dict[str, str]
    sources: tuple[str, ...]
    scripts: tuple[str, ...] = ()
    vault: bool = False
    secret: frozenset[str] = frozenset()  # variables of vault-encrypted files
    plaintext: dict[tuple[str, str], Any] = field(default_factory=dict)  # (host, var): value


def compare(tools: Tools, name: str, case: Case) -> dict[str, Any]:
    """Assert that both tools list ``case`` alike; Ansible's --list output."""
    base = tools.write(name, case.files, case.scripts)
    sources: list[str | Path] = [arg for src in case.sources for arg in ("-i", base / src)]
    keys: list[str | Path] = ["--vault-password-file", tools.password_file] if case.vault else []
    ansible: dict[str, Any] = json.loads(
        tools.ansible("ansible-inventory", *sources, *keys, "--list")
    )
    oorfix = json.loads(tools.oorfix(*sources, *keys, "--list"))
    assert picture(oorfix, case.secret) == picture(ansible, case.secret)
    if case.plaintext:
        ring = Keyring.from_options([tools.password_file], [])
        loaded = load_inventories([base / source for source in case.sources], ring)
        found = {(h, v): loaded.hosts[h].vars[v] for h, v in case.plaintext}
        assert found == case.plaintext
    return ansible


# --- the rules, one inventory each --------------------------------------------------------

INI_TYPING = """
    [web]
    w1 a=False b=22 c="[1, 2]" d="{'k': 'v', 'n': [3]}" e="'quoted'" f=true g=0755 h=None
    w2 i=1.5 j="text with spaces" k=yes l=-7 m=0x1F n="'22'" o="u'x'"
    [web:vars]
    p=False
    qq = [1, 'two']
    r=plain text here
    s="a=b"
    [all:vars]
    t=True
"""

YAML_TYPING = """
    all:
      vars:
        booleans: [yes, no, on, off, Yes, NO, true, False, y, n]
        octal: 0755
        sexagesimal: 1:30
        floats: [1.5, 1e3, .inf]
        nulls: [~, null]
        strings: ['yes', "no", '0755']
      hosts:
        h1:
          nested: {list: [1, two], map: {k: yes}}
"""

CASES = {
    "ini_typing": Case({"hosts.ini": INI_TYPING}, ("hosts.ini",)),
    "yaml_typing": Case({"hosts.yml": YAML_TYPING}, ("hosts.yml",)),
    "ports_and_ranges": Case(
        {
            "hosts.ini": """
                [web]
                web[01:03]:2222 role=front
                db-[a:c]
                n[0:10:5].example.com ansible_host=10.0.0.9
                [edge]
                192.0.2.7:2200
                [v6]
                2001:db8::1
            """,
            "more.yml": """
                api:
                  hosts:
                    api[1:2]:8022:
                    'plain:2223':
                      extra: 1
            """,
        },
        ("hosts.ini", "more.yml"),
    ),
    "children": Case(
        {
            "hosts.ini": """
                top
                [web]
                w1
                w2
                [db]
                d1
                [prod:children]
                web
                db
                [eu:children]
                prod
                [dc1:children]
                web
                [dc1]
                w3
                [empty]
                [loner:children]
                empty
            """,
        },
        ("hosts.ini",),
    ),
    "yaml_children_and_hosts_as_a_string": Case(
        {
            "hosts.yml": """
                all:
                  hosts: bastion
                  children:
                    web:
                      hosts: w1
                    prod:
                      children:
                        web:
                        db:
                          hosts:
                            d1:
                          children: replicas
                    replicas:
                      hosts:
                        r1:
            """,
        },
        ("hosts.yml",),
    ),
    "precedence": Case(
        {
            "hosts.ini": """
                [web]
                w1 v_host=inline v_hostfile=inline
                w2
                [db]
                w1
                d1
                [prod:children]
                web
                db
                [web:vars]
                v_child=web v_prio=web v_file=inline-web
                [db:vars]
                v_prio=db ansible_group_priority=5
                [prod:vars]
                v_child=prod v_file=inline-prod v_all=prod
                [all:vars]
                v_all=inline-all v_file=inline-all
            """,
            "group_vars/all.yml": "v_all: file-all\nv_allfile: all\n",
            "group_vars/prod/main.yml": "v_file: file-prod\n",
            "group_vars/prod/extra.yaml": "v_more: prod\n",
            "group_vars/web": "v_file: file-web\n",
            "host_vars/w1.yml": "v_hostfile: file\n",
            "host_vars/d1/a.yml": "v_hostfile: a\n",
            "host_vars/d1/b.yml": "v_hostfile: b\n",
        },
        ("hosts.ini",),
    ),
    "unsupported_connection": Case(
        {
            "hosts.yml": """
                windows:
                  hosts:
                    win1: {ansible_connection: winrm, ansible_port: 5986}
                  vars: {ansible_user: Administrator}
                switches:
                  hosts:
                    sw1: {ansible_connection: ansible.netcommon.network_cli}
            """,
        },
        ("hosts.yml",),
    ),
    "script_with_meta": Case(
        {
            "inv.py": """
                #!/bin/sh
                cat <<'EOF'
                {"web": {"hosts": ["w1", "w2:2222"], "vars": {"tier": "front", "n": 1}},
                 "prod": {"children": ["web", "db"]},
                 "db": ["d1"],
                 "all": {"vars": {"site": "lon"}},
                 "_meta": {"hostvars": {"w1": {"ansible_port": 2201, "tags": ["a", "b"]},
                                        "nowhere": {"x": 1}}}}
                EOF
            """,
        },
        ("inv.py",),
        scripts=("inv.py",),
    ),
    "script_without_meta": Case(
        {
            "inv": """
                #!/bin/sh
                if [ "$1" = "--list" ]; then
                  echo '{"web": {"hosts": ["w1", "w2"]}, "db": {"hosts": ["d1"]}}'
                elif [ "$2" = "w1" ]; then
                  echo '{"ansible_port": 2201, "role": "primary"}'
                elif [ "$2" = "d1" ]; then
                  echo ''
                else
                  echo '{}'
                fi
            """,
        },
        ("inv",),
        scripts=("inv",),
    ),
    "several_sources": Case(
        {
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
            "b/group_vars/db.yml": "db_file: b\n",
            "b/host_vars/w1.yml": "host_file: b\n",
            "c.ini": "[db]\nd2 who=c\n[web]\nw1 tier=host-c\n",
        },
        ("a/hosts.ini", "b", "c.ini"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_both_list_the_same_inventory(tools: Tools, name: str) -> None:
    compare(tools, name, CASES[name])


def test_several_sources_include_a_host_list(tools: Tools) -> None:
    # Ansible's host_list source takes host:port but no ranges (oorfix's takes both).
    base = tools.write("host_list", {"hosts.ini": "[web]\nw1 x=1\n"})
    args: list[str | Path] = ["-i", base / "hosts.ini", "-i", "w1:2222,extra,", "--list"]
    ansible = json.loads(tools.ansible("ansible-inventory", *args))
    assert picture(json.loads(tools.oorfix(*args))) == picture(ansible)


# --- Ansible Vault -----------------------------------------------------------------------


def test_list_prints_the_same_text_as_ansible_inventory(tools: Tools) -> None:
    # Without secrets (which oorfix masks), `diff` of the two outputs is empty.
    base = tools.write(
        "same-text",
        {
            "hosts.ini": """
                [web]
                w[1:3] http_port=8080
                w4
                [db]
                d1 ansible_port=2222 replica=False
                [empty]
                [prod:children]
                web
                db
                [prod:vars]
                tier=1
                """,
        },
    )
    inventory = base / "hosts.ini"
    ansible = tools.ansible("ansible-inventory", "-i", inventory, "--list")
    assert tools.oorfix("-i", inventory, "--list") == ansible + (
        "" if ansible.endswith("\n") else "\n"
    )


@pytest.fixture(scope="module")
def vaulted(tools: Tools) -> Case:
    """Vault values made by ansible-vault, and a vars file encrypted by oorfix, that Ansible
    must decrypt too."""
    v11 = tools.encrypt_string("s3cret 1.1 café")
    v12 = tools.encrypt_string("labelled: s3cret", label="prod")
    group_file = vault.encrypt(b"vaulted_port: 5432\nvaulted_name: db-main\n", PASSWORD.encode())
    hosts = (
        "all:\n  hosts:\n    w1:\n      blob: !vault |\n"
        + textwrap.indent(v11, " " * 10)
        + "      plain: visible\n  vars:\n    site_blob: !vault |\n"
        + textwrap.indent(v12, " " * 8)
    )
    files = {"hosts.yml": hosts, "group_vars/all/vault.yml": group_file}
    return Case(
        files,
        ("hosts.yml",),
        vault=True,
        secret=frozenset({"vaulted_port", "vaulted_name"}),
        plaintext={
            ("w1", "blob"): "s3cret 1.1 café",
            ("w1", "site_blob"): "labelled: s3cret",
            ("w1", "vaulted_port"): 5432,
            ("w1", "vaulted_name"): "db-main",
        },
    )


def test_vault_values_and_files_read_alike(tools: Tools, vaulted: Case) -> None:
    ansible = compare(tools, "vault", vaulted)
    # What Ansible printed for the !vault value is the ciphertext oorfix decrypted.
    assert set(ansible["_meta"]["hostvars"]["w1"]["blob"]) == {"__ansible_vault"}


def test_a_vault_encrypted_inventory_reads_alike(tools: Tools) -> None:
    text = "[web]\nw1 ansible_port=2201 role=front\n[web:vars]\ntier=2\n"
    base = tools.write("vault_file", {"hosts.ini": text})
    tools.ansible("ansible-vault", "encrypt", "--vault-password-file", tools.password_file,
                  base / "hosts.ini")  # fmt: skip
    case = Case(
        {},
        ("hosts.ini",),
        vault=True,
        secret=frozenset({"ansible_port", "role", "tier"}),
        plaintext={("w1", "ansible_port"): 2201, ("w1", "role"): "front", ("w1", "tier"): 2},
    )
    compare(tools, "vault_file", case)


# --- ansible-inventory's JSON, read back ---------------------------------------------------


@pytest.mark.parametrize("export", [False, True])
def test_ansible_inventory_json_reads_back_as_its_source(tools: Tools, export: bool) -> None:
    # Ansible itself cannot read its --list JSON from a .json file (its YAML plugin wants the
    # YAML shape); oorfix can, and the result is the source's inventory. For Ansible, the same
    # JSON printed by a script is its own way to read it: both must agree with the source.
    name = f"json_export_{export}"
    case = CASES["precedence"]
    base = tools.write(name, case.files)
    flags = ["--export"] if export else []
    listed = tools.ansible("ansible-inventory", "-i", base / "hosts.ini", "--list", *flags)
    (base / "inv.json").write_text(listed)
    script = base / "inv.sh"
    script.write_text(f"#!/bin/sh\ncat {base / 'inv.json'}\n")
    script.chmod(0o755)
    source = picture(json.loads(listed if not export else tools.ansible(
        "ansible-inventory", "-i", base / "hosts.ini", "--list")))  # fmt: skip
    assert picture(json.loads(tools.oorfix("-i", base / "inv.json", "--list"))) == source
    assert picture(json.loads(tools.oorfix("-i", script, "--list"))) == source
    assert picture(json.loads(tools.ansible("ansible-inventory", "-i", script, "--list"))) == source


# --- host patterns -----------------------------------------------------------------------

PATTERN_INVENTORY = """
    p0
    [db]
    d1
    d2
    [web]
    w3
    w1
    w10
    [prod:children]
    web
    db
    [prod]
    p1
    [other]
    w1
    d2
    [canary:children]
    prod
    [canary]
    c1
"""

PATTERNS = [
    "all",
    "*",
    "web",
    "prod",
    "web:db",
    "db,web",
    "prod[0]",
    "prod[-1]",
    "prod[1:3]",
    "prod[2:]",
    "canary[0:1]",
    "canary[3]",
    "all[0]",
    "all[-2:]",
    "*[3]",
    "w*[1]",
    "web:&other",
    "prod:!db",
    "prod:!web[0]",
    "!prod",
    "&other",
    "other:web[-1]:&prod",
    "~w1.*",
    "~(d|w)1$:!w10",
    "w?",
    "w[13]",
    "ungrouped",
    "nosuch",
]


def ansible_hosts(tools: Tools, inventory: Path, pattern: str) -> list[str]:
    """The hosts ``ansible PATTERN --list-hosts`` lists, in its order."""
    out = tools.ansible("ansible", pattern, "-i", inventory, "--list-hosts")
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def ansible_selections(tools: Tools, inventory: Path, patterns: list[str]) -> list[set[str]]:
    """The hosts of each pattern, from one ``ansible-playbook --list-hosts`` of one play per
    pattern (one process instead of one per pattern; it lists each play's hosts as a set)."""
    playbook = inventory.parent / "patterns.yml"
    plays = [{"hosts": pattern, "gather_facts": False, "tasks": []} for pattern in patterns]
    playbook.write_text(json.dumps(plays))  # JSON is YAML, and needs no quoting rules
    lines = tools.ansible("ansible-playbook", "-i", inventory, playbook, "--list-hosts")
    found: list[set[str]] = []
    listed = iter(lines.splitlines())
    for line in listed:
        if line.strip().startswith("hosts ("):
            count = int(line.split("(")[1].split(")")[0])
            found.append({next(listed).strip() for _ in range(count)})
    assert len(found) == len(patterns), lines
    return found


def oorfix_hosts(inventory: Path, pattern: str) -> list[str]:
    """``oorfix inventory --hosts PATTERN``, in process: 28 interpreters would cost 12 s."""
    result = CliRunner().invoke(main, ["inventory", "-i", str(inventory), "--hosts", pattern])
    assert result.exit_code == 0, result.output
    return result.output.split()


@pytest.fixture(scope="module")
def pattern_inventory(tools: Tools) -> Path:
    return tools.write("patterns", {"hosts": PATTERN_INVENTORY}) / "hosts"


def test_both_select_the_same_hosts(tools: Tools, pattern_inventory: Path) -> None:
    ansible = ansible_selections(tools, pattern_inventory, PATTERNS)
    oorfix = [set(oorfix_hosts(pattern_inventory, pattern)) for pattern in PATTERNS]
    differences = {p: (a, o) for p, a, o in zip(PATTERNS, ansible, oorfix, strict=True) if a != o}
    assert differences == {}
    assert sum(map(len, oorfix)) > len(PATTERNS)  # the patterns do select hosts


def test_subscripts_count_in_ansibles_order(tools: Tools, pattern_inventory: Path) -> None:
    # prod's own host first, then its children's: not the order of first appearance.
    assert ansible_hosts(tools, pattern_inventory, "prod[0]") == ["p1"]
    assert oorfix_hosts(pattern_inventory, "prod[0]") == ["p1"]
    # Only the order of the whole selection differs: Ansible's follows the pattern.
    assert ansible_hosts(tools, pattern_inventory, "web:db") == ["w3", "w1", "w10", "d1", "d2"]
    assert oorfix_hosts(pattern_inventory, "web:db") == ["d1", "d2", "w3", "w1", "w10"]


# --- where oorfix differs on purpose -------------------------------------------------------


def test_a_host_list_expands_ranges_where_ansible_takes_the_name_as_written(
    tools: Tools,
) -> None:
    # Ansible's default host_list source takes "w[1:2]" as one host of that name (its
    # advanced_host_list plugin, off by default, expands it); oorfix expands ranges in -i lists
    # as in every other inventory, since a host named "w[1:2]" can never be reached.
    listed = json.loads(tools.ansible("ansible-inventory", "-i", "w[1:2],", "--list"))
    assert listed["ungrouped"]["hosts"] == ["w[1:2]"]
    assert json.loads(tools.oorfix("-i", "w[1:2],", "--list"))["ungrouped"]["hosts"] == ["w1", "w2"]


def test_a_password_file_gives_its_first_line_where_ansible_takes_it_all(tools: Tools) -> None:
    # Ansible's password is the whole file, stripped, newlines inside included; oorfix's is
    # the first line, so a note under the password never becomes part of it.
    two_lines = tools.root / "two-line-pass"
    two_lines.write_text(f"{PASSWORD}\nrotated 2026-01\n")
    keys: list[str | Path] = ["--vault-password-file", two_lines]
    out = tools.ansible("ansible-vault", "encrypt_string", *keys, "hidden", "--name", "v")
    base = tools.write("two_lines", {"hosts.yml": "all:\n  vars:\n    " + out})
    done = tools.oorfix_run("-i", base / "hosts.yml", "--list", *keys)
    assert done.returncode == 2
    assert "hosts.yml:3: a !vault value cannot be decrypted: wrong vault password" in done.stderr


def test_a_subscript_past_the_end_selects_no_host(tools: Tools, pattern_inventory: Path) -> None:
    # Ansible lists no host for it ad hoc but fails a playbook ("No hosts matched the
    # subscripted pattern"); oorfix selects no host, and a run says which pattern matched none.
    assert ansible_hosts(tools, pattern_inventory, "web[5]") == []
    playbook = pattern_inventory.parent / "past-the-end.yml"
    playbook.write_text(json.dumps([{"hosts": "web[5]", "gather_facts": False, "tasks": []}]))
    done = tools.ansible_run("ansible-playbook", "-i", pattern_inventory, playbook, "--list-hosts")
    assert "No hosts matched the subscripted pattern 'web[5]'" in done.stderr
    assert oorfix_hosts(pattern_inventory, "web[5]") == []
