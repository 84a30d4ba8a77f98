"""The one place that writes run and task state.

Each function is one conditional transaction: it reads the facts, asks
`transitions` what follows, and writes the answer only if the rows it read are
still in the state it read them in. A second scheduler doing the same thing at
the same moment changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from peewee import IntegrityError, Model

from definitions import DefinitionError, ProcessDefinition, continuous_next, definition_from_json
from definitions.run_inputs import resolve_parameters
from executor import Ending, Outcome
from scheduler.bulk import insert_rows, update_rows
from scheduler.errors import Conflict, NotFound
from scheduler.models import Definition, Run, Task, TaskReport
from scheduler.notify import outbox
from scheduler.states import (
    ACTIVE_RUN,
    FINAL_TASK,
    LIVE_TASK,
    WAITING_TASK,
    RunStatus,
    TaskStatus,
    sources_of,
)
from scheduler.transitions import (
    AttemptState,
    NewAttempt,
    Overlap,
    decide_attempt,
    overlap_decision,
    plan_run,
)
from scheduler.tx import (
    lock_definition,
    lock_definitions,
    lock_task,
    lock_task_status,
    write_transaction,
)

KILLED_REASON = "killed: run was killed"


@dataclass
class Changes:
    """What a transaction did that others must hear of once it has committed."""

    started: list[str] = field(default_factory=list)  # run ids now running
    queued: list[str] = field(default_factory=list)
    ended: list[tuple[str, RunStatus]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # definition names whose fire was dropped
    kill: list[str] = field(default_factory=list)  # task ids whose containers must stop
    finished_attempts: list[Task] = field(default_factory=list)

    def merge(self, other: Changes) -> Changes:
        """Add `other`'s changes to these."""
        for name in ("started", "queued", "ended", "skipped", "kill", "finished_attempts"):
            getattr(self, name).extend(getattr(other, name))
        return self


# ---------------------------------------------------------------- starting runs


def start_run(
    name: str,
    *,
    trigger: str,
    now: datetime,
    only_task: str | None = None,
    scheduled_for: datetime | None = None,
    queue: bool = False,
    parameters: Mapping[str, str] | None = None,
) -> tuple[str | None, Changes]:
    """Start (or queue) a run of definition `name` under its overlap rule; returns its id.

    `parameters` are the values given for the run; DefinitionError (nothing written) if
    one is unknown or a required one is missing.
    """
    with write_transaction():
        row = lock_definition(name)
        if row is None:
            raise NotFound("process_definition", name)
        return _start_locked(row, trigger, now, only_task, scheduled_for, queue, parameters)


@dataclass(frozen=True)
class Fire:
    """One due definition's fire, as a pass planned it from the row it read."""

    name: str
    due_at: datetime  # the row's next fire time when read: the fire is made only from it
    body: str  # the row's body when read: the fire was planned from it
    next_fire_at: datetime | None
    fire_times: tuple[datetime, ...]


def fire(due: Fire, now: datetime) -> Changes | None:
    """Advance a definition's next fire time and start its due runs, once.

    Returns None if another scheduler fired it first (the compare-and-set failed).
    """
    with write_transaction():
        claimed = (
            Definition.update(next_fire_at=due.next_fire_at)
            .where(
                (Definition.name == due.name)
                & (Definition.next_fire_at == due.due_at)
                & (Definition.paused == False)  # noqa: E712 (peewee expression)
            )
            .execute()
        )
        if claimed != 1:
            return None
        row = lock_definition(due.name)
        changes = Changes()
        for i, when in enumerate(due.fire_times):
            _, more = _start_locked(row, "schedule", now, None, when, queue=i > 0)
            changes.merge(more)
        return changes


def fire_many(fires: Sequence[Fire], now: datetime) -> tuple[dict[str, Changes | None], list[Fire]]:
    """Fire many due definitions in one transaction of a few statements, each once.

    A fire is made only if its row, once locked, still holds the next fire time the fire
    was planned from (else another scheduler made it: None). Returns what each fire made
    changed, and the fires left to `fire`, one at a time: those whose row changed since it
    was read, and those whose runs need more than new rows (an overlap that kills, a run
    that ends at once, parameters that do not resolve). IntegrityError (nothing written)
    if a new row clashes with a stored one.
    """
    with write_transaction():
        rows = lock_definitions([f.name for f in fires])
        batch = _FireBatch(now, _active_runs(list(rows)))
        made: dict[str, Changes | None] = {}
        rest: list[Fire] = []
        for fire in fires:
            row = rows.get(fire.name)
            if row is None or row.paused or row.next_fire_at != fire.due_at:
                made[fire.name] = None  # made by another scheduler (or paused, or deleted)
                continue
            changes = batch.add(row, fire) if row.body == fire.body else None
            if changes is None:
                rest.append(fire)
            else:
                made[fire.name] = changes
        batch.write()
        return made, rest


