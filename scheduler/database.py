"""Opening the database from a URL and bringing its schema up to date."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from peewee import CharField, Database, Model, PostgresqlDatabase, SqliteDatabase, TextField
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations
from playhouse.pool import PooledSqliteDatabase

from scheduler.models import MODELS, Delivery, Run, SchemaVersion, TriggerKey, UTCDateTimeField, db

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
    # A commit of 1,000 log entries writes ~1,300 pages to the WAL once the primary key's
    # index (random UUIDs) outgrows a batch; at the default of 1,000 pages every such
    # commit also checkpointed (two fsyncs and a copy of the pages into the database).
    "wal_autocheckpoint": 10_000,
    # 8 MiB of pages per connection (the default is 2 MiB; a connection fills it only as it
    # reads): inserting 100,000 log entries of a task then takes ~25% less CPU, its indexes
    # staying in memory instead of being read back from the OS page by page.
    "cache_size": -8 * 1024,
}

# Migration N brings a database at version N-1 to N. A released migration never
# changes. A new database is created from the models and stamped with the newest
# version, so the models always describe the newest schema.
Migration = Callable[[Database], None]


def _instance_leases(database: Database) -> None:
    """2: instance leases, the instance owning each attempt, a definition's schedule error."""

    class Instance(Model):  # frozen here as it was when this migration was released
        name = CharField(primary_key=True, max_length=64)
        holder = CharField(max_length=255)
        started_at = UTCDateTimeField()
        heartbeat_at = UTCDateTimeField()

        class Meta:
            table_name = "instance"

    database.bind([Instance])
    database.create_tables([Instance])
    migrator = SchemaMigrator.from_database(database)
    run_operations(
        migrator.add_column("task", "instance", CharField(null=True, max_length=64)),
        migrator.add_column("definition", "schedule_error", TextField(null=True)),
    )


def _notification_outbox(database: Database) -> None:
    """3: the notification outbox, and an index to find a run's predecessors by end time."""
    database.create_tables([Delivery])
    database.execute_sql(
        'CREATE INDEX IF NOT EXISTS "run_definition_name_ended_at" '
        'ON "run" ("definition_name", "ended_at")'
    )


def _run_parameters_and_trigger_keys(database: Database) -> None:
    """Version 5: a run's parameter values, and the idempotency keys of triggers."""
    migrator = SchemaMigrator.from_database(database)
    run_operations(migrator.add_column("run", "parameters", TextField(null=True)))
    database.create_tables([TriggerKey])


def _run_created_at(database: Database) -> None:
    """8: runs carry the time they were created (older runs: their start time)."""
    migrator = SchemaMigrator.from_database(database)
    run_operations(migrator.add_column("run", "created_at", UTCDateTimeField(null=True)))
    Run.update(created_at=Run.started_at).execute()


def _add_task_node(database: Database) -> None:
    """6: `task.node`, the cluster node an attempt ran on (Swarm executor)."""
    migrator = SchemaMigrator.from_database(database)
    run_operations(migrator.add_column("task", "node", CharField(null=True, max_length=255)))


def _definition_wire(database: Database) -> None:
    """9: `definition.wire`, what GET shows of the current version (null for older rows)."""
    migrator = SchemaMigrator.from_database(database)
    run_operations(migrator.add_column("definition", "wire", TextField(null=True)))


MIGRATIONS: dict[int, Migration] = {
    2: _instance_leases,
    3: _notification_outbox,
    5: _run_parameters_and_trigger_keys,
    6: _add_task_node,
    8: _run_created_at,
    9: _definition_wire,
}


class HideQueryParameters(logging.Filter):
    """Keep the values of peewee's DEBUG query log out of the log: they hold definition
    bodies (environment variables, secrets among them) and the task-token secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Log a query as its SQL and the number of its parameters."""
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            sql, params = record.msg
            record.msg, record.args = "%s -- %d parameter(s)", (sql, len(params or ()))
        return True


def hide_query_parameters() -> None:
    """Install HideQueryParameters on peewee's logger, once."""
    logger = logging.getLogger("peewee")
    if not any(isinstance(f, HideQueryParameters) for f in logger.filters):
        logger.addFilter(HideQueryParameters())


def open_database(url: str) -> Database:
    """Open the database named by `url` (sqlite:///path or postgresql://...)."""
    hide_query_parameters()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if path in ("", ":memory:"):  # each connection would be a database of its own
            return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
        # Pooled: a request's connection is given back, not closed. Opening one costs its
        # pragmas, and closing the last one checkpoints the WAL: ~30 ms a request.
        return PooledSqliteDatabase(
            path, pragmas=SQLITE_PRAGMAS, check_same_thread=False, max_connections=None
        )
    if url.startswith(("postgresql://", "postgres://")):
        return connect(url)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


def describe(database: Database) -> str:
    """A loggable description of the database, without credentials."""
    if isinstance(database, SqliteDatabase):
        return f"sqlite:///{database.database}"
    if isinstance(database, PostgresqlDatabase):
        params = database.connect_params
        host = params.get("host", "localhost")
        return f"postgresql://{host}:{params.get('port', 5432)}/{database.database}"
    return type(database).__name__


def latest_version() -> int:
    """The schema version the code expects."""
    return max(MIGRATIONS, default=1)


def migrate(database: Database, now: datetime | None = None) -> int:
    """Create or upgrade the schema; returns the version the database is at."""
    now = now or datetime.now(UTC)
    db.initialize(database)
    with database.atomic():
        if not SchemaVersion.table_exists():
            database.create_tables(MODELS)
            SchemaVersion.create(version=latest_version(), applied_at=now)
            log.info("created database schema at version %d", latest_version())
            return latest_version()
        current = (
            SchemaVersion.select(SchemaVersion.version)
            .order_by(SchemaVersion.version.desc())
            .scalar()
        )
        for version in sorted(v for v in MIGRATIONS if v > current):
            MIGRATIONS[version](database)
            SchemaVersion.create(version=version, applied_at=now)
            log.info("migrated database schema to version %d", version)
            current = version
    return current
