"""SIGKILL a real `gnomon serve` at seeded random moments during DAGs with retries.

After every restart the service must finish what it had: every run ends, no attempt
gets two containers, no container is left behind, and each line a container printed
is stored exactly once. Set GNOMON_FAULT_SEED to replay a failing seed.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scheduler.test_e2e import definition, task
from tests.support.leaks import INSTANCE_LABEL, session_instance
from tests.support.live import wait_for
from tests.support.postgres import PostgresServer
from tests.support.service import Creations, Service

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.postgres]

ROUNDS = 20
LINES = 30


def numbered(name: str, then: str = "true") -> str:
    """A script printing `<name> 1` .. `<name> LINES`, a little apart, then running `then`."""
    return (
        f'i=1; while [ $i -le {LINES} ]; do echo "{name} $i"; i=$((i+1));'
        f" [ $((i % 10)) -eq 0 ] && sleep 0.2; done; {then}"
    )


DAG = definition(
    "chaos",
    task("a", numbered("a")),
    # fails its first attempt, after printing everything: the retry must follow a restart
    task("b", numbered("b", '[ "$GNOMON_ATTEMPT" -ge 2 ]'), "a", max_attempts=3),
    task("c", numbered("c"), "a"),
    task("d", numbered("d"), "b", "c"),
    overlap_action="allow",
)


@pytest.fixture
def service(
    postgres_server: PostgresServer, busybox_image: str, tmp_path: Path, docker_client: Any
) -> Iterator[Service]:
    """`gnomon serve` on a database of its own, not started yet."""
    name = postgres_server.create_database()
    svc = Service(
        postgres_server.url(name), session_instance(), tmp_path / "serve.log",
        KILL_GRACE_SECONDS="1",
    )  # fmt: skip
    try:
        yield svc
    finally:
        svc.stop()
        postgres_server.drop_database(name)


def test_kills_at_random_moments_lose_and_repeat_nothing(
    service: Service, docker_client: Any
) -> None:
    seed = int(os.environ.get("GNOMON_FAULT_SEED") or random.randrange(2**32))
    print(f"fault injection seed: {seed} (GNOMON_FAULT_SEED={seed} replays it)")
    chance = random.Random(seed)
    creations = Creations(docker_client, [service.instance])
    service.start()
    assert service.api("PUT", "/api/process_definitions/chaos", json=DAG).status_code == 201

    for _ in range(ROUNDS):
        response = service.api("POST", "/api/process_definitions/chaos/trigger")
        assert response.status_code == 204, response.text
        time.sleep(chance.uniform(0.1, 1.5))  # the random moment of the kill, not a wait
        service.crash()
        service.start()

    runs = wait_for(lambda: all_ended(service), 120, "every run to end")
    label = {"label": f"{INSTANCE_LABEL}={service.instance}"}
    wait_for(lambda: not docker_client.api.containers(all=True, filters=label), 30, "removal")
    created = creations.close()
    attempts = [t for run in runs for t in run["task"]]
    assert len(runs) == ROUNDS
    assert {
        t["task_id"]: created[t["task_id"]] for t in attempts if created[t["task_id"]] > 1
    } == {}
    for attempt in attempts:
        if attempt["exit_code"] is not None:  # its container ran to its end by itself
            assert printed(service, attempt) == expected(attempt), attempt["task_id"]


def all_ended(service: Service) -> list[dict[str, Any]] | None:
    """Every run of `chaos`, once none is running."""
    runs = service.api("GET", "/api/processes", params={"max_records": 1000}).json()
    return runs if all(r["status"] != "running" for r in runs) else None


def printed(service: Service, attempt: dict[str, Any]) -> list[str]:
    """The container output stored for an attempt, all of it, in order."""
    path = f"/api/tasks/{attempt['task_id']}/log_entries"
    return [e["message"] for e in service.api("GET", path).json() if e["source"] == "stdout"]


def expected(attempt: dict[str, Any]) -> list[str]:
    """What the attempt's script prints."""
    name = attempt["task_definition_name"]
    return [f"{name} {i}" for i in range(1, LINES + 1)]
