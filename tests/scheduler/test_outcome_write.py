"""An attempt's outcome survives a database that refuses writes for a while (a real SQLite lock)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from peewee import OperationalError

from executor import Ending, Outcome
from executor.fake import FakeExecutor, Script
from scheduler import catalog, runs
from scheduler.database import migrate, open_database
from scheduler.engine import Engine, SchedulerSettings
from scheduler.models import Run, Task
from tests.scheduler.factories import make_definition
from tests.scheduler.test_e2e import definition, task
from tests.support.live import live_service, wait_for

LOCK_SECONDS = 15
E2E_LOCK_SECONDS = 25  # past the engine's own waits: the outcome write is refused
HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


class Lock:
    """Another process holding SQLite's write lock on a database file for a while."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def released(self) -> bool:
        """Whether the other process has committed and gone."""
        return self.process.poll() is not None

    def close(self) -> None:
        """Stop the holder if the test ended early."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Path]:
    """A migrated SQLite database file, bound to the models."""
    path = tmp_path / "gnomon.db"
    database = open_database(f"sqlite:///{path}")
    migrate(database)
    yield path
    database.close()


@pytest.mark.slow
def test_an_outcome_refused_under_a_lock_is_stored_once_it_goes(sqlite_file: Path) -> None:
    now = datetime.now(UTC)
    fake = FakeExecutor(clock=lambda: now, default_script=Script(duration_seconds=None))
    engine = Engine(fake, SchedulerSettings(public_url="http://127.0.0.1:9"), clock=lambda: now)
    fake.open(engine)
    catalog.save(make_definition(name="job"), actor="test", now=now)
    run_id, _ = runs.start_run("job", trigger="manual:test", now=now)
    engine.tick(now)
    fake.advance(0)
    [attempt] = Task.select()
    assert attempt.status == "running"
    outcome = Outcome(attempt.id, Ending.EXITED, 0, now + timedelta(seconds=1), started_at=now)

    lock = Lock(sqlite_file, LOCK_SECONDS)
    refused = 0
    try:
        while True:  # the executor's part: report until stored
            try:
                engine.attempt_finished(outcome)
                break
            except OperationalError:
                refused += 1
    finally:
        lock.close()

    assert refused >= 1 and lock.released()
    assert Run.get_by_id(run_id).status == "succeeded"
    assert [(t.attempt, t.status) for t in Task.select()] == [(1, "succeeded")]
    engine.attempt_finished(outcome)  # reported again: nothing changes, nothing raises
    engine.attempt_finished(Outcome(attempt.id, Ending.EXITED, 1, now, reason="late"))
    stored = Task.get_by_id(attempt.id)
    assert (stored.status, stored.exit_code) == ("succeeded", 0)
    assert len(fake.starts) == 1


@pytest.mark.docker
@pytest.mark.slow
def test_a_container_exiting_under_a_lock_still_completes_its_run(
    busybox_image: str, tmp_path: Path, docker_client: Any
) -> None:
    path = tmp_path / "gnomon.db"
    with live_service(f"sqlite:///{path}") as service:
        service.put_definition(definition("locked", task("main", "sleep 3; echo done")))
        run_id = service.trigger("locked")
        wait_for(lambda: service.run(run_id)["task"][0]["status"] == "running", 30, "the task")
        lock = Lock(path, E2E_LOCK_SECONDS)
        try:  # the container exits while the lock is held
            wait_for(lock.released, E2E_LOCK_SECONDS + 10, "the lock to go")
        finally:
            lock.close()
        run = service.wait_run(run_id, timeout=60)
    assert run["status"] == "succeeded"
    [attempt] = run["task"]
    assert [e["message"] for e in attempt["log_entries"]] == ["done"]
