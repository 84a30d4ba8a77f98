"""An attempt as a swarm service spec, and a swarm task's status as the attempt's end.

Pure: nothing here calls the manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docker.types import (
    ContainerSpec,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)

from executor.base import AttemptSpec, Ending, Outcome
from executor.labels import attempt_labels
from executor.logs import parse_timestamp
from executor.swarm.settings import MIB, SwarmSettings

NANO = 1_000_000_000
_NANO_CPUS_PER_UNIT = NANO / 1024  # 1024 cpu units = one core, as with the Docker executor
# Swarm task states before its container runs, and those it never leaves.
WAITING_STATES = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)
FINAL_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
_NO_IMAGE = re.compile(r"No such image|pull access denied|manifest unknown|not found", re.I)


def service_name(spec: AttemptSpec) -> str:
    """The service's name: unique per attempt across instances (task ids are UUIDs)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", f"gnomon-{spec.task_id}")[:63]


def service_args(spec: AttemptSpec, settings: SwarmSettings) -> dict[str, Any]:
    """`APIClient.create_service` arguments: one run of the container, never restarted."""
    container = ContainerSpec(
        image=spec.image_ref,
        args=list(spec.command) or None,  # like a container's CMD: the entrypoint stays
        env=dict(spec.environment),
        stop_grace_period=int(settings.kill_grace_seconds * NANO),
    )
    template = TaskTemplate(
        container_spec=container,
        resources=_resources(spec),
        restart_policy=RestartPolicy(condition="none"),
        placement=Placement(constraints=list(spec.placement)) if spec.placement else None,
        networks=list(settings.networks) or None,
    )
    return {
        "task_template": template,
        "name": service_name(spec),
        "labels": attempt_labels(spec, settings.instance),
        "mode": ServiceMode("replicated-job", concurrency=1, replicas=1),
    }


def _resources(spec: AttemptSpec) -> Resources | None:
    """Limits, reserved as well, so that the scheduler places a task where it fits."""
    memory = spec.memory_mib * MIB if spec.memory_mib is not None else None
    cpus = int(spec.cpu_units * _NANO_CPUS_PER_UNIT) if spec.cpu_units is not None else None
    if memory is None and cpus is None:
        return None
    return Resources(cpu_limit=cpus, mem_limit=memory, cpu_reservation=cpus, mem_reservation=memory)


@dataclass(frozen=True)
class TaskStatus:
    """What a swarm task says about the attempt's container."""

    state: str
    timestamp: datetime | None
    error: str
    node_id: str | None
    container_id: str | None
    exit_code: int | None

    @classmethod
    def of(cls, task: Mapping[str, Any]) -> TaskStatus:
        """The status of one entry of the manager's task list."""
        status = task.get("Status", {})
        container = status.get("ContainerStatus") or {}
        return cls(
            state=str(status.get("State", "new")),
            timestamp=parse_timestamp(status.get("Timestamp") or ""),
            error=str(status.get("Err") or ""),
            node_id=task.get("NodeID") or None,
            container_id=container.get("ContainerID") or None,
            exit_code=container.get("ExitCode") if container.get("ContainerID") else None,
        )

    @property
    def ran(self) -> bool:
        """Whether its container was started (as opposed to rejected or never started)."""
        if self.state in ("rejected", "orphaned", "remove") or self.container_id is None:
            return False
        return not self.error.startswith("starting container failed")

    def ending(self) -> tuple[Ending, str | None]:
        """How a final task ended, when Gnomon did not kill it."""
        if self.state == "complete":
            return Ending.EXITED, None
        if self.state == "failed" and self.ran:
            return Ending.EXITED, f"exit code {self.exit_code}"
        if self.state == "rejected" and _NO_IMAGE.search(self.error):
            return Ending.IMAGE_NOT_FOUND, None
        if self.state in ("rejected", "failed"):
            return Ending.START_FAILED, f"start failed: {self.error or self.state}"
        # shutdown, orphaned, remove: the cluster stopped it (node drained, down or left).
        return Ending.LOST, f"node lost: task {self.state}" + (
            f" ({self.error})" if self.error else ""
        )


def latest_tasks(tasks: list[Mapping[str, Any]]) -> dict[str, TaskStatus]:
    """The newest task of each service, by service id."""
    newest: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        service = task.get("ServiceID", "")
        if service not in newest or task.get("CreatedAt", "") > newest[service].get(
            "CreatedAt", ""
        ):
            newest[service] = task
    return {service: TaskStatus.of(task) for service, task in newest.items()}


def task_outcome(
    spec: AttemptSpec, status: TaskStatus, started_at: datetime | None, oom: bool, now: datetime
) -> Outcome:
    """The outcome of an attempt whose task ended without Gnomon killing it."""
    ending, reason = status.ending()
    if ending == Ending.IMAGE_NOT_FOUND:
        reason = f"image not found: {spec.image_ref}"
    if oom:
        ending, reason = Ending.OOM_KILLED, "killed: out of memory"
    ended_at = status.timestamp or now
    if started_at is not None:
        ended_at = max(ended_at, started_at)
    return Outcome(
        task_id=spec.task_id,
        ending=ending,
        exit_code=status.exit_code if status.ran else None,
        ended_at=ended_at,
        started_at=started_at if status.ran else None,
        oom_killed=oom,
        reason=reason,
    )
