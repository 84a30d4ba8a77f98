"""The scheduler's facade: what `app` calls. Each command writes, then wakes the loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from peewee import PeeweeException
from prometheus_client import CollectorRegistry

from definitions import ProcessDefinition
from executor import Executor
from scheduler import catalog, queries, retention, runs
from scheduler.engine import Engine, SchedulerSettings
from scheduler.errors import NotFound
from scheduler.loop import Loop
from scheduler.metrics import SchedulerMetrics
from scheduler.models import LogEntry, MetadataEntry, db
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


class Scheduler:
    """Fires runs, drives them, and answers the commands of the API."""

    def __init__(
        self,
        executor: Executor,
        settings: SchedulerSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.clock = clock
        self.executor = executor
        metrics = SchedulerMetrics(registry) if registry is not None else None
        self.engine = Engine(executor, settings, clock, metrics)
        self.loop = Loop(self.engine.tick, clock, settings.tick_seconds)
        self.metrics = metrics
        self.retention = settings.retention
        self.pruner = Loop(self.prune, clock, settings.retention.interval_seconds)
        self.running = False

    def start(self) -> None:
        """Recover in-flight attempts from the database and the engine, then start the loop."""
        self.engine.wake = self.loop.wake
        self.executor.open(self.engine)
        self.executor.recover(self.engine.in_flight())
        self.loop.start()
        self.pruner.start()
        self.running = True

    def stop(self) -> None:
        """Stop the loop and the executor's machinery; containers keep running."""
        if self.running:
            self.pruner.stop()
            self.loop.stop()
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
        with write_transaction():  # the answer is read in the write: a 503 means nothing stored
            created = catalog.save(
                definition, actor=actor, now=self.clock(), secrets=self.engine.secrets
            )
            view = queries.get_definition(definition.process_definition_name)
        self.engine.wake()
        return view, created

    def delete_definition(self, name: str, *, actor: str) -> None:
        """Delete a definition; its runs stay readable."""
        catalog.delete(name, actor=actor, now=self.clock())

    def set_paused(self, name: str, paused: bool, *, actor: str) -> None:
        """Pause or resume a definition's schedule."""
        catalog.set_paused(name, paused, actor=actor, now=self.clock())
        self.engine.wake()

    # ----------------------------------------------------------------- runs

    def trigger(self, name: str, *, task_name: str | None = None, actor: str) -> str:
        """Start a run now (or queue it behind the current one); returns its id."""
        if task_name is not None and not _has_task(queries.get_definition(name), task_name):
            raise NotFound("task_definition", task_name)
        now = self.clock()
        with write_transaction():  # the run and its audit event, or neither
            run_id, changes = runs.start_run(
                name, trigger=f"manual:{actor}", now=now, only_task=task_name
            )
            catalog.audit(actor, "trigger", name, run_id, now)
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
        rows = [
            {"id": e.id, "task": task_id, "when": e.when, "source": e.source, "message": e.message}
            for e in entries
        ]
        self._insert_entries(task_id, LogEntry, rows)

    def add_metadata(self, task_id: str, entries: Sequence[NewMetadataEntry]) -> None:
        """Store metadata a task reported; an entry id already stored is ignored."""
        rows = [
            {"id": e.id, "task": task_id, "when": e.when, "key": e.key, "value": e.value}
            for e in entries
        ]
        self._insert_entries(task_id, MetadataEntry, rows)

    def _insert_entries(self, task_id: str, model: type, rows: list[dict]) -> None:
        """Insert callback entries idempotently, after checking the attempt exists and has
        not ended (in the same transaction, so that nothing is stored late)."""
        with write_transaction():
            runs.lock_unended_attempt(task_id)
            if rows:
                model.insert_many(rows).on_conflict_ignore().execute()

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
        return Health(ok=all(v == "ok" for v in checks.values()), checks=checks)
