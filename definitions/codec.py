"""Entry points: parse and validate wire JSON, dump it back, and store canonical copies."""

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from marshmallow import ValidationError

from .dag import check_graph
from .errors import ROOT, DefinitionError
from .model import (
    ContinuousSchedule,
    CronSchedule,
    DockerImageCommand,
    EmailNotification,
    EnvironmentVariable,
    Mount,
    Notification,
    PagerdutyNotification,
    Parameter,
    ProcessDefinition,
    Schedule,
    TaskDefinition,
    TaskDependency,
    WebhookNotification,
)
from .run_inputs import check_variable_names
from .schemas import ProcessDefinitionSchema

# Schemas are stateless once built; building one per request would dominate a PUT.
_SCHEMA = ProcessDefinitionSchema()


def parse_definition(data: object, *, url_name: str | None = None) -> ProcessDefinition:
    """Validate wire JSON (already decoded) into a ProcessDefinition, or raise DefinitionError."""
    if not isinstance(data, Mapping):
        raise DefinitionError.at(ROOT, "a process definition must be a JSON object")
    try:
        definition: ProcessDefinition = _SCHEMA.load(data)
    except ValidationError as error:
        raise DefinitionError.from_messages(error.messages) from None
    check_graph(definition)
    check_variable_names(definition)
    if url_name is not None and definition.process_definition_name != url_name:
        raise DefinitionError.at(
            "process_definition_name",
            f"{definition.process_definition_name!r} does not match the name in the URL "
            f"{url_name!r}",
        )
    return definition


def dump_definition(definition: ProcessDefinition) -> dict[str, Any]:
    """Canonical wire JSON of a definition: defaults filled in, absent values left out."""
    return _SCHEMA.dump(definition)


def definition_to_json(definition: ProcessDefinition) -> str:
    """Canonical JSON text (sorted keys, compact) for storage and comparison."""
    return json.dumps(dump_definition(definition), sort_keys=True, separators=(",", ":"))


# Stored definitions kept parsed: enough for 10,000 definitions and their runs' copies (a
# smaller LRU cache than a listing would miss on every row of it).
CACHED_DEFINITIONS = 16_384


@lru_cache(maxsize=CACHED_DEFINITIONS)
def wire_from_json(text: str) -> dict[str, Any]:
    """The canonical wire JSON of a stored definition (shared: do not modify it)."""
    return dump_definition(definition_from_json(text))


@lru_cache(maxsize=CACHED_DEFINITIONS)
def definition_from_json(text: str) -> ProcessDefinition:
    """Rebuild a stored definition; the text was validated when stored, so it is trusted.

    Definitions are immutable, so each distinct text is parsed once (the scheduler reads
    a run's copy at every step of the run).
    """
    data = json.loads(text)
    return ProcessDefinition(
        **{
            **data,
            "task_definitions": tuple(_task(task) for task in data["task_definitions"]),
            "schedule": _schedule(data.get("schedule")),
            "notifications": tuple(_notification(n) for n in data.get("notifications", ())),
            "parameters": tuple(Parameter(**p) for p in data.get("parameters", ())),
        }
    )


def _task(data: dict[str, Any]) -> TaskDefinition:
    """Rebuild a stored task definition."""
    return TaskDefinition(
        **{
            **data,
            "executable": _executable(data["executable"]["docker_image_command"]),
            "dependencies": tuple(TaskDependency(**dep) for dep in data.get("dependencies", ())),
        }
    )


def _executable(data: dict[str, Any]) -> DockerImageCommand:
    """Rebuild a stored docker_image_command."""
    fields = {key: value for key, value in data.items() if key != "taskRoleArn"}
    variables = data.get("environment_variables", ())
    return DockerImageCommand(
        **{
            **fields,
            "command": tuple(data["command"]),
            "task_role_arn": data.get("taskRoleArn"),
            "log_paths": tuple(data.get("log_paths", ())),
            "environment_variables": tuple(EnvironmentVariable(**v) for v in variables),
            "mounts": tuple(Mount(**m) for m in data.get("mounts", ())),
            "entrypoint": _optional_tuple(data.get("entrypoint")),
            "cap_drop": tuple(data.get("cap_drop", ())),
        }
    )


def _optional_tuple(items: list[str] | None) -> tuple[str, ...] | None:
    """A stored optional list as a tuple; None stays None."""
    return None if items is None else tuple(items)


def _schedule(data: dict[str, Any] | None) -> Schedule | None:
    """Rebuild a stored schedule union."""
    if data is None:
        return None
    if "cron_schedule" in data:
        return CronSchedule(**data["cron_schedule"])
    return ContinuousSchedule(**data["continuous_schedule"])


_NOTIFICATIONS: dict[str, type] = {
    "email": EmailNotification,
    "pagerduty": PagerdutyNotification,
    "webhook": WebhookNotification,
}


def _notification(data: dict[str, Any]) -> Notification:
    """Rebuild a stored notification union."""
    ((kind, fields),) = data.items()
    return _NOTIFICATIONS[kind](**fields)
