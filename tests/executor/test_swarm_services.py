"""The Swarm executor without a swarm: task statuses as endings, and a non-manager engine."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from pathlib import Path
from typing import Any

import pytest

from executor.base import Ending, EngineUnavailable, InFlight
from executor.swarm import SwarmExecutor, SwarmSettings
from executor.swarm.services import TaskStatus
from tests.executor.support import RecordingListener, make_spec


@pytest.mark.parametrize(
    ("task", "ending", "reason"),
    [
        pytest.param({"State": "complete", "ContainerStatus": {"ContainerID": "c", "ExitCode": 0}},
                     Ending.EXITED, None, id="complete"),
        pytest.param({"State": "failed", "Err": "task: non-zero exit (3)",
                      "ContainerStatus": {"ContainerID": "c", "ExitCode": 3}},
                     Ending.EXITED, "exit code 3", id="failed"),
        pytest.param({"State": "rejected", "Err": "No such image: x:1"},
                     Ending.IMAGE_NOT_FOUND, None, id="no-image"),
        pytest.param({"State": "failed", "Err": "starting container failed: no such file",
                      "ContainerStatus": {"ContainerID": "c", "ExitCode": 128}},
                     Ending.START_FAILED, "start failed: starting container failed: no such file",
                     id="bad-command"),
        pytest.param({"State": "orphaned", "Err": "node is down"},
                     Ending.LOST, "node lost: task orphaned (node is down)", id="orphaned"),
    ],
)  # fmt: skip
def test_a_task_status_says_how_the_attempt_ended(
    task: dict[str, Any], ending: Ending, reason: str | None
) -> None:
    assert TaskStatus.of({"Status": task}).ending() == (ending, reason)


class _NotAManager(http.server.BaseHTTPRequestHandler):
    """A Docker API whose engine is in no swarm."""

    def do_GET(self) -> None:
        """Answer version negotiation, ping, info and (refusing) the service list."""
        path = self.path.split("?")[0].rstrip("/")
        swarm = {"LocalNodeState": "inactive", "ControlAvailable": False}
        body: dict[str, Any] = {"Swarm": swarm}
        status = 200
        if path.endswith("/version"):
            body = {"ApiVersion": "1.41"}
        elif path.endswith("/services"):  # what such an engine answers
            body, status = {"message": "This node is not a swarm manager."}, 503
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        """BaseHTTPRequestHandler wants a client address tuple."""
        request, _ = super().get_request()
        return request, ("local", 0)


def test_an_engine_that_is_no_swarm_manager_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    server = _UnixHTTPServer(str(path), _NotAManager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    executor = SwarmExecutor(SwarmSettings("t", manager_host=f"unix://{path}"))
    listener = RecordingListener()
    try:
        executor.open(listener)
        health = executor.health()
        assert not health.ok
        assert "not a swarm manager (swarm state: inactive)" in health.detail
        with pytest.raises(EngineUnavailable):
            executor.start(make_spec(["true"]))
        executor.recover([InFlight(make_spec(["true"]))])  # waits for a manager: not lost
        assert listener.finished == [] and listener.waiting == []
    finally:
        executor.close()
        server.shutdown()
        server.server_close()
        thread.join()
