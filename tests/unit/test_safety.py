"""Holes a review found in quoting, redaction and input handling, each pinned by a test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from oorfix.errors import InputError, InputErrors
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.redact import Redactor
from oorfix.run.planner import plan_run
from oorfix.runbook.loader import LoadedRunbook, load_runbook
from oorfix.runbook.yamlsource import load_text

HEAD = "name: rb\nfault: software.crash\nhosts: api-1\n"
ROOT = Path(__file__).resolve().parents[2]


def _error(func: Callable[[], object]) -> str:
    with pytest.raises(InputError) as caught:
        func()
    exc = caught.value
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    return "\n".join(e.location_message() for e in errors)


@pytest.mark.parametrize(
    "run",
    ["echo '{{ v }}'", 'echo "{{ v }}"', 'echo "a b {{ v }} c"', "echo 'x'\"{{ v }}\""],
)
def test_template_inside_quotes_is_refused(write: Callable[[str, str], Path], run: str) -> None:
    path = write("rb.yml", HEAD + f"detect:\n  - run: |-\n      {run}\n")
    message = _error(lambda: load_runbook(path))
    assert message.startswith(f"{path}:5: detect[0].run: {{{{ v }}}} stands inside quotes")


@pytest.mark.parametrize(
    "run",
    [
        "echo {{ v }}",
        "echo '{{ v | raw }}'",
        "echo {{ v | default('a b') }}",
        "echo it\\'s {{ v }}",
    ],
)
def test_unquoted_templates_are_accepted(write: Callable[[str, str], Path], run: str) -> None:
    path = write("rb.yml", HEAD + f"detect:\n  - run: |-\n      {run}\n")
    assert load_runbook(path).runbook.detect[0].run == run


def test_hostile_value_in_a_refused_position_never_reaches_a_shell(tmp_path: Path) -> None:
    # The same command, written without quotes, renders safely and runs as one argument.
    from oorfix.runbook.templating import render_command

    marker = tmp_path / "pwned"
    rendered = render_command("printf %s {{ v }}", {"v": f"x'; touch {marker}; '"})
    out = subprocess.run(["sh", "-c", rendered], capture_output=True, text=True, check=True)
    assert out.stdout == f"x'; touch {marker}; '"
    assert not marker.exists()


def test_secrets_with_quotes_and_nested_values_are_masked() -> None:
    redact = Redactor.of(["it's-s3cret", {"user": "svc", "pass": "hunter2222"}])
    shell = "login 'it'\"'\"'s-s3cret' && curl -u svc:hunter2222"
    assert redact(shell) == "login ******** && curl -u svc:********"


def test_secret_in_another_hosts_vars_is_masked(
    write: Callable[[str, str], Path], runbook: Callable[[str], LoadedRunbook]
) -> None:
    inventory = load_inventory(
        write(
            "inv.yml",
            "all:\n  hosts:\n    api-1: {}\n    db-1: {db_password: TOPSECRETPW}\n",
        )
    )
    loaded = runbook(HEAD + "detect:\n  - run: echo {{ hostvars['db-1'].db_password }}\n")
    (planned,) = plan_run([loaded], inventory, {})
    assert planned.steps[0].command.text == "echo TOPSECRETPW"  # the host gets the value
    assert str(planned.steps[0].command) == "echo ********"
    assert "TOPSECRETPW" not in planned.steps[0].label


def test_inventory_values_are_never_rendered_again(
    write: Callable[[str, str], Path], runbook: Callable[[str], LoadedRunbook]
) -> None:
    inventory = load_inventory(
        write("inv.yml", "all:\n  hosts:\n    api-1: {api_host: '{{ 7 * 7 }}'}\n")
    )
    loaded = runbook(
        HEAD + "vars:\n  url: 'http://{{ api_host }}/x'\n  api_host: localhost\n"
        "detect:\n  - run: curl {{ url }}\n"
    )
    (planned,) = plan_run([loaded], inventory, {})
    assert planned.steps[0].command.text == "curl 'http://{{ 7 * 7 }}/x'"


def test_runbook_vars_render_in_dependency_order(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        HEAD + "vars:\n  url: 'http://{{ addr }}/'\n  addr: '{{ ip }}:80'\n  ip: 10.0.0.1\n"
        "detect:\n  - run: curl {{ url }}\n"
    )
    (planned,) = plan_run([loaded], inventory, {})
    assert planned.steps[0].command.text == "curl http://10.0.0.1:80/"


def test_runbook_vars_in_a_loop_are_an_error(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(HEAD + "vars:\n  a: '{{ b }}'\n  b: '{{ a }}'\ndetect:\n  - run: 'true'\n")
    message = _error(lambda: plan_run([loaded], inventory, {}))
    assert message == f"{loaded.path}:5: vars.a: runbook variables refer to each other in a loop"


def test_plan_errors_do_not_leak_secrets(
    inventory: Inventory, runbook: Callable[[str], LoadedRunbook]
) -> None:
    loaded = runbook(
        HEAD + "vars: {api_token: 'tok en-99'}\ndetect: [{run: 'true'}]\n"
        "remediate:\n  - service: {name: '{{ api_token }}', state: restarted}\n"
    )
    message = _error(lambda: plan_run([loaded], inventory, {}))
    assert "tok en-99" not in message
    assert "service name ******** has characters not allowed here" in message


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ("detect:\n  - run: echo {{ 1 | nosuchfilter }}\n", "5: detect[0].run", "nosuchfilter"),
        ("detect:\n  - run: 'true'\n    when: host.nmae == 1\n", "6: detect[0].when", "nmae"),
        (
            "detect: [{run: 'true'}]\nescalate: {message: 'down on {{ nosuch }}'}\n",
            "5: escalate.message",
            "nosuch",
        ),
    ],
)
def test_template_mistakes_are_found_offline(
    inventory: Inventory,
    write: Callable[[str, str], Path],
    body: str,
    where: str,
    what: str,
) -> None:
    path = write("rb.yml", HEAD + body)

    def load_and_plan() -> None:
        plan_run([load_runbook(path)], inventory, {})

    message = _error(load_and_plan)
    assert message.startswith(f"{path}:{where}:")
    assert what in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 3000 + "]" * 3000, "t.yml: invalid YAML: nested too deeply"),
        ("a:" + " [" * 70 + " ]" * 70 + "\n", "t.yml:1: nested deeper than 64 levels"),
    ],
)
def test_deep_nesting_is_an_input_error(text: str, message: str) -> None:
    assert _error(lambda: load_text(text, Path("t.yml"))) == message


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("  - run: 'true'\n    timeout: 0\n", "detect[0].timeout: Input should be greater than 0"),
        ("  - run: 'true'\n    sudo: 'yes'\n", "detect[0].sudo: Input should be a valid boolean"),
    ],
)
def test_values_that_mean_nothing_are_refused(
    write: Callable[[str, str], Path], step: str, message: str
) -> None:
    path = write("rb.yml", HEAD + "detect:\n" + step)
    assert _error(lambda: load_runbook(path)).endswith(message)


def _oorfix(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "oorfix", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-e", "[/x]"], "error: -e '[/x]': expected key=value or @file.yml"),
        (["-e", "@{extra}"], "error: {extra}:1: 7 is not a variable name"),
        (["--json", "/proc/nope/run.json"], "error: /proc/nope/run.json: cannot write"),
    ],
)
def test_cli_input_errors_exit_2_without_traceback(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    extra = tmp_path / "extra.yml"
    extra.write_text("7: seven\n")
    args = [a.format(extra=extra) for a in args]
    done = _oorfix("run", "payment-api-down", "-i", "inventory/", *args)
    assert done.returncode == 2, done.stderr
    assert expected.format(extra=extra) in done.stderr
    assert "Traceback" not in done.stderr
