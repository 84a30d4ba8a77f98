"""The run engine over a real database with the in-memory executor and an injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database
from prometheus_client import CollectorRegistry

from definitions import ContinuousSchedule, EnvironmentVariable
from executor.fake import FakeExecutor, Script
from scheduler import catalog, queries, runs
from scheduler.engine import Engine, SchedulerSettings
from scheduler.metrics import SchedulerMetrics
from scheduler.models import Definition, Run, Task
from scheduler.tokens import server_secret, token_matches
from scheduler.views import RunFilter
from tests.scheduler.factories import cron, make_definition, make_task

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    """An engine, its fake executor, their clock and metrics."""

    clock: Clock
    fake: FakeExecutor
    engine: Engine
    registry: CollectorRegistry

    def save(self, *args: object, **kwargs: object) -> str:
        """Save a definition made by make_definition(*args, **kwargs); return its name."""
        definition = make_definition(*args, **kwargs)
        catalog.save(definition, actor="test", now=self.clock())
        return definition.process_definition_name

    def trigger(self, name: str = "job", task: str | None = None) -> str:
        """Start a run now."""
        run_id, changes = runs.start_run(
            name, trigger="manual:test", now=self.clock(), only_task=task
        )
        self.engine.apply(changes)
        return run_id

    def step(self) -> None:
        """One pass, then let the fake start and end whatever is due now."""
        self.engine.tick(self.clock())
        self.fake.advance(0)

    def settle(self, steps: int = 10) -> None:
        """Several passes, as the loop would make them."""
        for _ in range(steps):
            self.step()

    def attempts(self, run_id: str) -> list[tuple[str, int, str]]:
        """(task, attempt, status) of a run, in creation order."""
        query = Task.select().where(Task.run == run_id).order_by(Task.created_at, Task.attempt)
        return [(t.task_name, t.attempt, t.status) for t in query]

    def metric(self, name: str, **labels: str) -> float:
        """The value of a sample of the engine's metrics."""
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def world(database: Database) -> World:
    """A fresh engine at T0 with room for two containers."""
    clock = Clock(T0)
    fake = FakeExecutor(clock=clock)
    registry = CollectorRegistry()
    settings = SchedulerSettings(
        public_url="http://127.0.0.1:8080", max_running_containers=2, tick_seconds=600
    )
    engine = Engine(fake, settings, clock, SchedulerMetrics(registry))
    fake.open(engine)
    return World(clock, fake, engine, registry)


def run_status(run_id: str) -> str:
    """The stored status of a run."""
    return Run.get_by_id(run_id).status


def test_a_chain_runs_to_success_one_step_at_a_time(world: World) -> None:
    world.save(make_task("a"), make_task("b", "a"))
    run_id = world.trigger()
    world.step()
    assert world.attempts(run_id) == [("a", 1, "succeeded"), ("b", 1, "runnable")]
    world.step()
    assert world.attempts(run_id)[-1] == ("b", 1, "succeeded")
    assert run_status(run_id) == "succeeded"
    assert world.metric("gnomon_runs_finished_total", definition="job", status="succeeded") == 1


def test_a_retry_waits_out_its_backoff_on_the_clock(world: World) -> None:
    world.save(make_task("a", max_attempts=2, backoff_base_seconds=30))
    world.fake.script("a", Script(exit_code=1))
    run_id = world.trigger()
    world.step()
    assert world.attempts(run_id) == [("a", 1, "failed"), ("a", 2, "submitted")]
    assert world.engine.next_wake(world.clock()) == T0 + timedelta(seconds=30)
    world.clock.advance(29)
    world.step()
    assert world.attempts(run_id)[-1] == ("a", 2, "submitted")
    world.clock.advance(1)
    world.step()
    assert world.attempts(run_id)[-1] == ("a", 2, "failed")
    assert run_status(run_id) == "failed"


def test_attempts_over_the_container_cap_wait_as_pending(world: World) -> None:
    world.save(*(make_task(n) for n in "abcd"))
    world.fake.default_script = Script(duration_seconds=10)
    run_id = world.trigger()
    world.engine.tick(world.clock())
    assert sorted(s for _, _, s in world.attempts(run_id)) == [
        "pending",
        "pending",
        "starting",
        "starting",
    ]
    assert world.metric("gnomon_attempts_pending") == 2
    world.fake.advance(10)
    world.settle(3)
    world.fake.advance(10)
    assert run_status(run_id) == "succeeded"


def test_an_unreachable_engine_leaves_attempts_pending_not_failed(world: World) -> None:
    world.save()
    world.fake.engine_down = "socket gone"
    run_id = world.trigger()
    world.settle(3)
    assert world.attempts(run_id) == [("main", 1, "pending")]
    world.fake.engine_down = None
    world.step()
    assert world.attempts(run_id) == [("main", 1, "succeeded")]


def test_a_cron_schedule_fires_at_its_time_with_its_lag_measured(world: World) -> None:
    world.save(schedule=cron("0", "*"))
    assert Definition.get_by_id("job").next_fire_at == T0 + timedelta(hours=1)
    world.clock.advance(3600 - 1)
    world.step()
    assert Run.select().count() == 0
    world.clock.advance(1.25)
    world.step()
    (run,) = Run.select()
    assert (run.trigger, run.scheduled_for) == ("schedule", T0 + timedelta(hours=1))
    assert Definition.get_by_id("job").next_fire_at == T0 + timedelta(hours=2)
    assert world.metric("gnomon_schedule_lag_seconds_sum") == pytest.approx(0.25)


