"""An in-memory `Executor` for fast scheduler tests: scripted attempts, explicit time, no threads.

Nothing happens behind the test's back: `start` and `kill` only queue, and
the listener hears about starts, logs and endings when the test calls
`advance()` (or `finish()`), on the test's own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from executor.base import (
    AttemptSpec,
    Ending,
    EngineUnavailable,
    ExecutorListener,
    Health,
    InFlight,
    LogLine,
    Outcome,
)

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
_REASONS = {
    Ending.OOM_KILLED: "killed: out of memory",
    Ending.LOST: "container lost",
}


@dataclass(frozen=True)
class Script:
    """What a scripted attempt does once started.

    `duration_seconds=None` runs until `finish()` or `kill()`. `ending` other
    than None makes it end that way: IMAGE_NOT_FOUND and START_FAILED without
    starting, OOM_KILLED and LOST after `duration_seconds`.
    """

    exit_code: int = 0
    lines: tuple[tuple[str, str], ...] = ()  # (source, message), printed when it starts
    duration_seconds: float | None = 0.0
    ending: Ending | None = None
    reason: str | None = None


@dataclass(eq=False)
class _Run:
    spec: AttemptSpec
    script: Script
    container_id: str
    started_at: datetime | None = None
    due: datetime | None = None
    kill: tuple[Ending, str] | None = None


class FakeExecutor:
    """Scripted container backend; time is `clock()` plus what `advance()` added.

    `starts`, `kills` and `recovered` record the calls; set `engine_down` to a
    reason to make `start` raise EngineUnavailable and `health` fail.
    """

    def __init__(
        self, clock: Callable[[], datetime] = lambda: EPOCH, default_script: Script = Script()
    ) -> None:
        self.clock = clock
        self.default_script = default_script
        self.starts: list[AttemptSpec] = []
        self.kills: list[tuple[str, str]] = []
        self.recovered: list[InFlight] = []
        self.engine_down: str | None = None
        self._listener: ExecutorListener | None = None
        self._scripts: list[tuple[Callable[[AttemptSpec], bool], Script]] = []
        self._runs: dict[str, _Run] = {}
        self._offset = timedelta(0)
        self._containers = 0

    def script(self, task_name: str, script: Script) -> None:
        """Attempts of tasks called `task_name` follow `script` (later calls win)."""
        self.script_when(lambda spec: spec.task_name == task_name, script)

    def script_when(self, predicate: Callable[[AttemptSpec], bool], script: Script) -> None:
        """Attempts matching `predicate` follow `script` (later calls win)."""
        self._scripts.insert(0, (predicate, script))

    def now(self) -> datetime:
        """The fake's current time."""
        return self.clock() + self._offset

    @property
    def running(self) -> dict[str, AttemptSpec]:
        """Attempts started and not yet finished, by task id."""
        return {task_id: run.spec for task_id, run in self._runs.items() if run.started_at}

    def advance(self, seconds: float = 0.0) -> None:
        """Start queued attempts, then move time on, ending attempts as they fall due."""
        target = self.now() + timedelta(seconds=seconds)
        self._start_queued()
        self._end_killed()
        while (run := self._next_due(target)) is not None:
            assert run.due is not None
            self._offset += run.due - self.now()
            self._end_due(run)
        self._offset += target - self.now()

    def finish(self, task_id: str, exit_code: int = 0, lines: Sequence[str] = ()) -> None:
        """End a (started) attempt now with `exit_code`, after printing `lines` to stdout."""
        self._start_queued()
        run = self._runs[task_id]
        self._log(run, [("stdout", message) for message in lines])
        self._end(run, Ending.EXITED, exit_code, f"exit code {exit_code}" if exit_code else None)

    # -- the Executor protocol --------------------------------------------------------

    def open(self, listener: ExecutorListener) -> None:
        """Report to `listener` from now on."""
        self._listener = listener

    def start(self, spec: AttemptSpec) -> None:
        """Queue `spec`; it starts at the next `advance()`. EngineUnavailable if down."""
        if self.engine_down is not None:
            raise EngineUnavailable(self.engine_down)
        self.starts.append(spec)
        self._containers += 1
        self._runs[spec.task_id] = _Run(spec, self._script_for(spec), f"fake-{self._containers}")

    def kill(self, task_id: str, reason: str) -> None:
        """Record the kill; the attempt ends KILLED at the next `advance()`."""
        self.kills.append((task_id, reason))
        run = self._runs.get(task_id)
        if run is not None and run.kill is None:
            run.kill = (Ending.KILLED, reason)

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Attempts this fake still runs are re-reported started; any other one is lost."""
        self.recovered.extend(in_flight)
        for item in in_flight:
            run = self._runs.get(item.spec.task_id)
            if run is not None and run.started_at is not None:
                self._tell().attempt_started(run.spec.task_id, run.started_at, run.container_id)
            elif run is None:
                lost = _Run(item.spec, Script(), "")
                self._end(lost, Ending.LOST, None, _REASONS[Ending.LOST])

    def health(self) -> Health:
        """Down while `engine_down` holds a reason."""
        if self.engine_down is not None:
            return Health(ok=False, detail=self.engine_down)
        return Health(ok=True, detail="fake executor")

    def close(self) -> None:
        """Nothing to stop."""

    # -- internals --------------------------------------------------------------------

    def _tell(self) -> ExecutorListener:
        if self._listener is None:
            raise RuntimeError("FakeExecutor.open() was not called")
        return self._listener

    def _script_for(self, spec: AttemptSpec) -> Script:
        return next((s for match, s in self._scripts if match(spec)), self.default_script)

    def _start_queued(self) -> None:
        for run in [r for r in self._runs.values() if r.started_at is None]:
            script = run.script
            if run.kill is not None:
                self._end(run, Ending.KILLED, None, run.kill[1])
            elif script.ending in (Ending.IMAGE_NOT_FOUND, Ending.START_FAILED):
                reason = script.reason or f"image not found: {run.spec.image_ref}"
                self._end(run, script.ending, None, reason)
            else:
                self._begin(run)

    def _begin(self, run: _Run) -> None:
        run.started_at = self.now()
        seconds = run.script.duration_seconds
        limit = run.spec.max_runtime_seconds
        if _times_out(run):
            seconds = limit
        if seconds is not None:
            run.due = run.started_at + timedelta(seconds=seconds)
        self._tell().attempt_started(run.spec.task_id, run.started_at, run.container_id)
        self._log(run, run.script.lines)

    def _end_killed(self) -> None:
        for run in [r for r in self._runs.values() if r.kill is not None]:
            assert run.kill is not None
            self._end(run, run.kill[0], 137, run.kill[1])

    def _next_due(self, target: datetime) -> _Run | None:
        due = [r for r in self._runs.values() if r.due is not None and r.due <= target]
        return min(due, key=lambda r: r.due or target, default=None)

    def _end_due(self, run: _Run) -> None:
        if _times_out(run):
            reason = f"killed: exceeded max_runtime_seconds ({run.spec.max_runtime_seconds})"
            self._end(run, Ending.TIMED_OUT, 137, reason)
        elif run.script.ending in (Ending.OOM_KILLED, Ending.LOST):
            ending = run.script.ending
            code = 137 if ending == Ending.OOM_KILLED else None
            self._end(run, ending, code, run.script.reason or _REASONS[ending])
        else:
            code = run.script.exit_code
            self._end(run, Ending.EXITED, code, f"exit code {code}" if code else None)

    def _log(self, run: _Run, lines: Sequence[tuple[str, str]]) -> None:
        if lines:
            batch = [LogLine(self.now(), source, message) for source, message in lines]
            self._tell().attempt_logs(run.spec.task_id, batch)

    def _end(self, run: _Run, ending: Ending, exit_code: int | None, reason: str | None) -> None:
        self._runs.pop(run.spec.task_id, None)
        outcome = Outcome(
            task_id=run.spec.task_id,
            ending=ending,
            exit_code=exit_code,
            ended_at=self.now(),
            started_at=run.started_at,
            oom_killed=ending == Ending.OOM_KILLED,
            reason=reason,
        )
        self._tell().attempt_finished(outcome)


def _times_out(run: _Run) -> bool:
    """Whether the script runs past the attempt's max_runtime_seconds."""
    limit, seconds = run.spec.max_runtime_seconds, run.script.duration_seconds
    return limit is not None and (seconds is None or seconds > limit)
