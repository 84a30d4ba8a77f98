"""Two schedulers on one database: every fire starts one run, overlap is decided once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database

from definitions import definition_to_json
from executor.fake import FakeExecutor
from scheduler import catalog, runs
from scheduler.engine import Engine, SchedulerSettings
from scheduler.errors import Conflict
from scheduler.models import Definition, Run
from tests.scheduler.factories import cron, make_definition

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NAMES = [f"job-{i}" for i in range(12)]


def race(database: Database, work: Callable[[int], object], workers: int = 2) -> list[object]:
    """Run `work(i)` in `workers` threads released at the same instant; collect results."""
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # the race's loser may raise; the test inspects it
            results[i] = exc
        finally:
            database.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def engine() -> Engine:
    """An engine whose clock stands just after T0."""
    settings = SchedulerSettings(public_url="http://127.0.0.1:9")
    return Engine(FakeExecutor(), settings, clock=lambda: T0)


def test_two_schedulers_racing_start_each_fire_exactly_once(database: Database) -> None:
    for name in NAMES:
        catalog.save(make_definition(name=name, schedule=cron("*")), actor="test", now=T0)
    Definition.update(next_fire_at=T0).execute()
    engines = [engine(), engine()]
    race(database, lambda i: engines[i].fire_due(T0 + timedelta(milliseconds=5)))
    per_definition = {
        name: Run.select().where(Run.definition_name == name).count() for name in NAMES
    }
    assert per_definition == dict.fromkeys(NAMES, 1)
    assert {d.next_fire_at for d in Definition.select()} == {T0 + timedelta(minutes=1)}


@pytest.mark.parametrize("action", ["skip", "wait"])
def test_racing_starts_cannot_both_win_the_overlap_decision(
    database: Database, action: str
) -> None:
    catalog.save(make_definition(name="single", overlap_action=action), actor="test", now=T0)
    results = race(
        database,
        lambda i: runs.start_run(
            "single", trigger="schedule", now=T0, scheduled_for=T0 + timedelta(minutes=i)
        ),
        workers=4,
    )
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
    statuses = sorted(r.status for r in Run.select())
    if action == "skip":
        assert statuses == ["running"]  # one started, three dropped
    else:
        assert statuses == ["queued", "running"]  # one started, one waits, two dropped


def test_a_stored_definition_is_never_half_written(database: Database) -> None:
    definition = make_definition(name="atomic")
    catalog.save(definition, actor="test", now=T0)
    assert Definition.get_by_id("atomic").body == definition_to_json(definition)