def test_fires_missed_while_down_are_caught_up_once(world: World) -> None:
    world.save(schedule=cron("0", "*"))
    world.clock.advance(3.5 * 3600)  # the service was down through three fire times
    world.step()
    (run,) = Run.select()
    assert run.scheduled_for == T0 + timedelta(hours=3)
    assert world.metric("gnomon_fires_skipped_total", definition="job", reason="misfire") == 2


def test_a_paused_definition_never_fires_on_schedule(world: World) -> None:
    world.save(schedule=cron("0", "*"), paused=True)
    world.clock.advance(2 * 3600)
    world.settle(2)
    assert Run.select().count() == 0


def test_a_continuous_schedule_runs_again_buffer_seconds_after_the_end(world: World) -> None:
    world.save(schedule=ContinuousSchedule(buffer_seconds=30))
    world.fake.default_script = Script(duration_seconds=5)
    world.step()
    (first,) = Run.select()
    world.fake.advance(5)
    world.step()
    assert run_status(first.id) == "succeeded"
    ended = Run.get_by_id(first.id).ended_at
    assert Definition.get_by_id("job").next_fire_at == ended + timedelta(seconds=30)
    world.clock.now = ended + timedelta(seconds=30)
    world.step()
    assert Run.select().count() == 2


def test_kill_stops_live_containers_and_fails_waiting_attempts(world: World) -> None:
    world.save(make_task("a"), make_task("b"), make_task("c"))
    world.fake.default_script = Script(duration_seconds=60)
    run_id = world.trigger()
    world.step()
    world.engine.apply(runs.kill_run(run_id, world.clock()))
    assert {reason for _, reason in world.fake.kills} == {"killed: run was killed"}
    assert len(world.fake.kills) == 2
    world.step()
    assert run_status(run_id) == "failed"
    assert {s for _, _, s in world.attempts(run_id)} == {"failed"}


def test_recovery_fails_attempts_whose_container_is_gone_and_restarts_unstarted_ones(
    world: World,
) -> None:
    world.save(make_task("a"), make_task("b"))
    run_id = world.trigger()
    a, b = Task.select().where(Task.run == run_id).order_by(Task.task_name)
    Task.update(status="running", started_at=T0).where(Task.id == a.id).execute()
    Task.update(status="starting").where(Task.id == b.id).execute()
    world.fake.recover(world.engine.in_flight())
    assert Task.get_by_id(a.id).reason == "container lost"
    assert Task.get_by_id(b.id).status == "pending"
    world.step()
    assert Task.get_by_id(b.id).status == "succeeded"


def test_a_container_is_told_its_identity_token_and_variables(world: World) -> None:
    env = (EnvironmentVariable("COLOUR", "blue"), EnvironmentVariable("GNOMON_TASK_ID", "forged"))
    world.save(make_task("main", environment_variables=env))
    run_id = world.trigger()
    world.engine.tick(world.clock())
    (spec,) = world.fake.starts
    assert spec.environment["COLOUR"] == "blue"
    assert spec.environment["GNOMON_TASK_ID"] == spec.task_id != "forged"
    assert spec.environment["GNOMON_PROCESS_ID"] == run_id
    assert spec.environment["GNOMON_ATTEMPT"] == "1"
    assert spec.environment["GNOMON_URL"] == "http://127.0.0.1:8080"
    assert token_matches(server_secret(), spec.task_id, spec.environment["GNOMON_TASK_TOKEN"])


def test_a_report_is_refused_after_the_attempt_ended(world: World) -> None:
    world.save(make_task("main", require_explicit_success=True))
    world.fake.default_script = Script(duration_seconds=5)
    run_id = world.trigger()
    world.step()
    (task,) = Task.select().where(Task.run == run_id)
    runs.record_report(task.id, runs.TaskStatus.SUCCEEDED, "task", world.clock())
    with pytest.raises(runs.Conflict):
        runs.record_report(task.id, runs.TaskStatus.FAILED, "task", world.clock())
    world.fake.advance(5)
    assert Task.get_by_id(task.id).status == "succeeded"
    with pytest.raises(runs.Conflict):
        runs.record_report(task.id, runs.TaskStatus.SUCCEEDED, "task", world.clock())


def test_a_scheduled_run_carries_its_due_and_created_times_and_the_fire_lag(
    world: World,
) -> None:
    world.save(schedule=cron("0", "*"))
    world.clock.advance(3600 + 0.5)
    world.step()

    (view,) = queries.list_runs(RunFilter())
    assert view.due_at == T0 + timedelta(hours=1)
    assert view.created_at == T0 + timedelta(hours=1, seconds=0.5)
    assert world.metric("gnomon_fire_lag_seconds_count") == 1
    assert world.metric("gnomon_fire_lag_seconds_sum") == pytest.approx(0.5)


def test_a_manual_run_has_no_due_time_and_no_fire_lag(world: World) -> None:
    world.save()
    run_id = world.trigger()

    view = queries.get_run(run_id)
    assert (view.due_at, view.created_at) == (None, T0)
    assert world.metric("gnomon_fire_lag_seconds_count") == 0
