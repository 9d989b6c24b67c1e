"""Runbook loading and planning: every mistake reported as ``path:line: loc: message``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oorfix.errors import InputError, InputErrors, RunbookError, TemplateError, YamlError
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.run.planner import plan_run
from oorfix.runbook.loader import (
    LoadedRunbook,
    format_loc,
    load_runbook,
    load_runbooks,
    runbook_files,
)

Write = Callable[[str, str], Path]
RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"

HEAD = """\
name: rb
fault: software.crash
"""
DETECT = """\
detect:
  - run: 'true'
"""


def runbook_text(name: str, fault: str = "software.crash") -> str:
    return f"name: {name}\nfault: {fault}\ndetect:\n  - run: 'true'\n"


def load_error(write: Write, text: str) -> InputError:
    path = write("rb.yml", text)
    with pytest.raises(InputError) as info:
        load_runbook(path)
    return info.value


@pytest.mark.parametrize(
    ("text", "cls", "expected"),
    [
        pytest.param(
            HEAD + DETECT + "foo: 1\n",
            RunbookError,
            "5: foo: unknown key (check its spelling; see `oorfix schema`)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            HEAD + "detect:\n  - name: first\n    run: 'true'\n  - name: second\n    rn: echo hi\n",
            RunbookError,
            "7: detect[1].rn: unknown key (check its spelling; see `oorfix schema`)",
            id="rn-typo",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    expct: {rc: 0}\n",
            RunbookError,
            "5: detect[0].expct: unknown key (check its spelling; see `oorfix schema`)",
            id="expect-typo",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - service: {name: x, state: started, enable: true}\n",
            RunbookError,
            "6: remediate[0].service.enable: unknown key (check its spelling; see `oorfix schema`)",
            id="unknown-action-key",
        ),
        pytest.param(
            HEAD + "summary: no detect\n",
            RunbookError,
            "1: missing required key 'detect'",
            id="missing-detect",
        ),
        pytest.param(
            "fault: software.crash\n" + DETECT,
            RunbookError,
            "1: missing required key 'name'",
            id="missing-name",
        ),
        pytest.param(
            HEAD + "detect: []\n",
            RunbookError,
            "3: detect: List should have at least 1 item after validation, not 0",
            id="empty-detect",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    service: {name: x, state: started}\n",
            RunbookError,
            "4: detect[0]: a step needs exactly one of run, service, package, route, wait_for, "
            "failover (found: run, service)",
            id="run-and-service",
        ),
        pytest.param(
            HEAD + "detect:\n  - name: does nothing\n",
            RunbookError,
            "4: detect[0]: a step needs exactly one of run, service, package, route, wait_for, "
            "failover (found: none)",
            id="no-action",
        ),
        pytest.param(
            "name: rb\nfault: software.nope\n" + DETECT,
            RunbookError,
            "2: fault: unknown fault id 'software.nope' (see `oorfix catalog`; a site declares"
            " its own in catalog.yml beside its runbooks)",
            id="bad-fault-id",
        ),
        pytest.param(
            "name: rb\nfault: maintenance.disk-cleanup\n" + DETECT,
            RunbookError,
            "2: fault: unknown fault id 'maintenance.disk-cleanup' (see `oorfix catalog`; a site"
            " declares its own in catalog.yml beside its runbooks)",
            id="bad-maintenance-id",
        ),
        pytest.param(
            "name: 'bad name'\nfault: software.crash\n" + DETECT,
            RunbookError,
            "1: name: 'bad name': use letters, digits, '.', '_' and '-'",
            id="bad-name",
        ),
        pytest.param(
            HEAD + "severity: low\n" + DETECT,
            RunbookError,
            "3: severity: Input should be 'critical', 'major' or 'minor'",
            id="bad-severity",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    expect:\n      stdout: '(unclosed'\n",
            RunbookError,
            "6: detect[0].expect.stdout: invalid regular expression: "
            "missing ), unterminated subpattern at position 0",
            id="bad-regex",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    expect: {stderr_not: '[a-'}\n",
            RunbookError,
            "5: detect[0].expect.stderr_not: invalid regular expression: "
            "unterminated character set at position 0",
            id="bad-regex-stderr-not",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n  - service: {name: x, state: started}\n",
            RunbookError,
            "5: detect[1].service: detect is read-only; move it to remediate",
            id="service-in-detect",
        ),
        pytest.param(
            HEAD + DETECT + "evidence:\n  - package: {name: openssl}\n",
            RunbookError,
            "6: evidence[0].package: evidence is read-only; move it to remediate",
            id="package-in-evidence",
        ),
        pytest.param(
            HEAD + DETECT + "verify:\n  checks:\n    - route: {dest: default, via: 10.0.0.1}\n",
            RunbookError,
            "7: verify.checks[0].route: verify is read-only; move it to remediate",
            id="route-in-verify",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n  - name: broken\n    run: echo {{ x \n",
            TemplateError,
            "6: detect[1].run: template syntax error: unexpected end of template, "
            "expected 'end of print statement'.",
            id="template-syntax-in-run",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    when: 'x =='\n",
            TemplateError,
            "5: detect[0].when: template syntax error: unexpected ')'",
            id="when-syntax",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    expect: {that: 'result.rc =='}\n",
            TemplateError,
            "5: detect[0].expect.that: template syntax error: unexpected ')'",
            id="that-syntax",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - service: {name: '{{ x', state: started}\n",
            TemplateError,
            "6: remediate[0].service.name: template syntax error: unexpected end of template, "
            "expected 'end of print statement'.",
            id="action-param-syntax",
        ),
        pytest.param(
            HEAD + "vars:\n  a: '{{ b'\n" + DETECT,
            TemplateError,
            "4: vars.a: template syntax error: unexpected end of template, "
            "expected 'end of print statement'.",
            id="var-syntax",
        ),
        pytest.param(
            HEAD + DETECT + "escalate:\n  message: '{% if %}'\n",
            TemplateError,
            "6: escalate.message: template syntax error: Expected an expression, "
            "got 'end of statement block'",
            id="escalate-syntax",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    register: 1bad\n",
            RunbookError,
            "5: detect[0].register: '1bad' is not a valid variable name",
            id="register-leading-digit",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    register: has-dash\n",
            RunbookError,
            "5: detect[0].register: 'has-dash' is not a valid variable name",
            id="register-dash",
        ),
        pytest.param(
            HEAD + "vars:\n  1a: x\n" + DETECT,
            RunbookError,
            "3: vars: '1a' is not a valid variable name",
            id="bad-var-name",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - package: {name: openssl, version: 1.10}\n",
            RunbookError,
            "6: remediate[0].package.version: Input should be a valid string "
            "(quote it: YAML read it as a number or boolean)",
            id="version-1.10-flow",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - package:\n      name: openssl\n      version: 1.10\n",
            RunbookError,
            "8: remediate[0].package.version: Input should be a valid string "
            "(quote it: YAML read it as a number or boolean)",
            id="version-1.10-block",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 12\n",
            RunbookError,
            "4: detect[0].run: Input should be a valid string "
            "(quote it: YAML read it as a number or boolean)",
            id="run-number",
        ),
        pytest.param(
            "name: 1.10\nfault: software.crash\n" + DETECT,
            RunbookError,
            "1: name: Input should be a valid string "
            "(quote it: YAML read it as a number or boolean)",
            id="name-number",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: 'true'\n    timeout: soon\n",
            RunbookError,
            "5: detect[0].timeout: 'soon' is not a duration (use e.g. 500ms, 30s, 2m, 1h)",
            id="bad-duration",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - wait_for: {port: 80, url: 'http://x/'}\n",
            RunbookError,
            "6: remediate[0].wait_for: wait_for needs exactly one of port, url, path",
            id="wait-for-two-targets",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - service: {name: x}\n",
            RunbookError,
            "6: remediate[0].service: missing required key 'state'",
            id="service-without-state",
        ),
        pytest.param(
            HEAD + DETECT + "remediate:\n  - run: x\n    sudo: maybe\n",
            RunbookError,
            "7: remediate[0].sudo: Input should be a valid boolean",
            id="bad-bool",
        ),
        pytest.param(
            "- just\n- a list\n",
            RunbookError,
            "1: a runbook is a mapping of keys (name, fault, detect, ...)",
            id="not-a-mapping",
        ),
        pytest.param(
            HEAD + DETECT + "name: again\n",
            YamlError,
            "5: duplicate key 'name'",
            id="duplicate-key",
        ),
        pytest.param(
            HEAD + "detect:\n  - run: !!python/object/apply:os.system [id]\n",
            YamlError,
            "4: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
            id="python-tag",
        ),
    ],
)
def test_bad_runbook_is_reported_with_file_line_and_location(
    write: Write, text: str, cls: type[InputError], expected: str
) -> None:
    error = load_error(write, text)
    assert type(error) is cls
    assert error.location_message() == f"{error.path}:{expected}"
    assert error.path == str(write("rb.yml", text))


def test_several_errors_in_one_file_are_all_reported(write: Write) -> None:
    text = (
        "name: rb\n"  # 1
        "fault: software.crash\n"  # 2
        "detect:\n"  # 3
        "  - run: 'true'\n"  # 4
        "    foo: 1\n"  # 5
        "  - rn: x\n"  # 6
        "bar: 2\n"  # 7
    )
    error = load_error(write, text)
    assert isinstance(error, InputErrors)
    path = error.errors[0].path
    unknown = "unknown key (check its spelling; see `oorfix schema`)"
    expected = [
        f"{path}:5: detect[0].foo: {unknown}",
        f"{path}:6: detect[1].rn: {unknown}",
        f"{path}:7: bar: {unknown}",
    ]
    assert [e.location_message() for e in error.errors] == expected
    assert error.location_message() == "\n".join(expected)


def test_several_static_errors_are_all_reported(write: Write) -> None:
    text = (
        HEAD  # 1-2
        + "detect:\n"  # 3
        + "  - service: {name: x, state: started}\n"  # 4
        + "  - run: echo {{ x\n"  # 5
        + "evidence:\n"  # 6
        + "  - run: 'true'\n"  # 7
        + "    when: 'a =='\n"  # 8
    )
    error = load_error(write, text)
    assert isinstance(error, InputErrors)
    path = error.errors[0].path
    assert [(type(e), e.location_message()) for e in error.errors] == [
        (RunbookError, f"{path}:4: detect[0].service: detect is read-only; move it to remediate"),
        (
            TemplateError,
            f"{path}:5: detect[1].run: template syntax error: unexpected end of template, "
            "expected 'end of print statement'.",
        ),
        (TemplateError, f"{path}:8: evidence[0].when: template syntax error: unexpected ')'"),
    ]


@pytest.mark.parametrize(
    ("text", "check"),
    [
        (HEAD + "detect:\n  - run: yes\n", lambda rb: rb.detect[0].run == "yes"),
        (
            HEAD + "detect:\n  - run: 'true'\n    expect: {rc: [0, 3]}\n",
            lambda rb: rb.detect[0].expect.accepted_rcs == (0, 3),
        ),
        (
            HEAD + DETECT + "remediate:\n  - package: {name: openssl, version: '1.10'}\n",
            lambda rb: rb.remediate[0].package.version == "1.10",
        ),
        (
            "name: rb\nfault: maintenance.disk_cleanup\n" + DETECT,
            lambda rb: rb.fault == "maintenance.disk_cleanup",
        ),
        (
            HEAD + DETECT + "evidence:\n  - wait_for: {port: 80}\n",
            lambda rb: rb.evidence[0].kind == "wait_for",
        ),
        (
            HEAD + "detect:\n  - run: 'true'\n    register: out_1\n",
            lambda rb: rb.detect[0].register_as == "out_1",
        ),
        (
            HEAD + "verify: {retries: 5, delay: 2s}\n" + DETECT,
            lambda rb: (rb.verify.retries, rb.verify.delay) == (5, 2.0),
        ),
    ],
)
def test_good_runbooks_load(write: Write, text: str, check: Callable[..., bool]) -> None:
    loaded = load_runbook(write("rb.yml", text))
    assert check(loaded.runbook)


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), ""),
        (("detect",), "detect"),
        (("detect", 0, "run"), "detect[0].run"),
        (("verify", "checks", 2, "expect", "that"), "verify.checks[2].expect.that"),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_loc(loc: tuple[str | int, ...], expected: str) -> None:
    assert format_loc(loc) == expected


# Several files: names, directories and duplicates.


def test_duplicate_runbook_names_across_files(write: Write, tmp_path: Path) -> None:
    first = write("a.yml", runbook_text("same"))
    second = write("sub/b.yaml", runbook_text("same"))
    with pytest.raises(RunbookError) as info:
        load_runbooks([first, second])
    assert (
        info.value.location_message()
        == f"{second}:1: name: runbook name 'same' is also used by {first}"
    )


def test_directory_loads_every_runbook_sorted_and_recursively(write: Write, tmp_path: Path) -> None:
    write("rb/b.yml", runbook_text("bee"))
    write("rb/a.yaml", runbook_text("ay"))
    write("rb/deep/c.yml", runbook_text("sea"))
    write("rb/notes.txt", "not a runbook")
    write("rb/README.md", "# docs")
    loaded = load_runbooks([tmp_path / "rb"])
    assert [(r.name, r.path.relative_to(tmp_path).as_posix()) for r in loaded] == [
        ("ay", "rb/a.yaml"),
        ("bee", "rb/b.yml"),
        ("sea", "rb/deep/c.yml"),
    ]
    assert runbook_files(tmp_path / "rb" / "b.yml") == [tmp_path / "rb" / "b.yml"]


def test_errors_in_several_files_are_all_reported(write: Write, tmp_path: Path) -> None:
    write("rb/a.yml", runbook_text("same"))
    write("rb/bad.yml", HEAD)
    write("rb/dup.yml", "a: 1\na: 2\n")
    write("rb/sub/b.yml", runbook_text("same"))
    with pytest.raises(InputErrors) as info:
        load_runbooks([tmp_path / "rb"])
    d = tmp_path / "rb"
    assert [e.location_message() for e in info.value.errors] == [
        f"{d}/bad.yml:1: missing required key 'detect'",
        f"{d}/dup.yml:2: duplicate key 'a'",
        f"{d}/sub/b.yml:1: name: runbook name 'same' is also used by {d}/a.yml",
    ]


@pytest.mark.parametrize(
    ("target", "expected_file"),
    [
        ("payment-api-down", "down.yml"),  # the declared name
        ("down", "down.yml"),  # the file name without suffix
        ("crashed", "crashed.yaml"),
        ("api-crashed", "crashed.yaml"),
    ],
)
def test_runbook_found_by_name_in_search_dir(
    write: Write, tmp_path: Path, target: str, expected_file: str
) -> None:
    write("books/down.yml", runbook_text("payment-api-down", "software.service_interruption"))
    write("books/nested/crashed.yaml", runbook_text("api-crashed"))
    write("books/broken.yml", "a: [\n")  # an unreadable file does not stop the search
    (loaded,) = load_runbooks([target], search_dir=tmp_path / "books")
    assert loaded.path.name == expected_file


@pytest.mark.parametrize(
    ("target", "search", "expected"),
    [
        ("missing", True, "missing: no runbook file or runbook named 'missing'"),
        ("missing", False, "missing: no runbook file or runbook named 'missing'"),
        ("sub/down", True, "sub/down: no runbook file or runbook named 'sub/down'"),
    ],
)
def test_unknown_runbook_name(
    write: Write, tmp_path: Path, target: str, search: bool, expected: str
) -> None:
    write("books/down.yml", runbook_text("payment-api-down"))
    with pytest.raises(RunbookError) as info:
        load_runbooks([target], search_dir=tmp_path / "books" if search else None)
    assert info.value.location_message() == expected


def test_the_same_file_twice_is_loaded_once(write: Write, tmp_path: Path) -> None:
    path = write("books/a.yml", runbook_text("ay"))
    loaded = load_runbooks([path, tmp_path / "books", "ay"], search_dir=tmp_path / "books")
    assert [r.path for r in loaded] == [path]


def test_shipped_runbooks_cover_every_fault_id() -> None:
    from oorfix.catalog import FAULT_IDS

    loaded = load_runbooks([RUNBOOKS])
    faults = {r.runbook.fault for r in loaded}
    assert faults >= FAULT_IDS
    assert {f for f in faults if f.startswith("maintenance.")} == {
        "maintenance.hardware_sweep",
        "maintenance.software_update",
        "maintenance.network_path",
        "maintenance.log_review",
        "maintenance.standby_readiness",
    }
    assert len({r.name for r in loaded}) == len(loaded)


# Planning: rendering every step for every host before any host is contacted.

PLAN_INVENTORY = """
all:
  vars: {level: all}
  children:
    payment_api:
      vars: {svc: from-group, level: group}
      hosts:
        api-1: {address: 127.0.0.2, svc: from-host}
        api-2: {address: 127.0.0.3}
    lb:
      hosts:
        lb-1: {address: 127.0.0.4}
