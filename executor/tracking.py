"""The attempts a backend runs, behind one lock, and what their listener is told about them.

Engine-agnostic: a backend subclasses `Tracked` with its own per-attempt state
and guards that state with `Attempts.lock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from executor.base import AttemptSpec, ExecutorListener, LogLine, Outcome
from executor.logs import AttemptLog

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Tracked:
    """One attempt: its spec, its output, and whether the listener heard the last of it."""

    spec: AttemptSpec
    log: AttemptLog
    done: bool = False


T = TypeVar("T", bound=Tracked)


class Attempts(Generic[T]):
    """The attempts in flight by task id; reports each one's end exactly once."""

    def __init__(
        self, clock: Callable[[], datetime], log_cap_bytes: int, log_batch_lines: int
    ) -> None:
        self.lock = threading.Lock()
        self.listener: ExecutorListener | None = None
        self._clock = clock
        self._cap = log_cap_bytes
        self._batch_lines = log_batch_lines
        self._by_task: dict[str, T] = {}

    def add(self, attempt: T) -> None:
        """Track `attempt`; ValueError if its task is tracked already."""
        with self.lock:
            if attempt.spec.task_id in self._by_task:
                raise ValueError(f"task {attempt.spec.task_id} is already running")
            self._by_task[attempt.spec.task_id] = attempt

    def get(self, task_id: str) -> T | None:
        """The attempt of `task_id`, if tracked."""
        with self.lock:
            return self._by_task.get(task_id)

    def all(self) -> list[T]:
        """Every tracked attempt, now."""
        with self.lock:
            return list(self._by_task.values())

    def forget(self, attempt: T) -> None:
        """Stop tracking `attempt`."""
        with self.lock:
            if self._by_task.get(attempt.spec.task_id) is attempt:
                del self._by_task[attempt.spec.task_id]

    def new_log(self, task_id: str, skip_until: datetime | None = None) -> AttemptLog:
        """An output log delivering to the listener in batches."""

        def deliver(lines: Sequence[LogLine]) -> None:
            self.tell(lambda listener: listener.attempt_logs(task_id, lines))

        return AttemptLog(deliver, self._clock, self._cap, self._batch_lines, skip_until)

    def report(self, attempt: T, outcome: Outcome) -> None:
        """Deliver remaining output, then the outcome, and forget it: exactly once per attempt."""
        with self.lock:
            if attempt.done:
                return
            attempt.done = True
        attempt.log.flush()
        self.tell(lambda listener: listener.attempt_finished(outcome))
        self.forget(attempt)

    def send_back(self, attempt: T, reason: str) -> None:
        """The attempt did not start for want of an engine: offer it back, and forget it."""
        with self.lock:
            if attempt.done:
                return
            attempt.done = True
        self.forget(attempt)
        attempt.log.flush()
        self.tell(lambda listener: listener.attempt_waiting(attempt.spec.task_id, reason))

    def flush_logs(self) -> None:
        """Deliver the output gathered so far of every attempt."""
        for attempt in self.all():
            attempt.log.flush()

    def tell(self, call: Callable[[ExecutorListener], None]) -> None:
        """Call the listener; its failure is logged and changes nothing here."""
        try:
            call(self.listener)  # type: ignore[arg-type]
        except Exception:
            log.exception("executor listener failed")