class _FireBatch:
    """The rows of many fires, written together: next fire times, runs and first attempts."""

    def __init__(self, now: datetime, active: Mapping[str, list[RunStatus]]) -> None:
        self.now = now
        self.active = active
        self.claims: list[tuple[datetime | None, str]] = []  # (next fire time, name)
        self.runs: list[dict[str, object]] = []
        self.attempts: list[dict[str, object]] = []

    def add(self, row: Definition, fire: Fire) -> Changes | None:
        """Add the rows of `row`'s fire; None (nothing added) if it needs more than rows."""
        definition = definition_from_json(row.body)
        try:
            parameters = resolve_parameters(definition, {})
        except DefinitionError:
            return None  # `fire` reports it
        decisions = _scheduled_decisions(
            definition.overlap_action, self.active.get(row.name, []), len(fire.fire_times)
        )
        first = plan_run(definition, None, [])
        if Overlap.TERMINATE in decisions or first.outcome is not None:
            return None
        self.claims.append((fire.next_fire_at, row.name))
        changes = Changes()
        for when, decision in zip(fire.fire_times, decisions, strict=True):
            if decision is Overlap.SKIP:
                changes.skipped.append(row.name)
                continue
            status = RunStatus.RUNNING if decision is Overlap.START else RunStatus.QUEUED
            run = _run_values(row, status, "schedule", self.now, None, when, parameters)
            self.runs.append(run)
            if status is RunStatus.QUEUED:
                changes.queued.append(run["id"])
                continue
            changes.started.append(run["id"])
            self.attempts += [
                _attempt_values(run["id"], row.name, a, self.now) for a in first.create
            ]
        return changes

    def write(self) -> None:
        """Write the batch: advance the claimed rows, insert the runs and their attempts."""
        update_rows([Definition.next_fire_at], Definition.name, self.claims)
        _insert_values(Run, self.runs)
        _insert_values(Task, self.attempts)


def _insert_values(model: type[Model], rows: Sequence[Mapping[str, object]]) -> None:
    """Insert rows of `model` given as column values by field name (the same names in the
    same order in each row, as `_run_values` and `_attempt_values` make them)."""
    if rows:
        fields = [model._meta.fields[name] for name in rows[0]]
        insert_rows(fields, (list(row.values()) for row in rows))


def _active_runs(names: Sequence[str]) -> dict[str, list[RunStatus]]:
    """The statuses of each definition's active runs: the facts of its overlap rule."""
    found: dict[str, list[RunStatus]] = defaultdict(list)
    query = Run.select(Run.definition_name, Run.status).where(
        Run.definition_name.in_(list(names)) & Run.status.in_(ACTIVE_RUN)
    )
    for name, status in query.tuples():
        found[name].append(RunStatus(status))
    return found


def _scheduled_decisions(action: str, active: Sequence[RunStatus], count: int) -> list[Overlap]:
    """The overlap decision of each of `count` scheduled runs made one after another, as
    `_start_locked` makes them (a catch-up run after the first waits its turn)."""
    running, queued = RunStatus.RUNNING in active, active.count(RunStatus.QUEUED)
    decisions = []
    for i in range(count):
        decision = overlap_decision(
            action, running=running, queued=queued, manual=False, force_queue=i > 0
        )
        running = running or decision is Overlap.START
        queued += decision is Overlap.QUEUE
        decisions.append(decision)
    return decisions


def _start_locked(
    row: Definition,
    trigger: str,
    now: datetime,
    only_task: str | None,
    scheduled_for: datetime | None,
    queue: bool,
    parameters: Mapping[str, str] | None = None,
) -> tuple[str | None, Changes]:
    """Start a run of the locked definition `row`, applying its overlap rule."""
    definition = definition_from_json(row.body)
    values = resolve_parameters(definition, parameters or {})
    active = list(
        Run.select().where((Run.definition_name == row.name) & Run.status.in_(ACTIVE_RUN))
    )
    decision = overlap_decision(
        definition.overlap_action,
        running=any(r.status == RunStatus.RUNNING for r in active),
        queued=sum(r.status == RunStatus.QUEUED for r in active),
        manual=scheduled_for is None,
        force_queue=queue,
    )
    changes = Changes()
    if decision is Overlap.SKIP:
        changes.skipped.append(row.name)
        return None, changes
    if decision is Overlap.CONFLICT:
        raise Conflict(f"{row.name} is running and its overlap_action is skip")
    if decision is Overlap.TERMINATE:
        for run in active:
            changes.merge(_kill_locked(run, now))
    status = RunStatus.RUNNING if decision is Overlap.START else RunStatus.QUEUED
    run = Run.create(**_run_values(row, status, trigger, now, only_task, scheduled_for, values))
    if status is RunStatus.RUNNING:
        changes.started.append(run.id)
        changes.merge(_advance_locked(run, now))
    else:
        changes.queued.append(run.id)
    return run.id, changes


