"""The run engine: one pass fires due schedules and moves runs on; executor events feed it.

`tick(now)` is the whole of a pass, in named steps: fire due definitions,
promote queued runs, advance running runs (on the periodic pass), dispatch
attempts to the executor. Every state change goes through `scheduler.runs`;
this module only gathers facts, applies after-commit effects and builds specs.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from peewee import IntegrityError, InterfaceError, OperationalError, PeeweeException, fn

from definitions import DockerImageCommand, definition_from_json
from definitions.run_inputs import ancestors, input_environment, parameter_environment
from executor import AttemptSpec, Ending, EngineUnavailable, Executor, InFlight, LogLine, Outcome
from executor.container_options import ContainerOptions, MountSpec, options_problem
from scheduler import instances, queries, runs
from scheduler.bulk import batch_ids, insert_ignoring
from scheduler.metrics import SchedulerMetrics, trigger_kind
from scheduler.models import Definition, LogEntry, Run, Task
from scheduler.retention import RetentionSettings
from scheduler.runs import Changes
from scheduler.secrets import SecretBox, SecretUnavailable
from scheduler.states import LIVE_TASK, RunStatus, TaskStatus
from scheduler.tokens import server_secret, task_token
from scheduler.transitions import FirePlan, fire_plan
from scheduler.tx import recovering_connection, recovers_connection, write_transaction

log = logging.getLogger(__name__)

OUTPUT_SOURCES = ("stdout", "stderr")
FIRE_BATCH = 250  # fires made in one transaction: how long a pass holds the write lock at most
# a log entry row's columns, in the order its values are given to insert_ignoring
LOG_ENTRY_FIELDS = (
    LogEntry.id,
    LogEntry.task,
    LogEntry.when,
    LogEntry.source,
    LogEntry.message,
    LogEntry.seq,
)


class RunFacts(NamedTuple):
    """What the metrics read of a run that a change started or queued (not its body)."""

    id: str
    definition_name: str
    trigger: str
    status: str
    scheduled_for: datetime | None
    started_at: datetime
    created_at: datetime | None


@dataclass(frozen=True)
class SchedulerSettings:
    """How the engine behaves; built once from the service configuration."""

    public_url: str
    max_running_containers: int = 16
    tick_seconds: float = 5.0
    on_time_seconds: float = 60.0  # a fire later than this was missed (service down)
    max_catch_up_runs: int = 10  # run_all's cap when a definition sets none
    instance: str = "default"  # this instance's name: it owns the attempts it starts
    lease_seconds: float = 30.0  # an instance silent this long has its attempts adopted
    schedule_retry_seconds: float = 60.0  # a definition whose fire failed is tried again after
    allowed_bind_paths: tuple[str, ...] = ()  # host directories a task may bind-mount
    secrets_key: str | None = field(default=None, repr=False)  # Fernet key of secret values
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @property
    def lease(self) -> timedelta:
        """How long an instance's lease lasts without a heartbeat."""
        return timedelta(seconds=self.lease_seconds)


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
        self.runs_ended: Callable[[], None] = lambda: None  # the notification sender's wake
        self._seq = itertools.count()
        self._secret: bytes | None = None
        self._unhanded: set[str] = set()  # claimed, but neither started nor sent back yet
        self._failing: dict[str, tuple[datetime, datetime]] = {}  # name: (updated_at, retry at)
        self._next_heartbeat = datetime.min.replace(tzinfo=UTC)
        self.secrets = SecretBox(settings.secrets_key)

    # ------------------------------------------------------------ the pass

    def tick(self, now: datetime, full: bool = True) -> datetime:
        """One scheduling pass at `now`; returns when the next pass is due."""
        with recovering_connection():
            self.heartbeat(now)
            self.send_back_unhanded()
            self.fire_due(now)
            self.promote_queued(now)
            if full:
                self.advance_running(now)
                self.adopt_ownerless(now)
            self.dispatch(now)
            return self.next_wake(now)

    def register(self, now: datetime) -> None:
        """Take this instance's lease; InstanceNameTaken if a live instance holds the name."""
        instances.register(self.settings.instance, now, self.settings.lease)
        self._next_heartbeat = now + self.settings.lease / 6

    def heartbeat(self, now: datetime) -> None:
        """Renew this instance's lease every sixth of its length."""
        if now < self._next_heartbeat:
            return
        if not instances.renew(self.settings.instance, now):
            log.error("instance %s had lost its lease; it holds it again", self.settings.instance)
        self._next_heartbeat = now + self.settings.lease / 6

    def adopt_ownerless(self, now: datetime) -> None:
        """Take over the live attempts of instances whose lease has expired."""
        me = self.settings.instance
        for owner in instances.ownerless(now, self.settings.lease, me):
            adopted = instances.take_over(owner, me)
            if adopted:
                log.warning("adopting %d attempt(s) of instance %s", len(adopted), owner)
                self.executor.recover(self._in_flight(adopted, owner))

    def send_back_unhanded(self) -> None:
        """Attempts claimed by a pass that failed before handing them over wait again."""
        for task_id in list(self._unhanded):
            runs.mark_waiting(task_id)
            self._unhanded.discard(task_id)

    def fire_due(self, now: datetime) -> None:
        """Start the runs of every definition whose next fire time has come, earliest first.

        Fires are made `FIRE_BATCH` at a time, each batch in one transaction of a few
        statements (`runs.fire_many`), and what they changed is acted on once all are made:
        with a thousand due at one minute, the last run is then made sooner. A definition
        whose fire fails (a body or time zone that no longer loads, a clash) is reported and
        tried again later; the others fire all the same.
        """
        due = (
            Definition.select()
            .where((Definition.paused == False) & (Definition.next_fire_at <= now))  # noqa: E712
            .order_by(Definition.next_fire_at, Definition.name)
        )
        rows = [row for row in due if not self._retry_later(row, now)]
        changes = Changes()
        for start in range(0, len(rows), FIRE_BATCH):
            changes.merge(self._fire_batch(rows[start : start + FIRE_BATCH], now))
        self.apply(changes)

    def _fire_batch(self, rows: Sequence[Definition], now: datetime) -> Changes:
        """Fire `rows` together; those the batch leaves (or all, if it clashed) fire alone."""
        planned = {r.name: (r, p) for r in rows if (p := self._plan(r, now)) is not None}
        fires = [_fire_of(row, plan) for row, plan in planned.values()]
        try:
            made, rest = runs.fire_many(fires, max(now, self.clock()))
        except IntegrityError:  # a row clashes with a stored one: nothing was written
            log.warning(
                "a batch of %d fires clashed with stored rows; each fires alone", len(fires)
            )
            made, rest = {}, fires
        changes = Changes()
        for name, fired in made.items():
            changes.merge(self._fired(*planned[name], fired))
        for fire in rest:
            changes.merge(self._fire_alone(*planned[fire.name], fire, now))
        return changes

    def _plan(self, row: Definition, now: datetime) -> FirePlan | None:
        """The runs `row`'s fire makes now and its next fire time; None (reported) if its
        body or schedule no longer loads."""
        try:
            return fire_plan(
                definition_from_json(row.body),
                row.next_fire_at,
                now,
                on_time=timedelta(seconds=self.settings.on_time_seconds),
                default_catch_up=self.settings.max_catch_up_runs,
            )
        except Exception as exc:
            self._schedule_failed(row, now, exc)
            return None

    def _fire_alone(
        self, row: Definition, plan: FirePlan, fire: runs.Fire, now: datetime
    ) -> Changes:
        """Fire one definition in its own transaction (`runs.fire`); a failure is reported."""
        try:
            fired = runs.fire(fire, max(now, self.clock()))  # created_at: when made
        except (OperationalError, InterfaceError):
            raise  # the database, not the definition: the whole pass fails
        except Exception as exc:
            self._schedule_failed(row, now, exc)
            return Changes()
        return self._fired(row, plan, fired)

    def _fired(self, row: Definition, plan: FirePlan, fired: Changes | None) -> Changes:
        """Count a fire made (None: another scheduler made it); forget an earlier failure."""
        self._schedule_works(row)
        if fired is None:
            return Changes()
        if plan.skipped and self.metrics:
            self.metrics.fires_skipped.labels(row.name, "misfire").inc(plan.skipped)
        return fired

    def _retry_later(self, row: Definition, now: datetime) -> bool:
        """Whether `row` failed to fire lately and has not changed since."""
        failing = self._failing.get(row.name)
        return failing is not None and failing[0] == row.updated_at and now < failing[1]

    def _schedule_failed(self, row: Definition, now: datetime, exc: Exception) -> None:
        """Log, count and store why `row` could not fire; it is tried again later."""
        log.exception("definition %s could not fire; others go on", row.name)
        retry_at = now + timedelta(seconds=self.settings.schedule_retry_seconds)
        self._failing[row.name] = (row.updated_at, retry_at)
        if self.metrics:
            self.metrics.schedule_errors.labels(row.name).inc()
        runs.set_schedule_error(row.name, f"{type(exc).__name__}: {exc}"[:500])

    def _schedule_works(self, row: Definition) -> None:
        """Forget an earlier failure of `row` once it fires."""
        if self._failing.pop(row.name, None) is not None or row.schedule_error:
            runs.set_schedule_error(row.name, None)

    def promote_queued(self, now: datetime) -> None:
        """Start queued runs whose definition has no running run any more."""
        names = Run.select(Run.definition_name).where(Run.status == RunStatus.QUEUED).distinct()
        for (name,) in list(names.tuples()):
            self._isolated(f"promoting a queued run of {name}", runs.promote_queued, name, now)

    def advance_running(self, now: datetime) -> None:
        """Re-plan every running run: the safety net behind event-driven advances."""
        running = Run.select(Run.id).where(Run.status == RunStatus.RUNNING)
        for (run_id,) in list(running.tuples()):
            self._isolated(f"advancing run {run_id}", runs.advance, run_id, now)

    def _isolated(self, what: str, step: Callable[..., Changes], *args: object) -> None:
        """Run one step for one run: a bad row is logged and the pass goes on without it."""
        try:
            self.apply(step(*args))
        except (OperationalError, InterfaceError):
            raise  # the database, not the row: the whole pass fails
        except Exception:
            log.exception("%s failed; the pass goes on", what)

    def dispatch(self, now: datetime) -> None:
        """Hand ready attempts to the executor, within the container cap."""
        live = Task.select().where(Task.status.in_(LIVE_TASK)).count()
        capacity = self.settings.max_running_containers - live
        claimed, waiting = runs.claim_for_start(now, capacity, self.settings.instance)
        self._unhanded.update(t.id for t in claimed)
        for i, task in enumerate(claimed):
            if not self._start(task, now):
                for rest in claimed[i + 1 :]:
                    runs.mark_waiting(rest.id)
                    self._unhanded.discard(rest.id)
                break
        if self.metrics:
            self.metrics.attempts_running.set(live + len(claimed))
            self.metrics.attempts_pending.set(waiting)

    def _start(self, task: Task, now: datetime) -> bool:
        """Start one claimed attempt; False if the engine is unavailable."""
        try:
            spec = self.spec_for(task)
            if not self._refused(spec, now):
                self.executor.start(spec)
        except EngineUnavailable as exc:
            log.warning("container engine unavailable, %s waits: %s", task.id, exc)
            runs.mark_waiting(task.id)
            self._unhanded.discard(task.id)
            return False
        except (OperationalError, InterfaceError):
            raise  # the attempt stays unhanded: the next pass sends it back
        except SecretUnavailable as exc:  # names the variable, never its value
            reason = f"could not start: {exc}"
            self.attempt_finished(Outcome(task.id, Ending.START_FAILED, None, now, reason=reason))
        except Exception:
            log.exception("could not start attempt %s", task.id)
            reason = "could not start: internal error"
            self.attempt_finished(Outcome(task.id, Ending.START_FAILED, None, now, reason=reason))
        self._unhanded.discard(task.id)
        return True

    def _refused(self, spec: AttemptSpec, now: datetime) -> bool:
        """Fail an attempt whose mounts this host refuses now (checked at PUT too, but the
        allow-list or the host's symlinks may have changed since)."""
        refused = options_problem(spec.options, self.settings.allowed_bind_paths)
        if refused is None:
            return False
        reason = f"refused: mounts.{refused[0]}: {refused[1]}"
        self.attempt_finished(Outcome(spec.task_id, Ending.START_FAILED, None, now, reason=reason))
        return True

    def next_wake(self, now: datetime) -> datetime:
        """The earliest of: the next fire, the next backoff expiry, the periodic pass."""
        candidates = [now + timedelta(seconds=self.settings.tick_seconds)]
        candidates += [retry_at for _, retry_at in self._failing.values()]
        fire = Definition.select(fn.MIN(Definition.next_fire_at)).where(
            (Definition.paused == False) & Definition.name.not_in(list(self._failing))  # noqa: E712
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
        if changes.ended:
            self.runs_ended()

    def _count(self, changes: Changes) -> None:
        """Feed the metrics from a committed change."""
        m = self.metrics
        started = set(changes.started)
        for run in _made(changes):
            if run.id in started:
                m.runs_started.labels(run.definition_name, trigger_kind(run.trigger)).inc()
                if run.scheduled_for is not None and run.trigger == "schedule":
                    m.schedule_lag.observe((run.started_at - run.scheduled_for).total_seconds())
            if _created(run):
                m.fire_lag.observe((run.created_at - run.scheduled_for).total_seconds())
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

    # Each raises when its write fails (the executor retries it) and, after a broken
    # connection, leaves this thread to connect afresh on its next call.

    @recovers_connection
    def attempt_started(
        self, task_id: str, started_at: datetime, container_id: str, node: str | None = None
    ) -> None:
        """The attempt's container runs (on `node`, in a cluster)."""
        runs.mark_started(task_id, started_at, container_id, node)

    @recovers_connection
    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Store a batch of container output."""
        seq = self._seq
        rows = [
            (row_id, task_id, line.when, line.source, line.message, next(seq))
            for row_id, line in zip(batch_ids(len(lines)), lines, strict=True)
        ]
        if rows:
            with write_transaction():
                insert_ignoring(LOG_ENTRY_FIELDS, rows)

    @recovers_connection
    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """The engine went away while starting the attempt: it waits as pending."""
        log.warning("attempt %s waits for the container engine: %s", task_id, reason)
        runs.mark_waiting(task_id)

    @recovers_connection
    def attempt_finished(self, outcome: Outcome) -> None:
        """Record the end of an attempt and move its run on; raises if it was not stored.

        Reporting an attempt whose end is already stored again changes nothing.
        """
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
        task_definition = definition.task(task.task_name)
        command = task_definition.executable
        env = self.secrets.environment(command.environment_variables, os.environ, strict=strict)
        env.update(parameter_environment(json.loads(run.parameters or "{}")))
        inputs = ancestors(definition, task.task_name)
        env.update(input_environment(queries.latest_outputs(task.run_id, inputs)))
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
            max_runtime_seconds=task_definition.max_runtime_seconds,
            options=container_options(command),
            placement=tuple(task_definition.placement or ()),
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
        """This instance's attempts the database believes are starting or running (and those
        of no instance, from before instances were recorded), for recovery at start."""
        me = self.settings.instance
        mine = Task.select().where(
            Task.status.in_(LIVE_TASK) & ((Task.instance == me) | Task.instance.is_null())
        )
        adopted = instances.take_over(None, me)
        return self._in_flight([*mine, *adopted])

    def _in_flight(self, tasks: Sequence[Task], owner: str | None = None) -> list[InFlight]:
        """What recovery needs to know of `tasks`, started by instance `owner` (None: this)."""
        tasks = list({t.id: t for t in tasks}.values())
        if not tasks:
            return []
        newest = dict(
            LogEntry.select(LogEntry.task, fn.MAX(LogEntry.when))
            .where(LogEntry.task.in_([t.id for t in tasks]) & LogEntry.source.in_(OUTPUT_SOURCES))
            .group_by(LogEntry.task)
            .tuples()
        )
        return [
            InFlight(self.spec_for(t, strict=False), _as_time(newest.get(t.id)), owner)
            for t in tasks
        ]


def container_options(command: DockerImageCommand) -> ContainerOptions:
    """The executor's container options of a task's `docker_image_command`."""
    return ContainerOptions(
        mounts=tuple(MountSpec(m.type, m.source, m.target, m.read_only) for m in command.mounts),
        user=command.user,
        working_dir=command.working_dir,
        entrypoint=command.entrypoint,
        labels=dict(command.labels),
        network=command.network,
        shm_size_mib=command.shm_size,
        read_only=command.read_only,
        cap_drop=command.cap_drop,
    )


def _fire_of(row: Definition, plan: FirePlan) -> runs.Fire:
    """The fire of due definition `row` by `plan`."""
    return runs.Fire(row.name, row.next_fire_at, row.body, plan.next_fire_at, plan.fire_times)


def _made(changes: Changes) -> list[RunFacts]:
    """What the metrics need of the runs `changes` started or queued (not their bodies)."""
    ids = changes.started + changes.queued
    if not ids:
        return []
    columns = [Run._meta.fields[name] for name in RunFacts._fields]
    return [RunFacts(*row) for row in Run.select(*columns).where(Run.id.in_(ids)).tuples()]


def _created(run: RunFacts) -> bool:
    """Whether `run` is a scheduled run its change created (started at once or queued), not
    one it promoted."""
    return run.scheduled_for is not None and (
        run.status == RunStatus.QUEUED or run.created_at == run.started_at
    )


def _as_time(value: object) -> datetime | None:
    """A MAX() over a datetime column, as an aware datetime (SQLite returns text)."""
    return LogEntry.when.python_value(value) if value is not None else None
