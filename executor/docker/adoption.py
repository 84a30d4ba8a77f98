"""Adoption: taking over attempts started before a restart, by this instance or another.

An in-flight attempt's container is found by its `gnomon.task_id` label,
whichever instance started it; only when no container has that task id is the
attempt lost. Containers of this instance that match no attempt are removed,
once, at the first recovery. While the engine is down, recovery waits and is
run again when the engine answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from executor.base import InFlight
from executor.connection import ENGINE_GONE
from executor.docker.creation import Launcher
from executor.docker.engine import engine_time
from executor.docker.finishing import Finisher
from executor.docker.runtime import Runtime
from executor.docker.settings import LABEL_INSTANCE, LABEL_TASK_ID

log = logging.getLogger(__name__)

Container = Mapping[str, Any]


class Adopter:
    """Re-attaches running containers, finalises exited ones, reports lost ones."""

    def __init__(self, runtime: Runtime, launcher: Launcher, finisher: Finisher) -> None:
        self._rt = runtime
        self._launcher = launcher
        self._finisher = finisher
        self._lock = threading.Lock()  # one recovery at a time; guards the two fields below
        self._pending: dict[str, InFlight] = {}
        self._strays_removed = False
        self._asked = False  # strays are judged only against a list the scheduler gave

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Adopt `in_flight` now, or as soon as the engine answers again."""
        with self._lock:
            self._asked = True
            for item in in_flight:
                self._pending.setdefault(item.spec.task_id, item)
        self.retry()

    def retry(self) -> None:
        """Adopt what is pending, if the engine answers (else it stays pending)."""
        with self._lock:
            if not self._asked or (not self._pending and self._strays_removed):
                return
            try:
                found = self._rt.engine.containers(LABEL_TASK_ID)
            except ENGINE_GONE as error:
                self._rt.engine.mark_down(error)
                log.warning("recovery waits for the docker engine: %s", error)
                return
            self._rt.engine.mark_up()
            items, self._pending = list(self._pending.values()), {}
            by_task = _by_task(found, self._rt.settings.instance)
            for item in items:
                if not self._rt.attempts.known(item.spec.task_id):
                    self._adopt(item, by_task.get(item.spec.task_id))
            if not self._strays_removed:
                self._strays_removed = True
                self._remove_strays(found, {item.spec.task_id for item in items})

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
