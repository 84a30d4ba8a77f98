"""The run engine: one pass fires due schedules and moves runs on; executor events feed it.

`tick(now)` is the whole of a pass, in named steps: fire due definitions,
promote queued runs, advance running runs (on the periodic pass), dispatch
attempts to the executor. Every state change goes through `scheduler.runs`;
this module only gathers facts, applies after-commit effects and builds specs.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import PeeweeException, fn

from definitions import definition_from_json
from executor import AttemptSpec, Ending, EngineUnavailable, Executor, InFlight, LogLine, Outcome
from scheduler import runs
from scheduler.metrics import SchedulerMetrics, trigger_kind
from scheduler.models import Definition, LogEntry, Run, Task
from scheduler.retention import RetentionSettings
from scheduler.runs import Changes
from scheduler.secrets import SecretBox, SecretUnavailable
from scheduler.states import LIVE_TASK, RunStatus, TaskStatus
from scheduler.tokens import server_secret, task_token
from scheduler.transitions import fire_plan
from scheduler.tx import write_transaction

log = logging.getLogger(__name__)

OUTPUT_SOURCES = ("stdout", "stderr")


@dataclass(frozen=True)
class SchedulerSettings:
    """How the engine behaves; built once from the service configuration."""

    public_url: str
    max_running_containers: int = 16
    tick_seconds: float = 5.0
    on_time_seconds: float = 60.0  # a fire later than this was missed (service down)
    max_catch_up_runs: int = 10  # run_all's cap when a definition sets none
    secrets_key: str | None = field(default=None, repr=False)  # Fernet key of secret values
    retention: RetentionSettings = field(default_factory=RetentionSettings)


class Engine:
    """Drives runs: reacts to executor events and runs scheduling passes."""

    def __init__(
        self,
        executor: Executor,
        settings: SchedulerSettings,
        clock: Callable[[], datetime],
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self.executor = executor
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.wake: Callable[[], None] = lambda: None
        self._seq = itertools.count()
        self._secret: bytes | None = None
        self.secrets = SecretBox(settings.secrets_key)

    # ------------------------------------------------------------ the pass

    def tick(self, now: datetime, full: bool = True) -> datetime:
        """One scheduling pass at `now`; returns when the next pass is due."""
        self.fire_due(now)
        self.promote_queued(now)
        if full:
            self.advance_running(now)
        self.dispatch(now)
        return self.next_wake(now)

    def fire_due(self, now: datetime) -> None:
        """Start the runs of every definition whose next fire time has come."""
        due = Definition.select().where(
            (Definition.paused == False) & (Definition.next_fire_at <= now)  # noqa: E712
        )
        for row in list(due):
            self._fire(row, now)

    def _fire(self, row: Definition, now: datetime) -> None:
        """Fire one definition, unless another scheduler already did."""
        plan = fire_plan(
            definition_from_json(row.body),
            row.next_fire_at,
            now,
            on_time=timedelta(seconds=self.settings.on_time_seconds),
            default_catch_up=self.settings.max_catch_up_runs,
        )
        changes = runs.fire(row.name, row.next_fire_at, plan.next_fire_at, plan.fire_times, now)
        if changes is None:
            return
        if plan.skipped and self.metrics:
            self.metrics.fires_skipped.labels(row.name, "misfire").inc(plan.skipped)
        self.apply(changes)

    def promote_queued(self, now: datetime) -> None:
        """Start queued runs whose definition has no running run any more."""
        names = Run.select(Run.definition_name).where(Run.status == RunStatus.QUEUED).distinct()
        for (name,) in list(names.tuples()):
            self.apply(runs.promote_queued(name, now))

    def advance_running(self, now: datetime) -> None:
        """Re-plan every running run: the safety net behind event-driven advances."""
        running = Run.select(Run.id).where(Run.status == RunStatus.RUNNING)
        for (run_id,) in list(running.tuples()):
            self.apply(runs.advance(run_id, now))

    def dispatch(self, now: datetime) -> None:
        """Hand ready attempts to the executor, within the container cap."""
        live = Task.select().where(Task.status.in_(LIVE_TASK)).count()
        claimed, waiting = runs.claim_for_start(now, self.settings.max_running_containers - live)
        for i, task in enumerate(claimed):
            if not self._start(task, now):
                for rest in claimed[i + 1 :]:
                    runs.mark_waiting(rest.id)
                break
        if self.metrics:
            self.metrics.attempts_running.set(live + len(claimed))
            self.metrics.attempts_pending.set(waiting)

    def _start(self, task: Task, now: datetime) -> bool:
        """Start one claimed attempt; False if the engine is unavailable."""
        try:
            self.executor.start(self.spec_for(task))
        except EngineUnavailable as exc:
            log.warning("container engine unavailable, %s waits: %s", task.id, exc)
            runs.mark_waiting(task.id)
            return False
        except SecretUnavailable as exc:  # names the variable, never its value
            reason = f"could not start: {exc}"
            self.attempt_finished(Outcome(task.id, Ending.START_FAILED, None, now, reason=reason))
        except Exception:
            log.exception("could not start attempt %s", task.id)
            reason = "could not start: internal error"
            self.attempt_finished(Outcome(task.id, Ending.START_FAILED, None, now, reason=reason))
        return True

    def next_wake(self, now: datetime) -> datetime:
        """The earliest of: the next fire, the next backoff expiry, the periodic pass."""
        candidates = [now + timedelta(seconds=self.settings.tick_seconds)]
        fire = Definition.select(fn.MIN(Definition.next_fire_at)).where(
            Definition.paused == False  # noqa: E712
        )
        backoff = Task.select(fn.MIN(Task.not_before)).where(Task.status == TaskStatus.SUBMITTED)
        for query in (fire, backoff):
            when = _as_time(query.scalar())
            if when is not None:
                candidates.append(when)
        return max(min(candidates), now)

    # ------------------------------------------------- after-commit effects

    def apply(self, changes: Changes) -> None:
        """Act on what a committed transaction changed: kills, metrics, a new pass."""
        for task_id in changes.kill:
            self.executor.kill(task_id, runs.KILLED_REASON)
        if self.metrics:
            try:
                self._count(changes)
            except PeeweeException:  # the change is committed: a metric must not undo its answer
                log.exception("counting a committed change in the metrics failed")
        if changes.started or changes.ended or changes.finished_attempts:
            self.wake()

    def _count(self, changes: Changes) -> None:
        """Feed the metrics from a committed change."""
        m = self.metrics
        for run in Run.select().where(Run.id.in_(changes.started)) if changes.started else ():
            m.runs_started.labels(run.definition_name, trigger_kind(run.trigger)).inc()
            if run.scheduled_for is not None and run.trigger == "schedule":
                m.schedule_lag.observe((run.started_at - run.scheduled_for).total_seconds())
        for run_id, status in changes.ended:
            name = Run.get_by_id(run_id).definition_name
            m.runs_finished.labels(name, status.value).inc()
        for name in changes.skipped:
            m.fires_skipped.labels(name, "overlap").inc()
        for task in changes.finished_attempts:
            m.attempts_finished.labels(task.status).inc()
            if task.started_at and task.ended_at:
                m.attempt_duration.observe((task.ended_at - task.started_at).total_seconds())

    # ----------------------------------------------------- executor events

    def attempt_started(self, task_id: str, started_at: datetime, container_id: str) -> None:
        """The attempt's container runs."""
        runs.mark_started(task_id, started_at, container_id)

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Store a batch of container output."""
        rows = [
            {
                "id": str(uuid.uuid4()),
                "task": task_id,
                "when": line.when,
                "source": line.source,
                "message": line.message,
                "seq": next(self._seq),
            }
            for line in lines
        ]
        if rows:
            with write_transaction():
                LogEntry.insert_many(rows).execute()

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """The engine went away while starting the attempt: it waits as pending."""
        log.warning("attempt %s waits for the container engine: %s", task_id, reason)
        runs.mark_waiting(task_id)

    def attempt_finished(self, outcome: Outcome) -> None:
        """Record the end of an attempt and move its run on."""
        self.apply(runs.finish_attempt(outcome, self.clock()))

    # -------------------------------------------------------------- specs

    @property
    def secret(self) -> bytes:
        """The task-token secret, read (or made) once."""
        if self._secret is None:
            self._secret = server_secret()
        return self._secret

    def spec_for(self, task: Task, strict: bool = True) -> AttemptSpec:
        """The container spec of a stored attempt, from its run's copy of the definition.

        Secret values are opened and `value_from_env` ones read from the service's
        environment here, at the start of the attempt; SecretUnavailable if one cannot be
        (unless not `strict`: then it is left out).
        """
        run = Run.get_by_id(task.run_id)
        definition = definition_from_json(run.definition_body)
        command = definition.task(task.task_name).executable
        env = self.secrets.environment(command.environment_variables, os.environ, strict=strict)
        env.update(self._gnomon_env(task))
        return AttemptSpec(
            task_id=task.id,
            process_id=task.run_id,
            definition_name=task.definition_name,
            task_name=task.task_name,
            attempt=task.attempt,
            image=command.image,
            tag=command.tag,
            command=tuple(command.command),
            environment=env,
            memory_mib=command.memory,
            cpu_units=command.cpu,
            log_paths=tuple(command.log_paths),
            max_runtime_seconds=definition.task(task.task_name).max_runtime_seconds,
            pull_policy=command.pull_policy,
            secret_names=frozenset(
                v.variable_name
                for v in command.environment_variables
                if v.secret or v.value_from_env is not None
            ),
        )

    def _gnomon_env(self, task: Task) -> dict[str, str]:
        """The GNOMON_* variables a task container is told (they override the definition's)."""
        return {
            "GNOMON_URL": self.settings.public_url,
            "GNOMON_TASK_ID": task.id,
            "GNOMON_PROCESS_ID": task.run_id,
            "GNOMON_PROCESS_DEFINITION_NAME": task.definition_name,
            "GNOMON_TASK_DEFINITION_NAME": task.task_name,
            "GNOMON_ATTEMPT": str(task.attempt),
            "GNOMON_TASK_TOKEN": task_token(self.secret, task.id),
        }

    def in_flight(self) -> list[InFlight]:
        """Attempts the database believes are starting or running, for recovery."""
        tasks = list(Task.select().where(Task.status.in_(LIVE_TASK)))
        if not tasks:
            return []
        newest = dict(
            LogEntry.select(LogEntry.task, fn.MAX(LogEntry.when))
            .where(LogEntry.task.in_([t.id for t in tasks]) & LogEntry.source.in_(OUTPUT_SOURCES))
            .group_by(LogEntry.task)
            .tuples()
        )
        return [InFlight(self.spec_for(t, strict=False), _as_time(newest.get(t.id))) for t in tasks]


def _as_time(value: object) -> datetime | None:
    """A MAX() over a datetime column, as an aware datetime (SQLite returns text)."""
    return LogEntry.when.python_value(value) if value is not None else None
