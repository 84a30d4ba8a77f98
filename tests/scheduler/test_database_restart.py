"""A real PostgreSQL stopped and started under a real `gnomon serve`: scheduling comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.scheduler.test_e2e import definition, statuses, task
from tests.support.leaks import session_instance
from tests.support.live import wait_for
from tests.support.postgres import PostgresServer, PostgresUnavailable, start_server
from tests.support.service import Service

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own: stopping it disturbs no other test."""
    try:
        server = start_server()
    except PostgresUnavailable as error:
        pytest.fail(f"PostgreSQL is required: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def service(
    server: PostgresServer, busybox_image: str, tmp_path: Path, docker_client: Any
) -> Iterator[Service]:
    """`gnomon serve` on that server."""
    svc = Service(server.url(server.create_database()), session_instance(), tmp_path / "s.log")
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def health(service: Service) -> tuple[int, dict[str, Any]]:
    """The healthcheck's status code and body."""
    response = requests.get(service.url + "/_internal_/healthcheck", timeout=10)
    return response.status_code, response.json()


def register_and_trigger(service: Service, body: dict[str, Any]) -> str:
    """Register a definition and start a run of it; the run's id."""
    name = body["process_definition_name"]
    assert service.api("PUT", f"/api/process_definitions/{name}", json=body).status_code == 201
    return trigger(service, name)


def trigger(service: Service, name: str) -> str:
    """Start a run; its id."""
    response = service.api("POST", f"/api/process_definitions/{name}/trigger")
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def ended(service: Service, run_id: str) -> dict[str, Any] | None:
    """The run, once it has ended."""
    run = service.run(run_id)
    return run if run["status"] != "running" else None


def test_scheduling_resumes_after_a_database_restart(
    server: PostgresServer, service: Service
) -> None:
    first = register_and_trigger(
        service, definition("chain", task("a", "echo a"), task("b", "echo b", "a"))
    )
    assert wait_for(lambda: ended(service, first), 30, "a first run")["status"] == "succeeded"

    server.pause()
    code, body = wait_for(
        lambda: (h := health(service))[1]["checks"].get("scheduler", "ok") != "ok" and h,
        30,
        "the healthcheck to see the scheduler fail",
    )
    assert code == 503
    assert "scheduling passes fail" in body["checks"]["scheduler"]
    server.resume()

    wait_for(lambda: health(service)[0] == 200, 30, "the healthcheck to be 200 again")
    run_id = trigger(service, "chain")
    run = wait_for(lambda: ended(service, run_id), 30, "a run after the restart")
    assert run["status"] == "succeeded"


def test_a_run_cut_by_a_database_restart_continues(
    server: PostgresServer, service: Service
) -> None:
    run_id = register_and_trigger(
        service, definition("cut", task("a", "sleep 6; echo a"), task("b", "echo b", "a"))
    )
    wait_for(lambda: statuses(service.run(run_id)).get("a") == "running", 30, "a to run")

    server.pause()
    server.resume()  # the connections every thread held are all broken now

    run = wait_for(lambda: ended(service, run_id), 60, "the run")
    assert run["status"] == "succeeded"
    assert statuses(run) == {"a": "succeeded", "b": "succeeded"}
