"""Wire models of a process definition as frozen dataclasses, field names as on the wire."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class OverlapAction(StrEnum):
    """What to do when a run is due while the previous one is still running."""

    WAIT = "wait"
    TERMINATE = "terminate"
    SKIP = "skip"
    ALLOW = "allow"


class MisfirePolicy(StrEnum):
    """What to do with fire times missed while the service was down."""

    RUN_ONCE = "run_once"
    SKIP = "skip"
    RUN_ALL = "run_all"


class PullPolicy(StrEnum):
    """When the image of a task is pulled before its container is created."""

    ALWAYS = "always"  # at most once per pull interval per image
    IF_NOT_PRESENT = "if_not_present"
    NEVER = "never"


class NotifyWhen(StrEnum):
    """When a notification is sent, Sundial's `notification_options`."""

    ALWAYS = "always"
    ON_FAILURE = "on_failure"
    ON_STATE_CHANGE = "on_state_change"
    ON_STATE_CHANGE_AND_FAILURES = "on_state_change_and_failures"
    NEVER = "never"


@dataclass(frozen=True)
class EnvironmentVariable:
    """One environment variable given to a task container."""

    variable_name: str
    value: str | None = field(default=None, repr=False)  # None when taken from value_from_env
    secret: bool = False  # write-only: stored encrypted, shown masked
    value_from_env: str | None = None  # the service's own variable that gives the value


class MountType(StrEnum):
    """What a mount's `source` names: a Docker named volume or a host path."""

    VOLUME = "volume"
    BIND = "bind"


@dataclass(frozen=True)
class Mount:
    """A named volume or host directory mounted into a task container (read-only by default)."""

    type: str
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class DockerImageCommand:
    """A Docker image and the command to run in it."""

    image: str
    command: tuple[str, ...]
    tag: str = "latest"
    memory: int | None = None
    cpu: int | None = None
    task_role_arn: str | None = None  # wire name `taskRoleArn`; unused, kept for round trips
    log_paths: tuple[str, ...] = ()
    environment_variables: tuple[EnvironmentVariable, ...] = ()
    # Container options (Gnomon's additions): see docs/api.md, "Container options".
    mounts: tuple[Mount, ...] = ()
    user: str | None = None
    working_dir: str | None = None
    entrypoint: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None
    shm_size: int | None = None  # MiB, like `memory`
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()
    pull_policy: str | None = None  # None: `always` for tag latest, else `if_not_present`


@dataclass(frozen=True)
class Parameter:
    """A run parameter: given at trigger time, else its default; `GNOMON_PARAM_<NAME>`."""

    name: str
    default: str = ""
    required: bool = False
    description: str | None = None


@dataclass(frozen=True)
class TaskDependency:
    """An edge of the task graph: this task waits for `task_definition_name`."""

    task_definition_name: str
    success_required: bool = True


@dataclass(frozen=True)
class TaskDefinition:
    """One task of a process: what to run and how to retry it."""

    task_definition_name: str
    executable: DockerImageCommand
    dependencies: tuple[TaskDependency, ...] = ()
    max_attempts: int = 1
    max_runtime_seconds: int | None = None
    backoff_base_seconds: int = 0
    backoff_exponent: float = 1.0
    require_explicit_success: bool = False
    # Cluster constraints, honoured by the Swarm executor; None (not stored) when absent.
    placement: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CronSchedule:
    """A Quartz-style cron schedule evaluated in `time_zone`."""

    minutes: str
    hours: str
    day_of_month: str
    month: str
    day_of_week: str
    time_zone: str = "UTC"


@dataclass(frozen=True)
class ContinuousSchedule:
    """Run again `buffer_seconds` after the previous run ends."""

    buffer_seconds: int = 0


@dataclass(frozen=True)
class EmailNotification:
    """Send email about finished runs."""

    name: str
    email: str
    notify_when: str = NotifyWhen.ON_STATE_CHANGE_AND_FAILURES.value


@dataclass(frozen=True)
class PagerdutyNotification:
    """Page after a number of consecutive failed runs."""

    service_key: str = field(repr=False)  # the routing key: a secret
    num_consecutive_failures: int = 1
    api_url: str = "https://events.pagerduty.com"


@dataclass(frozen=True)
class WebhookNotification:
    """POST run outcomes to a URL."""

    url: str
    notify_when: str = NotifyWhen.ON_STATE_CHANGE_AND_FAILURES.value
    secret: str | None = field(default=None, repr=False)  # whsec_<base64>: signs deliveries


Schedule = CronSchedule | ContinuousSchedule
Notification = EmailNotification | PagerdutyNotification | WebhookNotification


@dataclass(frozen=True)
class ProcessDefinition:
    """A DAG of tasks run as one unit on one schedule."""

    process_definition_name: str
    task_definitions: tuple[TaskDefinition, ...]
    schedule: Schedule | None = None
    paused: bool | None = None
    process_description: str | None = None
    overlap_action: str = OverlapAction.WAIT.value
    notifications: tuple[Notification, ...] = ()
    misfire_policy: str = MisfirePolicy.RUN_ONCE.value
    misfire_grace_seconds: int = 3600
    max_catch_up_runs: int | None = None
    parameters: tuple[Parameter, ...] = ()
    retention_days: int | None = None  # None: the service's RETENTION_DAYS; 0 keeps runs forever

    def task(self, name: str) -> TaskDefinition:
        """Return the task called `name`; KeyError if there is none."""
        for task in self.task_definitions:
            if task.task_definition_name == name:
                return task
        raise KeyError(name)
