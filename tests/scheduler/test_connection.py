"""Background work survives a broken database connection: the next unit connects afresh."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from peewee import Database, OperationalError

from executor.fake import FakeExecutor, Script
from scheduler import catalog, runs
from scheduler.engine import Engine, SchedulerSettings
from scheduler.models import Task
from tests.scheduler.factories import make_definition

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def engine() -> tuple[Engine, FakeExecutor]:
    """An engine on the fake executor, at T0."""
    fake = FakeExecutor(clock=lambda: T0, default_script=Script(duration_seconds=None))
    built = Engine(fake, SchedulerSettings(public_url="http://127.0.0.1:9"), clock=lambda: T0)
    fake.open(built)
    return built, fake


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_pass_after_the_connection_was_cut_connects_again(database: Database) -> None:
    built, fake = engine()
    catalog.save(make_definition(name="job"), actor="test", now=T0)
    built.tick(T0)
    _cut_from_outside(database)

    with pytest.raises(OperationalError):
        built.tick(T0)  # meets the dead connection, and drops it
    runs.start_run("job", trigger="manual:test", now=T0)
    built.tick(T0)  # a fresh connection

    assert [t.status for t in Task.select()] == ["starting"]
    assert len(fake.starts) == 1


def _cut_from_outside(database: Database) -> None:
    """Terminate this thread's server session from another connection."""
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    other = type(database)(database.database, **database.connect_params)
    other.execute_sql("SELECT pg_terminate_backend(%s)", (pid,))
    other.close()


def test_an_attempt_claimed_by_a_pass_that_failed_waits_again(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, fake = engine()
    catalog.save(make_definition(name="job"), actor="test", now=T0)
    runs.start_run("job", trigger="manual:test", now=T0)
    real_spec_for = built.spec_for

    def database_gone(task: Task) -> object:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(built, "spec_for", database_gone)
    with pytest.raises(OperationalError):
        built.tick(T0)
    assert [t.status for t in Task.select()] == ["starting"]  # claimed, never handed over

    monkeypatch.setattr(built, "spec_for", real_spec_for)
    built.tick(T0)  # sent back, claimed again, started
    built.tick(T0)
    assert len(fake.starts) == 1
    fake.advance(0)
    assert [t.status for t in Task.select()] == ["running"]
