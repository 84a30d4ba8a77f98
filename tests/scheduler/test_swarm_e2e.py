"""Gnomon on a swarm: runs through the real service with GNOMON_EXECUTOR=swarm.

The first test drives one in-process service; the second, two `gnomon serve`
processes sharing PostgreSQL and the cluster, one of which is SIGKILLed mid-DAG.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.config import SETTINGS
from tests.scheduler.test_durability import Service
from tests.scheduler.test_e2e import definition, run_once, statuses, task, tasks_of
from tests.support.callbacks import recording_server
from tests.support.leaks import session_instance
from tests.support.live import live_service, wait_for
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.docker, pytest.mark.swarm, pytest.mark.slow]

SWARM = {"EXECUTOR": "swarm", "SWARM_NETWORKS": "host", "KILL_GRACE_SECONDS": 1}


def _services_of(client: Any, instance: str) -> list[dict[str, Any]]:
    return client.api.services(filters={"label": f"gnomon.instance={instance}"})


def test_a_dag_runs_as_services_and_shows_the_node(
    swarm: None, busybox_image: str, database_url: str, docker_client: Any
) -> None:
    placed = task("placed", "echo placed; echo warn >&2", "first")
    placed["placement"] = ["node.role==manager"]
    body = definition("on-swarm", task("first", "echo first"), placed)
    with live_service(database_url, **SWARM) as service:
        run = run_once(service, body)
        shown = service.api("GET", "/api/process_definitions/on-swarm").json()
        instance = service.app.config["INSTANCE"]
        wait_for(lambda: not _services_of(docker_client, instance), 30, "services removed")
    assert shown["task_definitions"][1]["placement"] == ["node.role==manager"]
    assert run["status"] == "succeeded"
    attempts = tasks_of(run)
    hostname = docker_client.info()["Name"]
    assert [a[0]["node"] for a in attempts.values()] == [hostname, hostname]
    entries = attempts["placed"][0]["log_entries"]
    assert {(e["source"], e["message"]) for e in entries} == {
        ("stdout", "placed"),
        ("stderr", "warn"),
    }


def test_a_bad_placement_is_a_400_naming_the_field(busybox_image: str, database_url: str) -> None:
    bad = task("main", "true")
    bad["placement"] = ["disk is ssd"]
    with live_service(database_url, SCHEDULER_ENABLED=False) as service:
        response = service.api("PUT", "/api/process_definitions/bad", json=definition("bad", bad))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] and "task_definitions.0.placement.0" in str(body["details"])


LEASES = any(setting.key == "INSTANCE_LEASE_SECONDS" for setting in SETTINGS)


@pytest.mark.postgres
@pytest.mark.skipif(not LEASES, reason="needs instance leases (GNOMON_INSTANCE_LEASE_SECONDS)")
def test_another_instance_finishes_the_run_of_a_killed_one(
    swarm: None,
    busybox_image: str,
    postgres_server: PostgresServer,
    postgres_database: str,
    docker_client: Any,
) -> None:
    postgres_server.reset_database(postgres_database)
    url = postgres_server.url(postgres_database)
    with recording_server() as (counter, hits):
        run = _kill_one_of_two_mid_dag(url, counter, docker_client)
    assert run["status"] == "succeeded"
    attempts = tasks_of(run)
    assert {name: len(a) for name, a in attempts.items()} == {"a": 1, "b": 1, "c": 1}
    assert sorted(hits) == ["/a", "/b", "/c"]  # every attempt ran once
    assert [e["message"] for e in attempts["b"][0]["log_entries"]] == ["b"]


def _kill_one_of_two_mid_dag(url: str, counter: str, docker_client: Any) -> dict[str, Any]:
    """Two serve processes; SIGKILL the one running task b; the run once the other ended it."""
    services = [Service(url, session_instance()) for _ in range(2)]
    for service in services:
        service.env.update(
            {f"GNOMON_{key}": str(value) for key, value in SWARM.items()}
            | {"GNOMON_INSTANCE_LEASE_SECONDS": "3"}
        )
    count = f'wget -q -O - "{counter}/$GNOMON_TASK_DEFINITION_NAME"'
    body = definition(
        "shared",
        task("a", f"{count}; echo a"),
        task("b", f"{count}; sleep 6; echo b", "a"),
        task("c", f"{count}; echo c", "b"),
    )
    try:
        for service in services:
            service.start()
        first, second = services
        assert first.api("PUT", "/api/process_definitions/shared", json=body).status_code == 201
        location = first.api("POST", "/api/process_definitions/shared/trigger").headers["Location"]
        run_of = lambda: second.api("GET", location).json()  # noqa: E731
        wait_for(lambda: statuses(run_of()).get("b") == "running", 60, "task b to run")
        [b_attempt] = tasks_of(run_of())["b"]
        [b_service] = docker_client.api.services(
            filters={"label": f"gnomon.task_id={b_attempt['task_id']}"}
        )
        owner = b_service["Spec"]["Labels"]["gnomon.instance"]
        doomed = next(s for s in services if s.env["GNOMON_INSTANCE"] == owner)
        survivor = next(s for s in services if s is not doomed)
        doomed.crash()

        run_of = lambda: survivor.api("GET", location).json()  # noqa: E731
        run = wait_for(lambda: run_of() if run_of()["status"] != "running" else None, 90, "run")
    finally:
        for service in services:
            service.stop()
    for service in services:
        instance = service.env["GNOMON_INSTANCE"]
        wait_for(lambda i=instance: not _services_of(docker_client, i), 30, "services removed")
    return run
