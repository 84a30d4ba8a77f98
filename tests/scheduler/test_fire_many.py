"""Due definitions fired in batches (`runs.fire_many`): each once, under its overlap rule,
however two schedulers race and whichever definition of a batch is bad."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database
from prometheus_client import CollectorRegistry

from executor.fake import FakeExecutor
from scheduler import catalog, runs
from scheduler.engine import FIRE_BATCH, Engine, SchedulerSettings
from scheduler.metrics import SchedulerMetrics
from scheduler.models import Definition, Run, Task
from tests.app.test_bad_rows import break_time_zone
from tests.scheduler.factories import cron, make_definition, make_task
from tests.scheduler.test_races import race

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AT = T0 + timedelta(milliseconds=5)
MANY = FIRE_BATCH * 2 + 17  # three batches, the last one short


def engine(registry: CollectorRegistry | None = None) -> Engine:
    """An engine whose clock stands just after T0."""
    settings = SchedulerSettings(public_url="http://127.0.0.1:9")
    metrics = SchedulerMetrics(registry) if registry is not None else None
    return Engine(FakeExecutor(), settings, clock=lambda: AT, metrics=metrics)


def save_due(names: list[str], **overrides: object) -> None:
    """Store each of `names` firing every minute (two tasks, one after the other), due at T0."""
    tasks = (make_task("extract"), make_task("load", "extract"))
    for name in names:
        definition = make_definition(*tasks, name=name, schedule=cron("*"), **overrides)
        catalog.save(definition, actor="test", now=T0 - timedelta(minutes=1))
    Definition.update(next_fire_at=T0).where(Definition.name.in_(names)).execute()


def runs_of(name: str) -> list[Run]:
    """The runs of definition `name`, oldest fire first."""
    return list(Run.select().where(Run.definition_name == name).order_by(Run.scheduled_for))


def assert_fired_once(names: list[str]) -> None:
    """Each of `names` made one running run for T0, with its first attempt, and moved on."""
    fired = Run.select(Run.definition_name, Run.scheduled_for, Run.status)
    assert sorted(fired.where(Run.definition_name.in_(names)).tuples()) == sorted(
        (name, T0, "running") for name in names
    )
    attempts = Task.select(Task.definition_name, Task.task_name, Task.attempt)
    assert sorted(attempts.where(Task.definition_name.in_(names)).tuples()) == sorted(
        (name, "extract", 1) for name in names
    )
    moved = Definition.select(Definition.next_fire_at).where(Definition.name.in_(names))
    assert {row.next_fire_at for row in moved} == {T0 + timedelta(minutes=1)}


def test_two_schedulers_racing_fire_each_of_many_due_definitions_once(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"job-{i:04d}" for i in range(MANY)]
    save_due(names)
    engines = [engine(), engine()]
    with caplog.at_level(logging.WARNING, logger="scheduler.engine"):
        race(database, lambda i: engines[i].fire_due(AT))
    assert_fired_once(names)
    # the batches decided it: none met the unique key and fell back to firing alone
    assert not [r for r in caplog.records if "clashed" in r.getMessage()]


def test_fires_planned_from_a_read_made_before_they_were_made_are_not_made_again(
    database: Database,
) -> None:
    names = [f"job-{i:04d}" for i in range(FIRE_BATCH + 1)]
    save_due(names)
    fires = [
        runs.Fire(row.name, T0, row.body, T0 + timedelta(minutes=1), (T0,))
        for row in Definition.select()
    ]
    made, rest = runs.fire_many(fires, AT)
    assert (len(made), rest) == (len(names), [])
    assert runs.fire_many(fires, AT) == (dict.fromkeys(names), [])
    assert_fired_once(names)


def start_manually(name: str, times: int) -> None:
    """Trigger `times` runs of `name` (the first runs, the others queue)."""
    for _ in range(times):
        runs.start_run(name, trigger="manual:test", now=T0 - timedelta(seconds=30))


# definition: (overlap_action, runs already active (1: running; 2: running and queued),
#              statuses of its runs once the batch has fired, sorted)
OVERLAP = {
    "idle": ("skip", 0, ["running"]),
    "skip": ("skip", 1, ["running"]),
    "wait": ("wait", 1, ["queued", "running"]),
    "wait-full": ("wait", 2, ["queued", "running"]),
    "allow": ("allow", 1, ["running", "running"]),
    "terminate": ("terminate", 1, ["failed", "queued"]),  # its waiting attempt failed at once
}


def test_each_definition_of_a_batch_keeps_its_overlap_rule(database: Database) -> None:
    for name, (action, active, _) in OVERLAP.items():
        save_due([name], overlap_action=action)
        start_manually(name, active)
    registry = CollectorRegistry()
    engine(registry).fire_due(AT)

    statuses = {name: sorted(r.status for r in runs_of(name)) for name in OVERLAP}
    assert statuses == {name: expected for name, (_, _, expected) in OVERLAP.items()}
    (killed,) = [r for r in runs_of("terminate") if r.scheduled_for is None]
    assert killed.kill_requested_at == AT
    for name in ("skip", "wait-full"):
        skipped = {"definition": name, "reason": "overlap"}
        assert registry.get_sample_value("gnomon_fires_skipped_total", skipped) == 1
    # a fire makes attempts only for a run it starts
    scheduled = {r.id: r.status for r in Run.select().where(Run.scheduled_for == T0)}
    with_attempts = {t.run_id for t in Task.select() if t.run_id in scheduled}
    assert with_attempts == {run_id for run_id, s in scheduled.items() if s == "running"}


def test_catch_up_runs_of_a_batch_run_one_after_another(database: Database) -> None:
    save_due(["late"], misfire_policy="run_all")
    save_due(["plain"])
    now = T0 + timedelta(minutes=3, seconds=1)
    later = engine()
    later.clock = lambda: now
    later.fire_due(now)
    assert [(r.scheduled_for - T0, r.status) for r in runs_of("late")] == [
        (timedelta(minutes=m), "running" if m == 0 else "queued") for m in range(4)
    ]
    assert [r.status for r in runs_of("plain")] == ["running"]
    assert Definition.get_by_id("late").next_fire_at == T0 + timedelta(minutes=4)


def require_parameter(name: str) -> None:
    """A required parameter without a value: a scheduled run of it cannot be made."""
    row = Definition.get_by_id(name)
    body = json.loads(row.body)
    body["parameters"] = [{"name": "region", "required": True}]
    Definition.update(body=json.dumps(body)).where(Definition.name == name).execute()


def clash(name: str) -> None:
    """A run already stands for the fire: inserting the batch's run meets the unique key."""
    runs.start_run(name, trigger="schedule", now=T0 - timedelta(seconds=1), scheduled_for=T0)


