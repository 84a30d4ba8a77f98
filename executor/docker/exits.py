"""Watching for exits: one event stream for every Gnomon container, and reconciliation.

The event stream follows every container with a `gnomon.task_id` label (an
attempt adopted from another instance carries that instance's label); exits it
may have missed, while it was down, are found by reconciliation, which runs on
a thread of its own and inspects each running container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from executor.connection import ENGINE_GONE
from executor.docker.attempts import Exit, Phase
from executor.docker.finishing import Finisher
from executor.docker.output import OutputReader
from executor.docker.runtime import Runtime
from executor.labels import LABEL_TASK_ID
from executor.timers import Periodic

log = logging.getLogger(__name__)

_RECONNECT_SECONDS = 1.0


class ExitWatcher:
    """Hands each container's exit to the finisher, once."""

    def __init__(
        self,
        runtime: Runtime,
        finisher: Finisher,
        output: OutputReader,
        on_reconnect: Callable[[], None],
    ) -> None:
        self._rt = runtime
        self._finisher = finisher
        self._output = output
        self._on_reconnect = on_reconnect
        interval = runtime.settings.reconcile_interval_seconds
        self.reconciler = Periodic("gnomon-executor-reconcile", interval, self.reconcile)
        self._thread: threading.Thread | None = None
        self._stream: Any = None

    def start(self) -> None:
        """Start following events, and reconciling."""
        self.reconciler.start()
        self._thread = threading.Thread(
            target=self._follow, name="gnomon-executor-events", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop following (the executor's `closing` is set already)."""
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join()
        self.reconciler.close()

    def reconcile(self) -> None:
        """Safety net: inspect every running container, in case an exit event was missed."""
        for attempt in self._rt.attempts.in_phase(Phase.RUNNING):
            assert attempt.container_id is not None
            try:
                state = self._rt.engine.state(attempt.container_id)
            except ENGINE_GONE as error:
                self._rt.engine.mark_down(error)
                return
            if state is None or not state["Running"]:
                self._finisher.claim(attempt)
            else:
                self._output.restart_if_broken(attempt)

    def _follow(self) -> None:
        """Thread: one event stream for every Gnomon container; reconnects."""
        while not self._rt.closing.is_set():
            try:
                self._consume()
            except ENGINE_GONE as error:
                self._rt.engine.mark_down(error)
            except Exception:
                log.exception("following docker events failed")
            self._rt.closing.wait(_RECONNECT_SECONDS)

    def _consume(self) -> None:
        stream = self._rt.engine.die_events(LABEL_TASK_ID)
        self._stream = stream
        if self._rt.closing.is_set():
            stream.close()
            return
        self._rt.engine.mark_up()
        # Exits while the stream was down are caught by a reconciliation right away.
        self.reconciler.poke()
        self._on_reconnect()
        for event in stream:
            self._on_event(event)
        if not self._rt.closing.is_set():
            log.warning("docker event stream ended; reconnecting")

    def _on_event(self, event: Mapping[str, Any]) -> None:
        task_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_TASK_ID)
        attempt = self._rt.attempts.get(task_id)
        if attempt is not None and attempt.container_id == event.get("id"):
            self._finisher.claim(attempt, Exit.from_event(event))
