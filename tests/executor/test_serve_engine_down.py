"""`gnomon serve` started while the Docker Engine is down: it serves, says why it is unhealthy,
and once the engine is back it recovers the attempts that were in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.executor.engine_proxy import EngineProxy
from tests.support.images import TEST_IMAGE, TEST_TAG
from tests.support.leaks import session_instance
from tests.support.live import free_port, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAME = "engine-down"


class Serve:
    """One `gnomon serve` process on loopback with the Docker executor."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-c", "from app.cli import main; main()", "serve"]
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env, "GNOMON_PUBLIC_URL": self.url},
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the service."""
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def health(self) -> tuple[int, dict[str, Any]] | None:
        """The healthcheck's status code and body, or None while nothing listens yet."""
        assert self.process.poll() is None, self.process.communicate()[1]
        try:
            response = self.api("GET", "/_internal_/healthcheck")
        except requests.ConnectionError:
            return None
        return response.status_code, response.json()

    def healthy(self) -> bool:
        """Whether the healthcheck answers 200."""
        answer = self.health()
        return answer is not None and answer[0] == 200

    def task(self, run_id: str) -> dict[str, Any]:
        """The run's only task."""
        response = self.api("GET", f"/api/processes/{run_id}")
        response.raise_for_status()
        (task,) = response.json()["task"]
        return task  # type: ignore[no-any-return]

    def stop(self, signum: int = signal.SIGTERM) -> str:
        """Stop the process; its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.communicate(timeout=30)[1]
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()


@pytest.fixture
def services() -> Iterator[list[Serve]]:
    """The serve processes a test starts, stopped at its end."""
    started: list[Serve] = []
    yield started
    for serve in started:
        serve.stop(signal.SIGKILL)


def test_serve_starts_while_the_engine_is_down_and_recovers_when_it_returns(
    tmp_path: Path, busybox_image: str, docker_client: Any, services: list[Serve]
) -> None:
    socket_path = tmp_path / "engine.sock"
    instance = session_instance()
    env = {
        "GNOMON_EXECUTOR": "docker",
        "DOCKER_HOST": f"unix://{socket_path}",
        "GNOMON_INSTANCE": instance,
        "GNOMON_DOCKER_NETWORK_MODE": "host",
        "GNOMON_TICK_SECONDS": "0.2",
        "GNOMON_DATABASE_URL": "sqlite:///state/gnomon.db",
    }
    proxy = EngineProxy(socket_path)
    try:
        first = Serve(tmp_path, env)
        services.append(first)
        wait_for(first.healthy, 30, "the first serve")
        run_id = _trigger(first)
        wait_for(lambda: first.task(run_id)["status"] == "running", 30, "the task to run")
        first.stop(signal.SIGKILL)  # the attempt stays in flight in the database
    finally:
        proxy.close()
    socket_path.unlink()  # the engine is gone: its socket does not even exist

    second = Serve(tmp_path, env)
    services.append(second)
    status, body = wait_for(second.health, 30, "the second serve to answer")
    assert status == 503
    assert "unreachable" in body["checks"]["executor"], body
    waiting = _trigger(second, put=False)  # a new attempt waits for the engine
    wait_for(lambda: second.task(waiting)["status"] == "pending", 30, "the new task to wait")
    time.sleep(1)  # a few scheduling passes and recovery attempts with the engine down
    assert second.process.poll() is None
    assert second.task(run_id)["status"] == "running"
    assert second.task(waiting)["status"] == "pending"

    proxy = EngineProxy(socket_path)
    try:
        wait_for(second.healthy, 30, "health once the engine is back")
        task = wait_for(lambda: _ended(second.task(run_id)), 60, "the recovered attempt to end")
        assert task["status"] == "succeeded", task
        assert [e["message"] for e in task["log_entries"] if e["source"] == "stdout"] == [
            "before",
            "after",
        ]
        later = wait_for(lambda: _ended(second.task(waiting)), 60, "the waiting attempt to run")
        assert later["status"] == "succeeded", later
        wait_for(lambda: not _containers(docker_client, instance), 30, "containers removed")
        stderr = second.stop()
    finally:
        proxy.close()
    assert "Traceback" not in stderr


def _trigger(serve: Serve, put: bool = True) -> str:
    body = {
        "process_definition_name": NAME,
        "overlap_action": "allow",
        "schedule": {
            "cron_schedule": {
                "minutes": "0",
                "hours": "3",
                "day_of_month": "1",
                "month": "1",
                "day_of_week": "?",
            }
        },
        "task_definitions": [
            {
                "task_definition_name": "only",
                "dependencies": [],
                "executable": {
                    "docker_image_command": {
                        "image": TEST_IMAGE,
                        "tag": TEST_TAG,
                        "command": ["sh", "-c", "echo before; sleep 3; echo after"],
                    }
                },
                "max_attempts": 1,
            }
        ],
    }
    if put:
        serve.api("PUT", f"/api/process_definitions/{NAME}", json=body).raise_for_status()
    response = serve.api("POST", f"/api/process_definitions/{NAME}/trigger")
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def _ended(task: dict[str, Any]) -> dict[str, Any] | None:
    return task if task["status"] in ("succeeded", "failed") else None


def _containers(client: Any, instance: str) -> list[Any]:
    return client.api.containers(all=True, filters={"label": f"gnomon.instance={instance}"})
