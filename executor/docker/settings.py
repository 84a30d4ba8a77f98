"""The Docker backend's settings and the labels it puts on every container."""

from __future__ import annotations

import re
from dataclasses import dataclass

from executor.log_files import parse_size

MIB = 1024 * 1024
LOG_MAX_FILES = 2  # a container's log files when Gnomon sets them: one rotated, one written


@dataclass(frozen=True)
class DockerSettings:
    """How the Docker backend runs containers; validated on construction."""

    instance: str
    network_mode: str = "bridge"
    docker_host: str | None = None  # None: $DOCKER_HOST, else the local socket (no CLI context)
    log_cap_bytes: int = 10 * MIB
    # Each container's json-file log file rotates at this size (`max-size`, with
    # LOG_MAX_FILES files) when the engine logs to json-file; "" keeps the engine's own.
    log_max_size: str = "64m"
    kill_grace_seconds: float = 10.0
    keep_failed_containers: bool = False
    pull_timeout_seconds: float = 120.0
    pull_interval_seconds: float = 300.0  # `always` pulls an image at most once per this
    reconcile_interval_seconds: float = 30.0
    log_batch_seconds: float = 0.5
    log_batch_lines: int = 5000
    http_pool_size: int = 64  # log streams + the event stream + calls share it
    worker_threads: int = 8
    api_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.instance):
            raise ValueError(f"instance {self.instance!r} must be letters, digits, '_', '.' or '-'")
        positive = {
            "log_cap_bytes": self.log_cap_bytes,
            "pull_timeout_seconds": self.pull_timeout_seconds,
            "reconcile_interval_seconds": self.reconcile_interval_seconds,
            "log_batch_seconds": self.log_batch_seconds,
            "log_batch_lines": self.log_batch_lines,
            "http_pool_size": self.http_pool_size,
            "worker_threads": self.worker_threads,
            "api_timeout_seconds": self.api_timeout_seconds,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0, not {value}")
        if self.log_max_size and parse_size(self.log_max_size) <= 0:
            raise ValueError(f"log_max_size must be greater than 0, not {self.log_max_size}")
        if self.kill_grace_seconds < 0:
            raise ValueError(f"kill_grace_seconds must not be negative: {self.kill_grace_seconds}")
