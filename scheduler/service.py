"""The scheduler's facade: what `app` calls. Each command writes, then wakes the loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from peewee import Field, IntegrityError, PeeweeException
from prometheus_client import CollectorRegistry

from definitions import DefinitionError, ProcessDefinition
from definitions.run_inputs import check_output_count, output_name
from executor import Executor
from executor.container_options import options_problem
from scheduler import catalog, idempotency, queries, retention, runs
from scheduler.bulk import insert_ignoring
from scheduler.engine import LOG_ENTRY_FIELDS, Engine, SchedulerSettings, container_options
from scheduler.errors import NotFound
from scheduler.loop import Loop
from scheduler.metrics import SchedulerMetrics
from scheduler.models import MetadataEntry, db
from scheduler.notify.metrics import NotifyMetrics
from scheduler.notify.sender import Sender, TestResult
from scheduler.notify.settings import NotifySettings
from scheduler.runs import Changes
from scheduler.states import TaskStatus
from scheduler.tokens import token_matches
from scheduler.tx import write_transaction
from scheduler.views import DefinitionView, Health, NewLogEntry, NewMetadataEntry

__all__ = ["Scheduler", "SchedulerSettings"]

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def _has_task(view: DefinitionView, task_name: str) -> bool:
    """Whether the definition has a task called `task_name`."""
    return any(t.task_definition_name == task_name for t in view.definition.task_definitions)


def _check_outputs(task_id: str, keys: Sequence[str]) -> None:
    """An attempt publishes at most MAX_OUTPUTS outputs (metadata `output.<name>`)."""
    new = [output_name(key) for key in keys]
    if any(name is not None for name in new):
        stored = MetadataEntry.select(MetadataEntry.key).where(MetadataEntry.task == task_id)
        names = [output_name(key) for (key,) in stored.tuples()] + new
        check_output_count(name for name in names if name is not None)


def check_mounts(definition: ProcessDefinition, allowed: Sequence[str]) -> None:
    """DefinitionError naming the first mount this host refuses (bind paths, the socket)."""
    for index, task in enumerate(definition.task_definitions):
        refused = options_problem(container_options(task.executable), allowed)
        if refused is not None:
            mount, problem = refused
            path = f"task_definitions.{index}.executable.docker_image_command.mounts.{mount}.source"
            raise DefinitionError.at(path, problem)


def _start_keyed(
    name: str,
    key: str | None,
    now: datetime,
    actor: str,
    only_task: str | None,
    parameters: Mapping[str, str] | None,
) -> tuple[str, Changes]:
    """Start a manual run and claim `key` for it, or return the run `key` already started
    (with no changes); IntegrityError if another process claimed `key` meanwhile."""
    with write_transaction():  # the run, its key and its audit event, or none of them
        earlier = idempotency.claimed_run(name, key, now)
        if earlier is not None:
            return earlier, Changes()
        run_id, changes = runs.start_run(
            name, trigger=f"manual:{actor}", now=now, only_task=only_task, parameters=parameters
        )
        idempotency.claim(name, key, run_id, now)
        catalog.audit(actor, "trigger", name, run_id, now)
    return run_id, changes


class Scheduler:
    """Fires runs, drives them, and answers the commands of the API."""

    def __init__(
        self,
        executor: Executor,
        settings: SchedulerSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        registry: CollectorRegistry | None = None,
        notify: NotifySettings | None = None,
    ) -> None:
        self.clock = clock
        self.executor = executor
        metrics = SchedulerMetrics(registry) if registry is not None else None
        self.engine = Engine(executor, settings, clock, metrics)
        self.loop = Loop(self.engine.tick, clock, settings.tick_seconds)
        # a pass runs at least every tick; several missed in a row mean the loop is stuck
        self._stale_after = timedelta(seconds=max(30.0, 3 * settings.tick_seconds))
        notify_metrics = NotifyMetrics(registry) if registry is not None else None
        self.sender = Sender(notify or NotifySettings(), clock, notify_metrics)
        self.metrics = metrics
        self.retention = settings.retention
        self.pruner = Loop(self.prune, clock, settings.retention.interval_seconds)
        self.running = False

    def start(self) -> None:
        """Take this instance's lease, recover its in-flight attempts from the database and
        the engine, then start the loop; InstanceNameTaken if a live instance has its name."""
        self.engine.register(self.clock())
        self.engine.wake = self.loop.wake
        self.engine.runs_ended = self.sender.wake
        self.executor.open(self.engine)
        self.executor.recover(self.engine.in_flight())
        self.loop.start()
        self.sender.start()
        self.pruner.start()
        self.running = True

    def stop(self) -> None:
        """Stop the loop, the notification senders and the executor's machinery; containers
        keep running, undelivered notifications stay in the outbox."""
        if self.running:
            self.pruner.stop()
            self.loop.stop()
            self.sender.stop()
            self.executor.close()
            self.running = False

    def prune(self, now: datetime, _full: bool = True) -> datetime:
        """One retention pass (a periodic job); returns when the next one is due."""
        with db.connection_context():
            pruned = retention.prune(self.retention, now)
        if self.metrics:
            for kind, count in pruned.items():
                self.metrics.pruned.labels(kind).inc(count)
        return now + timedelta(seconds=self.retention.interval_seconds)

    # ---------------------------------------------------------- definitions

    def save_definition(
        self, definition: ProcessDefinition, *, actor: str
    ) -> tuple[DefinitionView, bool]:
        """Create or update a definition; True when it was created."""
        check_mounts(definition, self.engine.settings.allowed_bind_paths)
        with write_transaction():  # the answer is read in the write: a 503 means nothing stored
            created = catalog.save(
                definition, actor=actor, now=self.clock(), secrets=self.engine.secrets
            )
            view = queries.get_definition(definition.process_definition_name)
        self.engine.wake()
        return view, created

    def save_definitions(
        self, definitions: Sequence[ProcessDefinition], *, actor: str
    ) -> list[catalog.Saved]:
        """Create or update each of `definitions` (distinct names) as `save_definition` does,
        all or none; a DefinitionError names the definition."""
        for index, definition in enumerate(definitions):
            try:
                check_mounts(definition, self.engine.settings.allowed_bind_paths)
            except DefinitionError as error:
                raise error.within(index, definition.process_definition_name) from None
        saved = catalog.save_all(
            definitions, actor=actor, now=self.clock(), secrets=self.engine.secrets
        )
        self.engine.wake()
        return saved

    def delete_definition(self, name: str, *, actor: str) -> None:
        """Delete a definition; its runs stay readable."""
        catalog.delete(name, actor=actor, now=self.clock())

    def set_paused(self, name: str, paused: bool, *, actor: str) -> None:
        """Pause or resume a definition's schedule."""
        catalog.set_paused(name, paused, actor=actor, now=self.clock())
        self.engine.wake()

    def test_notifications(self, name: str, *, actor: str) -> list[TestResult]:
        """Send a marked test message through every notification of `name`, now."""
        view = queries.get_definition(name)
        with write_transaction():
            catalog.audit(actor, "notify-test", name, None, self.clock())
        return self.sender.send_tests(view.definition, view.version)

    # ----------------------------------------------------------------- runs

    def trigger(
        self,
        name: str,
        *,
        task_name: str | None = None,
        actor: str,
        parameters: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Start a run now (or queue it behind the current one); returns its id.

        With `idempotency_key`, a key this definition's triggers used in the last 24 hours
        returns that trigger's run and starts nothing.
        """
        if task_name is not None and not _has_task(queries.get_definition(name), task_name):
            raise NotFound("task_definition", task_name)
        now = self.clock()
        try:
            run_id, changes = _start_keyed(name, idempotency_key, now, actor, task_name, parameters)
        except IntegrityError:
            if idempotency_key is None:
                raise
            # another process stored the same key first: its run is the answer
            return idempotency.winner(name, idempotency_key, now)
        self.engine.apply(changes)
        return run_id

    def kill(self, run_id: str, *, actor: str) -> None:
        """Kill a run: its containers are stopped and it fails."""
        now = self.clock()
        with write_transaction():
            changes = runs.kill_run(run_id, now)
            catalog.audit(actor, "kill", run_id, None, now)
        self.engine.apply(changes)

    def retry(self, run_id: str, *, actor: str) -> None:
        """Give a failed run's failed tasks one more attempt each."""
        now = self.clock()
        with write_transaction():
            changes = runs.retry_run(run_id, actor, now)
            catalog.audit(actor, "retry", run_id, None, now)
        self.engine.apply(changes)

    # ------------------------------------------------------------ callbacks

    def add_log_entries(self, task_id: str, entries: Sequence[NewLogEntry]) -> None:
        """Store log entries a task reported; an entry id already stored is ignored."""
        rows = [(e.id, task_id, e.when, e.source, e.message, 0) for e in entries]
        self._insert_entries(task_id, LOG_ENTRY_FIELDS, rows)

    def add_metadata(self, task_id: str, entries: Sequence[NewMetadataEntry]) -> None:
        """Store metadata a task reported; an entry id already stored is ignored."""
        fields = (
            MetadataEntry.id,
            MetadataEntry.task,
            MetadataEntry.when,
            MetadataEntry.key,
            MetadataEntry.value,
        )
        rows = [(e.id, task_id, e.when, e.key, e.value) for e in entries]
        keys = [e.key for e in entries]
        self._insert_entries(task_id, fields, rows, check=lambda: _check_outputs(task_id, keys))

    def _insert_entries(
        self,
        task_id: str,
        fields: Sequence[Field],
        rows: list[tuple],
        check: Callable[[], None] | None = None,
    ) -> None:
        """Insert callback entries idempotently, after checking the attempt exists and has
        not ended (in the same transaction, so that nothing is stored late)."""
        with write_transaction():
            runs.lock_unended_attempt(task_id)
            if check is not None:
                check()
            insert_ignoring(fields, rows)

    def report(self, task_id: str, outcome: str, *, actor: str) -> None:
        """Store an attempt's first /succeed or /fail."""
        runs.record_report(task_id, TaskStatus(outcome), actor, self.clock())

    def task_token_valid(self, task_id: str, token: str) -> bool:
        """Whether `token` is attempt `task_id`'s own callback token."""
        return token_matches(self.engine.secret, task_id, token)

    # --------------------------------------------------------------- health

    def health(self) -> Health:
        """Whether the database and the container engine answer."""
        checks: dict[str, str] = {}
        try:
            db.execute_sql("SELECT 1")
            checks["database"] = "ok"
        except PeeweeException as exc:
            # The driver's text can name hosts and users: the log gets it, the open
            # healthcheck only its kind.
            log.warning("healthcheck: database unavailable: %s", exc)
            checks["database"] = f"unavailable: {type(exc).__name__}"
        executor = self.executor.health()
        checks["executor"] = "ok" if executor.ok else f"unavailable: {executor.detail}"
        if self.running:
            problem = self.loop.problem(self.clock(), self._stale_after)
            checks["scheduler"] = "ok" if problem is None else f"unavailable: {problem}"
        return Health(ok=all(v == "ok" for v in checks.values()), checks=checks)
