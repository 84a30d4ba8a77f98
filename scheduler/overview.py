"""Read models of the web console: pages of runs, recent history, one run's state, log cursors.

Each function answers one page in a few indexed queries whatever the size of the
history, and none loads log entries except `log_entries_after`, which reads a
bounded batch past a cursor (the log stream's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from peewee import Expression, ModelSelect

from definitions import ProcessDefinition, definition_from_json
from definitions.run_inputs import output_name
from scheduler.errors import NotFound
from scheduler.models import (
    Definition,
    LogEntry,
    MetadataEntry,
    Run,
    Task,
    db,
)
from scheduler.queries import (
    RUN_VIEW_FIELDS,
    TASK_VIEW_FIELDS,
    definition_view,
    delivery_views,
    run_view,
)
from scheduler.states import FINAL_TASK, RunStatus, wire_run_statuses
from scheduler.views import DefinitionView, LogEntryView, RunView, TaskView

RECENT_RUNS = 20
WIRE_STATUS = {status.value: status.wire for status in RunStatus}


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first, and whether an older page follows."""

    runs: tuple[RunView, ...]
    has_more: bool


class RecentRun(NamedTuple):
    """What a definition's history strip shows of one run (a tuple: pages show 1,000)."""

    id: str
    status: str  # wire status
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class DefinitionSummary:
    """A definition with its most recent runs (newest first)."""

    view: DefinitionView
    recent: tuple[RecentRun, ...]

    @property
    def last(self) -> RecentRun | None:
        """The newest run, if any."""
        return self.recent[0] if self.recent else None


@dataclass(frozen=True)
class RunDetail:
    """A run with its attempts (no entries) and notifications, the definition it ran, each
    attempt's latest value per metadata key and the instance that ran it."""

    run: RunView
    definition: ProcessDefinition
    metadata: dict[str, dict[str, str]]
    instances: dict[str, str | None] = field(default_factory=dict)

    def outputs(self, task_id: str) -> dict[str, str]:
        """The named outputs attempt `task_id` published (metadata `output.<name>`)."""
        named = ((output_name(k), v) for k, v in self.metadata.get(task_id, {}).items())
        return {name: value for name, value in named if name is not None}

    def other_metadata(self, task_id: str) -> dict[str, str]:
        """Attempt `task_id`'s metadata that publishes no output."""
        found = self.metadata.get(task_id, {})
        return {k: v for k, v in found.items() if output_name(k) is None}


@dataclass(frozen=True)
class LogCursor:
    """A position in an attempt's log, in the order the API lists entries."""

    when: datetime
    seq: int
    id: str


@dataclass(frozen=True)
class LogBatch:
    """Entries past a cursor, with their positions, and whether the attempt had ended."""

    entries: tuple[tuple[LogCursor, LogEntryView], ...]
    ended: bool


def run_page(
    definition_name: str | None, statuses: frozenset[str], offset: int, limit: int
) -> RunPage:
    """Runs newest first without attempts, `limit` of them after skipping `offset`."""
    query = Run.select(*RUN_VIEW_FIELDS).order_by(Run.started_at.desc(), Run.id.desc())
    if definition_name:
        query = query.where(Run.definition_name == definition_name)
    if statuses:
        query = query.where(Run.status.in_(sorted(wire_run_statuses(statuses))))
    rows = list(query.offset(offset).limit(limit + 1))
    return RunPage(tuple(run_view(row, (), ()) for row in rows[:limit]), len(rows) > limit)


@dataclass(frozen=True)
class DefinitionPage:
    """One page of definitions by name, and whether another page follows."""

    summaries: tuple[DefinitionSummary, ...]
    has_more: bool


def definition_page(offset: int, limit: int) -> DefinitionPage:
    """`limit` definitions by name after skipping `offset`, each with its last RECENT_RUNS
    runs (one query for all)."""
    found = list(Definition.select().order_by(Definition.name).offset(offset).limit(limit + 1))
    rows = found[:limit]
    recent: dict[str, list[RecentRun]] = defaultdict(list)
    for name, run in _recent_of_each([row.name for row in rows], RECENT_RUNS):
        recent[name].append(run)
    summaries = (DefinitionSummary(definition_view(row), tuple(recent[row.name])) for row in rows)
    return DefinitionPage(tuple(summaries), len(found) > limit)


def _recent_of_each(names: Sequence[str], limit: int) -> list[tuple[str, RecentRun]]:
    """The newest `limit` runs of each of `names`, newest first per name, with their name.

    One statement: a UNION ALL of one index range per name, so its cost follows the
    number of definitions, never the size of the history.
    """
    if not names:
        return []
    branch = (
        "SELECT * FROM (SELECT definition_name, id, status, started_at, ended_at FROM run"
        " WHERE definition_name = %s ORDER BY started_at DESC LIMIT %s) AS r{i}"
    ).replace("%s", db.param)
    sql = " UNION ALL ".join(branch.format(i=i) for i in range(len(names)))
    params = [value for name in names for value in (name, limit)]
    when = Run.started_at.python_value
    return [
        (name, RecentRun(run_id, WIRE_STATUS[status], when(started), when(ended)))
        for name, run_id, status, started, ended in db.execute_sql(sql, params).fetchall()
    ]


