"""Retention: prune finished runs (with their attempts, log entries, metadata and reports)
and old audit events, in small batches, each its own short write transaction.

The newest `keep_runs` runs of each definition stay whatever their age. A definition's
`retention_days` overrides the service's `days`; 0 keeps its runs forever. A run goes
whole or not at all: a batch is at most `batch` runs and, beyond its first run, at most
`batch_log_entries` log entries, so that a run with a long log makes a batch of its own
instead of holding the write lock for the whole batch's logs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import SqliteDatabase

from definitions import definition_from_json
from scheduler.models import (
    AuditEvent,
    Definition,
    LogEntry,
    MetadataEntry,
    Run,
    Task,
    TaskReport,
    db,
)
from scheduler.states import RunStatus
from scheduler.tx import write_transaction

log = logging.getLogger(__name__)

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


@dataclass(frozen=True)
class RetentionSettings:
    """How long history is kept; 0 days means forever."""

    days: int = 0
    keep_runs: int = 10
    audit_days: int = 0
    batch: int = 50
    interval_seconds: float = 3600.0
    pause_seconds: float = 0.05  # between batches, so that waiting writers get their turn
    batch_log_entries: int = 5000  # log entries a batch deletes, beyond its first run's


def _pause(settings: RetentionSettings) -> None:
    """Let other writers in: the SQLite writer lock is not fair, so a pruner that took it
    again at once could hold callbacks and PUTs off for many batches. On SQLite, first
    copy what the batch wrote back from the write-ahead log (see `_own_checkpoints`)."""
    if isinstance(db.obj, SqliteDatabase):
        db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
    time.sleep(settings.pause_seconds)


@contextmanager
def _own_checkpoints() -> Iterator[None]:
    """On SQLite, while pruning, this connection's commits do not checkpoint the WAL.

    A commit that fills the WAL past its threshold checkpoints it there and then, with
    fsyncs, while this process's writer lock (`write_transaction`) is still held; a
    prune's batches fill it quickly. `_pause` checkpoints instead, once the lock is free
    (a passive checkpoint waits for no one and no one waits for it)."""
    if not isinstance(db.obj, SqliteDatabase):
        yield
        return
    pages = db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.execute_sql("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        db.execute_sql(f"PRAGMA wal_autocheckpoint = {int(pages)}")


def prune(settings: RetentionSettings, now: datetime) -> Counter[str]:
    """Delete what has outlived its retention; the number of rows deleted, by kind."""
    pruned: Counter[str] = Counter()
    with _own_checkpoints():
        for name, days in _run_policies(settings):
            for ids in _expired_batches(name, now - timedelta(days=days), settings):
                with write_transaction():
                    pruned.update(_delete_runs(ids))
                _pause(settings)
        if settings.audit_days:
            cutoff = now - timedelta(days=settings.audit_days)
            while deleted := _delete_audit_batch(cutoff, settings.batch):
                pruned["audit_events"] += deleted
                _pause(settings)
    if pruned:
        log.info("retention pruned %s", ", ".join(f"{n} {k}" for k, n in sorted(pruned.items())))
    return pruned


def _run_policies(settings: RetentionSettings) -> Iterator[tuple[str, int]]:
    """(definition name, days) of every definition with runs whose runs expire.

    A deleted definition's runs follow the service's setting.
    """
    own = {
        name: definition_from_json(body).retention_days
        for name, body in Definition.select(Definition.name, Definition.body).tuples()
    }
    # A list, not a cursor: no read may stay open while the batches write.
    for (name,) in list(Run.select(Run.definition_name).distinct().tuples()):
        days = own.get(name)
        days = settings.days if days is None else days
        if days > 0:
            yield name, days


def _expired_batches(
    name: str, cutoff: datetime, settings: RetentionSettings
) -> Iterator[list[str]]:
    """Ids of `name`'s finished runs that ended before `cutoff`, a batch at a time, oldest
    first; the newest `keep_runs` runs are never among them."""
    while True:
        query = Run.select(Run.id).where(
            (Run.definition_name == name)
            & (Run.started_at < cutoff)
            & (Run.ended_at < cutoff)
            & Run.status.in_(FINISHED)
        )
        if settings.keep_runs:
            oldest_kept = (
                Run.select(Run.started_at)
                .where(Run.definition_name == name)
                .order_by(Run.started_at.desc())
                .offset(settings.keep_runs - 1)
                .limit(1)
                .scalar()
            )
            if oldest_kept is None:
                return
            query = query.where(Run.started_at < oldest_kept)
        ids = [
            run_id for (run_id,) in query.order_by(Run.started_at).limit(settings.batch).tuples()
        ]
        if not ids:
            return
        yield _within_budget(ids, settings.batch_log_entries)


def _within_budget(ids: list[str], budget: int) -> list[str]:
    """The first of `ids` (oldest first), as many as have at most `budget` log entries
    together, and at least one. Counts stop at `budget` an attempt, so that a long log is
    not read through to learn that it is long."""
    marks = ", ".join(["%s"] * len(ids))
    sql = CAPPED_LOG_COUNTS.format(ids=marks).replace("%s", db.param)
    counts: Counter[str] = Counter()
    for run_id, count in db.execute_sql(sql, [budget + 1, *ids]).fetchall():
        counts[run_id] += count
    taken, total = ids[:1], counts[ids[0]]
    for run_id in ids[1:]:
        total += counts[run_id]
        if total > budget:
            break
        taken.append(run_id)
    return taken


CAPPED_LOG_COUNTS = """
SELECT t.run_id, (
    SELECT COUNT(*) FROM (SELECT 1 AS one FROM log_entry AS e WHERE e.task_id = t.id LIMIT %s) AS n
) FROM task AS t WHERE t.run_id IN ({ids})
"""


def _delete_runs(ids: list[str]) -> Counter[str]:
    """Delete runs and everything of their attempts, children first."""
    attempts = Task.select(Task.id).where(Task.run.in_(ids))
    counts: Counter[str] = Counter()
    counts["log_entries"] = LogEntry.delete().where(LogEntry.task.in_(attempts)).execute()
    counts["metadata_entries"] = (
        MetadataEntry.delete().where(MetadataEntry.task.in_(attempts)).execute()
    )
    TaskReport.delete().where(TaskReport.task.in_(attempts)).execute()
    counts["attempts"] = Task.delete().where(Task.run.in_(ids)).execute()
    counts["runs"] = Run.delete().where(Run.id.in_(ids)).execute()
    return counts


def _delete_audit_batch(cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` audit events older than `cutoff`; how many were."""
    with write_transaction():
        ids = [i for (i,) in AuditEvent.select(AuditEvent.id).where(AuditEvent.at < cutoff)
               .order_by(AuditEvent.id).limit(batch).tuples()]  # fmt: skip
        return AuditEvent.delete().where(AuditEvent.id.in_(ids)).execute() if ids else 0
