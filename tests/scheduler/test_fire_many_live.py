"""Two real `gnomon serve` processes on one real PostgreSQL fire hundreds of definitions due
at one instant, one of them killed (-9) at a random moment of its pass: each fire once."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from peewee import Database

from scheduler import catalog
from scheduler.engine import FIRE_BATCH
from scheduler.models import Definition, Run, Task
from scheduler.service import utc_now
from tests.scheduler.factories import cron, make_definition, make_task
from tests.support.live import wait_for
from tests.support.service import Service, instance_pair

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

COUNT = FIRE_BATCH + 50  # two batches


@pytest.fixture
def database_url(own_postgres_url: str) -> str:
    """The instances' database: one of its own on the suite's PostgreSQL."""
    return own_postgres_url


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    """Instances `a` and `b` on that database, with the in-memory executor, not started."""
    with instance_pair(database_url, tmp_path, EXECUTOR="fake") as services:
        yield services


def test_two_instances_one_killed_mid_pass_fire_each_due_definition_once(
    database: Database, pair: tuple[Service, Service]
) -> None:
    seed = int(os.environ.get("GNOMON_FAULT_SEED") or random.randrange(2**32))
    print(f"fault injection seed: {seed} (GNOMON_FAULT_SEED={seed} replays it)")
    names = [f"job-{i:04d}" for i in range(COUNT)]
    tasks = (make_task("extract"), make_task("load", "extract"))
    for name in names:
        definition = make_definition(*tasks, name=name, schedule=cron("*"))
        catalog.save(definition, actor="test", now=utc_now())
    Definition.update(next_fire_at=utc_now() + timedelta(days=1)).execute()
    victim = pair[0]
    for service in pair:
        service.start()

    due = (utc_now() + timedelta(seconds=1)).replace(microsecond=0)
    Definition.update(next_fire_at=due).execute()
    until_kill = (due - utc_now()).total_seconds() + random.Random(seed).uniform(0, 1.0)
    time.sleep(max(0.0, until_kill))  # the random moment of the kill, not a wait
    victim.crash()
    victim.start()

    fired = Run.select().where(Run.scheduled_for == due)
    wait_for(lambda: fired.count() == COUNT, 120, "every due definition to fire")
    assert sorted(run.definition_name for run in fired) == names
    attempts = Task.select().where(Task.run.in_([run.id for run in fired]))
    assert sorted((t.definition_name, t.task_name) for t in attempts) == [
        (name, "extract") for name in names
    ]
    assert Definition.select().where(Definition.next_fire_at <= due).count() == 0
    assert Definition.select().where(Definition.schedule_error.is_null(False)).count() == 0
    for service in pair:  # every batch decided alone: none fell back on the unique key
        assert "clashed" not in service.log.read_text()
