"""Tests for definitions.codec: parse_definition, dump_definition and stored copies."""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from definitions import (
    DefinitionError,
    ProcessDefinition,
    TaskDependency,
    definition_from_json,
    definition_to_json,
    dump_definition,
    parse_definition,
)

from .samples import FULL, cron_wire, set_path, wire_definition, wire_task
from .strategies import json_values, paths, wire_definitions

FUZZ = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def roundtrip(data: Any) -> dict[str, Any]:
    """What a GET returns after a PUT of `data`."""
    return dump_definition(parse_definition(data))


def test_full_definition_parses_into_the_model() -> None:
    definition = parse_definition(FULL, url_name="nightly-etl")
    extract = definition.task("extract")
    assert extract.executable.task_role_arn == "arn:aws:iam::1:role/etl"
    assert extract.executable.environment_variables[0].variable_name == "STAGE"
    assert definition.task("report").dependencies == (
        TaskDependency("load", success_required=False),
        TaskDependency("extract", success_required=True),
    )
    assert definition.schedule is not None and definition.schedule.time_zone == "Europe/London"


def test_dump_of_full_definition_returns_what_was_sent() -> None:
    dumped = roundtrip(FULL)
    assert dumped["task_definitions"][0] == {**FULL["task_definitions"][0], "dependencies": []}
    assert dumped["notifications"][2] == {
        "webhook": {
            "url": "https://hooks.example.com/x",
            "notify_when": "on_state_change_and_failures",
        }
    }


def test_optional_dependency_survives_round_trip() -> None:
    """Sundial lost `success_required=false` between PUT and GET; we must not."""
    dumped = roundtrip(FULL)
    assert dumped["task_definitions"][2]["dependencies"][0] == {
        "task_definition_name": "load",
        "success_required": False,
    }
    assert roundtrip(dumped) == dumped


def test_dump_emits_defaults_and_omits_absent_values() -> None:
    dumped = roundtrip(wire_definition())
    task = dumped["task_definitions"][0]
    assert task == {
        "task_definition_name": "main",
        "executable": {
            "docker_image_command": {
                "image": "alpine",
                "tag": "latest",
                "command": ["true"],
                "log_paths": [],
                "environment_variables": [],
            }
        },
        "dependencies": [],
        "max_attempts": 1,
        "backoff_base_seconds": 0,
        "backoff_exponent": 1.0,
        "require_explicit_success": False,
    }
    assert set(dumped) == {
        "process_definition_name",
        "task_definitions",
        "overlap_action",
        "notifications",
        "misfire_policy",
        "misfire_grace_seconds",
    }


def test_stored_copy_is_canonical_and_rebuilds_the_same_definition() -> None:
    definition = parse_definition(FULL)
    text = definition_to_json(definition)
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert definition_from_json(text) == definition


@pytest.mark.parametrize(
    ("data", "url_name", "path"),
    [
        pytest.param([], None, "_schema", id="not_an_object"),
        pytest.param("job", None, "_schema", id="a_string"),
        pytest.param(wire_definition(), "other", "process_definition_name", id="url_mismatch"),
        pytest.param(
            wire_definition(wire_task("a"), wire_task("a")),
            None,
            "task_definitions.1.task_definition_name",
            id="duplicate_task",
        ),
        pytest.param(
            wire_definition(wire_task("a"), wire_task("b", "x")),
            None,
            "task_definitions.1.dependencies.0.task_definition_name",
            id="unknown_dependency",
        ),
        pytest.param(
            set_path(wire_definition(), "schedule", cron_wire(time_zone="Mars/Olympus")),
            None,
            "schedule.cron_schedule.time_zone",
            id="unknown_time_zone",
        ),
        pytest.param(
            set_path(wire_definition(), "schedule", cron_wire(day_of_month="31", month="2")),
            None,
            "schedule.cron_schedule.day_of_month",
            id="31_february",
        ),
        pytest.param(
            set_path(wire_definition(), "schedule", cron_wire(minutes="61")),
            None,
            "schedule.cron_schedule.minutes",
            id="bad_cron_field",
        ),
    ],
)
def test_invalid_definitions_name_the_bad_field(data: Any, url_name: str | None, path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data, url_name=url_name)
    assert path in caught.value.fields
    assert caught.value.message.startswith(path)


def test_quartz_question_mark_is_valid() -> None:
    data = set_path(wire_definition(), "schedule", cron_wire(day_of_month="?", day_of_week="MON"))
    assert parse_definition(data).schedule is not None


def test_url_name_matching_the_body_is_accepted() -> None:
    assert parse_definition(wire_definition(), url_name="job").process_definition_name == "job"


# --- property tests ---------------------------------------------------------------------------


@FUZZ
@given(wire_definitions())
def test_get_put_round_trip_is_stable(data: dict[str, Any]) -> None:
    once = roundtrip(data)
    assert roundtrip(once) == once
    assert definition_from_json(definition_to_json(parse_definition(data))) == parse_definition(
        once
    )


def _only_definitions_or_errors(data: Any) -> None:
    """parse_definition either returns a definition or raises DefinitionError."""
    try:
        result = parse_definition(data)
    except DefinitionError as error:
        assert error.fields and error.message
    else:
        assert isinstance(result, ProcessDefinition)


@FUZZ
@given(json_values)
def test_arbitrary_json_yields_a_definition_or_a_definition_error(data: Any) -> None:
    _only_definitions_or_errors(data)


@FUZZ
@given(wire_definitions(), st.data())
def test_corrupted_definitions_yield_a_definition_or_a_definition_error(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    path = draw.draw(st.sampled_from(paths(data)))
    _only_definitions_or_errors(set_path(data, path, draw.draw(json_values)))
