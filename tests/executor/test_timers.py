"""TimerThread: one thread serving every deadline."""

from __future__ import annotations

import threading
import time

from executor.timers import TimerThread
from tests.executor.support import wait_for


def test_runs_callbacks_in_deadline_order_and_skips_cancelled() -> None:
    timers = TimerThread("test-timers")
    timers.start()
    seen: list[str] = []
    try:
        timers.call_later(0.2, lambda: seen.append("late"))
        cancelled = timers.call_later(0.1, lambda: seen.append("cancelled"))
        timers.call_later(0.05, lambda: seen.append("early"))
        cancelled.cancel()
        wait_for(lambda: len(seen) == 2, timeout=10)
        time.sleep(0.15)  # give the cancelled callback a chance to (wrongly) run
        assert seen == ["early", "late"]
    finally:
        timers.close()


def test_a_failing_callback_does_not_stop_the_thread() -> None:
    timers = TimerThread("test-timers")
    timers.start()
    ran = threading.Event()
    try:
        timers.call_later(0, lambda: 1 / 0)
        timers.call_later(0.01, ran.set)
        assert ran.wait(10)
    finally:
        timers.close()


def test_every_repeats_until_closed() -> None:
    timers = TimerThread("test-timers")
    timers.start()
    ticks: list[float] = []
    try:
        timers.every(0.01, lambda: ticks.append(time.monotonic()))
        wait_for(lambda: len(ticks) >= 3, timeout=10)
    finally:
        timers.close()
    count = len(ticks)
    time.sleep(0.05)
    assert len(ticks) == count
