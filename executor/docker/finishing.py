"""Finishing an attempt: its outcome worked out, stored by the listener, its container removed.

The container is removed only after the listener has stored the outcome; until
then the outcome is offered again and again (see `executor.reporting`), and a
restart finds the container and finishes it then.
"""

from __future__ import annotations

import dataclasses
import logging

from executor.base import Ending, Outcome
from executor.connection import ENGINE_GONE
from executor.docker.attempts import Attempt, Exit
from executor.docker.output import OutputReader
from executor.docker.runtime import Runtime
from executor.oom import oom_reported

log = logging.getLogger(__name__)

_SIGKILLED = 128 + 9  # the exit code after the OOM killer, our SIGKILL or a forced removal


class Finisher:
    """Turns exits into outcomes and reports each attempt's end exactly once."""

    def __init__(self, runtime: Runtime, output: OutputReader) -> None:
        self._rt = runtime
        self._output = output

    def claim(self, attempt: Attempt, exit_: Exit | None = None) -> None:
        """The container has exited: finalise it once (or once it is marked running)."""
        if self._rt.attempts.claim_exit(attempt, exit_):
            self._rt.chore(self.finalise, attempt)

    def finalise(self, attempt: Attempt) -> None:
        """Pool job: drain logs, collect log paths, inspect, report, remove."""
        try:
            outcome = self._final_outcome(attempt)
        except ENGINE_GONE as error:
            self._rt.engine.mark_down(error)
            self._rt.attempts.reopen(attempt)  # the reconciliation after reconnecting retries
            return
        except Exception as error:
            log.exception("finalising task %s failed", attempt.task_id)
            outcome = self.lost(attempt, f"executor error: {error}")
        self.report(attempt, outcome)

    def report(self, attempt: Attempt, outcome: Outcome) -> None:
        """Deliver remaining logs, then the outcome (until stored); then remove the container."""
        self._rt.attempts.report(attempt, outcome, lambda: self._dispose(attempt, outcome))

    def fail_start(self, attempt: Attempt, ending: Ending, reason: str) -> None:
        """The attempt ended before its container ran."""
        self.report(
            attempt, Outcome(attempt.task_id, ending, None, self._rt.clock(), reason=reason)
        )

    def send_back(self, attempt: Attempt, reason: str) -> None:
        """The attempt did not start for want of an engine: offer it back."""
        self._rt.attempts.send_back(attempt, reason)

    def lost(self, attempt: Attempt, reason: str) -> Outcome:
        """The outcome of an attempt whose container is gone."""
        return Outcome(
            task_id=attempt.task_id,
            ending=Ending.LOST,
            exit_code=None,
            ended_at=self._rt.clock(),
            started_at=attempt.started_at,
            reason=reason,
        )

    def _final_outcome(self, attempt: Attempt) -> Outcome:
        self._rt.attempts.cancel_deadline(attempt)
        exit_ = self._rt.attempts.exit_of(attempt)
        if exit_ is None or (exit_.code == _SIGKILLED and attempt.kill_reason is None):
            # No die event (reconciliation, recovery), or killed by someone else: the
            # OOM killer or a removal. The engine answers an inspect only once it has
            # cleaned up after the exit, some milliseconds after the die event, so it
            # is asked only when the event does not tell all.
            assert attempt.container_id is not None
            state = self._rt.engine.state(attempt.container_id)
            if state is None or (state.get("Status") == "removing" and not attempt.kill_reason):
                self._output.stop(attempt)
                return self.lost(attempt, "container lost")
            exit_ = Exit.from_state(state)
        self._output.drain(attempt)
        self._output.collect_log_paths(attempt)
        return self._outcome(attempt, self._oom_seen_late(attempt, exit_))

    def _oom_seen_late(self, attempt: Attempt, exit_: Exit) -> Exit:
        """A SIGKILL not ours and not marked out of memory is asked about once more, after
        the output was read, with the engine's `oom` events (see `executor.oom`)."""
        if exit_.code != _SIGKILLED or exit_.oom_killed or attempt.kill_reason is not None:
            return exit_
        assert attempt.container_id is not None
        state = self._rt.engine.state(attempt.container_id) or {}
        since = exit_.started_at or attempt.started_at
        api, now = self._rt.engine.api(), self._rt.clock()
        if not oom_reported(api, attempt.container_id, state, since, now):
            return exit_
        return dataclasses.replace(exit_, oom_killed=True)

    def _outcome(self, attempt: Attempt, exit_: Exit) -> Outcome:
        """How the container ended."""
        exit_code = exit_.code
        if attempt.kill_reason is not None:
            ending, reason = attempt.kill_ending or Ending.KILLED, attempt.kill_reason
        elif exit_.oom_killed and exit_code != 0:
            ending, reason = Ending.OOM_KILLED, "killed: out of memory"
        else:
            ending, reason = Ending.EXITED, (f"exit code {exit_code}" if exit_code else None)
        started_at = exit_.started_at or attempt.started_at
        ended_at = exit_.ended_at or self._rt.clock()
        if started_at is not None:
            # For an instant exit the engine can record FinishedAt just before StartedAt.
            ended_at = max(ended_at, started_at)
        return Outcome(
            task_id=attempt.task_id,
            ending=ending,
            exit_code=exit_code,
            ended_at=ended_at,
            started_at=started_at,
            oom_killed=exit_.oom_killed,
            reason=reason,
        )

    def _dispose(self, attempt: Attempt, outcome: Outcome) -> None:
        """Remove the finished container (kept if failed and so configured)."""
        failed = outcome.ending != Ending.EXITED or outcome.exit_code != 0
        keep = failed and self._rt.settings.keep_failed_containers
        if attempt.container_id is not None and not keep and outcome.ending != Ending.LOST:
            self._rt.engine.remove(attempt.container_id)
