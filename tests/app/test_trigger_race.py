"""Idempotent triggers racing between two real `gnomon serve` processes on one PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.app.test_serve import start, wait_healthy
from tests.support.postgres import PostgresServer, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 8
DEFINITION = {
    "process_definition_name": "deploy",
    "task_definitions": [{
        "task_definition_name": "main",
        "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}},
    }],
}  # fmt: skip


@pytest.fixture
def two_servers(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[list[str]]:
    """The base URLs of two `gnomon serve` processes sharing one fresh PostgreSQL database."""
    url = postgres_server.url(postgres_server.create_database())
    processes: list[subprocess.Popen[str]] = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:  # one after the other: the first creates the schema
            processes.append(start(tmp_path, port, "--database-url", url, instance=f"race{port}"))
            wait_healthy(port, processes[-1])
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=30)


def trigger_both(urls: list[str], key: str) -> list[requests.Response]:
    """POST the same keyed trigger to every server at the same instant."""
    barrier = threading.Barrier(len(urls))
    answers: list[requests.Response | None] = [None] * len(urls)

    def send(i: int) -> None:
        barrier.wait()
        answers[i] = requests.post(
            f"{urls[i]}/api/process_definitions/deploy/trigger",
            headers={"Idempotency-Key": key},
            timeout=30,
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [answer for answer in answers if answer is not None]


def test_racing_triggers_with_one_key_start_one_run(two_servers: list[str]) -> None:
    first, second = two_servers
    requests.put(f"{first}/api/process_definitions/deploy", json=DEFINITION, timeout=30)
    for round_ in range(ROUNDS):
        answers = trigger_both(two_servers, f"release-{round_}")
        assert [a.status_code for a in answers] == [204, 204], [a.text for a in answers]
        locations = {a.headers["Location"] for a in answers}
        assert len(locations) == 1, locations
    runs = requests.get(f"{second}/api/processes?process_definition_name=deploy", timeout=30)
    assert len(runs.json()) == ROUNDS
