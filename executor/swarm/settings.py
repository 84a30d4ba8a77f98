"""How the Swarm backend reaches the cluster's manager and runs services; validated once."""

from __future__ import annotations

from dataclasses import dataclass

from executor.base import check_backend_settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class SwarmSettings:
    """Settings of the Swarm backend; invalid values raise ValueError on construction."""

    instance: str
    manager_host: str | None = None  # None: $DOCKER_HOST (TLS from DOCKER_*), else local socket
    networks: tuple[str, ...] = ()  # networks every service joins (an overlay network)
    log_cap_bytes: int = 10 * MIB
    kill_grace_seconds: float = 10.0
    poll_interval_seconds: float = 0.25  # how often the swarm's task states are read
    log_batch_seconds: float = 0.5
    log_batch_lines: int = 500
    http_pool_size: int = 64  # log streams + polls + calls share it
    worker_threads: int = 8
    api_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        positive = {
            "log_cap_bytes": self.log_cap_bytes,
            "poll_interval_seconds": self.poll_interval_seconds,
            "log_batch_seconds": self.log_batch_seconds,
            "log_batch_lines": self.log_batch_lines,
            "http_pool_size": self.http_pool_size,
            "worker_threads": self.worker_threads,
            "api_timeout_seconds": self.api_timeout_seconds,
        }
        check_backend_settings(self.instance, positive, self.kill_grace_seconds)
        if any(not network for network in self.networks):
            raise ValueError("a network name must not be empty")
