"""Two real `gnomon serve` processes on one real PostgreSQL, running real containers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.scheduler.test_e2e import definition, statuses, task, tasks_of
from tests.support.live import wait_for
from tests.support.service import Creations, Service, instance_pair

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres]

LEASE = "4"  # seconds: short, so that adoption is quick to see


@pytest.fixture
def database_url(own_postgres_url: str) -> str:
    """The instances' database: one of its own on the suite's PostgreSQL."""
    return own_postgres_url


@pytest.fixture
def pair(
    busybox_image: str, database_url: str, tmp_path: Path, docker_client: Any
) -> Iterator[tuple[Service, Service]]:
    """Instances `a` and `b` (session-private names) on one database, not started yet."""
    settings = {"INSTANCE_LEASE_SECONDS": LEASE, "KILL_GRACE_SECONDS": "1"}
    with instance_pair(database_url, tmp_path, **settings) as services:
        yield services


def wait_idle(service: Service, name: str) -> None:
    """Pause `name` and wait until none of its runs is running."""
    assert service.api("POST", f"/api/process_definitions/{name}/pause").status_code == 204

    def idle() -> bool:
        params = {"process_definition_name": name, "allowed_statuses": "running"}
        return service.api("GET", "/api/processes", params=params).json() == []

    wait_for(idle, 60, f"the runs of {name} to end")


def start_both(pair: tuple[Service, Service], docker_client: Any) -> Creations:
    """Start both instances, counting the containers they create from now on."""
    creations = Creations(docker_client, [service.instance for service in pair])
    for service in pair:
        service.start()
    return creations


def test_two_instances_never_start_one_attempt_twice(
    pair: tuple[Service, Service], docker_client: Any
) -> None:
    a, _ = pair
    creations = start_both(pair, docker_client)
    body = definition(
        "busy",
        task("one", "echo one"),
        task("two", "echo two", "one"),
        schedule={"continuous_schedule": {"buffer_seconds": 1}},
    )
    assert a.api("PUT", "/api/process_definitions/busy", json=body).status_code == 201
    deadline = datetime.now(UTC) + timedelta(seconds=15)
    wait_for(lambda: datetime.now(UTC) > deadline, 20, "15 s of runs", every=0.5)
    wait_idle(a, "busy")

    created = creations.close()
    attempts = [t for run in a.api("GET", "/api/processes").json() for t in run["task"]]
    assert len(attempts) >= 6, "too few attempts ran to tell"
    assert {t["status"] for t in attempts} == {"succeeded"}, [
        (t["task_id"], t["reason"]) for t in attempts if t["status"] != "succeeded"
    ]
    assert {t["task_id"]: created[t["task_id"]] for t in attempts} == {
        t["task_id"]: 1 for t in attempts
    }


def test_one_instance_restarting_leaves_the_others_attempts_running(
    pair: tuple[Service, Service],
) -> None:
    a, b = pair
    a.start()
    body = definition("four", *(task(f"t{i}", f"sleep 10; echo t{i}") for i in range(4)))
    assert a.api("PUT", "/api/process_definitions/four", json=body).status_code == 201
    run_id = a.api("POST", "/api/process_definitions/four/trigger").headers["Location"]
    run_id = run_id.rsplit("/", 1)[-1]
    wait_for(lambda: set(statuses(a.run(run_id)).values()) == {"running"}, 30, "4 running")

    b.start()
    b.stop()
    b.start()

    run = wait_for(lambda: a.run(run_id) if a.run(run_id)["status"] != "running" else None, 60,
                   "the run")  # fmt: skip
    assert run["status"] == "succeeded", statuses(run)
    assert {name: len(attempts) for name, attempts in tasks_of(run).items()} == {
        f"t{i}": 1 for i in range(4)
    }


def test_an_instance_name_held_by_a_live_instance_is_refused(
    pair: tuple[Service, Service], tmp_path: Path
) -> None:
    a, _ = pair
    a.start()
    twin = Service(a.env["GNOMON_DATABASE_URL"], a.instance, tmp_path / "twin.log")
    twin.start(wait=False)
    assert twin.process is not None
    assert twin.process.wait(timeout=60) == 1
    assert "is in use by a live Gnomon instance" in (tmp_path / "twin.log").read_text()
    assert a.answers()


def test_a_dead_instances_attempts_are_adopted_once_its_lease_expires(
    pair: tuple[Service, Service], docker_client: Any
) -> None:
    a, b = pair
    creations = start_both(pair, docker_client)
    body = definition("orphan", task("main", "sleep 8; echo done"))
    assert b.api("PUT", "/api/process_definitions/orphan", json=body).status_code == 201
    a.crash()  # only b is left to start it, and then b dies too
    run_id = b.api("POST", "/api/process_definitions/orphan/trigger").headers["Location"]
    run_id = run_id.rsplit("/", 1)[-1]
    wait_for(lambda: statuses(b.run(run_id)).get("main") == "running", 30, "the task to run")
    b.crash()
    a.start()

    run = wait_for(lambda: a.run(run_id) if a.run(run_id)["status"] != "running" else None, 60,
                   "the run")  # fmt: skip
    assert run["status"] == "succeeded"
    [attempt] = tasks_of(run)["main"]
    assert [e["message"] for e in attempt["log_entries"]] == ["done"]
    assert creations.close() == {attempt["task_id"]: 1}
