"""SIGTERM stops `gnomon serve` gracefully: new connections are refused, requests in flight
finish. (That task containers survive it is in tests/scheduler/test_durability.py.)"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.app.test_serve import start, wait_healthy
from tests.support.live import free_port, wait_for

BODY = {
    "process_definition_name": "late",
    "task_definitions": [
        {
            "task_definition_name": "main",
            "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}},
        }
    ],
}


def put_in_background(port: int, results: list[requests.Response]) -> threading.Thread:
    """PUT a definition from a thread; its response lands in `results`."""

    def put() -> None:
        url = f"http://127.0.0.1:{port}/api/process_definitions/late"
        results.append(requests.put(url, json=BODY, timeout=30))

    thread = threading.Thread(target=put, name="slow-put")
    thread.start()
    return thread


def refuses_connections(port: int) -> bool:
    """Whether nothing accepts connections on the port any more."""
    try:
        requests.get(f"http://127.0.0.1:{port}/_internal_/healthcheck", timeout=1)
    except requests.ConnectionError:
        return True
    return False


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port, "--database-url", "sqlite:///gnomon.db")
    # Hold SQLite's write lock, so that the PUT waits in the database until we let go.
    blocker = sqlite3.connect(tmp_path / "gnomon.db", isolation_level=None, timeout=30)
    results: list[requests.Response] = []
    try:
        wait_healthy(port, process)
        blocker.execute("BEGIN IMMEDIATE")
        put = put_in_background(port, results)
        time.sleep(1.0)  # the PUT reaches the server and waits for the lock
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(port), 5, "the listening socket to close")
        assert process.poll() is None  # still finishing the PUT
        blocker.execute("ROLLBACK")
        put.join(timeout=30)
        _, stderr = process.communicate(timeout=20)
    finally:
        blocker.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    [response] = results
    assert response.status_code == 201, response.text
    names = sqlite3.connect(tmp_path / "gnomon.db").execute("SELECT name FROM definition")
    assert [name for (name,) in names] == ["late"]
