"""Taking a migrated database back to schema version 1, to test every migration since."""

from __future__ import annotations

from datetime import datetime

from peewee import Database
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

from scheduler.models import SchemaVersion

# What each migration added, newest first: (tables, (table, column) pairs, indexes).
ADDED_BY: dict[int, tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    9: ((), (("definition", "wire"),), ()),
    8: ((), (("run", "created_at"),), ()),
    6: ((), (("task", "node"),), ()),
    5: (("trigger_key",), (("run", "parameters"),), ()),
    3: (("delivery",), (), ("run_definition_name_ended_at",)),
    2: (("instance",), (("task", "instance"), ("definition", "schedule_error")), ()),
}


def back_to_version_1(database: Database, now: datetime) -> None:
    """Undo every migration on `database` (made at the newest version) and stamp it 1."""
    migrator = SchemaMigrator.from_database(database)
    for version in sorted(ADDED_BY, reverse=True):
        tables, columns, indexes = ADDED_BY[version]
        for index in indexes:
            database.execute_sql(f'DROP INDEX IF EXISTS "{index}"')
        if columns:
            run_operations(*(migrator.drop_column(table, column) for table, column in columns))
        for table in tables:
            database.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=1, applied_at=now)
