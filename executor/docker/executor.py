"""`DockerExecutor`: the facade that wires the Docker backend's parts together.

Threads: a bounded pool creates/pulls/starts containers, another finalises
exits, a small one sends kill signals; one thread follows the engine's event
stream for exits, one reconciles, one flushes output batches, one timer thread
serves every deadline, and each running container has one thread reading its
log stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from executor.base import AttemptSpec, Ending, ExecutorListener, Health, InFlight
from executor.docker.adoption import Adopter
from executor.docker.attempts import Phase
from executor.docker.creation import Launcher
from executor.docker.exits import ExitWatcher
from executor.docker.finishing import Finisher
from executor.docker.kills import Killer
from executor.docker.output import OutputReader
from executor.docker.runtime import Runtime
from executor.docker.settings import DockerSettings
from executor.timers import Periodic, utcnow


class DockerExecutor:
    """The `Executor` that runs attempts as containers on one Docker Engine."""

    def __init__(self, settings: DockerSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self._rt = rt = Runtime(settings, clock)
        self._output = OutputReader(rt)
        self._finisher = Finisher(rt, self._output)
        self._killer = Killer(rt)
        self._launcher = Launcher(rt, self._output, self._killer, self._finisher)
        self._adopter = Adopter(rt, self._launcher, self._finisher)
        self._exits = ExitWatcher(
            rt, self._finisher, self._output, lambda: rt.chore(self._adopter.retry)
        )
        self._flusher = Periodic(
            "gnomon-executor-flush", settings.log_batch_seconds, rt.attempts.flush_logs
        )
        self._opened = False

    def open(self, listener: ExecutorListener) -> None:
        """Start the event stream, timers, flushing and reconciliation; never raises if down."""
        self._rt.reporter.listener = listener
        self._rt.engine.check()
        self._rt.timers.start()
        self._flusher.start()
        self._exits.start()
        self._opened = True

    def start(self, spec: AttemptSpec) -> None:
        """Queue `spec` to be created and started; EngineUnavailable if the engine is down."""
        if not self._opened or self._rt.closing.is_set():
            raise RuntimeError("DockerExecutor.start() needs open() and no close()")
        self._rt.engine.require_up()
        attempt = self._rt.new_attempt(spec)
        self._rt.attempts.add(attempt)
        self._rt.starts.submit(self._launcher.launch, attempt)

    def kill(self, task_id: str, reason: str) -> None:
        """SIGTERM, `kill_grace_seconds`, SIGKILL; an attempt not yet started never starts."""
        self._killer.request(task_id, reason, Ending.KILLED)

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Adopt `in_flight` (whichever instance started them); if the engine is down, later.

        May be called again with more attempts; those already tracked are skipped.
        """
        self._adopter.recover(in_flight)
        self._exits.reconciler.poke()

    def health(self) -> Health:
        """Whether the engine answers (cached for a second, answered within ~2 s)."""
        return self._rt.engine.check()

    def close(self) -> None:
        """Stop following the engine; containers keep running for `recover` to find."""
        rt = self._rt
        rt.closing.set()
        self._exits.close()
        self._flusher.close()
        rt.timers.close()
        rt.shutdown_pools()
        for attempt in rt.attempts.all():
            if attempt.phase == Phase.STARTING:
                self._finisher.send_back(
                    attempt, "the executor closed before the container started"
                )
            self._output.stop(attempt)
            attempt.log.flush()
        rt.engine.close()
