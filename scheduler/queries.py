"""Read-only questions about definitions, runs and attempts, answered with views."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from peewee import ModelSelect

from definitions import definition_from_json, mask_secrets
from scheduler.errors import NotFound
from scheduler.models import (
    AuditEvent,
    Definition,
    DefinitionVersion,
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
    definition = definition_from_json(row.body)
    return DefinitionView(
        definition=mask_secrets(replace(definition, paused=row.paused)),
        version=row.version,
        paused=row.paused,
        next_fire_at=None if row.paused else row.next_fire_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


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
)


def get_definition(name: str) -> DefinitionView:
    """The definition called `name`."""
    row = Definition.get_or_none(Definition.name == name)
    if row is None:
        raise NotFound("process_definition", name)
    return definition_view(row)


def list_definitions() -> list[DefinitionView]:
    """All definitions, by name."""
    return [definition_view(row) for row in Definition.select().order_by(Definition.name)]


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
    definition = mask_secrets(definition_from_json(row.body))
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


def _within(query: ModelSelect, field: object, start: object, end: object) -> ModelSelect:
    """Restrict `query` to rows whose `field` lies in [start, end]."""
    if start is not None:
        query = query.where(field >= start)
    if end is not None:
        query = query.where(field <= end)
    return query


def _run_views(runs: Sequence[Run]) -> list[RunView]:
    """Views of `runs` with their attempts, in four queries whatever their number."""
    attempts = (
        Task.select(*TASK_VIEW_FIELDS)
        .where(Task.run.in_([r.id for r in runs]))
        .order_by(Task.created_at, Task.attempt)
        .tuples()
    )
    by_run: dict[str, list[TaskView]] = defaultdict(list)
    for view in _task_views(list(attempts) if runs else []):
        by_run[view.process_id].append(view)
    return [_run_view(run, by_run[run.id]) for run in runs]


def _run_view(run: Run, tasks: Iterable[TaskView]) -> RunView:
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
        tasks=tuple(tasks),
    )


def _task_views(tasks: Sequence[tuple]) -> list[TaskView]:
    """Views of attempts, given as rows of TASK_VIEW_FIELDS, with their entries."""
    ids = [t[0] for t in tasks]
    logs: dict[str, list[LogEntryView]] = defaultdict(list)
    metadata: dict[str, list[MetadataEntryView]] = defaultdict(list)
    if ids:
        # tuples, not models: history pages carry thousands of entries
        for task_id, *entry in (
            LogEntry.select(
                LogEntry.task, LogEntry.id, LogEntry.when, LogEntry.source, LogEntry.message
            )
            .where(LogEntry.task.in_(ids))
            .order_by(LogEntry.when, LogEntry.seq)
            .tuples()
        ):
            logs[task_id].append(LogEntryView(*entry))
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
        TaskView(*t, log_entries=tuple(logs[t[0]]), metadata_entries=tuple(metadata[t[0]]))
        for t in tasks
    ]
