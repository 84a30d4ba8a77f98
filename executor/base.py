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
    re-attached log streams do not store a line twice.
    """

    spec: AttemptSpec
    logs_until: datetime | None = None


@dataclass(frozen=True)
class Health:
    """Whether the backend can run containers now, and why not."""

    ok: bool
    detail: str


class ExecutorListener(Protocol):
    """What a backend reports to. Calls come from backend threads; they must be quick."""

    def attempt_started(self, task_id: str, started_at: datetime, container_id: str) -> None:
        """The attempt's container is running."""

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
        """After a restart: re-attach running containers, finalise exited ones, report lost ones.

        Containers of this instance that match no in-flight attempt are removed.
        """

    def health(self) -> Health:
        """Whether containers can be run now."""

    def close(self) -> None:
        """Stop background machinery; leave containers running for the next start."""
