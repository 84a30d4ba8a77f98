"""Run and task statuses: their wire strings and the transitions allowed between them."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Status of a run; `queued` is internal and travels as `running`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def wire(self) -> str:
        """The status as the contract names it."""
        return RunStatus.RUNNING.value if self is RunStatus.QUEUED else self.value


class TaskStatus(enum.StrEnum):
    """Status of one attempt, as on the wire."""

    SUBMITTED = "submitted"  # created, waiting out its retry backoff
    RUNNABLE = "runnable"  # ready to start
    PENDING = "pending"  # waiting for capacity or for the container engine
    STARTING = "starting"  # its container is being created
    RUNNING = "running"
    FAILED = "failed"
    SUCCEEDED = "succeeded"


ACTIVE_RUN = (RunStatus.QUEUED, RunStatus.RUNNING)
FINAL_RUN = (RunStatus.SUCCEEDED, RunStatus.FAILED)
WAITING_TASK = (TaskStatus.SUBMITTED, TaskStatus.RUNNABLE, TaskStatus.PENDING)
LIVE_TASK = (TaskStatus.STARTING, TaskStatus.RUNNING)
FINAL_TASK = (TaskStatus.SUCCEEDED, TaskStatus.FAILED)

# Every status write to an attempt goes through `scheduler.runs.move`, which allows only
# these transitions: the table is the rule, not a description of it.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.SUBMITTED: frozenset({TaskStatus.PENDING, TaskStatus.STARTING, TaskStatus.FAILED}),
    TaskStatus.RUNNABLE: frozenset({TaskStatus.PENDING, TaskStatus.STARTING, TaskStatus.FAILED}),
    TaskStatus.PENDING: frozenset({TaskStatus.STARTING, TaskStatus.FAILED}),
    TaskStatus.STARTING: frozenset(
        {TaskStatus.RUNNING, TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.SUCCEEDED}
    ),
    TaskStatus.RUNNING: frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED}),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.SUCCEEDED: frozenset(),
}


def sources_of(target: TaskStatus) -> tuple[TaskStatus, ...]:
    """The statuses from which an attempt may move to `target`."""
    return tuple(s for s, targets in TASK_TRANSITIONS.items() if target in targets)


def wire_run_statuses(statuses: frozenset[str]) -> frozenset[str]:
    """Stored run statuses matching a set of wire statuses (`running` includes queued)."""
    if RunStatus.RUNNING in statuses:
        return statuses | {RunStatus.QUEUED.value}
    return statuses
