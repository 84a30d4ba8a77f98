"""The machinery every part of the Docker backend shares: engine, attempts, pools, clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from executor.base import AttemptSpec
from executor.connection import ENGINE_GONE
from executor.docker.attempts import Attempt, Attempts
from executor.docker.engine import Engine
from executor.docker.settings import DockerSettings
from executor.reporting import Reporter
from executor.timers import TimerThread
from executor.tracking import attempt_log

log = logging.getLogger(__name__)

_KILL_THREADS = 2  # kills never wait behind finalisers held up by a slow listener


class Runtime:
    """Shared by the backend's parts; built once per executor."""

    def __init__(self, settings: DockerSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = Engine(settings)
        self.closing = threading.Event()
        self.reporter = Reporter(self.closing)
        self.attempts = Attempts(self.reporter)
        self.timers = TimerThread("gnomon-executor-timers")
        self.starts = ThreadPoolExecutor(settings.worker_threads, "gnomon-executor-start")
        self.chores = ThreadPoolExecutor(settings.worker_threads, "gnomon-executor-chore")
        self.kills = ThreadPoolExecutor(_KILL_THREADS, "gnomon-executor-kill")

    def new_attempt(self, spec: AttemptSpec, skip_until: datetime | None = None) -> Attempt:
        """An attempt whose output goes to the listener, capped and batched."""
        settings = self.settings
        output = attempt_log(
            self.reporter,
            spec.task_id,
            self.clock,
            settings.log_cap_bytes,
            settings.log_batch_lines,
            skip_until,
        )
        return Attempt(spec, output)

    def chore(self, job: Callable[..., None], *args: Any) -> None:
        """Run `job` on the chore pool (finalising, recovery)."""
        self._submit(self.chores, job, *args)

    def kill_job(self, job: Callable[..., None], *args: Any) -> None:
        """Run `job` on the kill pool."""
        self._submit(self.kills, job, *args)

    def shutdown_pools(self) -> None:
        """Stop the pools, dropping queued jobs, after the running ones end."""
        for pool in (self.starts, self.chores, self.kills):
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
        """Queue `job`, guarded as a loop boundary; dropped once close() shut the pool."""
        try:
            pool.submit(self.guarded, job, *args)
        except RuntimeError:
            if not self.closing.is_set():
                raise
            log.debug("executor closing: dropped job %s", job)

    def guarded(self, job: Callable[..., None], *args: Any) -> None:
        """Run `job`; an error is logged (an unreachable engine remembered), never raised."""
        try:
            job(*args)
        except ENGINE_GONE as error:
            self.engine.mark_down(error)
        except Exception:
            log.exception("executor job %s failed", getattr(job, "__name__", job))
