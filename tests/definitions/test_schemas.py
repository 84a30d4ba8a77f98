"""Tests for definitions.schemas: defaults, constraints, unions, strict types, OpenAPI."""

from typing import Any

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from definitions import DefinitionError, EmailNotification, parse_definition
from definitions.schemas import ProcessDefinitionSchema

from .samples import cron_wire, set_path, wire_definition, wire_task

TASK = "task_definitions.0"
DOCKER = f"{TASK}.executable.docker_image_command"


def error_fields(data: Any) -> dict[str, list[str]]:
    """The field errors parse_definition reports for `data`."""
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data)
    return caught.value.fields


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("process_definition_name", "has space", id="name_with_space"),
        pytest.param("process_definition_name", "job\n", id="name_with_final_newline"),
        pytest.param("process_definition_name", "-job", id="name_starting_with_dash"),
        pytest.param("process_definition_name", "a" * 129, id="name_too_long"),
        pytest.param("process_definition_name", "", id="name_empty"),
        pytest.param(f"{TASK}.task_definition_name", "a/b", id="task_name_with_slash"),
        pytest.param(f"{TASK}.max_attempts", 0, id="max_attempts_zero"),
        pytest.param(f"{TASK}.max_attempts", 1001, id="max_attempts_too_many"),
        pytest.param(f"{TASK}.max_attempts", "3", id="max_attempts_string"),
        pytest.param(f"{TASK}.max_attempts", True, id="max_attempts_bool"),
        pytest.param(f"{TASK}.max_attempts", 2.5, id="max_attempts_float"),
        pytest.param(f"{TASK}.backoff_base_seconds", -1, id="negative_backoff"),
        pytest.param(f"{TASK}.max_runtime_seconds", -5, id="negative_runtime"),
        pytest.param(f"{TASK}.max_runtime_seconds", 2**31, id="runtime_past_int32"),
        pytest.param(f"{TASK}.backoff_exponent", 0.5, id="exponent_below_one"),
        pytest.param(f"{TASK}.backoff_exponent", 10**400, id="exponent_too_large"),
        pytest.param(f"{TASK}.backoff_exponent", "2", id="exponent_string"),
        pytest.param(f"{TASK}.require_explicit_success", 1, id="bool_as_int"),
        pytest.param(f"{TASK}.require_explicit_success", "true", id="bool_as_string"),
        pytest.param(f"{DOCKER}.image", "", id="empty_image"),
        pytest.param(f"{DOCKER}.image", "x" * 513, id="image_too_long"),
        pytest.param(f"{DOCKER}.tag", "t" * 129, id="tag_too_long"),
        pytest.param(f"{DOCKER}.memory", 5, id="memory_below_6"),
        pytest.param(f"{DOCKER}.cpu", 1, id="cpu_below_2"),
        pytest.param(f"{DOCKER}.command", "echo hi", id="command_not_a_list"),
        pytest.param(f"{DOCKER}.command", ["x"] * 1001, id="too_many_command_items"),
        pytest.param(f"{DOCKER}.command", ["x" * (64 * 1024 + 1)], id="command_item_too_long"),
        pytest.param(f"{DOCKER}.command", ["a\x00b"], id="command_with_nul"),
        pytest.param(f"{DOCKER}.command", ["\ud800"], id="lone_surrogate"),
        pytest.param(
            f"{DOCKER}.environment_variables",
            [{"variable_name": "1X", "value": ""}],
            id="bad_env_name",
        ),
        pytest.param(
            f"{DOCKER}.environment_variables",
            [{"variable_name": "X", "value": "v" * (32 * 1024 + 1)}],
            id="env_value_too_long",
        ),
        pytest.param(
            f"{DOCKER}.environment_variables",
            [{"variable_name": f"V{i}", "value": ""} for i in range(201)],
            id="too_many_env_vars",
        ),
        pytest.param(
            f"{DOCKER}.environment_variables",
            [{"variable_name": "X", "value": "1"}, {"variable_name": "X", "value": "2"}],
            id="duplicate_env_var",
        ),
        pytest.param("task_definitions", [], id="no_tasks"),
        pytest.param("task_definitions", [wire_task(f"t{i}") for i in range(201)], id="too_many"),
        pytest.param("overlap_action", "queue", id="unknown_overlap_action"),
        pytest.param("misfire_policy", "later", id="unknown_misfire_policy"),
        pytest.param("misfire_grace_seconds", -1, id="negative_grace"),
        pytest.param("schedule", cron_wire(minutes=""), id="empty_cron_field"),
        pytest.param("schedule", cron_wire(hours="1" * 101), id="cron_field_too_long"),
        pytest.param("schedule", {"continuous_schedule": {"buffer_seconds": -1}}, id="neg_buffer"),
        pytest.param("notifications", [{"webhook": {"url": "ftp://x"}}], id="webhook_not_http"),
        pytest.param("notifications", [{"email": {"name": "x"}}], id="email_without_address"),
        pytest.param("unknown", 1, id="unknown_field"),
        pytest.param(f"{DOCKER}.vCpus", 2, id="batch_field_on_docker_command"),
    ],
)
def test_constraint_violations_are_reported_at_their_path(path: str, value: Any) -> None:
    fields = error_fields(set_path(wire_definition(), path, value))
    assert any(key.startswith(path.split(".")[0]) for key in fields), fields
    assert any(key == path or key.startswith(path + ".") for key in fields), fields


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(f"{DOCKER}.memory", 6, id="memory_6"),
        pytest.param(f"{DOCKER}.cpu", 2, id="cpu_2"),
        pytest.param(f"{DOCKER}.command", [], id="empty_command"),
        pytest.param(f"{TASK}.backoff_exponent", 2, id="integer_exponent"),
        pytest.param(f"{TASK}.max_attempts", 1000, id="max_attempts_1000"),
        pytest.param("process_definition_name", "a" * 128, id="name_128"),
        pytest.param("process_definition_name", "Job_1.v-2", id="name_with_punctuation"),
        pytest.param("schedule", None, id="null_schedule"),
        pytest.param(f"{TASK}.max_runtime_seconds", None, id="null_runtime"),
    ],
)
def test_values_at_the_limits_are_accepted(path: str, value: Any) -> None:
    parse_definition(set_path(wire_definition(), path, value))


