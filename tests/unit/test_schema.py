"""The generated runbook JSON Schema: valid itself, and it agrees with the loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from oorfix.runbook.loader import load_runbook
from oorfix.runbook.models import runbook_json_schema
from oorfix.runbook.yamlsource import load_file, load_text

RUNBOOKS = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "runbooks").rglob("*.yml")
    if not p.name.endswith(".test.yml") and p.name != "catalog.yml"
)
Write = Callable[[str, str], Path]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(runbook_json_schema())


def errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[tuple[str, str]]:
    found = validator.iter_errors(data)
    return sorted((e.json_path, e.validator) for e in found)


def data(text: str) -> Any:
    return load_text(text, Path("rb.yml")).data


def test_schema_is_valid_draft_2020_12() -> None:
    schema = runbook_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "oorfix runbook"
    assert schema["required"] == ["name", "fault", "detect"]
    json.dumps(schema)  # plain JSON, for editors


def test_schema_forbids_unknown_keys_everywhere() -> None:
    schema = runbook_json_schema()
    assert schema["additionalProperties"] is False
    closed = {name: d.get("additionalProperties") for name, d in schema["$defs"].items()}
    assert closed == dict.fromkeys(schema["$defs"], False)
    assert {"Budget", "Escalate", "Expect", "Step", "Verify", "ServiceParams"} <= set(closed)


def test_schema_names_register_by_its_key() -> None:
    step = runbook_json_schema()["$defs"]["Step"]["properties"]
    assert "register" in step
    assert "register_as" not in step


def test_shipped_runbooks_exist() -> None:
    names = {p.name for p in RUNBOOKS}
    assert {"payment-api-crashed.yml", "payment-api-down.yml", "network-latency.yml"} <= names
    assert len(RUNBOOKS) == 17  # one per catalogue fault id, and five preventive ones


@pytest.mark.parametrize("path", RUNBOOKS, ids=[p.name for p in RUNBOOKS])
def test_shipped_runbook_validates(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    load_runbook(path)  # the loader accepts it ...
    assert errors(validator, load_file(path).data) == []  # ... and so must the schema


@pytest.mark.parametrize(
    "text",
    [
        "step_timeout: 30s\ndetect:\n  - run: 'true'\n",
        "detect:\n  - run: 'true'\n    timeout: 500ms\n",
        "verify: {delay: 2m}\ndetect:\n  - run: 'true'\n",
        "detect:\n  - wait_for: {port: 80, timeout: 1h, interval: 5s}\n",
    ],
)
def test_duration_strings_validate(validator: jsonschema.Draft202012Validator, text: str) -> None:
    assert errors(validator, data("name: rb\nfault: software.crash\n" + text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "detect:\n  - run: 'true'\n",
        "step_timeout: 30\nverify: {retries: 2, delay: 1.5}\ndetect:\n  - run: 'true'\n"
        "    timeout: 10\n",
        "vars: {port: 8080, url: 'http://x:{{ port }}/'}\nsecrets: [token]\n"
        "detect:\n  - run: curl {{ url }}\n    register: out\n"
        "    expect: {rc: [0, 3], stdout: ok, stdout_not: err, stderr_not: warn, "
        "min: 1, max: 2.5, that: 'result.rc == 0'}\n",
        "detect:\n  - run: 'true'\nremediate:\n"
        "  - service: {name: pg-api, state: restarted, manager: systemd}\n"
        "  - package: {name: openssl, version: '1.10', state: present, manager: apt}\n"
        "  - route: {dest: default, via: 10.0.0.1, dev: eth0, metric: '{{ m }}'}\n"
        "  - wait_for: {port: '{{ p }}', state: stopped, timeout: 5}\n"
        "  - failover: {vip: 10.0.0.100/24, dev: eth0}\n"
        "    sudo: true\n    on: lb\n    when: 'x == 1'\n"
        "rollback:\n  - run: undo\nescalate:\n  message: help\n  steps:\n    - run: page\n",
    ],
)
def test_runbooks_the_loader_accepts_validate(
    validator: jsonschema.Draft202012Validator, write: Write, text: str
) -> None:
    text = "name: rb\nfault: software.crash\n" + text
    load_runbook(write("rb.yml", text))
    assert errors(validator, data(text)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "detect:\n  - run: 'true'\nfoo: 1\n",
            [("$", "additionalProperties")],
            id="unknown-top-level-key",
        ),
        pytest.param(
            "detect:\n  - rn: 'true'\n",
            [("$.detect[0]", "additionalProperties")],
            id="unknown-step-key",
        ),
        pytest.param(
            "detect:\n  - run: 'true'\n    expect: {rc: 0, stdot: x}\n",
            [("$.detect[0].expect", "anyOf")],
            id="unknown-expect-key",
        ),
        pytest.param(
            "detect:\n  - run: 'true'\nremediate:\n  - service: {name: x, state: started, x: 1}\n",
            [("$.remediate[0].service", "anyOf")],
            id="unknown-action-key",
        ),
        pytest.param(
            "verify: {retries: 2, backoff: 3}\ndetect:\n  - run: 'true'\n",
            [("$.verify", "additionalProperties")],
            id="unknown-verify-key",
        ),
        pytest.param("summary: x\n", [("$", "required")], id="missing-detect"),
        pytest.param("detect: []\n", [("$.detect", "minItems")], id="empty-detect"),
        pytest.param(
            "severity: low\ndetect:\n  - run: 'true'\n", [("$.severity", "enum")], id="severity"
        ),
        pytest.param(
            "detect:\n  - run: 'true'\nremediate:\n  - package: {name: x, version: 1.1}\n",
            [("$.remediate[0].package", "anyOf")],
            id="unquoted-version",
        ),
    ],
)
def test_schema_rejects(
    validator: jsonschema.Draft202012Validator, text: str, expected: list[tuple[str, str]]
) -> None:
    assert errors(validator, data("name: rb\nfault: software.crash\n" + text)) == expected
