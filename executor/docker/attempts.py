"""What the Docker backend tracks about each attempt, behind the one lock threads share.

Start workers, log readers, the event follower, reconciliation, kills and
finalisers all look at the same attempts: every change of phase, kill request
or end goes through `Attempts`, under its lock, so each happens exactly once.
So do the fields one thread writes and another reads (the exit its die event
gave, the reader thread and the handle that cuts its stream short, the deadline
timer): each is read and written only through `Attempts`, never directly.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from executor.base import Ending
from executor.docker.engine import engine_time
from executor.log_files import Tally
from executor.logs import EntryLedger
from executor.timers import TimerHandle
from executor.tracking import Attempts as Tracking
from executor.tracking import Tracked


@dataclass(frozen=True)
class Exit:
    """How a container ended: from its die event, or from its inspected State."""

    code: int
    ended_at: datetime | None
    started_at: datetime | None = None
    oom_killed: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Exit | None:
        """A die event's exit code; None without one.

        Its end is the event's time: when the engine reported the exit, some
        milliseconds after the process ended (the FinishedAt an inspect would give).
        """
        code = event.get("Actor", {}).get("Attributes", {}).get("exitCode")
        nanos = event.get("timeNano")
        if code is None or nanos is None:
            return None
        return cls(int(code), datetime.fromtimestamp(nanos / 1e9, UTC))

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Exit:
        """The exit an inspected State records, with the engine's own times."""
        return cls(
            int(state["ExitCode"]),
            engine_time(state.get("FinishedAt", "")),
            engine_time(state.get("StartedAt", "")),
            bool(state.get("OOMKilled")),
        )


class Phase(enum.Enum):
    """Where an attempt is in its life."""

    STARTING = "starting"  # queued, pulling, creating, or starting
    RUNNING = "running"  # the container runs (or ran and its exit is not seen yet)
    FINISHING = "finishing"  # its exit is being turned into an Outcome


@dataclass(eq=False)
class Attempt(Tracked):
    """One attempt. Fields below `log` are read and written only under `Attempts.lock`.

    (`reader_broken`, `ledger` and `live_read` excepted: only the attempt's
    one reader thread, or the finaliser once that thread has ended, touch them.)
    """

    phase: Phase = Phase.STARTING
    container_id: str | None = None
    started_at: datetime | None = None
    kill_reason: str | None = None
    kill_ending: Ending | None = None
    exited_early: bool = False  # its die event came before it was marked running
    exit: Exit | None = None  # what its die event said
    reader: threading.Thread | None = None  # follows its output live
    reader_broken: bool = False  # its log stream broke before the output ended
    close_stream: Callable[[], None] | None = None  # cuts the live log stream short
    ledger: EntryLedger = field(default_factory=EntryLedger)  # output entries already read
    # What the live stream read, if it read from the first entry until it ended by itself.
    live_read: Tally | None = None
    deadline: TimerHandle | None = None
    interrupters: list[Callable[[], None]] = field(default_factory=list)  # wake a blocked start


class Attempts(Tracking[Attempt]):
    """The Docker backend's attempts, and every transition of theirs, under one lock."""

    def in_phase(self, phase: Phase) -> list[Attempt]:
        """The tracked attempts in `phase`."""
        with self.lock:
            return [a for a in self._by_task.values() if a.phase == phase]

    def request_kill(self, task_id: str, reason: str, ending: Ending) -> Attempt | None:
        """Record a kill once; the attempt if its container runs (so must be signalled)."""
        with self.lock:
            attempt = self._by_task.get(task_id)
            if attempt is None or attempt.phase == Phase.FINISHING or attempt.kill_reason:
                return None
            attempt.kill_reason, attempt.kill_ending = reason, ending
            interrupters = list(attempt.interrupters)
            running = attempt.phase == Phase.RUNNING
        for interrupt in interrupters:  # a pull in progress is abandoned at once
            interrupt()
        return attempt if running else None

    def claim_exit(self, attempt: Attempt, exit_: Exit | None = None) -> bool:
        """The container exited (`exit_` if its die event said how): True exactly once,
        for the caller that must finalise it."""
        with self.lock:
            if exit_ is not None:
                attempt.exit = exit_
            if attempt.phase == Phase.STARTING:
                attempt.exited_early = True
                return False
            if attempt.phase != Phase.RUNNING:
                return False
            attempt.phase = Phase.FINISHING
            return True

    def mark_running(self, attempt: Attempt) -> tuple[bool, bool]:
        """The container runs: (it exited already, it was asked to stop meanwhile)."""
        with self.lock:
            exited = attempt.exited_early
            attempt.phase = Phase.FINISHING if exited else Phase.RUNNING
            return exited, attempt.kill_reason is not None

    def reopen(self, attempt: Attempt) -> None:
        """Finishing failed for want of an engine: let the next exit check try again."""
        with self.lock:
            attempt.phase = Phase.RUNNING

    def exit_of(self, attempt: Attempt) -> Exit | None:
        """How its die event said the container ended, if one was seen."""
        with self.lock:
            return attempt.exit

    def set_deadline(self, attempt: Attempt, deadline: TimerHandle) -> None:
        """Remember the timer that enforces `max_runtime_seconds`."""
        with self.lock:
            attempt.deadline = deadline

    def cancel_deadline(self, attempt: Attempt) -> None:
        """The attempt is finishing: its deadline no longer applies."""
        with self.lock:
            deadline, attempt.deadline = attempt.deadline, None
        if deadline is not None:
            deadline.cancel()

    def set_reader(self, attempt: Attempt, reader: threading.Thread) -> None:
        """Remember the thread following the container's output."""
        with self.lock:
            attempt.reader = reader

    def set_stream(self, attempt: Attempt, close: Callable[[], None]) -> None:
        """Remember how to cut the log stream being read short."""
        with self.lock:
            attempt.close_stream = close

    def reading(self, attempt: Attempt) -> tuple[threading.Thread | None, Callable[[], None]]:
        """The output reader thread, and a call that cuts its current stream short."""
        with self.lock:
            reader, close = attempt.reader, attempt.close_stream
        return reader, close or _nothing

    def add_interrupter(self, attempt: Attempt, interrupt: Callable[[], None]) -> bool:
        """Register a way to cut a blocking start step short; False if a kill came already."""
        with self.lock:
            if attempt.kill_reason is not None:
                return False
            attempt.interrupters.append(interrupt)
            return True

    def remove_interrupter(self, attempt: Attempt, interrupt: Callable[[], None]) -> None:
        """The blocking step is over."""
        with self.lock:
            attempt.interrupters.remove(interrupt)


def _nothing() -> None:
    """No stream to cut short."""
