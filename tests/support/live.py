"""A real Gnomon service for tests: create_app + waitress on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask

from app import create_app
from app.server import http_server
from app.state import EXTENSION_KEY
from tests.support.leaks import session_instance


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveService:
    """A running service and a requests session to talk to it."""

    url: str
    app: Flask
    http: requests.Session

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request to the service, path relative to its root."""
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, self.url + path, **kwargs)

    def put_definition(self, body: Mapping[str, Any]) -> requests.Response:
        """PUT a definition (wire JSON); raises on a non-2xx answer."""
        name = body["process_definition_name"]
        response = self.api("PUT", f"/api/process_definitions/{name}", json=body)
        response.raise_for_status()
        return response

    def trigger(self, name: str, task: str | None = None) -> str:
        """Trigger a run and return its id (from the Location header)."""
        params = {"task_definition_name": task} if task else None
        response = self.api("POST", f"/api/process_definitions/{name}/trigger", params=params)
        assert response.status_code == 204, response.text
        return response.headers["Location"].rsplit("/", 1)[-1]

    def run(self, run_id: str) -> dict[str, Any]:
        """GET one run."""
        response = self.api("GET", f"/api/processes/{run_id}")
        response.raise_for_status()
        return response.json()

    def wait_run(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll a run until it has ended; fails the test at the deadline."""
        return wait_for(lambda: _ended(self.run(run_id)), timeout, f"run {run_id} to end")


def _ended(run: dict[str, Any]) -> dict[str, Any] | None:
    """The run if it has ended."""
    return run if run["status"] != "running" else None


def wait_for(probe: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@contextmanager
def live_service(database_url: str, **config: Any) -> Iterator[LiveService]:
    """Serve Gnomon on 127.0.0.1 with its scheduler started (unless SCHEDULER_ENABLED=False)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": port,
        "PUBLIC_URL": url,
        "DOCKER_NETWORK_MODE": "host",
        "TICK_SECONDS": 1.0,
        # Recovery removes this instance's unknown containers: never share an instance.
        "INSTANCE": session_instance(),
        **config,
    }
    app = create_app(settings)
    with serving(app, port):
        scheduler = app.extensions[EXTENSION_KEY].scheduler
        if settings.get("SCHEDULER_ENABLED", True):
            scheduler.start()
        try:
            with requests.Session() as http:
                yield LiveService(url, app, http)
        finally:
            scheduler.stop()


@contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """While inside, `gnomon serve`'s waitress server serves `app` on 127.0.0.1:`port`."""
    server = http_server(app, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, name="live-waitress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop_server(server, thread)


def stop_server(server: Any, thread: threading.Thread) -> None:
    """Stop waitress from inside its own loop (closing from outside races it: EBADF); a loop
    that ended already is only waited for."""
    with contextlib.suppress(OSError):  # its trigger closed: the loop has ended or is ending
        server.trigger.pull_trigger(lambda: server.asyncore.close_all(server._map))
    thread.join(timeout=10)
    assert not thread.is_alive(), "waitress did not stop"
    server.task_dispatcher.shutdown()
