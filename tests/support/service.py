"""`gnomon serve` as a real child process, for tests that kill, restart or pair services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.leaks import INSTANCE_LABEL, TASK_LABEL, session_instance
from tests.support.live import free_port, wait_for


class Service:
    """`gnomon serve` as a child process, on a fixed port, database and instance name."""

    def __init__(
        self, database_url: str, instance: str, log: Path | None = None, **settings: str
    ) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.instance = instance
        self.log = log
        self.env = {
            **os.environ,
            "GNOMON_DATABASE_URL": database_url,
            "GNOMON_PORT": str(port),
            "GNOMON_DOCKER_NETWORK_MODE": "host",
            "GNOMON_INSTANCE": instance,
            "GNOMON_TICK_SECONDS": "1",
            **{f"GNOMON_{k}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        """Start the service and (unless told not to) wait until it answers."""
        command = [sys.executable, "-c", "from app.cli import main; main()", "serve"]
        output = open(self.log, "ab") if self.log else None  # noqa: SIM115 (the child's)
        try:
            self.process = subprocess.Popen(command, env=self.env, stderr=output)
        finally:
            if output is not None:
                output.close()
        if wait:
            wait_for(self.answers, 30, f"the service {self.instance} to answer")

    def answers(self) -> bool:
        """Whether it answers its healthcheck with 200."""
        try:
            return requests.get(self.url + "/_internal_/healthcheck", timeout=2).ok
        except (requests.ConnectionError, requests.Timeout):
            return False

    def crash(self) -> None:
        """kill -9."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the service."""
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def run(self, run_id: str) -> dict[str, Any]:
        """GET one run."""
        response = self.api("GET", f"/api/processes/{run_id}")
        response.raise_for_status()
        return response.json()


class Creations:
    """Counts, while open, the containers the engine creates for each task id of some
    instances (the engine keeps too short a history of events to ask afterwards)."""

    def __init__(self, client: Any, instances: Iterable[str]) -> None:
        self.counts: Counter[str] = Counter()
        self._instances = set(instances)
        filters = {"type": "container", "event": "create", "label": TASK_LABEL}
        self._stream = client.api.events(decode=True, filters=filters)
        self._thread = threading.Thread(target=self._follow, name="creations", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        for event in self._stream:
            labels = event["Actor"]["Attributes"]
            if labels.get(INSTANCE_LABEL) in self._instances:
                self.counts[labels[TASK_LABEL]] += 1

    def close(self) -> Counter[str]:
        """Stop counting; the counts."""
        self._stream.close()
        self._thread.join(timeout=10)
        return self.counts


@contextmanager
def instance_pair(
    database_url: str, logs: Path, **settings: str
) -> Iterator[tuple[Service, Service]]:
    """Instances `a` and `b` (session-private names) on one database, not started yet;
    stopped at the end."""
    services = tuple(
        Service(database_url, f"{session_instance()}-{name}", logs / f"{name}.log", **settings)
        for name in ("a", "b")
    )
    try:
        yield services
    finally:
        for service in services:
            service.stop()
