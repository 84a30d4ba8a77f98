"""The attempts a backend runs, behind one lock, and the listener told of each end once.

Engine-agnostic: a backend subclasses `Tracked` with its own per-attempt state
and `Attempts` with its own transitions, all under `Attempts.lock`. Every call
to the listener goes through the `Reporter` (retried until stored); an
attempt's container or service is disposed of only once its outcome is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from executor.base import AttemptSpec, LogLine, Outcome
from executor.logs import AttemptLog
from executor.reporting import Reporter

_FINISHED_REMEMBERED = 10_000  # enough to outlast any stale list of attempts in flight


@dataclass(eq=False)
class Tracked:
    """One attempt: its spec, its output, and whether the listener heard the last of it."""

    spec: AttemptSpec
    log: AttemptLog
    done: bool = False  # finished or sent back waiting: the listener heard the last of it

    @property
    def task_id(self) -> str:
        """The attempt's task id."""
        return self.spec.task_id


T = TypeVar("T", bound=Tracked)


class Attempts(Generic[T]):
    """The attempts in flight by task id; reports each one's end exactly once."""

    def __init__(self, reporter: Reporter) -> None:
        self.lock = threading.Lock()
        self.reporter = reporter
        self._by_task: dict[str, T] = {}
        self._finished: dict[str, None] = {}  # task ids finished lately, oldest first

    def add(self, attempt: T) -> None:
        """Track `attempt`; ValueError if its task is tracked already."""
        with self.lock:
            if attempt.task_id in self._by_task:
                raise ValueError(f"task {attempt.task_id} is already running")
            self._by_task[attempt.task_id] = attempt

    def get(self, task_id: str | None) -> T | None:
        """The tracked attempt of `task_id`, if any."""
        with self.lock:
            return self._by_task.get(task_id) if task_id else None

    def tracks(self, task_id: str | None) -> bool:
        """Whether `task_id` is tracked."""
        return self.get(task_id) is not None

    def known(self, task_id: str) -> bool:
        """Whether `task_id` is tracked, or finished lately (so not to be adopted again)."""
        with self.lock:
            return task_id in self._by_task or task_id in self._finished

    def all(self) -> list[T]:
        """Every tracked attempt, now."""
        with self.lock:
            return list(self._by_task.values())

    def forget(self, attempt: T) -> None:
        """Stop tracking `attempt`."""
        with self.lock:
            if self._by_task.get(attempt.task_id) is attempt:
                del self._by_task[attempt.task_id]

    def report(self, attempt: T, outcome: Outcome, dispose: Callable[[], None]) -> None:
        """Deliver the rest of the output, then the outcome until stored, then `dispose`.

        Exactly once per attempt. If the executor closes before the outcome is
        stored, nothing is disposed of: the next start's recovery finishes it.
        """
        if not self._end(attempt):
            return
        attempt.log.flush()
        what = f"the outcome of task {attempt.task_id}"
        if self.reporter.tell(what, lambda lsn: lsn.attempt_finished(outcome)):
            dispose()
        self.forget(attempt)

    def send_back(self, attempt: T, reason: str) -> None:
        """The attempt did not start for want of an engine: offer it back, once."""
        with self.lock:
            if attempt.done:
                return
            attempt.done = True
            if self._by_task.get(attempt.task_id) is attempt:
                del self._by_task[attempt.task_id]
        attempt.log.flush()
        what = f"that task {attempt.task_id} waits"
        self.reporter.tell(what, lambda lsn: lsn.attempt_waiting(attempt.task_id, reason))

    def flush_logs(self) -> None:
        """Deliver the output gathered so far of every attempt."""
        for attempt in self.all():
            attempt.log.flush()

    def _end(self, attempt: T) -> bool:
        """The attempt finished: True only the first time (to report its outcome then)."""
        with self.lock:
            if attempt.done:
                return False
            attempt.done = True
            self._finished[attempt.task_id] = None
            while len(self._finished) > _FINISHED_REMEMBERED:
                del self._finished[next(iter(self._finished))]
            return True


def attempt_log(
    reporter: Reporter,
    task_id: str,
    clock: Callable[[], datetime],
    cap_bytes: int,
    batch_lines: int,
    skip_until: datetime | None = None,
) -> AttemptLog:
    """An attempt's output log, capped and batched, each batch delivered until stored."""

    def deliver(lines: Sequence[LogLine]) -> None:
        what = f"{len(lines)} output lines of task {task_id}"
        reporter.tell(what, lambda lsn: lsn.attempt_logs(task_id, lines))

    return AttemptLog(deliver, clock, cap_bytes, batch_lines, skip_until)