def _run_values(
    row: Definition,
    status: RunStatus,
    trigger: str,
    now: datetime,
    only_task: str | None,
    scheduled_for: datetime | None,
    parameters: Mapping[str, str],
) -> dict[str, object]:
    """The columns of a new run of definition `row` (carrying its own copy of the definition
    and its parameter values), by field name."""
    return {
        "id": str(uuid.uuid4()),
        "definition_name": row.name,
        "definition_version": row.version,
        "definition_body": row.body,
        "status": status.value,
        "started_at": now,
        "created_at": now,
        "trigger": trigger,
        "scheduled_for": scheduled_for,
        "only_task": only_task,
        "parameters": json.dumps(dict(parameters)) if parameters else None,
    }


def promote_queued(name: str, now: datetime) -> Changes:
    """Start the oldest queued run of `name` if no run of it is running."""
    with write_transaction():
        lock_definition(name)
        base = Run.select().where(Run.definition_name == name)
        if base.where(Run.status == RunStatus.RUNNING).exists():
            return Changes()
        run = base.where(Run.status == RunStatus.QUEUED).order_by(Run.started_at, Run.id).first()
        if run is None:
            return Changes()
        promoted = (
            Run.update(status=RunStatus.RUNNING.value, started_at=now)
            .where((Run.id == run.id) & (Run.status == RunStatus.QUEUED))
            .execute()
        )
        if promoted != 1:
            return Changes()
        run.status, run.started_at = RunStatus.RUNNING.value, now
        return Changes(started=[run.id]).merge(_advance_locked(run, now))


# -------------------------------------------------------------- moving a run on


def advance(run_id: str, now: datetime) -> Changes:
    """Create the attempts a running run needs now, or end it."""
    with write_transaction():
        run = Run.get_or_none((Run.id == run_id) & (Run.status == RunStatus.RUNNING))
        return Changes() if run is None else _advance_locked(run, now)


def _advance_locked(run: Run, now: datetime) -> Changes:
    """Plan the run from its stored attempts and write the plan."""
    attempts = [
        AttemptState(t.task_name, t.attempt, TaskStatus(t.status), t.ended_at)
        for t in Task.select().where(Task.run == run.id)
    ]
    plan = plan_run(run_definition(run), run.only_task, attempts, run.kill_requested_at is not None)
    for new in plan.create:
        _insert_attempt(run, new, now)
    if plan.outcome is None:
        return Changes()
    ended = (
        Run.update(status=plan.outcome.value, ended_at=now, reason=plan.reason)
        .where((Run.id == run.id) & (Run.status == RunStatus.RUNNING))
        .execute()
    )
    if ended:
        _after_run_ended(run, now)
        outbox.enqueue(run, plan.outcome.value, now)  # notifications: decided with the end
    return Changes(ended=[(run.id, plan.outcome)] if ended else [])


def _insert_attempt(run: Run, new: NewAttempt, now: datetime) -> None:
    """Insert one attempt; a concurrent scheduler's identical insert wins harmlessly."""
    try:
        with write_transaction():
            Task.create(**_attempt_values(run.id, run.definition_name, new, now))
    except IntegrityError:
        return


def _attempt_values(
    run_id: str, definition_name: str, new: NewAttempt, now: datetime
) -> dict[str, object]:
    """The columns of a new attempt, by field name; it waits out its backoff as submitted."""
    waiting = new.not_before is not None and new.not_before > now
    return {
        "id": str(uuid.uuid4()),
        "run": run_id,
        "definition_name": definition_name,
        "task_name": new.task_name,
        "attempt": new.attempt,
        "status": (TaskStatus.SUBMITTED if waiting else TaskStatus.RUNNABLE).value,
        "created_at": now,
        "not_before": new.not_before,
    }