@pytest.mark.parametrize(
    "spoil", [break_time_zone, require_parameter, clash], ids=["time_zone", "parameter", "clash"]
)
def test_a_bad_definition_mid_batch_loses_and_repeats_none_of_the_others(
    database: Database, spoil: Callable[[str], None]
) -> None:
    names = [f"job-{i:04d}" for i in range(FIRE_BATCH + 30)]
    save_due(names)
    bad = names[FIRE_BATCH // 2]
    spoil(bad)
    before = {r.id for r in runs_of(bad)}
    registry = CollectorRegistry()
    scheduler = engine(registry)

    scheduler.fire_due(AT)
    scheduler.fire_due(AT)  # tried again later, not at once: nothing more now

    good = [name for name in names if name != bad]
    assert_fired_once(good)
    assert {r.id for r in runs_of(bad)} == before
    row = Definition.get_by_id(bad)
    assert row.next_fire_at == T0 and row.schedule_error
    errors = registry.get_sample_value("gnomon_schedule_errors_total", {"definition": bad})
    assert errors == 1


def test_a_paused_definition_of_a_batch_does_not_fire(database: Database) -> None:
    names = ["on-1", "paused", "on-2"]
    save_due(names)
    Definition.update(paused=True).where(Definition.name == "paused").execute()
    engine().fire_due(AT)
    assert [r.definition_name for r in Run.select().order_by(Run.definition_name)] == [
        "on-1",
        "on-2",
    ]
    assert Definition.get_by_id("paused").next_fire_at == T0


def test_a_fire_whose_row_was_paused_after_the_pass_read_it_is_not_made(
    database: Database,
) -> None:
    save_due(["job"])
    row = Definition.get_by_id("job")
    fire = runs.Fire(row.name, T0, row.body, T0 + timedelta(minutes=1), (T0,))
    Definition.update(paused=True).where(Definition.name == "job").execute()
    assert runs.fire_many([fire], AT) == ({"job": None}, [])
    assert Run.select().count() == 0


def test_a_fire_whose_definition_changed_after_the_pass_read_it_is_left_to_fire_alone(
    database: Database,
) -> None:
    save_due(["job"])
    row = Definition.get_by_id("job")
    stale = runs.Fire(row.name, T0, row.body, T0 + timedelta(minutes=1), (T0,))
    save_due(["job"], overlap_action="allow")  # a new version, due at the same time
    assert runs.fire_many([stale], AT) == ({}, [stale])
    assert (Run.select().count(), Definition.get_by_id("job").next_fire_at) == (0, T0)
