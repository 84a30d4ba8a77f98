"""The connection to a swarm manager: a Docker API connection whose engine must be a manager."""

from __future__ import annotations

from docker import APIClient

from executor.connection import Connection
from executor.swarm.settings import SwarmSettings


class Manager(Connection):
    """A swarm manager's Docker API (`manager_host`, else DOCKER_HOST, else the local engine)."""

    def __init__(self, settings: SwarmSettings) -> None:
        super().__init__(
            "swarm manager",
            settings.manager_host,
            settings.api_timeout_seconds,
            settings.http_pool_size,
        )

    def problem(self, prober: APIClient) -> str | None:
        """Why the engine cannot run services: it is no swarm manager."""
        swarm = prober.info().get("Swarm", {})
        if swarm.get("ControlAvailable"):
            return None
        return f"not a swarm manager (swarm state: {swarm.get('LocalNodeState') or 'unknown'})"
