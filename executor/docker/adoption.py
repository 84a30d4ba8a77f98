"""Adoption: taking over attempts started before a restart, by this instance or another.

An in-flight attempt's container is found by its `gnomon.task_id` label,
whichever instance started it; only when no container has that task id is the
attempt lost. When recovery runs, and which strays go, is `executor.recovery`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from executor.base import InFlight
from executor.docker.creation import Launcher
from executor.docker.engine import engine_time
from executor.docker.finishing import Finisher
from executor.docker.runtime import Runtime
from executor.labels import LABEL_INSTANCE, LABEL_TASK_ID
from executor.recovery import Recovery

log = logging.getLogger(__name__)

Container = Mapping[str, Any]


class Adopter:
    """Re-attaches running containers, finalises exited ones, reports lost ones."""

    def __init__(self, runtime: Runtime, launcher: Launcher, finisher: Finisher) -> None:
        self._rt = runtime
        self._launcher = launcher
        self._finisher = finisher
        self._recovery: Recovery[Container] = Recovery(
            runtime.engine,
            runtime.attempts,
            lambda: runtime.engine.containers(LABEL_TASK_ID),
            lambda found: _by_task(found, runtime.settings.instance),
            self._adopt,
            self._remove_strays,
        )

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Adopt `in_flight` now, or as soon as the engine answers again."""
        self._recovery.recover(in_flight)

    def retry(self) -> None:
        """Adopt what is pending, if the engine answers (else it stays pending)."""
        self._recovery.retry()

    def _remove_strays(self, found: Sequence[Container], in_flight: set[str]) -> None:
        """Remove this instance's containers that match no attempt."""
        for container in found:
            labels = container.get("Labels") or {}
            task_id = labels.get(LABEL_TASK_ID)
            if labels.get(LABEL_INSTANCE) != self._rt.settings.instance or task_id in in_flight:
                continue
            if not self._rt.attempts.tracks(task_id):
                log.info(
                    "removing container %s: it matches no attempt in flight", container["Id"][:12]
                )
                self._rt.engine.remove(str(container["Id"]))

    def _adopt(self, item: InFlight, container: Container | None) -> None:
        """Take over one attempt."""
        attempt = self._rt.new_attempt(item.spec, item.logs_until)
        if container is None:
            self._finisher.report(attempt, self._finisher.lost(attempt, "container lost"))
            return
        attempt.container_id = str(container["Id"])
        try:
            self._rt.attempts.add(attempt)
        except ValueError:
            return  # started meanwhile
        if container["State"] == "created":
            self._rt.starts.submit(self._launcher.resume, attempt)
            return
        state = self._rt.engine.state(attempt.container_id)
        if state is None:
            self._finisher.report(attempt, self._finisher.lost(attempt, "container lost"))
            return
        started_at = engine_time(state["StartedAt"]) or self._rt.clock()
        attempt.exited_early = not (state["Running"] or state.get("Restarting"))
        elapsed = max(0.0, time.time() - started_at.timestamp())
        self._launcher.mark_running(attempt, started_at, elapsed)


def _by_task(found: Sequence[Container], instance: str) -> dict[str, Container]:
    """Each task's container; where two exist, a running one, then this instance's."""

    def preference(container: Container) -> tuple[bool, bool]:
        labels = container.get("Labels") or {}
        return container["State"] != "running", labels.get(LABEL_INSTANCE) != instance

    chosen: dict[str, Container] = {}
    for container in sorted(found, key=preference, reverse=True):
        task_id = (container.get("Labels") or {}).get(LABEL_TASK_ID)
        if task_id:
            chosen[task_id] = container  # the most preferred comes last and wins
    return chosen
