"""Retention: which runs and audit events a prune deletes, with everything of theirs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database, SqliteDatabase
from prometheus_client import CollectorRegistry

from definitions import definition_to_json
from executor.fake import FakeExecutor
from scheduler import catalog, retention
from scheduler.database import SQLITE_PRAGMAS
from scheduler.engine import SchedulerSettings
from scheduler.models import AuditEvent, LogEntry, MetadataEntry, Run, Task, TaskReport
from scheduler.retention import RetentionSettings, prune
from scheduler.service import Scheduler
from tests.scheduler.factories import make_definition
from tests.support.live import wait_for

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BODY = definition_to_json(make_definition())


def add_run(name: str, days_ago: float, status: str = "succeeded") -> str:
    """A run of `name` that started (and, unless running, ended) `days_ago`, with one attempt
    that has a log entry, a metadata entry and a report."""
    started = NOW - timedelta(days=days_ago)
    ended = None if status == "running" else started + timedelta(minutes=1)
    run = Run.create(id=str(uuid.uuid4()), definition_name=name, definition_version=1,
                     definition_body=BODY, status=status, started_at=started, ended_at=ended,
                     trigger="schedule")  # fmt: skip
    task = Task.create(id=str(uuid.uuid4()), run=run.id, definition_name=name, task_name="main",
                       attempt=1, status="succeeded", created_at=started)  # fmt: skip
    LogEntry.create(id=str(uuid.uuid4()), task=task.id, when=started, source="stdout", message="x")
    MetadataEntry.create(id=str(uuid.uuid4()), task=task.id, when=started, key="k", value="v")
    TaskReport.create(task=task.id, outcome="succeeded", reported_at=started)
    return run.id


def surviving(ids: list[str]) -> list[str]:
    """Which of `ids` are still stored."""
    kept = {r for (r,) in Run.select(Run.id).where(Run.id.in_(ids)).tuples()}
    return [i for i in ids if i in kept]


def test_old_finished_runs_go_with_their_attempts_and_entries(database: Database) -> None:
    old = [add_run("job", days_ago=60 - i) for i in range(7)]  # oldest first
    running = add_run("job", days_ago=90, status="running")
    recent = add_run("job", days_ago=1)
    pruned = prune(RetentionSettings(days=30, keep_runs=3, batch=2, pause_seconds=0), NOW)
    # kept: the newest three (recent, old[6], old[5]) and the running one, however old
    assert surviving([*old, running, recent]) == [old[5], old[6], running, recent]
    assert pruned == {"runs": 5, "attempts": 5, "log_entries": 5, "metadata_entries": 5}
    assert Task.select().count() == LogEntry.select().count() == 4
    assert MetadataEntry.select().count() == TaskReport.select().count() == 4


def test_the_newest_runs_stay_whatever_their_age(database: Database) -> None:
    ancient = [add_run("job", days_ago=400 + i) for i in range(3)]
    assert prune(RetentionSettings(days=30, keep_runs=3), NOW) == {}
    assert surviving(ancient) == ancient


def test_a_definition_setting_overrides_the_service_setting(database: Database) -> None:
    catalog.save(make_definition(name="forever", retention_days=0), actor="t", now=NOW)
    catalog.save(make_definition(name="short", retention_days=5), actor="t", now=NOW)
    forever = add_run("forever", days_ago=100)
    short = add_run("short", days_ago=10)
    deleted = add_run("deleted-definition", days_ago=100)
    default = add_run("deleted-definition", days_ago=10)
    prune(RetentionSettings(days=30, keep_runs=0), NOW)
    assert surviving([forever, short, deleted, default]) == [forever, default]
    prune(RetentionSettings(days=0, keep_runs=0), NOW)  # service off: only `short` prunes
    assert surviving([forever, default]) == [forever, default]


def test_audit_events_have_their_own_retention(database: Database) -> None:
    for days_ago in (400, 100, 10):
        catalog.audit("alice", "trigger", "job", None, NOW - timedelta(days=days_ago))
    settings = RetentionSettings(days=30, audit_days=365, batch=1, pause_seconds=0)
    assert prune(settings, NOW) == {"audit_events": 1}
    assert AuditEvent.select().count() == 2
    assert prune(RetentionSettings(days=30), NOW) == {}  # 0: kept forever


def test_the_scheduler_counts_what_it_pruned(database: Database) -> None:
    add_run("job", days_ago=100)
    registry = CollectorRegistry()
    settings = SchedulerSettings(
        public_url="http://127.0.0.1:9", retention=RetentionSettings(days=30, keep_runs=0)
    )
    scheduler = Scheduler(FakeExecutor(clock=lambda: NOW), settings, registry=registry)
    assert scheduler.prune(NOW) == NOW + timedelta(hours=1)
    sample = registry.get_sample_value
    assert sample("gnomon_retention_pruned_total", {"kind": "runs"}) == 1
    assert sample("gnomon_retention_pruned_total", {"kind": "log_entries"}) == 1


def test_a_started_scheduler_prunes_at_once_and_stops_cleanly(database: Database) -> None:
    old = add_run("job", days_ago=100)
    settings = SchedulerSettings(
        public_url="http://127.0.0.1:9", retention=RetentionSettings(days=30, keep_runs=0)
    )
    scheduler = Scheduler(FakeExecutor(), settings)
    scheduler.start()
    try:
        wait_for(lambda: not surviving([old]), 10, "the first retention pass")
    finally:
        scheduler.stop()


def test_a_run_with_a_long_log_makes_a_batch_of_its_own(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    short, long, *rest = [add_run("job", days_ago=60 - i) for i in range(4)]  # oldest first
    (attempt,) = Task.select(Task.id).where(Task.run == long).tuples()
    for n in range(4):
        LogEntry.create(id=str(uuid.uuid4()), task=attempt[0], when=NOW, source="o", message=str(n))
    batches: list[list[str]] = []
    delete = retention._delete_runs
    monkeypatch.setattr(retention, "_delete_runs", lambda ids: batches.append(ids) or delete(ids))

    settings = RetentionSettings(
        days=30, keep_runs=0, batch=10, batch_log_entries=3, pause_seconds=0
    )
    pruned = prune(settings, NOW)

    # 1 entry, then 5 (over 3, but alone in its batch), then 1 + 1
    assert batches == [[short], [long], rest]
    assert pruned["log_entries"] == 8
    if isinstance(database, SqliteDatabase):  # the connection checkpoints by itself again
        checkpoint = database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert checkpoint == SQLITE_PRAGMAS["wal_autocheckpoint"]
