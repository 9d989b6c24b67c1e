"""How a host is reached: ssh_config (paramiko.SSHConfig plus Include and line numbers),
Ansible's ssh arguments, jump hosts and ProxyCommand, with inventory > ssh_config > defaults."""

from __future__ import annotations

import getpass
import json
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.app.loading import load_and_plan
from oorfix.app.settings import RunSettings
from oorfix.cli import main
from oorfix.errors import InputError, InputErrors, InventoryError, SshConfigError
from oorfix.inventory.core import load_inventory
from oorfix.inventory.hosts import HostConnection
from oorfix.transport.ssh_args import parse_ssh_args
from oorfix.transport.sshconfig import Endpoint, Resolution, check_hosts, resolve

ME = getpass.getuser()

CONFIG = """
Host bastion
    HostName 10.1.0.1
    User jumper
    Port 2200
    IdentityFile {dir}/bastion_key

Host inner
    HostName 10.2.0.1
    ProxyJump bastion
    User inner-user

Host web* !web9
    HostName %h.internal
    User ops
    Port 2222
    IdentityFile {dir}/web_key
    IdentityFile {dir}/missing_key
    ProxyJump bastion
    ConnectTimeout 1m30s
    ServerAliveInterval 15

Host db
    ProxyCommand ssh -W %h:%p -l %r gate %%

Host *
    User everyone
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory (no ~/.ssh/config), so the developer's own never counts."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def config(tmp_path: Path, home: Path) -> Path:
    """CONFIG written to a file, with the key files it names (but not missing_key)."""
    for key in ("bastion_key", "web_key"):
        (tmp_path / key).write_text("not really a key\n")
    path = tmp_path / "ssh_config"
    path.write_text(textwrap.dedent(CONFIG.format(dir=tmp_path)).lstrip())
    return path


def host(name: str, **variables: Any) -> HostConnection:
    """A host as the inventory would read it."""
    return HostConnection.from_vars(name, variables)


def write_config(tmp_path: Path, text: str, name: str = "cfg") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def endpoint(conn: HostConnection, config: Path | None) -> Endpoint:
    return resolve(conn, config).endpoint


def notes(resolution: Resolution) -> list[str]:
    return [str(note) for note in resolution.notes]


# --- aliases, patterns and defaults ------------------------------------------------------


def test_an_alias_takes_its_hostname_user_port_and_keys(config: Path, tmp_path: Path) -> None:
    web = endpoint(host("web1"), config)
    assert (web.address, web.port, web.user) == ("web1.internal", 2222, "ops")
    # A configured key that does not exist is skipped, as ssh skips it.
    assert web.identity_files == (tmp_path / "web_key",)
    assert (web.connect_timeout, web.server_alive_interval) == (90.0, 15.0)
    assert web.source("address") == f"ssh_config {config}:13"
    assert web.source("port") == f"ssh_config {config}:15"


def test_a_negated_pattern_vetoes_and_the_catch_all_applies(config: Path) -> None:
    web9 = endpoint(host("web9"), config)
    assert (web9.address, web9.port, web9.user, web9.jumps) == ("web9", 22, "everyone", ())
    assert web9.source("port") == "default"


def test_without_any_config_the_inventory_alone_decides(home: Path) -> None:
    conn = host("app", ansible_host="10.9.0.1")
    resolved = resolve(conn)
    assert resolved.config is None
    assert resolved.endpoint == Endpoint("app", "10.9.0.1", 22, ME)
    assert resolved.endpoint == Endpoint.direct(conn)


def test_the_user_config_is_read_when_it_exists(home: Path) -> None:
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text("Host app\n  Port 2022\n")
    resolved = resolve(host("app"))
    assert (resolved.config, resolved.endpoint.port) == (home / ".ssh" / "config", 2022)


def test_the_lookup_name_is_ansible_host(config: Path) -> None:
    # Ansible hands ansible_host to ssh, so that is the name ssh_config matches.
    web = endpoint(host("frontend", ansible_host="web3"), config)
    assert (web.name, web.address, web.user) == ("frontend", "web3.internal", "ops")


# --- precedence ------------------------------------------------------------------------


def test_inventory_variables_win_over_ssh_config(config: Path, tmp_path: Path) -> None:
    key = tmp_path / "inventory_key"
    conn = host("web1", ansible_port=2200, ansible_user="admin", ansible_ssh_private_key_file=key)
    web = endpoint(conn, config)
    assert (web.port, web.user) == (2200, "admin")
    assert web.identity_files == (key, tmp_path / "web_key")  # the inventory's key first
    assert web.source("port") == "inventory (ansible_port)"
    assert web.source("user") == "inventory (ansible_user)"


def test_ssh_args_win_over_ssh_config_and_variables_over_ssh_args(config: Path) -> None:
    args = "-p 2300 -l argsuser -o ConnectTimeout=5 -o HostName=10.3.0.3"
    web = endpoint(host("web1", ansible_ssh_common_args=args), config)
    assert (web.address, web.port, web.user, web.connect_timeout) == (
        "10.3.0.3", 2300, "argsuser", 5.0
    )  # fmt: skip
    assert web.source("port") == "inventory ansible_ssh_common_args -p 2300"
    both = host("web1", ansible_port=2400, ansible_ssh_common_args=args)
    assert endpoint(both, config).port == 2400


def test_common_args_come_before_extra_args_and_the_first_value_wins(config: Path) -> None:
    conn = host(
        "web1",
        ansible_ssh_common_args="-o User=first -i /keys/a",
        ansible_ssh_extra_args="-o User=second -i /keys/b",
    )
    web = endpoint(conn, config)
    assert web.user == "first"
    assert web.identity_files[:2] == (Path("/keys/a"), Path("/keys/b"))


def test_the_config_file_is_args_then_variable_then_run_then_user(
    tmp_path: Path, home: Path
) -> None:
    files = {n: write_config(tmp_path, f"Port {p}\n", n) for n, p in [("a", 1), ("b", 2), ("c", 3)]}
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text("Port 4\n")
    both = {"oorfix_ssh_config": str(files["b"]), "ansible_ssh_extra_args": f"-F {files['a']}"}
    assert endpoint(host("h", **both), files["c"]).port == 1
    assert endpoint(host("h", oorfix_ssh_config=str(files["b"])), files["c"]).port == 2
    assert endpoint(host("h"), files["c"]).port == 3
    assert endpoint(host("h"), None).port == 4


# --- jump hosts --------------------------------------------------------------------------


def test_each_hop_is_resolved_through_the_config(config: Path, tmp_path: Path) -> None:
    web = endpoint(host("web1"), config)
    (bastion,) = web.jumps
    assert (bastion.name, bastion.address, bastion.port, bastion.user) == (
        "bastion", "10.1.0.1", 2200, "jumper"
    )  # fmt: skip
    assert bastion.identity_files == (tmp_path / "bastion_key",)
    assert web.source("jumps") == f"ssh_config {config}:18"


def test_several_hops_and_a_first_hops_own_proxyjump(config: Path) -> None:
    args = "-J admin@inner:2022,web2"
    target = endpoint(host("db", ansible_ssh_common_args=args), config)
    # inner's own ProxyJump (bastion) comes first; web2's own ProxyJump is not followed,
    # as with `ssh -J inner,web2`: the chain itself reaches web2.
    names = [(j.name, j.address, j.port, j.user) for j in target.jumps]
    assert names == [
        ("bastion", "10.1.0.1", 2200, "jumper"),
        ("inner", "10.2.0.1", 2022, "admin"),
        ("web2", "web2.internal", 2222, "ops"),
    ]
    assert all(j.jumps == () for j in target.jumps)
    assert target.proxy_command is None  # ProxyJump given first wins over db's ProxyCommand


def test_proxyjump_none_turns_a_configured_jump_off(tmp_path: Path, home: Path) -> None:
    path = write_config(
        tmp_path,
        """
        Host direct bastion
            ProxyJump none
        Host *
            ProxyJump bastion
        """,
    )
    assert endpoint(host("direct"), path).jumps == ()
    assert [j.name for j in endpoint(host("other"), path).jumps] == ["bastion"]
    args = {"ansible_ssh_common_args": "-o ProxyJump=none"}
    assert endpoint(host("other", **args), path).jumps == ()


def test_a_jump_loop_is_an_error_naming_the_line(tmp_path: Path, home: Path) -> None:
    path = write_config(tmp_path, "Host *\n    ProxyJump bastion\n")
    with pytest.raises(SshConfigError) as caught:
        resolve(host("web1"), path)
    assert caught.value.path == str(path)
    assert caught.value.line == 2
    assert "ProxyJump loops (web1 -> bastion -> bastion)" in caught.value.message
    assert "Host * !bastion" in caught.value.message


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("bastion:99999", "port '99999' is not a port number"),
        ("bastion:ssh", "port 'ssh' is not a port number"),
        ("a,,b", "'' is not [user@]host[:port]"),
        ("@bastion", "'@bastion' is not [user@]host[:port]"),
        ("[::1", "cannot read '[::1'"),
    ],
)
def test_a_bad_proxyjump_names_file_line_and_host(
    tmp_path: Path, home: Path, spec: str, why: str
) -> None:
    path = write_config(tmp_path, f"# hops\nHost web1\n    ProxyJump {spec}\n")
    with pytest.raises(SshConfigError) as caught:
        resolve(host("web1"), path)
    assert caught.value.location_message().startswith(f"{path}:3: host 'web1': ")
    assert why in caught.value.message


def test_a_bad_proxyjump_in_inventory_names_host_and_variable(home: Path) -> None:
    conn = host("web1", ansible_ssh_common_args="-J bastion:0")
    with pytest.raises(InventoryError, match="host 'web1': inventory ansible_ssh_common_args -J"):
        resolve(conn)


def test_hop_specs_take_users_ports_uris_and_ipv6(home: Path) -> None:
    args = "-J ssh://u1@h1:2201,[fd00::1]:2202,u3@h3"
    jumps = endpoint(host("t", ansible_ssh_common_args=args), None).jumps
    assert [(j.user, j.address, j.port) for j in jumps] == [
        ("u1", "h1", 2201), (ME, "fd00::1", 2202), ("u3", "h3", 22)
    ]  # fmt: skip


# --- ProxyCommand ------------------------------------------------------------------------


def test_proxycommand_tokens_are_replaced_and_quoted(config: Path) -> None:
    db = endpoint(host("db", ansible_user="o'brien", ansible_port=2022), config)
    assert db.proxy_command == "ssh -W db:2022 -l 'o'\"'\"'brien' gate %"


def test_proxycommand_from_ansible_args_uses_the_resolved_address(config: Path) -> None:
    args = '-o ProxyCommand="ssh -W %h:%p -q gate"'
    web = endpoint(host("web1", ansible_ssh_common_args=args), config)
    assert web.proxy_command == "ssh -W web1.internal:2222 -q gate"
    assert web.jumps == ()  # given first (on the command line), it wins over ProxyJump


def test_proxycommand_none_and_an_unknown_token(tmp_path: Path, home: Path) -> None:
    path = write_config(
        tmp_path,
        """
        Host plain
            ProxyCommand none
        Host odd
            ProxyCommand nc %x %p
        Host *
            ProxyCommand nc %h %p
        """,
    )
    assert endpoint(host("plain"), path).proxy_command is None
    with pytest.raises(SshConfigError, match="unknown token %x") as caught:
        resolve(host("odd"), path)
    assert caught.value.line == 4


def test_of_proxyjump_and_proxycommand_the_first_in_the_file_wins(
    tmp_path: Path, home: Path
) -> None:
    path = write_config(
        tmp_path,
        """
        Host a
            ProxyCommand nc %h %p
        Host *
            ProxyJump bastion
        Host bastion
            ProxyJump none
        """,
    )
    assert (endpoint(host("a"), path).proxy_command, endpoint(host("a"), path).jumps) == (
        "nc a 22",
        (),
    )


# --- Ansible's ssh arguments -------------------------------------------------------------


def test_ssh_args_are_read_with_ssh_option_syntax() -> None:
    args = parse_ssh_args(
        "web1",
        (
            ("ansible_ssh_common_args", "-oUser=u -o 'Port 2200' -o 'Port = 9' -Jb1 -qC -i k"),
            ("ansible_ssh_extra_args", "-F /etc/oorfix/ssh_config -c aes128-ctr -o Tunnel=yes"),
        ),
    )
    assert [(s.key, s.value) for s in args.settings] == [
        ("user", "u"),
        ("port", "2200"),
        ("port", "9"),
        ("proxyjump", "b1"),
        ("identityfile", "k"),
    ]
    assert args.config is not None
    assert args.config.value == "/etc/oorfix/ssh_config"
    assert list(args.warnings) == [
        "ansible_ssh_common_args: -q is not supported by oorfix; ignored",
        "ansible_ssh_common_args: -C is not supported by oorfix; ignored",
        "ansible_ssh_extra_args: -c aes128-ctr is not supported by oorfix; ignored",
        "ansible_ssh_extra_args: -o Tunnel=yes is not supported by oorfix; ignored",
    ]


def test_unsupported_options_are_warnings_naming_host_and_option(config: Path) -> None:
    args = "-o StrictHostKeyChecking=no -o ControlMaster=auto -A stray"
    resolved = resolve(host("web1", ansible_ssh_common_args=args), config)
    assert notes(resolved) == [
        "host 'web1': ansible_ssh_common_args: -o StrictHostKeyChecking=no is not supported "
        "by oorfix; ignored (host keys are checked against --known-hosts; see "
        "--accept-new-host-keys)",
        "host 'web1': ansible_ssh_common_args: -o ControlMaster=auto is not supported by "
        "oorfix; ignored (oorfix keeps one connection per host for the whole run)",
        "host 'web1': ansible_ssh_common_args: -A is not supported by oorfix; ignored",
        "host 'web1': ansible_ssh_common_args: 'stray' (not an option) is not supported by "
        "oorfix; ignored",
    ]


@pytest.mark.parametrize(
    ("args", "why"),
    [("-o", "-o needs an argument"), ("-o User", "-o 'User' gives no value")],
)
def test_an_option_without_its_value_is_an_inventory_error(args: str, why: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_ssh_args("web1", (("ansible_ssh_extra_args", args),))
    assert caught.value.message.startswith("host 'web1': ansible_ssh_extra_args: ")
    assert why in caught.value.message


def test_unsplittable_args_fail_when_the_inventory_loads(write: Callable[[str, str], Path]) -> None:
    inventory = write("inv.yml", "all:\n  hosts:\n    w1: {ansible_ssh_common_args: '-o \"User'}\n")
    with pytest.raises(InventoryError, match="ansible_ssh_common_args: No closing quotation"):
        load_inventory(inventory)


def test_config_settings_oorfix_ignores_are_warned_about(tmp_path: Path, home: Path) -> None:
    path = write_config(tmp_path, "Host *\n    StrictHostKeyChecking accept-new\n")
    assert notes(resolve(host("web1"), path)) == [
        f"host 'web1': ssh_config {path}:2: StrictHostKeyChecking is not used by oorfix; "
        "ignored (host keys are checked against --known-hosts; see --accept-new-host-keys)"
    ]


# --- the file itself ---------------------------------------------------------------------


def test_include_is_inlined_and_the_including_block_resumes(tmp_path: Path, home: Path) -> None:
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    (home / ".ssh" / "conf.d" / "10-web.conf").write_text("Host web1\n    Port 2001\n")
    (home / ".ssh" / "conf.d" / "20-db.conf").write_text("User from-include\n")
    path = write_config(
        tmp_path,
        """
        Host db
            Include conf.d/*.conf
            Port 3306
        """,
    )
    assert endpoint(host("web1"), path).port == 2001
    db = endpoint(host("db"), path)
    # Each included file starts in the including block (`Host db`), whatever an earlier one
    # switched to, and Port 3306 is back in `Host db` too, as OpenSSH resumes that block.
    assert (db.user, db.port) == ("from-include", 3306)
    web = endpoint(host("web1"), path)
    assert web.source("port") == f"ssh_config {home}/.ssh/conf.d/10-web.conf:2"


def test_match_exec_never_runs_and_is_skipped_with_a_warning(tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "ran"
    path = write_config(
        tmp_path,
        f"""
        Match exec "touch {marker}"
            User evil
        Match host web*
            User matched
        """,
    )
    resolved = resolve(host("web1"), path)
    assert resolved.endpoint.user == "matched"
    assert not marker.exists()
    assert notes(resolved) == [
        f"{path}:1: Match exec is not evaluated by oorfix (it runs no command from an "
        "ssh_config); this block is skipped"
    ]


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("Host a\n    Port x\n", 2, "port 'x' is not a port number"),
        ("Host a\n\n  ConnectTimeout soon\n", 3, "ConnectTimeout 'soon' is not a time"),
        ("Host a\n  IdentitiesOnly maybe\n", 2, "IdentitiesOnly 'maybe': write yes or no"),
        ("Host a\nnonsense\n", 2, "cannot parse 'nonsense'"),
        ('Host "a\n', 1, "cannot parse"),
        ("Match all host a\n", 1, "cannot parse"),
    ],
)
def test_a_bad_value_names_file_and_line(
    tmp_path: Path, home: Path, text: str, line: int, why: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(SshConfigError) as caught:
        resolve(host("a"), path)
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert why in caught.value.message


def test_an_unreadable_config_is_an_error_naming_it(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SshConfigError, match="cannot read this ssh_config") as caught:
        resolve(host("a"), missing)
    assert caught.value.path == str(missing)


def test_a_changed_file_is_read_again(tmp_path: Path, home: Path) -> None:
    path = write_config(tmp_path, "Port 2001\n")
    assert endpoint(host("a"), path).port == 2001
    path.write_text("Port 2002\n# longer, so the size changes too\n")
    assert endpoint(host("a"), path).port == 2002


# --- before a run: every planned host, errors and warnings once --------------------------


def test_check_hosts_groups_warnings_and_reports_a_line_once(tmp_path: Path, home: Path) -> None:
    path = write_config(tmp_path, "Host *\n    StrictHostKeyChecking no\n")
    hosts = [host(f"w{n}") for n in range(5)]
    assert check_hosts(hosts, path) == [
        f"hosts 'w0', 'w1', 'w2' and 2 more: ssh_config {path}:2: StrictHostKeyChecking is "
        "not used by oorfix; ignored (host keys are checked against --known-hosts; see "
        "--accept-new-host-keys)"
    ]
    path.write_text("Host *\n    Port http\n")
    with pytest.raises(SshConfigError) as caught:
        check_hosts(hosts, path)
    assert caught.value.location_message().startswith(f"{path}:2: host 'w0': ")
    bad = [host("w1", ansible_ssh_common_args="-p 0"), host("w2", ansible_ssh_common_args="-p x")]
    with pytest.raises(InputErrors):
        check_hosts(bad, None)


RUNBOOK = """
name: touch
fault: software.service_interruption
hosts: all
detect:
  - name: marker
    run: test -f /tmp/marker
remediate:
  - run: touch /tmp/marker
"""


def test_a_run_is_refused_before_any_host_is_contacted(
    write: Callable[[str, str], Path], tmp_path: Path, home: Path
) -> None:
    runbook = write("touch.yml", RUNBOOK)
    inventory = write("inv.yml", "all:\n  hosts:\n    w1:\n")
    bad = write_config(tmp_path, "Host w1\n    ProxyJump bastion:http\n")
    settings = RunSettings(runbooks=(str(runbook),), inventory_paths=(inventory,), ssh_config=bad)
    with pytest.raises(InputError, match="port 'http' is not a port number"):
        load_and_plan(settings)
    result = CliRunner().invoke(main, ["run", str(runbook), "-i", str(inventory), "-F", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: host 'w1': ProxyJump 'bastion:http'" in result.output


# --- `oorfix inventory --host` -----------------------------------------------------------


def test_inventory_host_shows_the_resolved_connection_and_sources(
    config: Path, write: Callable[[str, str], Path]
) -> None:
    inventory = write("inv.yml", "all:\n  hosts:\n    web1: {ansible_user: admin}\n")
    result = CliRunner().invoke(
        main, ["inventory", "-i", str(inventory), "-F", str(config), "--host", "web1"]
    )
    assert result.exit_code == 0, result.output
    connection: Mapping[str, Any] = json.loads(result.output)["_oorfix_connection"]
    assert (connection["address"], connection["port"], connection["user"]) == (
        "web1.internal", 2222, "admin"
    )  # fmt: skip
    assert connection["ssh_config"] == str(config)
    assert [j["name"] for j in connection["jumps"]] == ["bastion"]
    assert connection["jumps"][0]["sources"]["port"] == f"ssh_config {config}:4"
    assert connection["sources"]["user"] == "inventory (ansible_user)"
    assert connection["sources"]["jumps"] == f"ssh_config {config}:18"
