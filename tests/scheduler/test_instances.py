"""Several instances on one database: claims, leases, adoption, and the transition table."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from peewee import Database

from executor.fake import FakeExecutor
from scheduler import catalog, instances, runs
from scheduler.engine import Engine, SchedulerSettings
from scheduler.errors import InstanceNameTaken
from scheduler.models import Instance, Task
from scheduler.states import TASK_TRANSITIONS, TaskStatus
from tests.scheduler.factories import make_definition, make_task
from tests.scheduler.test_races import race

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def engine(instance: str, clock: datetime = T0) -> tuple[Engine, FakeExecutor]:
    """An engine of instance `instance` with its own fake executor."""
    fake = FakeExecutor(clock=lambda: clock)
    settings = SchedulerSettings(public_url="http://127.0.0.1:9", instance=instance)
    built = Engine(fake, settings, clock=lambda: clock)
    fake.open(built)
    return built, fake


def waiting_attempts(count: int) -> list[str]:
    """A run of `count` independent tasks, each with one runnable attempt; their ids."""
    tasks = [make_task(f"t{i}") for i in range(count)]
    catalog.save(make_definition(*tasks, name="wide"), actor="test", now=T0)
    runs.start_run("wide", trigger="manual:test", now=T0)
    return [t.id for t in Task.select()]


def test_two_instances_claiming_at_once_claim_each_attempt_once(database: Database) -> None:
    ids = waiting_attempts(12)
    results = race(database, lambda i: runs.claim_for_start(T0, 12, f"i{i}")[0], workers=2)
    claimed = [t.id for result in results for t in result]
    assert sorted(claimed) == sorted(ids)  # every attempt claimed, none twice
    owners = {t.id: t.instance for t in Task.select()}
    for i, result in enumerate(results):
        assert all(owners[t.id] == f"i{i}" for t in result)


def test_a_write_the_table_forbids_changes_nothing(database: Database) -> None:
    [task_id] = waiting_attempts(1)
    assert TaskStatus.RUNNING not in TASK_TRANSITIONS[TaskStatus.RUNNABLE]
    assert not runs.mark_started(task_id, T0, "c1")
    assert Task.get_by_id(task_id).status == TaskStatus.RUNNABLE
    runs.claim_for_start(T0, 1, "a")
    assert runs.mark_started(task_id, T0, "c1")
    assert runs.mark_started(task_id, T0, "c2")  # an adoption refreshes the container only
    stored = Task.get_by_id(task_id)
    assert (stored.status, stored.container_id) == (TaskStatus.RUNNING, "c2")


def test_a_pending_attempt_is_never_marked_running(database: Database) -> None:
    [task_id] = waiting_attempts(1)
    runs.claim_for_start(T0, 1, "a")
    runs.mark_waiting(task_id)
    assert not runs.mark_started(task_id, T0, "late")
    assert Task.get_by_id(task_id).status == TaskStatus.PENDING


def test_a_name_held_by_a_live_instance_is_refused(database: Database) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        Instance.create(
            name="a", holder=f"{instances.socket.gethostname()}/{other.pid}",
            started_at=T0, heartbeat_at=T0,
        )  # fmt: skip
        with pytest.raises(InstanceNameTaken, match="'a' is in use by a live Gnomon instance"):
            instances.register("a", T0 + timedelta(seconds=5), LEASE)
    finally:
        other.kill()
        other.wait()
    instances.register("a", T0 + timedelta(seconds=5), LEASE)  # its process is gone now
    assert Instance.get_by_id("a").holder == instances.holder_id()


def test_an_expired_lease_of_another_host_frees_the_name(database: Database) -> None:
    Instance.create(name="a", holder="elsewhere/1", started_at=T0, heartbeat_at=T0)
    with pytest.raises(InstanceNameTaken):
        instances.register("a", T0 + LEASE - timedelta(seconds=1), LEASE)
    instances.register("a", T0 + LEASE, LEASE)
    assert Instance.get_by_id("a").holder == instances.holder_id()


def test_recovery_at_start_takes_only_this_instances_attempts(database: Database) -> None:
    ids = waiting_attempts(4)
    runs.claim_for_start(T0, 2, "a")
    runs.claim_for_start(T0, 2, "b")
    b, _ = engine("b")
    recovered = {item.spec.task_id for item in b.in_flight()}
    assert recovered == {t.id for t in Task.select().where(Task.instance == "b")}
    assert len(recovered) == 2 and set(ids) > recovered


def test_attempts_of_an_expired_instance_are_adopted_by_one_survivor(database: Database) -> None:
    waiting_attempts(6)
    Instance.create(name="dead", holder="elsewhere/1", started_at=T0, heartbeat_at=T0)
    runs.claim_for_start(T0, 6, "dead")
    later = T0 + LEASE + timedelta(seconds=1)
    survivors = [engine(name, later) for name in ("s0", "s1", "s2")]
    for built, _ in survivors:
        built.register(later)
    race(database, lambda i: survivors[i][0].adopt_ownerless(later), workers=3)
    adopted = [item for _, fake in survivors for item in fake.recovered]
    assert sorted(i.spec.task_id for i in adopted) == sorted(t.id for t in Task.select())
    assert {i.instance for i in adopted} == {"dead"}  # the executor is told whose they were
    # the fake runs none of them: it reports each lost once, and each waits to start again
    assert {t.status for t in Task.select()} == {TaskStatus.PENDING}


def test_a_live_instances_attempts_are_left_alone(database: Database) -> None:
    waiting_attempts(2)
    Instance.create(name="alive", holder="elsewhere/1", started_at=T0, heartbeat_at=T0)
    runs.claim_for_start(T0, 2, "alive")
    survivor, fake = engine("s", T0 + LEASE - timedelta(seconds=1))
    survivor.adopt_ownerless(T0 + LEASE - timedelta(seconds=1))
    assert fake.recovered == []
    assert {t.instance for t in Task.select()} == {"alive"}


def test_the_heartbeat_renews_the_lease(database: Database) -> None:
    built, _ = engine("a")
    built.register(T0)
    built.heartbeat(T0 + timedelta(seconds=1))  # not yet due: a sixth of the lease
    assert Instance.get_by_id("a").heartbeat_at == T0
    built.heartbeat(T0 + timedelta(seconds=6))
    assert Instance.get_by_id("a").heartbeat_at == T0 + timedelta(seconds=6)
