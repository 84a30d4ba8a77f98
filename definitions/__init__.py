"""Process and task definitions: schemas, validation, the task DAG, schedule maths.

Rule: pure. No Flask, no Docker, no database, no clock of its own: every
function that needs the time takes it as an argument.
"""

from .codec import (
    definition_from_json,
    definition_to_json,
    dump_definition,
    parse_definition,
    wire_from_json,
)
from .dag import downstream, topological_order, upstream
from .errors import DefinitionError
from .model import (
    ContinuousSchedule,
    CronSchedule,
    DockerImageCommand,
    EmailNotification,
    EnvironmentVariable,
    MisfirePolicy,
    Mount,
    MountType,
    Notification,
    NotifyWhen,
    OverlapAction,
    PagerdutyNotification,
    Parameter,
    ProcessDefinition,
    PullPolicy,
    Schedule,
    TaskDefinition,
    TaskDependency,
    WebhookNotification,
)
from .notify import action_for, history_needed, mask_notification_secrets, should_notify
from .schedule import continuous_next, missed_fire_times, next_fire_time, retry_delay
from .secrets import SECRET_MASK, has_secret_values, map_secret_values, mask_secret_values

__all__ = [
    "SECRET_MASK",
    "ContinuousSchedule",
    "CronSchedule",
    "DefinitionError",
    "DockerImageCommand",
    "EmailNotification",
    "EnvironmentVariable",
    "MisfirePolicy",
    "Mount",
    "MountType",
    "Notification",
    "NotifyWhen",
    "OverlapAction",
    "PagerdutyNotification",
    "Parameter",
    "ProcessDefinition",
    "PullPolicy",
    "Schedule",
    "TaskDefinition",
    "TaskDependency",
    "WebhookNotification",
    "action_for",
    "continuous_next",
    "definition_from_json",
    "definition_to_json",
    "downstream",
    "dump_definition",
    "has_secret_values",
    "history_needed",
    "map_secret_values",
    "mask_notification_secrets",
    "mask_secret_values",
    "missed_fire_times",
    "next_fire_time",
    "parse_definition",
    "retry_delay",
    "should_notify",
    "topological_order",
    "upstream",
    "wire_from_json",
]
