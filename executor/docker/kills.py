"""Kills and deadlines: SIGTERM, a grace period, SIGKILL; `max_runtime_seconds` enforced.

The timer thread only queues work: signals are sent from the kill pool, which
nothing slow shares, so a slow engine call elsewhere never delays a deadline.
"""

from __future__ import annotations

import functools

from executor.base import Ending
from executor.docker.attempts import Attempt, Phase
from executor.docker.runtime import Runtime


class Killer:
    """Stops containers on request or at their deadline."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def request(self, task_id: str, reason: str, ending: Ending) -> None:
        """Stop the attempt; one not started yet never starts (its starter sees the kill)."""
        attempt = self._rt.attempts.request_kill(task_id, reason, ending)
        if attempt is not None:
            self._rt.kill_job(self.terminate, attempt)

    def arm_deadline(self, attempt: Attempt, elapsed: float) -> None:
        """Kill the attempt once it has run `max_runtime_seconds` (`elapsed` of them are gone)."""
        seconds = attempt.spec.max_runtime_seconds
        if seconds is None:
            return
        on_deadline = functools.partial(self._on_deadline, attempt)
        self._rt.attempts.set_deadline(
            attempt, self._rt.timers.call_later(seconds - elapsed, on_deadline)
        )

    def terminate(self, attempt: Attempt) -> None:
        """SIGTERM now, SIGKILL after the grace period unless it has exited by then."""
        assert attempt.container_id is not None
        self._rt.engine.signal(attempt.container_id, "SIGTERM")

        def force() -> None:
            if attempt.phase == Phase.RUNNING:
                self._rt.kill_job(self._rt.engine.signal, attempt.container_id, "SIGKILL")

        self._rt.timers.call_later(self._rt.settings.kill_grace_seconds, force)

    def _on_deadline(self, attempt: Attempt) -> None:
        """Timer: the attempt ran past max_runtime_seconds."""
        seconds = attempt.spec.max_runtime_seconds
        reason = f"killed: exceeded max_runtime_seconds ({seconds})"
        self.request(attempt.task_id, reason, Ending.TIMED_OUT)
