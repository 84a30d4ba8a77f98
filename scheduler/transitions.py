"""The rules that turn facts into decisions: pure functions, no database, no clock.

The engine gathers facts (a run's definition, its attempts, reports, outcomes),
asks these functions what follows, and writes the answer in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from definitions import (
    CronSchedule,
    ProcessDefinition,
    TaskDefinition,
    missed_fire_times,
    next_fire_time,
    retry_delay,
)
from executor import Ending, Outcome
from scheduler.states import FINAL_TASK, RunStatus, TaskStatus


@dataclass(frozen=True)
class AttemptState:
    """What the engine needs to know of one stored attempt."""

    task_name: str
    attempt: int
    status: TaskStatus
    ended_at: datetime | None = None


@dataclass(frozen=True)
class NewAttempt:
    """An attempt the run should create now; `not_before` is its backoff."""

    task_name: str
    attempt: int
    not_before: datetime | None = None


@dataclass(frozen=True)
class RunPlan:
    """What a run should do next: attempts to create, and its end if it has come."""

    create: tuple[NewAttempt, ...] = ()
    outcome: RunStatus | None = None
    reason: str | None = None


def task_scope(definition: ProcessDefinition, only_task: str | None) -> tuple[TaskDefinition, ...]:
    """The tasks a run runs: all of them, or the single one it was triggered for."""
    if only_task is None:
        return definition.task_definitions
    return tuple(t for t in definition.task_definitions if t.task_definition_name == only_task)


def plan_run(
    definition: ProcessDefinition,
    only_task: str | None,
    attempts: Sequence[AttemptState],
    killed: bool = False,
) -> RunPlan:
    """Decide which attempts a run creates next and whether it has ended."""
    latest = _latest_attempts(attempts)
    scope = {t.task_definition_name: t for t in task_scope(definition, only_task)}
    create: list[NewAttempt] = []
    for task in () if killed else scope.values():
        step = _next_attempt(task, latest, scope)
        if step is not None:
            create.append(step)
    if create or any(a.status not in FINAL_TASK for a in latest.values()):
        return RunPlan(create=tuple(create))
    return _ending(tuple(scope.values()), latest, killed)


def _latest_attempts(attempts: Sequence[AttemptState]) -> dict[str, AttemptState]:
    """The newest attempt of each task."""
    latest: dict[str, AttemptState] = {}
    for a in attempts:
        if a.task_name not in latest or a.attempt > latest[a.task_name].attempt:
            latest[a.task_name] = a
    return latest


def finally_failed(task: TaskDefinition, latest: AttemptState | None) -> bool:
    """Whether the task has failed and has no attempt left."""
    return (
        latest is not None
        and latest.status == TaskStatus.FAILED
        and latest.attempt >= task.max_attempts
    )


def _next_attempt(
    task: TaskDefinition,
    latest: Mapping[str, AttemptState],
    scope: Mapping[str, TaskDefinition],
) -> NewAttempt | None:
    """The attempt `task` should get now, if any."""
    mine = latest.get(task.task_definition_name)
    if mine is None:
        if _dependencies_met(task, latest, scope):
            return NewAttempt(task.task_definition_name, 1)
        return None
    if mine.status == TaskStatus.FAILED and mine.attempt < task.max_attempts:
        delay = retry_delay(task, mine.attempt)
        start = mine.ended_at + delay if mine.ended_at and delay else None
        return NewAttempt(task.task_definition_name, mine.attempt + 1, start)
    return None


def _dependencies_met(
    task: TaskDefinition,
    latest: Mapping[str, AttemptState],
    scope: Mapping[str, TaskDefinition],
) -> bool:
    """Whether every upstream in scope lets `task` start.

    A required upstream must have succeeded; an optional one must have finished,
    however it ended, after its last attempt.
    """
    for dep in task.dependencies:
        upstream = scope.get(dep.task_definition_name)
        if upstream is None:
            continue
        state = latest.get(dep.task_definition_name)
        if state is not None and state.status == TaskStatus.SUCCEEDED:
            continue
        if dep.success_required or not finally_failed(upstream, state):
            return False
    return True


def _ending(
    scope: Sequence[TaskDefinition], latest: Mapping[str, AttemptState], killed: bool
) -> RunPlan:
    """The end of a run whose attempts are all final and which creates nothing more."""
    if killed:
        return RunPlan(outcome=RunStatus.FAILED, reason="killed")
    names = [t.task_definition_name for t in scope]
    failed = [n for n, t in zip(names, scope, strict=True) if finally_failed(t, latest.get(n))]
    if failed:
        return RunPlan(outcome=RunStatus.FAILED, reason="failed tasks: " + ", ".join(failed))
    never_ran = [n for n in names if n not in latest]
    if never_ran:
        return RunPlan(outcome=RunStatus.FAILED, reason="tasks never ran: " + ", ".join(never_ran))
    return RunPlan(outcome=RunStatus.SUCCEEDED)


def decide_attempt(
    outcome: Outcome, report: str | None, require_explicit_success: bool
) -> tuple[TaskStatus, str | None]:
    """The final status and reason of an attempt, from how it ended and what it reported."""
    if outcome.ending != Ending.EXITED:
        return TaskStatus.FAILED, outcome.reason or outcome.ending.value
    if outcome.exit_code != 0:
        return TaskStatus.FAILED, outcome.reason or f"exit code {outcome.exit_code}"
    if report == TaskStatus.FAILED:
        return TaskStatus.FAILED, "reported failure"
    if require_explicit_success and report != TaskStatus.SUCCEEDED:
        return TaskStatus.FAILED, "exited 0 without reporting success"
    return TaskStatus.SUCCEEDED, None


class Overlap(enum.Enum):
    """What to do with a new run of a definition that may already be running."""

    START = "start"
    QUEUE = "queue"  # start when the current run ends
    TERMINATE = "terminate"  # kill the current run, queue the new one
    SKIP = "skip"  # drop the new run (a scheduled fire)
    CONFLICT = "conflict"  # refuse the new run (a manual trigger)


def overlap_decision(
    action: str, *, running: bool, queued: int, manual: bool, force_queue: bool = False
) -> Overlap:
    """Apply a definition's `overlap_action` to a new run.

    Scheduled fires: `wait` lets at most one run wait. Manual triggers are never
    silently dropped: they queue, or are refused under `skip`. Catch-up runs
    after the first (`force_queue`) run one after another.
    """
    if not running and not queued:
        return Overlap.START
    if force_queue:
        return Overlap.QUEUE
    if action == "allow":
        return Overlap.START
    if action == "skip":
        return Overlap.CONFLICT if manual else Overlap.SKIP
    if action == "terminate":
        return Overlap.TERMINATE
    return Overlap.QUEUE if manual or not queued else Overlap.SKIP


MAX_COUNTED_MISSES = 1000  # how far back a misfire is enumerated (for counting skips)


@dataclass(frozen=True)
class FirePlan:
    """The runs a due definition starts now, the fires it drops, and its next fire time."""

    fire_times: tuple[datetime, ...]
    skipped: int
    next_fire_at: datetime | None


def fire_plan(
    definition: ProcessDefinition,
    due: datetime,
    now: datetime,
    *,
    on_time: timedelta,
    default_catch_up: int,
) -> FirePlan:
    """Apply the definition's misfire policy to the fire times in [due, now].

    A fire no later than `on_time` is simply due. Older ones were missed while
    the service was down: `run_once` runs the latest if within the grace period,
    `skip` runs none, `run_all` runs each (capped), one after another.
    """
    schedule = definition.schedule
    if not isinstance(schedule, CronSchedule):
        return FirePlan((due,), 0, None)  # continuous: the next comes when this run ends
    times, following = _due_times(schedule, due, now)
    fresh = [t for t in times if now - t <= on_time]
    missed = [t for t in times if now - t > on_time]
    chosen = _chosen(definition, fresh, missed, now, default_catch_up)
    return FirePlan(tuple(chosen), len(times) - len(chosen), following)


def _due_times(
    schedule: CronSchedule, due: datetime, now: datetime
) -> tuple[list[datetime], datetime]:
    """The fire times in [due, now] (`due` and the latest ones after it) and the first
    fire time after `now`."""
    following = next_fire_time(schedule, due)
    if following > now:  # nothing missed (the usual fire): the schedule is stepped once
        return [due], following
    times = [due, *missed_fire_times(schedule, due, now, MAX_COUNTED_MISSES)]
    return times, next_fire_time(schedule, now)


def _chosen(
    definition: ProcessDefinition,
    fresh: list[datetime],
    missed: list[datetime],
    now: datetime,
    default_catch_up: int,
) -> list[datetime]:
    """Which of the due fire times run, oldest first."""
    policy = definition.misfire_policy
    if policy == "run_all":
        return (missed + fresh)[-(definition.max_catch_up_runs or default_catch_up) :]
    if fresh or policy == "skip":
        return fresh[-1:]
    grace = timedelta(seconds=definition.misfire_grace_seconds)
    return missed[-1:] if missed and now - missed[-1] <= grace else []
