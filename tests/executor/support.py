"""Helpers for executor tests: recording and failing listeners, a polling wait, a spec factory."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from executor.base import AttemptSpec, LogLine, Outcome
from tests.support.images import TEST_IMAGE, TEST_TAG


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)


def task_containers(client: Any, task_id: str) -> list[Any]:
    """The engine's containers (running or not) of `task_id`."""
    return client.api.containers(all=True, filters={"label": f"gnomon.task_id={task_id}"})  # type: ignore[no-any-return]


def make_spec(command: Sequence[str], **overrides: Any) -> AttemptSpec:
    """An AttemptSpec for the test image with a fresh task id; fields overridable."""
    task_id = overrides.pop("task_id", str(uuid.uuid4()))
    values: dict[str, Any] = {
        "task_id": task_id,
        "process_id": str(uuid.uuid4()),
        "definition_name": "test-definition",
        "task_name": "test-task",
        "attempt": 1,
        "image": TEST_IMAGE,
        "tag": TEST_TAG,
        "command": tuple(command),
        "environment": {"GNOMON_TASK_ID": task_id},
    }
    values.update(overrides)
    return AttemptSpec(**values)


@dataclass
class RecordingListener:
    """An ExecutorListener that keeps every call, thread-safely."""

    started: list[tuple[str, datetime, str]] = field(default_factory=list)
    nodes: dict[str, str | None] = field(default_factory=dict)
    logs: list[tuple[str, list[LogLine]]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    finished: list[Outcome] = field(default_factory=list)
    keep_lines: bool = True  # False: count lines and output bytes only (for huge outputs)
    line_count: int = 0
    byte_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt_started(
        self, task_id: str, started_at: datetime, container_id: str, node: str | None = None
    ) -> None:
        """Record a start, and the node it was on."""
        with self._lock:
            self.started.append((task_id, started_at, container_id))
            self.nodes[task_id] = node

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Record a batch of lines."""
        with self._lock:
            self.line_count += len(lines)
            self.byte_count += sum(len(ln.message) for ln in lines if ln.source != "gnomon")
            if self.keep_lines or any(line.source == "gnomon" for line in lines):
                self.logs.append((task_id, list(lines)))

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """Record a send-back."""
        with self._lock:
            self.waiting.append((task_id, reason))

    def attempt_finished(self, outcome: Outcome) -> None:
        """Record an outcome."""
        with self._lock:
            self.finished.append(outcome)

    def outcome(self, task_id: str) -> Outcome | None:
        """The outcome reported for `task_id`, if any."""
        with self._lock:
            found = [o for o in self.finished if o.task_id == task_id]
        return found[0] if found else None

    def outcomes(self, task_id: str) -> list[Outcome]:
        """Every outcome reported for `task_id` (there must be at most one)."""
        with self._lock:
            return [o for o in self.finished if o.task_id == task_id]

    def wait_outcome(self, task_id: str, timeout: float = 60.0) -> Outcome:
        """Wait until `task_id` has finished; its outcome."""
        return wait_for(lambda: self.outcome(task_id), timeout, f"task {task_id} to finish")

    def lines(self, task_id: str, source: str | None = None) -> list[LogLine]:
        """The lines stored for `task_id`, optionally from one source, in delivery order."""
        with self._lock:
            batches = [lines for t, lines in self.logs if t == task_id]
        return [line for batch in batches for line in batch if source in (None, line.source)]

    def messages(self, task_id: str, source: str | None = None) -> list[str]:
        """The messages of `lines`."""
        return [line.message for line in self.lines(task_id, source)]

    def starts(self, task_id: str) -> list[tuple[str, datetime, str]]:
        """The attempt_started calls for `task_id`."""
        with self._lock:
            return [s for s in self.started if s[0] == task_id]


class DatabaseLocked(Exception):
    """What a listener raises when its write did not go through."""


class FlakyListener(RecordingListener):
    """Fails the first calls of the named methods (so many each), then records as usual.

    `on_failure` runs at each failure, before it is raised (to look at the engine then).
    """

    def __init__(self, failures: Mapping[str, int], on_failure: Callable[[], None]) -> None:
        super().__init__()
        self._left = dict(failures)
        self._on_failure = on_failure
        self.failed = 0
        self._flaky_lock = threading.Lock()

    def _fail(self, method: str) -> None:
        with self._flaky_lock:
            if self._left.get(method, 0) == 0:
                return
            self._left[method] -= 1
            self.failed += 1
        self._on_failure()
        raise DatabaseLocked("database is locked")

    def attempt_started(
        self, task_id: str, started_at: datetime, container_id: str, node: str | None = None
    ) -> None:
        """Fail, or record."""
        self._fail("attempt_started")
        super().attempt_started(task_id, started_at, container_id, node)

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Fail, or record."""
        self._fail("attempt_logs")
        super().attempt_logs(task_id, lines)

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """Fail, or record."""
        self._fail("attempt_waiting")
        super().attempt_waiting(task_id, reason)

    def attempt_finished(self, outcome: Outcome) -> None:
        """Fail, or record."""
        self._fail("attempt_finished")
        super().attempt_finished(outcome)