def _after_run_ended(run: Run, now: datetime) -> None:
    """A continuous schedule's next fire comes `buffer_seconds` after its run ends."""
    row = Definition.get_or_none(Definition.name == run.definition_name)
    if row is None:
        return
    definition = definition_from_json(row.body)
    buffer = continuous_buffer(definition)
    if buffer is None:
        return
    still_active = Run.select().where(
        (Run.definition_name == row.name) & Run.status.in_(ACTIVE_RUN)
    )
    if not still_active.exists():
        Definition.update(next_fire_at=continuous_next(now, buffer)).where(
            Definition.name == row.name
        ).execute()


def set_schedule_error(name: str, error: str | None) -> None:
    """Store (or clear, with None) why definition `name`'s last scheduled fire failed."""
    with write_transaction():
        Definition.update(schedule_error=error).where(Definition.name == name).execute()


def continuous_buffer(definition: ProcessDefinition) -> int | None:
    """The buffer of a continuous schedule, or None for any other schedule."""
    schedule = definition.schedule
    return getattr(schedule, "buffer_seconds", None) if schedule is not None else None


def run_definition(run: Run) -> ProcessDefinition:
    """The run's own copy of its definition."""
    return definition_from_json(run.definition_body)


# ------------------------------------------------------------- attempts' lives


def claim_for_start(
    now: datetime, capacity: int, instance: str | None = None
) -> tuple[list[Task], int]:
    """Move up to `capacity` waiting attempts to `starting` for `instance`; mark the rest
    `pending`.

    Returns only the attempts this call moved (another instance may claim some of the
    same rows at the same moment: each is claimed by one) and how many are left waiting.
    """
    with write_transaction():
        ready = list(
            Task.select()
            .where(
                Task.status.in_((TaskStatus.RUNNABLE, TaskStatus.PENDING))
                | ((Task.status == TaskStatus.SUBMITTED) & (Task.not_before <= now))
            )
            .order_by(Task.created_at, Task.id)
        )
        claimed: list[Task] = []
        for task in ready:
            if len(claimed) >= capacity:
                break
            if move(task.id, TaskStatus.STARTING, instance=instance):
                claimed.append(task)
        left = [t for t in ready if t not in claimed]
        for task in left:  # not one another instance has just claimed: waiting ones only
            if task.status != TaskStatus.PENDING:
                move(task.id, TaskStatus.PENDING, (TaskStatus.SUBMITTED, TaskStatus.RUNNABLE))
        return claimed, len(left)


def move(
    task_id: str,
    target: TaskStatus,
    only_from: Sequence[TaskStatus] | None = None,
    **values: object,
) -> bool:
    """Move one attempt to `target` if `TASK_TRANSITIONS` allows it from its current status
    (and that status is one of `only_from`, if given), writing `values` with it; True only
    if this call changed the row."""
    sources = [s for s in sources_of(target) if only_from is None or s in only_from]
    changed = (
        Task.update(status=target.value, **values)
        .where((Task.id == task_id) & Task.status.in_(sources))
        .execute()
    )
    return changed == 1


def mark_waiting(task_id: str) -> bool:
    """The engine could not start the attempt: it waits as `pending`."""
    with write_transaction():
        return move(task_id, TaskStatus.PENDING, (TaskStatus.STARTING,), instance=None)


def mark_started(
    task_id: str, started_at: datetime, container_id: str, node: str | None = None
) -> bool:
    """The attempt's container runs (on `node`, in a cluster); True if this changed anything.

    A running attempt adopted after a restart is reported started again: only its
    container id (and node) is refreshed then.
    """
    with write_transaction():
        if move(
            task_id, TaskStatus.RUNNING, started_at=started_at, container_id=container_id, node=node
        ):
            return True
        return bool(
            Task.update(container_id=container_id, node=node)
            .where((Task.id == task_id) & (Task.status == TaskStatus.RUNNING))
            .execute()
        )


def finish_attempt(outcome: Outcome, now: datetime) -> Changes:
    """Record how an attempt ended and move its run on, in one transaction."""
    with write_transaction():
        task = lock_task(outcome.task_id)
        if task is None or task.status in FINAL_TASK:
            return Changes()  # already stored: a repeated report changes nothing
        if _never_started(task, outcome):
            move(task.id, TaskStatus.PENDING, (TaskStatus.STARTING,), instance=None)
            return Changes()
        run = Run.get(Run.id == task.run_id)
        status, reason = decide_attempt(outcome, _report_of(task.id), _explicit(run, task))
        stored = move(
            task.id,
            status,
            ended_at=outcome.ended_at,
            started_at=task.started_at or outcome.started_at,
            exit_code=outcome.exit_code,
            reason=reason,
        )
        if not stored:
            return Changes()
        task.status, task.ended_at, task.reason = status.value, outcome.ended_at, reason
        task.exit_code, task.started_at = outcome.exit_code, task.started_at or outcome.started_at
        changes = Changes(finished_attempts=[task])
        if run.status == RunStatus.RUNNING:
            changes.merge(_advance_locked(run, now))
        return changes