"""


@pytest.fixture
def layered(write: Write) -> Inventory:
    """An inventory with group and host variables."""
    return load_inventory(write("layered.yml", PLAN_INVENTORY))


def commands(
    loaded: LoadedRunbook, inventory: Inventory, extra: dict[str, str] | None = None
) -> dict[str, list[str]]:
    plan = plan_run([loaded], inventory, extra or {})
    return {p.job.host.name: [s.command.text for s in p.steps] for p in plan}


def plan_error(
    loaded: LoadedRunbook, inventory: Inventory, extra: dict[str, str] | None = None
) -> str:
    with pytest.raises(InputError) as info:
        plan_run([loaded], inventory, extra or {})
    return info.value.location_message()


def test_undefined_variable_names_file_line_and_host(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory
) -> None:
    loaded = runbook(
        HEAD + "hosts: payment_api\ndetect:\n  - run: 'true'\n  - run: echo {{ nope }}\n"
    )
    assert (
        plan_error(loaded, inventory)
        == f"{loaded.path}:6: detect[1].run: undefined variable nope (host api-1)"
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("  - run: 'true'\n    when: nope == 1\n", "5: detect[0].when: undefined variable nope"),
        (
            "  - run: 'true'\n    expect: {that: 'result.rc == limit'}\n",
            "5: detect[0].expect.that: undefined variable limit",
        ),
        (
            "  - wait_for: {port: '{{ app_port }}'}\n",
            "4: detect[0].wait_for.port: undefined variable app_port",
        ),
        ("  - run: 'true'\n    on: '{{ peer }}'\n", "5: detect[0].on: undefined variable peer"),
        (
            "  - name: '{{ a }} {{ b }}'\n    run: 'true'\n",
            "4: detect[0].name: undefined variable a, b",
        ),
    ],
)
def test_undefined_variable_anywhere_in_a_step(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory, step: str, expected: str
) -> None:
    loaded = runbook(HEAD + "hosts: payment_api\ndetect:\n" + step)
    # a `hosts:` line shifts every line below it by one
    line, rest = expected.split(":", 1)
    assert plan_error(loaded, inventory) == f"{loaded.path}:{int(line) + 1}:{rest} (host api-1)"


@pytest.mark.parametrize(
    ("rb_vars", "extra", "expected"),
    [
        pytest.param(
            "{}",
            {},
            {"api-1": "echo from-host group", "api-2": "echo from-group group"},
            id="inventory-only",
        ),
        pytest.param(
            "{svc: from-runbook, level: runbook}",
            {},
            {"api-1": "echo from-host group", "api-2": "echo from-group group"},
            id="inventory-beats-runbook",
        ),
        pytest.param(
            "{svc: from-runbook, level: runbook}",
            {"svc": "from-extra"},
            {"api-1": "echo from-extra group", "api-2": "echo from-extra group"},
            id="extra-beats-all",
        ),
        pytest.param(
            "{svc: from-runbook, level: runbook}",
            {"svc": "x; touch /tmp/pwned"},
            {
                "api-1": "echo 'x; touch /tmp/pwned' group",
                "api-2": "echo 'x; touch /tmp/pwned' group",
            },
            id="extra-is-quoted",
        ),
    ],
)
def test_variable_precedence(
    runbook: Callable[[str], LoadedRunbook],
    layered: Inventory,
    rb_vars: str,
    extra: dict[str, str],
    expected: dict[str, str],
) -> None:
    step = "  - run: echo {{ svc }} {{ level }}\n"
    loaded = runbook(HEAD + f"hosts: payment_api\nvars: {rb_vars}\ndetect:\n" + step)
    assert commands(loaded, layered, extra) == {h: [c] for h, c in expected.items()}


def test_runbook_vars_fill_hosts_without_inventory_values(
    runbook: Callable[[str], LoadedRunbook], layered: Inventory
) -> None:
    loaded = runbook(
        HEAD + "hosts: all\nvars: {svc: from-runbook}\ndetect:\n  - run: echo {{ svc }}\n"
    )
    assert commands(loaded, layered) == {
        "api-1": ["echo from-host"],
        "api-2": ["echo from-group"],
        "lb-1": ["echo from-runbook"],
    }


HEALTH = HEAD + (
    "hosts: api-1\n"
    "vars:\n"
    "  port: 8080\n"
    "  health_url: 'http://127.0.0.1:{{ port }}/health'\n"
    "detect:\n"
    "  - run: curl -fsS {{ health_url }}\n"
    "remediate:\n"
    "  - wait_for: {url: '{{ health_url }}', timeout: 20s}\n"
)


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({}, "http://127.0.0.1:8080/health"),
        ({"port": "9090"}, "http://127.0.0.1:9090/health"),
        ({"health_url": "http://10.0.0.1/h"}, "http://10.0.0.1/h"),
    ],
)
def test_runbook_var_templates_render_against_overrides(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory, extra: dict[str, str], url: str
) -> None:
    (plan,) = plan_run([runbook(HEALTH)], inventory, extra)
    assert [s.command.text for s in plan.steps] == [
        f"curl -fsS {url}",
        "end=$(( $(date +%s) + 20 )); until curl -fsS -m 5 -o /dev/null -- "
        f"{url}; do [ $(date +%s) -ge $end ] && exit 1; sleep 1; done",
    ]
    assert plan.job.context["health_url"] == url


def test_undefined_name_in_a_runbook_var(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory
) -> None:
    loaded = runbook(HEAD + "hosts: api-2\nvars:\n  u: '{{ missing }}/x'\n" + DETECT)
    assert (
        plan_error(loaded, inventory)
        == f"{loaded.path}:5: vars.u: undefined variable: 'missing' is undefined (host api-2)"
    )


def test_chained_runbook_vars_render_fully(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory
) -> None:
    loaded = runbook(
        HEAD + "hosts: api-1\n"
        "vars:\n  url: 'http://{{ addr }}/'\n  addr: '{{ ip }}:80'\n  ip: 10.0.0.1\n"
        "detect:\n  - run: curl {{ url }}\n"
    )
    assert commands(loaded, inventory) == {"api-1": ["curl http://10.0.0.1:80/"]}


def test_long_unnamed_templated_command_plans(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory
) -> None:
    command = "echo {{ inventory_hostname }} {{ inventory_hostname }} {{ inventory_hostname }}"
    loaded = runbook(HEAD + f"hosts: api-1\ndetect:\n  - run: {command}\n")
    assert commands(loaded, inventory) == {"api-1": ["echo api-1 api-1 api-1"]}


@pytest.mark.parametrize(
    ("pattern", "targets"),
    [("lb", ["lb-1"]), ("payment_api", ["api-1", "api-2"]), ("api-*:!api-1", ["api-2"])],
)
def test_on_pattern_selects_target_hosts(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory, pattern: str, targets: list[str]
) -> None:
    loaded = runbook(HEAD + f"hosts: api-1\ndetect:\n  - run: 'true'\n    on: '{pattern}'\n")
    (plan,) = plan_run([loaded], inventory, {})
    assert [h.name for h in plan.steps[0].targets] == targets


@pytest.mark.parametrize("pattern", ["nosuch", "lb:&payment_api"])
def test_on_pattern_matching_nothing_is_an_error(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory, pattern: str
) -> None:
    loaded = runbook(HEAD + f"hosts: api-1\ndetect:\n  - run: 'true'\n    on: '{pattern}'\n")
    assert plan_error(loaded, inventory) == (
        f"{loaded.path}:5: detect[0]: on: pattern {pattern!r} matches no inventory host "
        "(host api-1)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-rf", "service name '-rf' must not be empty or start with '-'"),
        ("x; id", "service name 'x; id' has characters not allowed here"),
    ],
)
def test_unsafe_action_value_from_a_variable_is_a_plan_error(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory, value: str, expected: str
) -> None:
    loaded = runbook(
        HEAD + "hosts: payment_api\n" + DETECT + "remediate:\n"
        "  - service: {name: '{{ svc }}', state: restarted}\n"
    )
    assert (
        plan_error(loaded, inventory, {"svc": value})
        == f"{loaded.path}:7: remediate[0].service: {expected} (host api-1)"
    )


def test_registered_values_are_deferred_in_the_plan(
    runbook: Callable[[str], LoadedRunbook], inventory: Inventory
) -> None:
    loaded = runbook(
        HEAD + "hosts: api-1\ndetect:\n  - run: 'true'\n    register: out\n"
        "  - run: echo {{ out.stdout }}\n"
    )
    assert commands(loaded, inventory) == {"api-1": ["true", "echo '<out.stdout at run time>'"]}


def test_plan_of_shipped_runbooks(inventory: Inventory) -> None:
    payment = [RUNBOOKS / "payment-api-crashed.yml", RUNBOOKS / "payment-api-down.yml"]
    plans = plan_run(load_runbooks(payment), inventory, {"service": "pg-api"}, limit="api-2")
    assert {(p.job.runbook_name, p.job.host.name) for p in plans} == {
        ("payment-api-crashed", "api-2"),
        ("payment-api-down", "api-2"),
    }
    down = next(p for p in plans if p.job.runbook_name == "payment-api-down")
    assert down.steps[0].command.text == "curl -fsS -m 3 http://127.0.0.1:8080/health"
