"""Opening the database from a URL and bringing its schema up to date."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from peewee import CharField, Database, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

from scheduler.models import MODELS, SchemaVersion, db

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}

# Migration N brings a database at version N-1 to N. A released migration never
# changes. A new database is created from the models and stamped with the newest
# version, so the models always describe the newest schema.
Migration = Callable[[Database], None]
MIGRATIONS: dict[int, Migration] = {}


def _add_task_node(database: Database) -> None:
    """6: `task.node`, the cluster node an attempt ran on (Swarm executor)."""
    migrator = SchemaMigrator.from_database(database)
    run_operations(migrator.add_column("task", "node", CharField(null=True, max_length=255)))


MIGRATIONS[6] = _add_task_node


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
        return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
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