@pytest.mark.parametrize(
    ("path", "attribute", "default"),
    [
        pytest.param(f"{DOCKER}.tag", "tag", "latest", id="tag"),
        pytest.param(f"{DOCKER}.log_paths", "log_paths", (), id="log_paths"),
        pytest.param(f"{DOCKER}.environment_variables", "environment_variables", (), id="env"),
    ],
)
def test_null_means_default(path: str, attribute: str, default: Any) -> None:
    definition = parse_definition(set_path(wire_definition(), path, None))
    assert getattr(definition.task_definitions[0].executable, attribute) == default


def test_null_required_field_is_refused() -> None:
    assert f"{DOCKER}.image" in error_fields(set_path(wire_definition(), f"{DOCKER}.image", None))


def test_documented_defaults_are_applied() -> None:
    definition = parse_definition(
        wire_definition(
            wire_task("a"),
            wire_task("b", "a"),
            schedule={"continuous_schedule": {}},
            notifications=[{"pagerduty": {"service_key": "k"}}, {"name": "n", "email": "e@x"}],
        )
    )
    task = definition.task("b")
    assert (task.max_attempts, task.backoff_base_seconds, task.backoff_exponent) == (1, 0, 1.0)
    assert task.require_explicit_success is False
    assert task.dependencies[0].success_required is True
    assert definition.schedule.buffer_seconds == 0
    assert definition.overlap_action == "wait"
    assert (definition.misfire_policy, definition.misfire_grace_seconds) == ("run_once", 3600)
    pagerduty, email = definition.notifications
    assert (pagerduty.num_consecutive_failures, pagerduty.api_url) == (
        1,
        "https://events.pagerduty.com",
    )
    assert email == EmailNotification("n", "e@x", "on_state_change_and_failures")


