"""The seam between the scheduler and a container backend.

The scheduler builds an `AttemptSpec`, calls `Executor.start`, and hears back
through its `ExecutorListener`. A backend (Docker today, Swarm services later)
implements `Executor`; nothing above this module knows which one runs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Protocol

from executor.container_options import ContainerOptions

# Names of environment variables that hold secrets (GNOMON_TASK_TOKEN among them): their
# values must never reach a log, so every text made from an environment redacts them.
SECRET_NAME = re.compile("TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)
REDACTED = "<redacted>"


def redact_environment(
    environment: Mapping[str, str], secret_names: frozenset[str] = frozenset()
) -> dict[str, str]:
    """`environment` with the value of each secret variable, or one whose name looks secret,
    redacted."""
    return {
        name: REDACTED if name in secret_names or SECRET_NAME.search(name) else value
        for name, value in environment.items()
    }


def check_backend_settings(
    instance: str, positive: Mapping[str, float], kill_grace_seconds: float
) -> None:
    """ValueError unless `instance` can be a label, each of `positive` is above 0 and the
    kill grace is not negative: the checks every backend's settings need."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", instance):
        raise ValueError(f"instance {instance!r} must be letters, digits, '_', '.' or '-'")
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"{name} must be greater than 0, not {value}")
    if kill_grace_seconds < 0:
        raise ValueError(f"kill_grace_seconds must not be negative: {kill_grace_seconds}")


class EngineUnavailable(Exception):
    """The container engine cannot be reached; the attempt should wait and be retried."""


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a backend needs to run one attempt of one task."""

    task_id: str
    process_id: str
    definition_name: str
    task_name: str
    attempt: int
    image: str
    tag: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mib: int | None = None
    cpu_units: int | None = None
    log_paths: tuple[str, ...] = ()
    max_runtime_seconds: int | None = None
    options: ContainerOptions = field(default_factory=ContainerOptions)
    placement: tuple[str, ...] = ()  # cluster constraints (`node.labels.disk==ssd`); Swarm only
    pull_policy: str | None = None  # always | if_not_present | never; None: by tag (pull_policy)
    secret_names: frozenset[str] = frozenset()  # variables whose values are secret whatever
    # their names

    def __repr__(self) -> str:
        """Every field, secret values of `environment` redacted: specs end up in logs."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["environment"] = redact_environment(self.environment, self.secret_names)
        return f"AttemptSpec({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def image_ref(self) -> str:
        """The image reference as the engine knows it (`image:tag`)."""
        return f"{self.image}:{self.tag}"


@dataclass(frozen=True)
class LogLine:
    """One line of output of an attempt; `source` is stdout, stderr, a log path or gnomon."""

    when: datetime
    source: str
    message: str


class Ending(enum.StrEnum):
    """How an attempt's container came to an end."""

    EXITED = "exited"
    KILLED = "killed"
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"
    IMAGE_NOT_FOUND = "image_not_found"
    START_FAILED = "start_failed"
    LOST = "lost"


@dataclass(frozen=True)
class Outcome:
    """What happened to an attempt. `reason` is None only for a clean exit 0."""

    task_id: str
    ending: Ending
    exit_code: int | None
    ended_at: datetime
    started_at: datetime | None = None
    oom_killed: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class InFlight:
    """An attempt the database believes is starting or running, handed over after a restart.

    `logs_until` is the time of the newest output line already stored, so that
    re-attached log streams do not store a line twice. `instance` is the
    instance that started it (None: this one); its container is found whichever.
    """

    spec: AttemptSpec
    logs_until: datetime | None = None
    instance: str | None = None


@dataclass(frozen=True)
class Health:
    """Whether the backend can run containers now, and why not."""

    ok: bool
    detail: str


class ExecutorListener(Protocol):
    """What a backend reports to. Calls come from backend threads; they must be quick.

    A call that raises is made again (after 0.5 s, doubling up to 10 s) until it
    returns or the backend closes, so it must raise only when it stored nothing.
    """

    def attempt_started(
        self, task_id: str, started_at: datetime, container_id: str, node: str | None = None
    ) -> None:
        """The attempt's container is running (on `node`, for a backend with several)."""

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """A batch of output lines, in order per source."""

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """The engine was unavailable, so the attempt did not start; offer it again later."""

    def attempt_finished(self, outcome: Outcome) -> None:
        """The attempt is over; called exactly once per attempt that was not sent back waiting."""


class Executor(Protocol):
    """A container backend."""

    def open(self, listener: ExecutorListener) -> None:
        """Start background machinery (event stream, reconciliation) reporting to `listener`."""

    def start(self, spec: AttemptSpec) -> None:
        """Begin running `spec`, returning at once; EngineUnavailable if the engine is down."""

    def kill(self, task_id: str, reason: str) -> None:
        """Stop the container (SIGTERM, grace, SIGKILL); `reason` goes into its Outcome."""

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Re-attach running containers, finalise exited ones, report lost ones.

        Called after a restart, and again later with attempts adopted from other
        instances; attempts already tracked are skipped. A container is found by
        its task id whichever instance started it. While the engine is down this
        returns at once and recovery runs when the engine answers. Containers of
        this instance that match no in-flight attempt are removed (at the first call).
        """

    def health(self) -> Health:
        """Whether containers can be run now."""

    def close(self) -> None:
        """Stop background machinery; leave containers running for the next start."""
