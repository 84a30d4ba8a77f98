"""`kill -9` the service in the middle of a DAG; started again, it finishes the run correctly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scheduler.test_e2e import definition, statuses, task, tasks_of
from tests.support.leaks import session_instance
from tests.support.live import wait_for
from tests.support.service import Service

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def service(busybox_image: str, tmp_path: Path, docker_client: Any) -> Iterator[Service]:
    """A service child process with its own instance label."""
    svc = Service(f"sqlite:///{tmp_path / 'gnomon.db'}", session_instance())
    try:
        yield svc
    finally:
        svc.stop()


def test_a_crash_mid_dag_loses_nothing_and_starts_nothing_twice(
    service: Service, docker_client: Any
) -> None:
    service.start()
    body = definition(
        "durable", task("a", "echo a"), task("b", "sleep 3; echo b", "a"), task("c", "echo c", "b")
    )
    assert service.api("PUT", "/api/process_definitions/durable", json=body).status_code == 201
    response = service.api("POST", "/api/process_definitions/durable/trigger")
    run_id = response.headers["Location"].rsplit("/", 1)[-1]
    run_of = lambda: service.api("GET", f"/api/processes/{run_id}").json()  # noqa: E731
    wait_for(lambda: statuses(run_of()).get("b") == "running", 30, "task b to run")

    service.crash()
    service.start()

    run = wait_for(lambda: run_of() if run_of()["status"] != "running" else None, 60, "the run")
    assert run["status"] == "succeeded"
    attempts = tasks_of(run)
    assert {name: len(a) for name, a in attempts.items()} == {"a": 1, "b": 1, "c": 1}
    assert [e["message"] for e in attempts["b"][0]["log_entries"]] == ["b"]
    instance = {"label": f"gnomon.instance={service.env['GNOMON_INSTANCE']}"}
    wait_for(lambda: not docker_client.api.containers(all=True, filters=instance), 10, "removal")


def test_sigterm_leaves_the_container_running_for_the_next_start(
    service: Service, docker_client: Any
) -> None:
    service.start()
    body = definition("calm", task("main", "sleep 4; echo done"))
    assert service.api("PUT", "/api/process_definitions/calm", json=body).status_code == 201
    response = service.api("POST", "/api/process_definitions/calm/trigger")
    run_of = lambda: service.api("GET", response.headers["Location"]).json()  # noqa: E731
    wait_for(lambda: statuses(run_of()).get("main") == "running", 30, "the task to run")

    service.stop()
    assert service.process is not None and service.process.returncode == 0
    instance = {"label": f"gnomon.instance={service.env['GNOMON_INSTANCE']}"}
    [container] = docker_client.containers.list(all=True, filters=instance)
    assert container.status == "running"

    service.start()
    run = wait_for(lambda: run_of() if run_of()["status"] != "running" else None, 60, "the run")
    assert run["status"] == "succeeded"
    [attempt] = tasks_of(run)["main"]
    assert [entry["message"] for entry in attempt["log_entries"]] == ["done"]
    # a finished container is removed just after its outcome is stored
    wait_for(lambda: not docker_client.api.containers(all=True, filters=instance), 10, "removal")