@pytest.mark.parametrize(
    ("path", "value", "error_path", "words"),
    [
        pytest.param(
            "task_definitions.0.executable",
            {"shell_script_command": {"script": "ls"}},
            "task_definitions.0.executable.shell_script_command",
            "not supported",
            id="shell_script_command",
        ),
        pytest.param(
            "task_definitions.0.executable",
            {"batch_image_command": {}},
            "task_definitions.0.executable.batch_image_command",
            "not supported",
            id="batch_image_command",
        ),
        pytest.param(
            "task_definitions.0.executable",
            {"emr_command": {}},
            "task_definitions.0.executable.emr_command",
            "not supported",
            id="emr_command",
        ),
        pytest.param(
            "schedule",
            {"rate_schedule": {}},
            "schedule.rate_schedule",
            "Unknown schedule type 'rate_schedule'",
            id="unknown_schedule_type",
        ),
        pytest.param("schedule", {}, "schedule", "exactly one", id="empty_union"),
        pytest.param(
            "schedule",
            {**cron_wire(), "continuous_schedule": {}},
            "schedule",
            "exactly one",
            id="two_union_members",
        ),
        pytest.param(
            "notifications",
            [{"slack": {}}],
            "notifications.0.slack",
            "Unknown notification type",
            id="unknown_notification",
        ),
        pytest.param(
            "task_definitions.0.executable",
            {"docker_image_command": None},
            "task_definitions.0.executable.docker_image_command",
            "null",
            id="null_member",
        ),
    ],
)
def test_union_errors_name_the_type(path: str, value: Any, error_path: str, words: str) -> None:
    fields = error_fields(set_path(wire_definition(), path, value))
    assert words in " ".join(fields[error_path])


def test_webhook_and_wrapped_email_are_accepted() -> None:
    notifications = [{"email": {"name": "n", "email": "e@x"}}, {"webhook": {"url": "http://h"}}]
    definition = parse_definition(wire_definition(notifications=notifications))
    assert [type(n).__name__ for n in definition.notifications] == [
        "EmailNotification",
        "WebhookNotification",
    ]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    """The OpenAPI components the HTTP layer would generate from these schemas."""
    spec = APISpec("gnomon", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.schema("ProcessDefinition", schema=ProcessDefinitionSchema)
    return spec.to_dict()["components"]["schemas"]


@pytest.mark.parametrize(
    ("schema", "prop", "key", "value"),
    [
        pytest.param("ProcessDefinition", "process_definition_name", "pattern", None, id="name"),
        pytest.param("ProcessDefinition", "task_definitions", "maxItems", 200, id="max_tasks"),
        pytest.param("ProcessDefinition", "overlap_action", "enum", None, id="overlap_enum"),
        pytest.param("TaskDefinition", "max_attempts", "maximum", 1000, id="max_attempts"),
        pytest.param("TaskDefinition", "backoff_exponent", "minimum", 1.0, id="exponent"),
        pytest.param("DockerImageCommand", "memory", "minimum", 6, id="memory"),
        pytest.param("DockerImageCommand", "image", "maxLength", 512, id="image"),
        pytest.param("CronSchedule", "minutes", "maxLength", 100, id="cron_field"),
    ],
)
def test_openapi_carries_constraints(
    openapi: dict[str, Any], schema: str, prop: str, key: str, value: Any
) -> None:
    prop_schema = openapi[schema]["properties"][prop]
    assert key in prop_schema
    assert value is None or prop_schema[key] == value


def test_openapi_documents_unions_as_objects_with_one_key(openapi: dict[str, Any]) -> None:
    assert set(openapi["Schedule"]["properties"]) == {"cron_schedule", "continuous_schedule"}
    schedule = openapi["ProcessDefinition"]["properties"]["schedule"]
    assert (schedule["minProperties"], schedule["maxProperties"]) == (1, 1)
    assert openapi["Executable"]["additionalProperties"] is False
