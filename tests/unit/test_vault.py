"""Ansible Vault: Ansible's own test vectors, round trips, passwords and where errors point.

The vectors were made by ``ansible-vault`` 2.19.14 (``encrypt_string``, ``encrypt_string
--vault-id prod@FILE`` and ``encrypt``) with the password in ``PASSWORD_FILE``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from oorfix.cli import main
from oorfix.errors import InventoryError, YamlError
from oorfix.inventory import vault
from oorfix.inventory.core import load_inventory
from oorfix.inventory.vault import Keyring, PasswordSource, parse_envelope
from oorfix.redact import MASK, SecretInt, SecretText, is_secret_value
from oorfix.run.planner import plan_run
from oorfix.run.variables import inventory_secrets
from oorfix.runbook.loader import LoadedRunbook
from oorfix.runbook.yamlsource import load_text

PASSWORD_FILE = "oorfix test vector\n"  # noqa: S105 (a published test vector's)
PASSWORD = b"oorfix test vector"

V11_PLAINTEXT = "p@ss w0rd: café"
V11 = """\
$ANSIBLE_VAULT;1.1;AES256
35613763646432393535656466356461376161306538626432373932656437363536303337376566
6164613030633937356439383233653666656237663162660a653034636238333162313163623636
34343435666261646639363234326639343964626531303132346336303665313937353037626462
3431633361646131610a346231323934303865376432373631316234353932303130323837643665
62323732376439363635646339653461616462636632383831333962633862313936
"""

V12_PLAINTEXT = "labelled secret"
V12 = """\
$ANSIBLE_VAULT;1.2;AES256;prod
62386638643734366536336537643639386362643864366465346166303232366535636462373365
3666373432373039333238393666653930383063383434330a633735323064323537653966326131
33383635323632613765643435376463623035323365616438376461613933643332316431346166
3332636165306237640a303565353036363531646261323035353162316663663564303638376536
3762
"""

FILE_PLAINTEXT = "db_password: s3cr3t\nport: 5432\n"
FILE_VECTOR = """\
$ANSIBLE_VAULT;1.1;AES256
61303564646132666235633664353739623831646363393537643563393732383730626136643737
3833393763303165323665626534643838396165633065390a653166306163346436313963303032
38636466343538653331346337313532323739306363353839353364346335303833303833666261
3936653834346464340a303531633865393336323032356237303538383532313033353532393836
64383165366363323665643132383161616537653332653534343939336337653432
"""


def keyring(*passwords: tuple[str, bytes]) -> Keyring:
    """A keyring whose passwords are already read (no files)."""
    ring = Keyring([PasswordSource(label, Path("/nonexistent")) for label, _ in passwords])
    ring._passwords = list(passwords)
    return ring


def tagged(name: str, envelope: str, indent: int = 4) -> str:
    """``name: !vault |`` and the envelope indented under it, as encrypt_string writes it."""
    return f"{name}: !vault |\n{textwrap.indent(envelope, ' ' * indent)}"


# --- the format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "plaintext"),
    [(V11, V11_PLAINTEXT), (V12, V12_PLAINTEXT), (FILE_VECTOR, FILE_PLAINTEXT)],
)
def test_ansible_vault_vectors_decrypt(envelope: str, plaintext: str) -> None:
    assert vault.decrypt(parse_envelope(envelope), PASSWORD) == plaintext.encode()


def test_the_1_2_header_carries_the_vault_id() -> None:
    assert (parse_envelope(V11).version, parse_envelope(V11).label) == ("1.1", None)
    assert (parse_envelope(V12).version, parse_envelope(V12).label) == ("1.2", "prod")


@pytest.mark.parametrize(
    ("envelope", "plaintext", "label"),
    [(V11, V11_PLAINTEXT, None), (V12, V12_PLAINTEXT, "prod"), (FILE_VECTOR, FILE_PLAINTEXT, None)],
)
def test_encrypting_with_ansibles_salt_gives_ansibles_bytes(
    envelope: str, plaintext: str, label: str | None
) -> None:
    salt = parse_envelope(envelope).salt
    assert vault.encrypt(plaintext.encode(), PASSWORD, label, salt=salt) == envelope


@pytest.mark.parametrize("plaintext", [b"", b"x", b"0123456789abcdef", "é\n\0".encode() * 50])
def test_round_trip(plaintext: bytes) -> None:
    envelope = vault.encrypt(plaintext, b"pw", "dev")
    assert envelope.startswith("$ANSIBLE_VAULT;1.2;AES256;dev\n")
    assert all(len(line) <= 80 for line in envelope.splitlines())
    assert vault.decrypt(parse_envelope(envelope), b"pw") == plaintext


def test_a_fresh_salt_each_time() -> None:
    assert vault.encrypt(b"same", b"pw") != vault.encrypt(b"same", b"pw")


def test_a_wrong_password_is_an_hmac_mismatch() -> None:
    with pytest.raises(vault.WrongPassword, match="the HMAC does not match"):
        vault.decrypt(parse_envelope(V11), b"not it")


def test_a_changed_ciphertext_fails_the_hmac_before_any_decryption() -> None:
    envelope = parse_envelope(V11)
    flipped = bytes([envelope.ciphertext[0] ^ 1]) + envelope.ciphertext[1:]
    tampered = vault.Envelope("1.1", None, envelope.salt, envelope.hmac, flipped)
    with pytest.raises(vault.WrongPassword):
        vault.decrypt(tampered, PASSWORD)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("$ANSIBLE_VAULT;1.1\n00\n", "the header must read"),
        ("$ANSIBLE_VAULT;1.0;AES\n00\n", "format version '1.0' is not supported"),
        ("$ANSIBLE_VAULT;1.1;AES128\n00\n", "cipher 'AES128' is not supported"),
        ("$ANSIBLE_VAULT;1.1;AES256\nzz\n", "the body is not hexadecimal"),
        ("$ANSIBLE_VAULT;1.1;AES256\n616263\n", "expected a salt, an HMAC and a ciphertext"),
        ("$ANSIBLE_VAULT;1.1;AES256\n" + b"61\n62\n63".hex() + "\n", "the wrong length"),
        ("$ANSIBLE_VAULT;1.1;AES256\n" + b"6\n62\n63".hex() + "\n", "the salt is not hex"),
        ("$ANSIBLE_VAULT;1.1;AES256\n" + V11.splitlines()[1][:-1] + "\n", "not hexadecimal"),
        ("hello", "the header must read"),
    ],
)
def test_a_malformed_envelope_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(vault.MalformedVault, match="malformed vault envelope: .*" + why):
        parse_envelope(text)


# --- passwords ---------------------------------------------------------------------------


def test_a_password_file_gives_its_first_line_stripped(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("  oorfix test vector  \nsecond line\n")
    assert PasswordSource("default", path).read() == PASSWORD


def test_an_executable_password_file_is_run(tmp_path: Path) -> None:
    path = tmp_path / "pw.sh"
    path.write_text("#!/bin/sh\nprintf 'oorfix test vector\\r\\n'\n")
    path.chmod(0o755)
    assert PasswordSource("default", path).read() == PASSWORD


def test_a_client_script_is_asked_for_its_vault_id(tmp_path: Path) -> None:
    path = tmp_path / "keys-client.sh"
    path.write_text('#!/bin/sh\n[ "$1 $2" = "--vault-id prod" ] && echo right || exit 2\n')
    path.chmod(0o755)
    assert PasswordSource("prod", path).read() == b"right"
    with pytest.raises(InventoryError, match="it knows no vault id 'dev'"):
        PasswordSource("dev", path).read()


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (None, 0o600, "vault password file: no such file"),
        ("\n\n", 0o600, "vault password file: the password is empty"),
        ("#!/bin/sh\nexit 3\n", 0o755, "vault password script: it exited with status 3"),
        ("#!/bin/sh\nprintf ''\n", 0o755, "vault password file: the password is empty"),
    ],
)
def test_a_password_that_cannot_be_had_names_its_file(
    tmp_path: Path, content: str | None, mode: int, message: str
) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(InventoryError) as caught:
        PasswordSource("default", path).read()
    assert caught.value.location_message() == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "label", "file"),
    [("prod@/k/p", "prod", "/k/p"), ("/k/p", "default", "/k/p"), ("@/k/p", "default", "/k/p")],
)
def test_vault_ids_read_as_ansible_reads_them(text: str, label: str, file: str) -> None:
    assert PasswordSource.of_vault_id(text) == PasswordSource(label, Path(file))


@pytest.mark.parametrize("text", ["prod@prompt", "prompt", "prod@"])
def test_a_prompting_vault_id_is_refused(text: str) -> None:
    with pytest.raises(InventoryError, match="oorfix does not prompt; give a password file"):
        PasswordSource.of_vault_id(text)


def test_the_1_2_label_picks_its_password_first() -> None:
    ring = keyring(("dev", b"wrong"), ("prod", PASSWORD))
    assert ring.decrypt(V12) == V12_PLAINTEXT.encode()
    # A 1.1 vault has no label: "default" first, then every other password, as in Ansible.
    assert ring.decrypt(V11) == V11_PLAINTEXT.encode()


def test_every_password_tried_is_named_when_none_fits() -> None:
    ring = keyring(("dev", b"wrong"), ("stage", b"also wrong"))
    with pytest.raises(vault.WrongPassword, match=r"\(ids tried: dev, stage\)"):
        ring.decrypt(V12)
    with pytest.raises(vault.NoPassword):
        Keyring().decrypt(V11)


def test_passwords_are_read_only_when_a_vault_needs_them(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "pw.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho 'oorfix test vector'\n")
    script.chmod(0o755)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1:\n")
    ring = Keyring.from_options([script], [])
    load_inventory(inventory, ring)
    assert not marker.exists()
    two = "      ".join([tagged("a", V11, 8), tagged("b", V11, 8)])
    inventory.write_text("all:\n  hosts:\n    h1:\n      " + two)
    assert load_inventory(inventory, ring).hosts["h1"].vars["b"] == V11_PLAINTEXT
    marker.unlink()  # read once for both values, and once only
    assert load_inventory(inventory, ring).hosts["h1"].vars["a"] == V11_PLAINTEXT
    assert not marker.exists()


# --- inventories -------------------------------------------------------------------------


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(PASSWORD_FILE)
    return path


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


INVENTORY = (
    "all:\n"
    "  vars:\n"
    "    " + tagged("site_key", V11, 6) + "  hosts:\n"
    "    web1:\n"
    "      " + tagged("blob", V12, 8) + "      plain: visible\n"
)


def test_vault_values_in_an_inventory_and_its_vars_files_decrypt(
    tmp_path: Path, password_file: Path
) -> None:
    write(
        tmp_path,
        {
            "inv.yml": INVENTORY,
            "group_vars/all/vault.yml": FILE_VECTOR,
            "host_vars/web1.yml": tagged("token_b", V11, 2),
        },
    )
    inventory = load_inventory(tmp_path / "inv.yml", Keyring.from_options([password_file], []))
    variables = inventory.hosts["web1"].vars
    assert variables["site_key"] == V11_PLAINTEXT
    assert variables["blob"] == V12_PLAINTEXT
    assert variables["token_b"] == V11_PLAINTEXT
    assert (variables["db_password"], variables["port"]) == ("s3cr3t", 5432)
    # Every value out of a vault is marked secret; the others are not.
    assert type(variables["blob"]) is SecretText
    assert type(variables["port"]) is SecretInt
    assert not is_secret_value(variables["plain"])
    assert set(map(str, inventory_secrets(inventory))) == {
        "5432",
        V11_PLAINTEXT,
        V12_PLAINTEXT,
        "s3cr3t",
    }


@pytest.mark.parametrize("form", ["yml", "ini"])
def test_a_vault_encrypted_inventory_decrypts_and_all_its_values_are_secret(
    tmp_path: Path, password_file: Path, form: str
) -> None:
    plain = {
        "yml": "web:\n  hosts:\n    w1:\n      ansible_port: 2222\n      enabled: yes\n",
        "ini": "[web]\nw1 ansible_port=2222 enabled=True\n",
    }[form]
    path = tmp_path / f"inv.{form}"
    path.write_text(vault.encrypt(plain.encode(), PASSWORD))
    inventory = load_inventory(path, Keyring.from_options([password_file], []))
    variables = inventory.hosts["w1"].vars
    assert (variables["ansible_port"], variables["enabled"]) == (2222, True)
    assert is_secret_value(variables["ansible_port"])
    assert inventory.hosts["w1"].connection().port == 2222
    assert inventory.hosts["w1"].groups == ("all", "web")


@pytest.mark.parametrize(
    ("files", "source", "message"),
    [
        (
            {"inv.yml": INVENTORY},
            "inv.yml",
            "inv.yml:3: a !vault value needs --vault-password-file or --vault-id",
        ),
        (
            {"inv.yml": "all:\n  hosts:\n    h:\n", "group_vars/all.yml": FILE_VECTOR},
            "inv.yml",
            "group_vars/all.yml:1: this vault-encrypted file needs --vault-password-file or "
            "--vault-id",
        ),
        (
            {"inv.ini": FILE_VECTOR},
            "inv.ini",
            "inv.ini:1: this vault-encrypted file needs --vault-password-file or --vault-id",
        ),
    ],
)
def test_a_vault_without_a_password_names_file_and_line(
    tmp_path: Path, files: dict[str, str], source: str, message: str
) -> None:
    write(tmp_path, files)
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / source)
    assert caught.value.location_message() == f"{tmp_path}/{message}"


def test_a_wrong_password_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"inv.yml": INVENTORY})
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.yml", keyring(("default", b"nope")))
    assert caught.value.location_message() == (
        f"{tmp_path}/inv.yml:3: a !vault value cannot be decrypted: wrong vault password: "
        "the HMAC does not match (ids tried: default)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  zz\n", "malformed vault envelope"),
        ("a: !vault plain text\n", "malformed vault envelope: the header must read"),
        ("a: !vault {x: 1}\n", "tag '!vault' takes a text value"),
    ],
)
def test_a_bad_vault_value_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, {"inv.yml": "all:\n  hosts:\n    h:\n", "group_vars/all.yml": text})
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv.yml", keyring(("default", PASSWORD)))
    assert caught.value.location_message().startswith(f"{tmp_path}/group_vars/all.yml:1: ")
    assert message in caught.value.message


def test_runbooks_still_refuse_the_vault_tag() -> None:
    with pytest.raises(YamlError, match="tag '!vault' is not allowed"):
        load_text(tagged("a", V11), Path("rb.yml"))


# --- masked in every output --------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["inventory", *args])
    return result.exit_code, result.output


def test_the_cli_masks_vault_values_and_exits_2_without_a_password(
    tmp_path: Path, password_file: Path
) -> None:
    write(tmp_path, {"inv.yml": INVENTORY, "group_vars/all/vault.yml": FILE_VECTOR})
    source = str(tmp_path / "inv.yml")
    code, out = invoke("-i", source, "--list", "--vault-password-file", str(password_file))
    assert code == 0, out
    variables = json.loads(out)["_meta"]["hostvars"]["web1"]
    assert variables == {
        "site_key": MASK,
        "db_password": MASK,
        "port": MASK,
        "blob": MASK,
        "plain": "visible",
    }
    code, out = invoke("-i", source, "--host", "web1", "--vault-id", f"prod@{password_file}")
    assert code == 0, out
    assert V12_PLAINTEXT not in out
    assert V11_PLAINTEXT not in out
    code, out = invoke("-i", source, "--list")
    assert code == 2
    assert "inv.yml:3: a !vault value needs --vault-password-file or --vault-id" in out


def test_vault_values_are_masked_in_rendered_commands(
    tmp_path: Path, password_file: Path, runbook: Callable[[str], LoadedRunbook]
) -> None:
    write(tmp_path, {"inv.yml": INVENTORY})
    inventory = load_inventory(tmp_path / "inv.yml", Keyring.from_options([password_file], []))
    loaded = runbook(
        "name: rb\nfault: software.crash\nhosts: web1\n"
        "detect:\n  - run: echo {{ blob }} {{ plain }}\n"
    )
    (planned,) = plan_run([loaded], inventory, {})
    command = planned.steps[0].command
    assert command.text == f"echo '{V12_PLAINTEXT}' visible"
    assert str(command) == f"echo {MASK} visible"
