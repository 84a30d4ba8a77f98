"""Finding what a test left behind: non-daemon threads and Gnomon's task containers."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

TASK_LABEL = "gnomon.task_id"  # the label the executor puts on every task container
INSTANCE_LABEL = "gnomon.instance"
# Every executor a test session starts uses an instance named with this prefix, so the
# guard never touches containers of another session (or of a real service) on the engine.
SESSION_PREFIX = f"gt{os.getpid()}"


def session_instance() -> str:
    """A `gnomon.instance` label value private to one test of this session."""
    return f"{SESSION_PREFIX}-{uuid.uuid4().hex[:8]}"


def live_threads() -> set[threading.Thread]:
    """The threads alive right now."""
    return set(threading.enumerate())


def leaked_threads(before: set[threading.Thread], grace: float = 2.0) -> list[threading.Thread]:
    """Non-daemon threads started since `before` that are still alive after `grace` seconds."""
    deadline = time.monotonic() + grace
    leftovers = _new_non_daemon(before)
    while leftovers and time.monotonic() < deadline:
        leftovers[0].join(timeout=max(0.0, deadline - time.monotonic()))
        leftovers = _new_non_daemon(before)
    return leftovers


def _new_non_daemon(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]


def docker_client() -> Any | None:
    """A Docker client if an engine answers, else None."""
    try:
        import docker  # only tests and the executor import docker
        from docker.errors import DockerException
    except ImportError:
        return None
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except (DockerException, OSError):
        return None
    return client


def task_container_ids(client: Any) -> set[str]:
    """Ids of this session's task containers, running or not."""
    containers = client.api.containers(all=True, filters={"label": TASK_LABEL})
    return {
        c["Id"]
        for c in containers
        if c.get("Labels", {}).get(INSTANCE_LABEL, "").startswith(SESSION_PREFIX + "-")
    }


def task_service_ids(client: Any) -> set[str]:
    """Ids of this session's swarm task services (the engine must be a swarm manager)."""
    services = client.api.services(filters={"label": TASK_LABEL})
    return {
        s["ID"]
        for s in services
        if s["Spec"].get("Labels", {}).get(INSTANCE_LABEL, "").startswith(SESSION_PREFIX + "-")
    }


def remove_services(client: Any, ids: set[str]) -> None:
    """Remove the services `ids`, ignoring ones already gone."""
    from docker.errors import NotFound

    for service_id in ids:
        try:
            client.api.remove_service(service_id)
        except NotFound:
            continue


def remove_containers(client: Any, ids: set[str]) -> None:
    """Force-remove the containers `ids`, ignoring ones already gone."""
    from docker.errors import NotFound

    for container_id in ids:
        try:
            client.api.remove_container(container_id, force=True, v=True)
        except NotFound:
            continue