def definition_names() -> list[str]:
    """The names of every definition, sorted."""
    return [
        name for (name,) in Definition.select(Definition.name).order_by(Definition.name).tuples()
    ]


def recent_runs(name: str, limit: int) -> tuple[RunView, ...]:
    """The newest `limit` runs of `name`, without attempts."""
    return run_page(name, frozenset(), 0, limit).runs


def run_detail(run_id: str) -> RunDetail:
    """The run `run_id` with its attempts, notifications, definition and latest metadata."""
    row = Run.select(*RUN_VIEW_FIELDS, Run.definition_body).where(Run.id == run_id).get_or_none()
    if row is None:
        raise NotFound("process", run_id)
    attempts = list(
        Task.select(*TASK_VIEW_FIELDS, Task.instance)
        .where(Task.run == run_id)
        .order_by(Task.created_at, Task.attempt)
        .tuples()
    )
    tasks = tuple(TaskView(*t[:-1]) for t in attempts)
    notifications = tuple(delivery_views([run_id]).get(run_id, ()))
    run = run_view(row, tasks, notifications)
    metadata = latest_metadata([t.id for t in tasks])
    instances = {t[0]: t[-1] for t in attempts}
    return RunDetail(run, definition_from_json(row.definition_body), metadata, instances)


def latest_metadata(task_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Per attempt, the newest value of each metadata key it reported."""
    latest: dict[str, dict[str, str]] = defaultdict(dict)
    if task_ids:
        rows = (
            MetadataEntry.select(MetadataEntry.task, MetadataEntry.key, MetadataEntry.value)
            .where(MetadataEntry.task.in_(list(task_ids)))
            .order_by(MetadataEntry.when)
            .tuples()
        )
        for task_id, key, value in rows:
            latest[task_id][key] = value
    return dict(latest)


def log_entries_after(
    task_id: str,
    floor: LogCursor | None,
    since: datetime | None,
    skip: Collection[str],
    limit: int,
    newest: LogCursor | None = None,
) -> LogBatch:
    """Up to `limit` entries of attempt `task_id` in (when, seq, id) order: those past
    `floor`, timed at or after `since`, and not in `skip` (entry ids already sent, which
    must all be past `floor`, timed at or after `since` and not past `newest`).

    `ended` is read before the entries, so a batch that says ended holds everything
    stored up to the attempt's end (its output is stored before the attempt ends).
    A stream polls with what it sent as `skip`: its entries are counted first, and
    only the new ones are read when they all come after `newest` (none was stored
    late with an earlier time); so a poll costs the rows that came since the last.
    """
    ended = attempt_ended(task_id)
    query = LogEntry.select(
        LogEntry.when, LogEntry.seq, LogEntry.id, LogEntry.source, LogEntry.message
    ).where(LogEntry.task == task_id)
    if floor is not None:
        query = query.where(_past(floor))
    if since is not None:
        query = query.where(LogEntry.when >= since)
    if skip:
        unsent = query.count() - len(skip)
        if unsent <= 0:
            return LogBatch((), ended)
        if newest is not None and unsent <= limit:
            tail = _log_batch(query.where(_past(newest)), unsent + 1, skip, ended)
            if len(tail.entries) == unsent:
                return tail
    return _log_batch(query, limit + len(skip), skip, ended, limit)


def _log_batch(
    query: ModelSelect, rows: int, skip: Collection[str], ended: bool, limit: int | None = None
) -> LogBatch:
    """The first `rows` entries of `query` in order, those in `skip` left out (and at most
    `limit` of the others): ended if the attempt had and nothing is left out for `limit`."""
    ordered = query.order_by(LogEntry.when, LogEntry.seq, LogEntry.id).limit(rows)
    entries = tuple(
        (LogCursor(when, seq, entry_id), LogEntryView(entry_id, when, source, message))
        for when, seq, entry_id, source, message in ordered.tuples()
        if entry_id not in skip
    )
    kept = entries if limit is None else entries[:limit]
    return LogBatch(kept, ended and len(entries) == len(kept))


def _past(cursor: LogCursor) -> Expression:
    """The condition of entries after `cursor` in (when, seq, id) order."""
    same_when = LogEntry.when == cursor.when
    return (
        (LogEntry.when > cursor.when)
        | (same_when & (LogEntry.seq > cursor.seq))
        | (same_when & (LogEntry.seq == cursor.seq) & (LogEntry.id > cursor.id))
    )


def attempt_ended(task_id: str) -> bool:
    """Whether attempt `task_id` has ended; NotFound if there is no such attempt."""
    status = Task.select(Task.status).where(Task.id == task_id).scalar()
    if status is None:
        raise NotFound("task", task_id)
    return status in FINAL_TASK
