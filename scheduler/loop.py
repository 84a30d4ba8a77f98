"""APScheduler hosts the engine's pass: one job, woken at the next due time or by events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

JOB_ID = "gnomon-pass"

Pass = Callable[[datetime, bool], datetime]


class Loop:
    """Runs `pass_(now, full)` when it is due, when woken, and every `period` at the latest.

    The database decides what is due; APScheduler only keeps the in-memory
    timer (its job stores are not shared between processes, see LIBRARIES.md).
    One pass runs at a time: a wake during a pass makes that pass go round once
    more, and a wake racing the end of a pass re-arms the job when it has ended.
    """

    def __init__(self, pass_: Pass, clock: Callable[[], datetime], period: float) -> None:
        self._pass = pass_
        self._clock = clock
        self._period = timedelta(seconds=period)
        self._lock = threading.Lock()
        self._woken = False
        self._in_pass = False
        self._next_full = datetime.min.replace(tzinfo=UTC)
        self._scheduler: BackgroundScheduler | None = None
        self._last_good: datetime | None = None
        self._last_error: str | None = None

    def problem(self, now: datetime, stale_after: timedelta) -> str | None:
        """Why scheduling is not working now, judged by the passes; None if it is.

        The last pass failed, or no pass has succeeded for `stale_after`.
        """
        with self._lock:
            last_good, last_error = self._last_good, self._last_error
        if last_error is not None:
            since = "never" if last_good is None else f"{last_good:%Y-%m-%dT%H:%M:%SZ}"
            return f"scheduling passes fail ({last_error}); last good pass: {since}"
        if last_good is not None and now - last_good > stale_after:
            return f"no scheduling pass has ended since {last_good:%Y-%m-%dT%H:%M:%SZ}"
        return None

    def start(self) -> None:
        """Start the timer thread and run a first full pass at once."""
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._scheduler.add_listener(
            self._job_ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES
        )
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=self._period.total_seconds(),
            id=JOB_ID,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the timer, waiting for a pass in progress to finish."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def wake(self) -> None:
        """Ask for a pass now (from any thread)."""
        with self._lock:
            self._woken = True
            if not self._in_pass:
                self._reschedule(datetime.now(UTC))

    def _run(self) -> None:
        """Passes until no wake came during the last; then sleep until the next is due."""
        with self._lock:
            self._in_pass = True
        try:
            while True:
                with self._lock:
                    self._woken = False
                due = self._one_pass()
                with self._lock:
                    if not self._woken:
                        self._in_pass = False
                        self._reschedule(min(due, self._next_full))
                        return
        finally:
            with self._lock:
                self._in_pass = False

    def _one_pass(self) -> datetime:
        """One pass of the engine; a failing pass is logged and retried in a second."""
        now = self._clock()
        full = now >= self._next_full
        if full:
            self._next_full = now + self._period
        try:
            due = self._pass(now, full)
        except Exception as exc:
            log.exception("scheduling pass failed; retrying shortly")
            with self._lock:
                self._last_error = type(exc).__name__  # the driver's text may name hosts
            return now + timedelta(seconds=1)
        with self._lock:
            self._last_good, self._last_error = self._clock(), None
        return due

    def _job_ended(self, _event: JobEvent) -> None:
        """A wake that arrived as the last pass was ending runs now that it has ended."""
        with self._lock:
            if self._woken and not self._in_pass:
                self._reschedule(datetime.now(UTC))

    def _reschedule(self, when: datetime) -> None:
        """Move the job's next run to `when` (real time; the job stays registered)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.modify_job(JOB_ID, next_run_time=when)
