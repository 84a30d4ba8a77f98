"""Read-only questions about definitions, runs and attempts, answered with views."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

from peewee import Function, ModelSelect, Tuple, fn

from definitions import definition_from_json, mask_secret_values
from definitions.run_inputs import output_name
from scheduler.errors import NotFound
from scheduler.models import (
    AuditEvent,
    Definition,
    DefinitionVersion,
    Delivery,
    LogEntry,
    MetadataEntry,
    Run,
    Task,
)
from scheduler.states import RunStatus, wire_run_statuses
from scheduler.views import (
    AuditFilter,
    AuditView,
    DefinitionView,
    DeliveryView,
    LogEntryView,
    MetadataEntryView,
    RunFilter,
    RunView,
    TaskFilter,
    TaskView,
    VersionView,
)


def definition_view(row: Definition) -> DefinitionView:
    """The view of a stored definition, its `paused` flag taken from the row."""
    return DefinitionView(
        stored=row.body,
        version=row.version,
        paused=row.paused,
        next_fire_at=None if row.paused else row.next_fire_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        schedule_error=row.schedule_error,
        wire=row.wire,
    )


# What a task's view embeds of its log: the newest entries, at most this many and this
# many characters of messages; the rest is read page by page (`log_entries`).
EMBEDDED_LOG_ENTRIES = 100
EMBEDDED_LOG_CHARS = 64 * 1024
LOG_PAGE_MAX = 1000

# What a run's view shows: not its copy of the definition, which can be large.
RUN_VIEW_FIELDS = (
    Run.id,
    Run.definition_name,
    Run.definition_version,
    Run.status,
    Run.started_at,
    Run.ended_at,
    Run.trigger,
    Run.reason,
    Run.parameters,
    Run.scheduled_for,
    Run.created_at,
)

# What an attempt's view shows (not its container id or backoff time), in TaskView's order.
TASK_VIEW_FIELDS = (
    Task.id,
    Task.run,
    Task.definition_name,
    Task.task_name,
    Task.attempt,
    Task.status,
    Task.created_at,
    Task.started_at,
    Task.ended_at,
    Task.exit_code,
    Task.reason,
    Task.node,
)


def get_definition(name: str) -> DefinitionView:
    """The definition called `name`."""
    row = Definition.get_or_none(Definition.name == name)
    if row is None:
        raise NotFound("process_definition", name)
    return definition_view(row)


def list_definitions(limit: int | None = None, after: str | None = None) -> list[DefinitionView]:
    """Definitions by name: all, or a page of at most `limit` named after `after`."""
    query = Definition.select().order_by(Definition.name)
    if after is not None:
        query = query.where(Definition.name > after)
    if limit is not None:
        query = query.limit(limit)
    return [definition_view(row) for row in query]


def list_versions(name: str) -> list[VersionView]:
    """Every version `name` ever had, oldest first; 404 if it never had one."""
    rows = (
        DefinitionVersion.select(
            DefinitionVersion.name,
            DefinitionVersion.version,
            DefinitionVersion.created_at,
            DefinitionVersion.created_by,
        )
        .where(DefinitionVersion.name == name)
        .order_by(DefinitionVersion.version)
        .tuples()
    )
    views = [VersionView(*row) for row in rows]
    if not views:
        raise NotFound("process_definition", name)
    return views


def get_version(name: str, version: int) -> VersionView:
    """Version `version` of `name`, its secret values masked."""
    row = DefinitionVersion.get_or_none(
        (DefinitionVersion.name == name) & (DefinitionVersion.version == version)
    )
    if row is None:
        raise NotFound("process_definition_version", f"{name} version {version}")
    definition = mask_secret_values(definition_from_json(row.body))
    return VersionView(row.name, row.version, row.created_at, row.created_by, definition)


def list_audit(f: AuditFilter) -> list[AuditView]:
    """Audit events matching `f`, newest first."""
    query = AuditEvent.select(
        AuditEvent.id,
        AuditEvent.at,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.target,
        AuditEvent.detail,
    ).order_by(AuditEvent.id.desc())
    if f.actor is not None:
        query = query.where(AuditEvent.actor == f.actor)
    if f.target is not None:
        query = query.where(AuditEvent.target == f.target)
    if f.since is not None:
        query = query.where(AuditEvent.at >= f.since)
    if f.before_id is not None:
        query = query.where(AuditEvent.id < f.before_id)
    if f.limit is not None:
        query = query.limit(f.limit)
    return [AuditView(*row) for row in query.tuples()]


def get_run(run_id: str) -> RunView:
    """The run `run_id` with all its attempts."""
    run = Run.select(*RUN_VIEW_FIELDS).where(Run.id == run_id).get_or_none()
    if run is None:
        raise NotFound("process", run_id)
    return _run_views([run])[0]


def list_runs(f: RunFilter) -> list[RunView]:
    """Runs matching `f`, newest first."""
    query = Run.select(*RUN_VIEW_FIELDS).order_by(Run.started_at.desc(), Run.id.desc())
    if f.definition_name is not None:
        query = query.where(Run.definition_name == f.definition_name)
    if f.statuses:
        query = query.where(Run.status.in_(sorted(wire_run_statuses(f.statuses))))
    query = _within(query, Run.started_at, f.start_time, f.end_time)
    if f.limit is not None:
        query = query.limit(f.limit)
    return _run_views(list(query))


def get_task(task_id: str) -> TaskView:
    """The attempt `task_id` with its entries."""
    rows = list(Task.select(*TASK_VIEW_FIELDS).where(Task.id == task_id).tuples())
    if not rows:
        raise NotFound("task", task_id)
    return _task_views(rows)[0]


def list_tasks(f: TaskFilter) -> list[TaskView]:
    """Attempts matching `f`, newest first."""
    query = Task.select(*TASK_VIEW_FIELDS).order_by(Task.created_at.desc(), Task.id.desc())
    if f.definition_name is not None:
        query = query.where(Task.definition_name == f.definition_name)
    if f.task_name is not None:
        query = query.where(Task.task_name == f.task_name)
    if f.statuses:
        query = query.where(Task.status.in_(sorted(f.statuses)))
    query = _within(query, Task.created_at, f.start_time, f.end_time)
    if f.limit is not None:
        query = query.limit(f.limit)
    return _task_views(list(query.tuples()))


def latest_outputs(run_id: str, task_names: Collection[str]) -> dict[str, dict[str, str]]:
    """The outputs of the newest attempt of each of `task_names` in the run, by task name."""
    if not task_names:
        return {}
    newest = (
        Task.select(Task.task_name, fn.MAX(Task.attempt).alias("attempt"))
        .where((Task.run == run_id) & Task.task_name.in_(list(task_names)))
        .group_by(Task.task_name)
    )
    entries = (
        MetadataEntry.select(Task.task_name, MetadataEntry.key, MetadataEntry.value)
        .join(Task)
        .join(newest, on=_same_attempt(newest))
        .where(Task.run == run_id)
        .order_by(MetadataEntry.when)
        .tuples()
    )
    outputs: dict[str, dict[str, str]] = defaultdict(dict)
    for task_name, key, value in entries:
        name = output_name(key)
        if name is not None:
            outputs[task_name][name] = value
    return dict(outputs)


def _same_attempt(newest: ModelSelect) -> object:
    """Join condition: the attempt is the one `newest` names for its task."""
    return (Task.task_name == newest.c.task_name) & (Task.attempt == newest.c.attempt)


def _within(query: ModelSelect, field: object, start: object, end: object) -> ModelSelect:
    """Restrict `query` to rows whose `field` lies in [start, end]."""
    if start is not None:
        query = query.where(field >= start)
    if end is not None:
        query = query.where(field <= end)
    return query


def _run_views(runs: Sequence[Run]) -> list[RunView]:
    """Views of `runs` with their attempts and notifications, in five queries whatever
    their number."""
    attempts = (
        Task.select(*TASK_VIEW_FIELDS)
        .where(Task.run.in_([r.id for r in runs]))
        .order_by(Task.created_at, Task.attempt)
        .tuples()
    )
    by_run: dict[str, list[TaskView]] = defaultdict(list)
    for view in _task_views(list(attempts) if runs else []):
        by_run[view.process_id].append(view)
    deliveries = delivery_views([r.id for r in runs]) if runs else {}
    return [run_view(run, by_run[run.id], deliveries.get(run.id, ())) for run in runs]


def delivery_views(run_ids: list[str]) -> dict[str, list[DeliveryView]]:
    """The notifications of runs `run_ids`, by run, oldest first."""
    rows = (
        Delivery.select()
        .where(Delivery.run.in_(run_ids))
        .order_by(Delivery.created_at, Delivery.position)
    )
    by_run: dict[str, list[DeliveryView]] = defaultdict(list)
    for d in rows:
        by_run[d.run_id].append(
            DeliveryView(
                id=d.id, kind=d.kind, target=d.target, action=d.action, state=d.state,
                attempts=d.attempts, last_error=d.last_error, created_at=d.created_at,
                next_attempt_at=d.due_at if d.state == "pending" else None, sent_at=d.sent_at,
            )
        )  # fmt: skip
    return by_run


def run_view(run: Run, tasks: Iterable[TaskView], deliveries: Iterable[DeliveryView]) -> RunView:
    """The view of one run."""
    return RunView(
        id=run.id,
        definition_name=run.definition_name,
        definition_version=run.definition_version,
        status=RunStatus(run.status).wire,
        started_at=run.started_at,
        ended_at=run.ended_at,
        trigger=run.trigger,
        reason=run.reason,
        due_at=run.scheduled_for,
        created_at=run.created_at or run.started_at,
        tasks=tuple(tasks),
        notifications=tuple(deliveries),
        parameters=json.loads(run.parameters or "{}"),
    )


def _task_views(tasks: Sequence[tuple]) -> list[TaskView]:
    """Views of attempts, given as rows of TASK_VIEW_FIELDS, with their entries (the log's
    newest only: see EMBEDDED_LOG_ENTRIES)."""
    ids = [t[0] for t in tasks]
    logs: dict[str, list[LogEntryView]] = defaultdict(list)
    counts: dict[str, int] = {}
    metadata: dict[str, list[MetadataEntryView]] = defaultdict(list)
    if ids:
        for task_id, *entry in _newest_log_entries(ids):
            logs[task_id].append(LogEntryView(*entry))
        counts = dict(
            LogEntry.select(LogEntry.task, fn.COUNT(LogEntry.id))
            .where(LogEntry.task.in_(ids))
            .group_by(LogEntry.task)
            .tuples()
        )
        for task_id, *entry in (
            MetadataEntry.select(
                MetadataEntry.task,
                MetadataEntry.id,
                MetadataEntry.when,
                MetadataEntry.key,
                MetadataEntry.value,
            )
            .where(MetadataEntry.task.in_(ids))
            .order_by(MetadataEntry.when)
            .tuples()
        ):
            metadata[task_id].append(MetadataEntryView(*entry))
    return [
        TaskView(
            *t,
            log_entries=tuple(logs[t[0]]),
            metadata_entries=tuple(metadata[t[0]]),
            log_entry_count=counts.get(t[0], 0),
        )
        for t in tasks
    ]


def _newest_log_entries(ids: Sequence[str]) -> list[tuple]:
    """(task, id, when, source, message) of each attempt's newest log entries, oldest first:
    at most EMBEDDED_LOG_ENTRIES of them and EMBEDDED_LOG_CHARS of messages per attempt.

    Entries are ranked without reading their messages; only the newest few are measured.
    """
    ranked = (
        LogEntry.select(LogEntry.id, _newest_first(fn.ROW_NUMBER()).alias("rank"))
        .where(LogEntry.task.in_(list(ids)))
        .alias("ranked")
    )
    newest = LogEntry.select(ranked.c.id).from_(ranked).where(ranked.c.rank <= EMBEDDED_LOG_ENTRIES)
    sized = (
        LogEntry.select(
            LogEntry.id, _newest_first(fn.SUM(fn.LENGTH(LogEntry.message))).alias("chars")
        )
        .where(LogEntry.id.in_(newest))
        .alias("sized")
    )
    chosen = LogEntry.select(sized.c.id).from_(sized).where(sized.c.chars <= EMBEDDED_LOG_CHARS)
    return list(
        LogEntry.select(
            LogEntry.task, LogEntry.id, LogEntry.when, LogEntry.source, LogEntry.message
        )
        .where(LogEntry.id.in_(chosen))
        .order_by(LogEntry.task, LogEntry.when, LogEntry.seq, LogEntry.id)
        .tuples()
    )


def _newest_first(function: Function) -> Function:
    """`function` as a window function over each attempt's log entries, newest first."""
    return function.over(
        partition_by=[LogEntry.task],
        order_by=[LogEntry.when.desc(), LogEntry.seq.desc(), LogEntry.id.desc()],
    )


def log_entries_page(task_id: str, after: str | None, limit: int) -> list[LogEntryView]:
    """Attempt `task_id`'s log entries in order, the `limit` first after entry `after`
    (from the start when None); NotFound for an unknown attempt or entry."""
    if not Task.select().where(Task.id == task_id).exists():
        raise NotFound("task", task_id)
    query = LogEntry.select(LogEntry.id, LogEntry.when, LogEntry.source, LogEntry.message).where(
        LogEntry.task == task_id
    )
    if after is not None:
        mark = LogEntry.get_or_none((LogEntry.id == after) & (LogEntry.task == task_id))
        if mark is None:
            raise NotFound("log_entry", after)
        position = Tuple(LogEntry.when, LogEntry.seq, LogEntry.id)
        query = query.where(position > Tuple(mark.when, mark.seq, mark.id))
    query = query.order_by(LogEntry.when, LogEntry.seq, LogEntry.id).limit(limit)
    return [LogEntryView(*row) for row in query.tuples()]
