"""The clock, and one thread that runs short callbacks at given times (not one per deadline)."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current time, aware, in UTC (every executor's default clock)."""
    return datetime.now(UTC)


@dataclass(order=True)
class TimerHandle:
    """A scheduled callback; `cancel()` keeps it from running."""

    when: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Do not run this callback (a no-op if it already ran)."""
        self.cancelled = True


class TimerThread:
    """A heap of monotonic deadlines served by one daemon thread.

    Callbacks run on the timer thread and must be quick: hand real work to a pool.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[TimerHandle] = []
        self._seq = itertools.count()
        self._wakeup = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start serving deadlines."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None]) -> TimerHandle:
        """Run `action` once, `delay` seconds from now."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), next(self._seq), action)
        with self._wakeup:
            heapq.heappush(self._heap, handle)
            self._wakeup.notify()
        return handle

    def every(self, interval: float, action: Callable[[], None]) -> None:
        """Run `action` every `interval` seconds until the thread is closed."""

        def repeat() -> None:
            action()
            self.call_later(interval, repeat)

        self.call_later(interval, repeat)

    def close(self) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._wakeup:
            self._stopped = True
            self._heap.clear()
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            handle = self._next_due()
            if handle is None:
                return
            try:
                handle.action()
            except Exception:
                log.exception("timer callback %r failed", handle.action)

    def _next_due(self) -> TimerHandle | None:
        """Block until a live callback is due; None once closed."""
        with self._wakeup:
            while not self._stopped:
                if not self._heap:
                    self._wakeup.wait()
                    continue
                wait = self._heap[0].when - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                handle = heapq.heappop(self._heap)
                if not handle.cancelled:
                    return handle
            return None


class Periodic:
    """A job run every `interval` seconds, one run at a time, on a thread of its own.

    Slow jobs (reading the engine, storing output) live here and not on a
    `TimerThread`, so they can never hold up a deadline.
    """

    def __init__(self, name: str, interval: float, job: Callable[[], None]) -> None:
        self._name = name
        self._interval = interval
        self._job = job
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start running the job."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Run the job soon (once the current run, if any, is over)."""
        self._wake.set()

    def close(self) -> None:
        """Stop after the current run."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self._job()
            except Exception:
                log.exception("periodic job %s failed", self._name)
