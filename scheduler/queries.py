"""Read-only questions about definitions, runs and attempts, answered with views."""

from __future__ import annotations

import json
from collections import defaultdict, namedtuple
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from peewee import (
    SQL,
    CharField,
    Expression,
    Field,
    ForeignKeyField,
    IntegerField,
    ModelSelect,
    SqliteDatabase,
    TextField,
    Tuple,
    fn,
)

from definitions import definition_from_json, mask_secret_values
from definitions.run_inputs import output_name
from scheduler.bulk import converted
from scheduler.embedded import EmbeddedEntries, Key
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
    db,
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
RunRow = namedtuple("RunRow", [field.name for field in RUN_VIEW_FIELDS])  # a row of them

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


def get_run(run_id: str, embedded: EmbeddedEntries | None = None) -> RunView:
    """The run `run_id` with all its attempts (their entries kept in `embedded`, if given)."""
    runs = _rows(Run.select(*RUN_VIEW_FIELDS).where(Run.id == run_id))
    if not runs:
        raise NotFound("process", run_id)
    return _run_views(runs, embedded)[0]


def list_runs(f: RunFilter, embedded: EmbeddedEntries | None = None) -> list[RunView]:
    """Runs matching `f`, newest first (their attempts' entries kept in `embedded`)."""
    query = Run.select(*RUN_VIEW_FIELDS).order_by(Run.started_at.desc(), Run.id.desc())
    if f.definition_name is not None:
        query = query.where(Run.definition_name == f.definition_name)
    if f.statuses:
        query = query.where(Run.status.in_(sorted(wire_run_statuses(f.statuses))))
    query = _within(query, Run.started_at, f.start_time, f.end_time)
    if f.limit is not None:
        query = query.limit(f.limit)
    return _run_views(_rows(query), embedded)


def get_task(task_id: str, embedded: EmbeddedEntries | None = None) -> TaskView:
    """The attempt `task_id` with its entries (kept in `embedded`, if given)."""
    views = _task_views(Task.select(*TASK_VIEW_FIELDS).where(Task.id == task_id), embedded)
    if not views:
        raise NotFound("task", task_id)
    return views[0]


def list_tasks(f: TaskFilter, embedded: EmbeddedEntries | None = None) -> list[TaskView]:
    """Attempts matching `f`, newest first (their entries kept in `embedded`)."""
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
    return _task_views(query, embedded)


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


def _rows(query: ModelSelect) -> list[Sequence[Any]]:
    """`query.tuples()`, fetched at once, with only the values that need it converted:
    peewee's iterator calls a field's python_value on every value of every row, but the
    drivers give strings and integers as they are."""
    sql, params = query.sql()
    convert = [
        (i, column.python_value)
        for i, column in enumerate(query.selected_columns)
        if isinstance(column, Field) and not isinstance(column, AS_STORED)
    ]
    rows = db.execute_sql(sql, params).fetchall()
    return converted(rows, convert) if convert else rows


AS_STORED = (CharField, TextField, IntegerField, ForeignKeyField)  # read as the driver gives


def _in(field: Field, values: Sequence[object]) -> Expression:
    """`field IN (values)`, its placeholders written at once: peewee would visit the values
    one by one, ~20 µs each, and a page of runs asks about hundreds of ids."""
    return field.in_(SQL(f"({', '.join([db.param] * len(values))})", list(values)))


def _within(query: ModelSelect, field: object, start: object, end: object) -> ModelSelect:
    """Restrict `query` to rows whose `field` lies in [start, end]."""
    if start is not None:
        query = query.where(field >= start)
    if end is not None:
        query = query.where(field <= end)
    return query


def _run_views(rows: Sequence[tuple], embedded: EmbeddedEntries | None) -> list[RunView]:
    """Views of runs, given as rows of RUN_VIEW_FIELDS, with their attempts and
    notifications, in five queries whatever their number."""
    runs = [RunRow(*row) for row in rows]
    ids = [run.id for run in runs]
    attempts = Task.select(*TASK_VIEW_FIELDS).where(_in(Task.run, ids))
    by_run: dict[str, list[TaskView]] = defaultdict(list)
    ordered = attempts.order_by(Task.created_at, Task.attempt)
    for view in _task_views(ordered, embedded) if ids else []:
        by_run[view.process_id].append(view)
    deliveries = delivery_views(ids) if ids else {}
    return [run_view(run, by_run[run.id], deliveries.get(run.id, ())) for run in runs]


def delivery_views(run_ids: list[str]) -> dict[str, list[DeliveryView]]:
    """The notifications of runs `run_ids`, by run, oldest first."""
    query = (
        Delivery.select(*DELIVERY_VIEW_FIELDS)
        .where(_in(Delivery.run, run_ids))
        .order_by(Delivery.created_at, Delivery.position)
    )
    by_run: dict[str, list[DeliveryView]] = defaultdict(list)
    for run_id, *fields, due_at, sent_at in _rows(query):
        pending = fields[4] == "pending"
        by_run[run_id].append(DeliveryView(*fields, due_at if pending else None, sent_at))
    return by_run


# What a notification's view shows, in DeliveryView's order (its next try: `due_at` while
# pending), after the run it belongs to.
DELIVERY_VIEW_FIELDS = (
    Delivery.run,
    Delivery.id,
    Delivery.kind,
    Delivery.target,
    Delivery.action,
    Delivery.state,
    Delivery.attempts,
    Delivery.last_error,
    Delivery.created_at,
    Delivery.due_at,
    Delivery.sent_at,
)


def run_view(
    run: Run | RunRow, tasks: Iterable[TaskView], deliveries: Iterable[DeliveryView]
) -> RunView:
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