def _never_started(task: Task, outcome: Outcome) -> bool:
    """A container lost before it ever ran: the attempt may simply start again."""
    return outcome.ending == Ending.LOST and task.started_at is None


def _report_of(task_id: str) -> str | None:
    """What the attempt reported through /succeed or /fail, if anything."""
    report = TaskReport.get_or_none(TaskReport.task == task_id)
    return None if report is None else report.outcome


def _explicit(run: Run, task: Task) -> bool:
    """Whether the attempt's task must report its success explicitly."""
    return run_definition(run).task(task.task_name).require_explicit_success


# ------------------------------------------------------------ commands on runs


def kill_run(run_id: str, now: datetime) -> Changes:
    """Kill a run: waiting attempts fail at once, live ones are to be killed."""
    with write_transaction():
        run = Run.get_or_none(Run.id == run_id)
        if run is None:
            raise NotFound("process", run_id)
        if run.status not in ACTIVE_RUN:
            raise Conflict(f"process {run_id} has already finished ({run.status})")
        lock_definition(run.definition_name)
        return _kill_locked(run, now)


def _kill_locked(run: Run, now: datetime) -> Changes:
    """Kill `run` within the caller's transaction."""
    Run.update(kill_requested_at=now, status=RunStatus.RUNNING.value).where(
        Run.id == run.id
    ).execute()
    run.kill_requested_at, run.status = now, RunStatus.RUNNING.value
    waiting = Task.select(Task.id).where((Task.run == run.id) & Task.status.in_(WAITING_TASK))
    for task in list(waiting):
        move(task.id, TaskStatus.FAILED, ended_at=now, reason=KILLED_REASON)
    live = Task.select(Task.id).where((Task.run == run.id) & Task.status.in_(LIVE_TASK))
    return Changes(kill=[t.id for t in live]).merge(_advance_locked(run, now))


def retry_run(run_id: str, actor: str, now: datetime) -> Changes:
    """Give every task of a failed run whose last attempt failed one more attempt.

    The run then shows `retry:<actor>` as what (re)started it.
    """
    trigger = f"retry:{actor}"
    with write_transaction():
        run = Run.get_or_none(Run.id == run_id)
        if run is None:
            raise NotFound("process", run_id)
        if run.status != RunStatus.FAILED:
            raise Conflict(f"only a failed process can be retried; {run_id} is {run.status}")
        reopened = (
            Run.update(
                status=RunStatus.RUNNING.value,
                ended_at=None,
                reason=None,
                kill_requested_at=None,
                trigger=trigger,
            )
            .where((Run.id == run.id) & (Run.status == RunStatus.FAILED))
            .execute()
        )
        if reopened != 1:
            raise Conflict(f"process {run_id} was retried at the same moment")
        for task_name, attempt in _failed_latest(run.id):
            _insert_attempt(run, NewAttempt(task_name, attempt + 1), now)
        run.status, run.kill_requested_at, run.trigger = RunStatus.RUNNING.value, None, trigger
        return Changes(started=[run.id]).merge(_advance_locked(run, now))


def _failed_latest(run_id: str) -> list[tuple[str, int]]:
    """(task name, attempt) of each task whose newest attempt in the run failed."""
    latest: dict[str, Task] = {}
    for t in Task.select().where(Task.run == run_id):
        if t.task_name not in latest or t.attempt > latest[t.task_name].attempt:
            latest[t.task_name] = t
    return [(n, t.attempt) for n, t in latest.items() if t.status == TaskStatus.FAILED]


def lock_unended_attempt(task_id: str) -> None:
    """Lock the attempt `task_id` so that it cannot end before the transaction does;
    NotFound if there is none, Conflict if it has ended (a callback then stores nothing)."""
    status = lock_task_status(task_id)
    if status is None:
        raise NotFound("task", task_id)
    if status in FINAL_TASK:
        raise Conflict(f"task {task_id} has already ended ({status})")


def record_report(task_id: str, outcome: TaskStatus, actor: str, now: datetime) -> None:
    """Store an attempt's first /succeed or /fail; later ones are a Conflict."""
    with write_transaction():
        lock_unended_attempt(task_id)
        try:
            with write_transaction():
                TaskReport.create(
                    task=task_id, outcome=outcome.value, reported_at=now, reported_by=actor
                )
        except IntegrityError:
            raise Conflict(f"task {task_id} has already reported its outcome") from None
