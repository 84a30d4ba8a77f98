"""Process and task definitions: schemas, validation, the task DAG, schedule maths.

Rule: pure. No Flask, no Docker, no database, no clock of its own: every
function that needs the time takes it as an argument.
"""

from .codec import definition_from_json, definition_to_json, dump_definition, parse_definition
from .dag import downstream, topological_order, upstream
from .errors import DefinitionError
from .model import (
    ContinuousSchedule,
    CronSchedule,
    DockerImageCommand,
    EmailNotification,
    EnvironmentVariable,
    MisfirePolicy,
    Notification,
    NotifyWhen,
    OverlapAction,
    PagerdutyNotification,
    ProcessDefinition,
    PullPolicy,
    Schedule,
    TaskDefinition,
    TaskDependency,
    WebhookNotification,
)
from .schedule import continuous_next, missed_fire_times, next_fire_time, retry_delay
from .secrets import SECRET_MASK, map_secret_values, mask_secrets

__all__ = [
    "SECRET_MASK",
    "ContinuousSchedule",
    "CronSchedule",
    "DefinitionError",
    "DockerImageCommand",
    "EmailNotification",
    "EnvironmentVariable",
    "MisfirePolicy",
    "Notification",
    "NotifyWhen",
    "OverlapAction",
    "PagerdutyNotification",
    "ProcessDefinition",
    "PullPolicy",
    "Schedule",
    "TaskDefinition",
    "TaskDependency",
    "WebhookNotification",
    "continuous_next",
    "definition_from_json",
    "definition_to_json",
    "downstream",
    "dump_definition",
    "map_secret_values",
    "mask_secrets",
    "missed_fire_times",
    "next_fire_time",
    "parse_definition",
    "retry_delay",
    "topological_order",
    "upstream",
]