def _task_views(query: ModelSelect, embedded: EmbeddedEntries | None) -> list[TaskView]:
    """Views of the attempts `query` selects (TASK_VIEW_FIELDS) with their entries (the
    log's newest only: see EMBEDDED_LOG_ENTRIES; those of an attempt whose number of
    entries has not changed since taken from `embedded`) and their number of log entries."""
    counted = LogEntry.alias("counted")
    count = counted.select(fn.COUNT(SQL("*"))).where(counted.task == Task.id)
    tasks = _rows(query.select_extend(count))
    ids = [t[0] for t in tasks]
    logs = _embedded_entries([(t[0], t[-1]) for t in tasks], embedded)
    metadata: dict[str, list[MetadataEntryView]] = defaultdict(list)
    if ids:
        entries = MetadataEntry.select(
            MetadataEntry.task,
            MetadataEntry.id,
            MetadataEntry.when,
            MetadataEntry.key,
            MetadataEntry.value,
        ).where(_in(MetadataEntry.task, ids))
        for task_id, *entry in _rows(entries.order_by(MetadataEntry.when)):
            metadata[task_id].append(MetadataEntryView(*entry))
    return [
        TaskView(
            *t,
            log_entries=logs[t[0]],
            metadata_entries=tuple(metadata[t[0]]),
            log_entry_count=count,
        )
        for *t, count in tasks
    ]


def _embedded_entries(
    keys: Sequence[Key], embedded: EmbeddedEntries | None
) -> dict[str, tuple[LogEntryView, ...]]:
    """The entries each attempt's view embeds, by attempt id, for `keys` (attempt id and
    its number of entries): those `embedded` keeps, the others read (and kept)."""
    kept = {key: embedded.get(key) for key in keys} if embedded is not None else {}
    missing = [task_id for task_id, count in keys if kept.get((task_id, count)) is None]
    read: dict[str, list[LogEntryView]] = defaultdict(list)
    for task_id, *entry in _newest_log_entries(missing):
        read[task_id].append(LogEntryView(*entry))
    found: dict[str, tuple[LogEntryView, ...]] = {}
    for key in keys:
        entries = kept.get(key)
        if entries is None:
            entries = tuple(read[key[0]])
            if embedded is not None:
                embedded.put(key, entries)
        found[key[0]] = entries
    return found


def _newest_log_entries(ids: Sequence[str]) -> list[list[Any]]:
    """(task, id, when, source, message) of each attempt's newest log entries, oldest first:
    at most EMBEDDED_LOG_ENTRIES of them and EMBEDDED_LOG_CHARS of messages per attempt.

    One statement whose cost follows the entries shown, not the length of the attempts'
    logs: the index on (task, when, seq) gives each attempt's newest entries, and only
    those are measured. PostgreSQL reads them with a LATERAL join; SQLite, which has none,
    takes each attempt's EMBEDDED_LOG_ENTRIES-th newest entry (its `cut_id`, none when
    it has fewer) and then the entries from there on (all of them when there is no cut).
    """
    if not ids:
        return []
    marks = ", ".join(["%s"] * len(ids))
    if isinstance(db.obj, SqliteDatabase):
        newest, count = NEWEST_ON_SQLITE, EMBEDDED_LOG_ENTRIES - 1  # an offset
    else:
        newest, count = NEWEST_ON_POSTGRESQL, EMBEDDED_LOG_ENTRIES  # a limit
    sql = NEWEST_LOG_ENTRIES.format(newest=newest).format(ids=marks).replace("%s", db.param)
    rows = db.execute_sql(sql, [count, *ids, EMBEDDED_LOG_CHARS]).fetchall()
    return converted(rows, [(2, LogEntry.when.python_value)])


NEWEST_LOG_ENTRIES = """
WITH {newest}
SELECT task_id, id, "when", source, message FROM (
    SELECT task_id, id, "when", seq, source, message,
        SUM(LENGTH(message)) OVER (
            PARTITION BY task_id ORDER BY "when" DESC, seq DESC, id DESC
        ) AS chars
    FROM newest
) AS sized
WHERE chars <= %s
ORDER BY task_id, "when", seq, id
"""
NEWEST_ON_POSTGRESQL = """newest AS (
    SELECT t.id AS task_id, e.id, e."when", e.seq, e.source, e.message
    FROM task AS t CROSS JOIN LATERAL (
        SELECT x.id, x."when", x.seq, x.source, x.message
        FROM log_entry AS x WHERE x.task_id = t.id
        ORDER BY x."when" DESC, x.seq DESC, x.id DESC LIMIT %s
    ) AS e
    WHERE t.id IN ({ids})
)"""
NEWEST_ON_SQLITE = """a AS MATERIALIZED (
    SELECT t.id AS task_id, (
        SELECT x.id FROM log_entry AS x WHERE x.task_id = t.id
        ORDER BY x."when" DESC, x.seq DESC, x.id DESC LIMIT 1 OFFSET %s
    ) AS cut_id
    FROM task AS t WHERE t.id IN ({ids})
), newest AS (
    SELECT e.task_id, e.id, e."when", e.seq, e.source, e.message
    FROM a JOIN log_entry AS e ON e.task_id = a.task_id
    WHERE a.cut_id IS NULL
    UNION ALL
    SELECT e.task_id, e.id, e."when", e.seq, e.source, e.message
    FROM a JOIN log_entry AS c ON c.id = a.cut_id
    JOIN log_entry AS e ON e.task_id = a.task_id AND e."when" >= c."when"
    WHERE (e."when", e.seq, e.id) >= (c."when", c.seq, c.id)
)"""


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
