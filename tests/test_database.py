"""Schema creation, migrations and column behaviour, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from peewee import Database, IntegrityError, TextField
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

from scheduler import database as database_module
from scheduler.database import latest_version, migrate, open_database
from scheduler.models import MODELS, AuditEvent, Delivery, Run, SchemaVersion
from tests.support.schema import back_to_version_1

NOW = datetime(2024, 3, 10, 12, 30, 15, 123456, tzinfo=UTC)


def make_run(**overrides: Any) -> Run:
    """Store a run with plausible defaults, overridden by `overrides`."""
    fields = {
        "id": str(uuid.uuid4()),
        "definition_name": "nightly",
        "definition_version": 1,
        "definition_body": "{}",
        "status": "running",
        "started_at": NOW,
        "trigger": "schedule",
        "scheduled_for": NOW,
    }
    return Run.create(**{**fields, **overrides})


def stamped_versions() -> list[int]:
    """The versions recorded in schema_version, oldest first."""
    return [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]


def test_fresh_database_gets_every_table_and_the_newest_version(database_url: str) -> None:
    db = open_database(database_url)

    assert migrate(db, now=NOW) == latest_version()

    assert {model._meta.table_name for model in MODELS} <= set(db.get_tables())
    assert stamped_versions() == [latest_version()]
    assert SchemaVersion.get().applied_at == NOW
    db.close()


def test_migrating_twice_changes_nothing(database: Database) -> None:
    before = stamped_versions()

    assert migrate(database) == latest_version()

    assert stamped_versions() == before


def test_an_older_database_gets_a_new_migration_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    new_version = latest_version() + 1

    def add_note_column(db: Database) -> None:
        calls.append(new_version)
        migrator = SchemaMigrator.from_database(db)
        run_operations(migrator.add_column("setting", "note", TextField(null=True)))

    monkeypatch.setitem(database_module.MIGRATIONS, new_version, add_note_column)

    assert migrate(database) == new_version
    assert migrate(database) == new_version

    assert calls == [new_version]
    assert "note" in {column.name for column in database.get_columns("setting")}
    assert stamped_versions()[-2:] == [new_version - 1, new_version]


def test_a_version_1_database_gets_the_notification_outbox(database: Database) -> None:
    back_to_version_1(database, NOW)

    assert migrate(database, now=NOW) == latest_version()

    assert "delivery" in database.get_tables()
    assert "run_definition_name_ended_at" in {i.name for i in database.get_indexes("run")}
    assert 3 in stamped_versions()
    make_run()
    assert Delivery.select().count() == 0


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'nested' / 'gnomon.db'}")

    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    # a commit of 1,000 log entries (~1,300 pages) must not checkpoint every time
    assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] >= 5000
    db.close()


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(NOW, id="utc"),
        pytest.param(NOW.astimezone(ZoneInfo("America/New_York")), id="new_york"),
        pytest.param(NOW.astimezone(timezone(timedelta(hours=5, minutes=45))), id="plus_0545"),
    ],
)
def test_utc_datetime_field_reads_back_aware_utc(database: Database, written: datetime) -> None:
    event = AuditEvent.create(at=written, actor="test", action="create", target="x")

    read = AuditEvent.get_by_id(event.id).at

    assert read == NOW
    assert read.tzinfo == UTC
    assert read.utcoffset() == timedelta(0)


def test_utc_datetime_field_stores_naive_utc(database: Database) -> None:
    AuditEvent.create(at=NOW.astimezone(ZoneInfo("Asia/Tokyo")), actor="t", action="a", target="x")

    raw = database.execute_sql('SELECT "at" FROM "audit_event"').fetchone()[0]

    stored = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
    assert stored == NOW.replace(tzinfo=None)


def test_a_fire_makes_one_run_ever(database: Database) -> None:
    make_run(scheduled_for=NOW)

    with pytest.raises(IntegrityError), database.atomic():
        make_run(scheduled_for=NOW)

    make_run(scheduled_for=NOW, definition_name="other")
    make_run(scheduled_for=NOW + timedelta(minutes=1))
    assert Run.select().count() == 3


def test_runs_without_a_fire_time_do_not_collide(database: Database) -> None:
    for trigger in ("manual:a", "manual:b", "retry:c"):
        make_run(scheduled_for=None, trigger=trigger)

    assert Run.select().where(Run.scheduled_for.is_null()).count() == 3


def test_a_version_1_database_gets_instance_leases(database: Database) -> None:
    back_to_version_1(database, NOW)

    assert migrate(database) == latest_version()

    assert "instance" in database.get_tables()
    assert "instance" in {column.name for column in database.get_columns("task")}
    assert "schedule_error" in {column.name for column in database.get_columns("definition")}


def test_migration_8_gives_older_runs_their_start_as_created_at(database: Database) -> None:
    migrator = SchemaMigrator.from_database(database)
    run_operations(
        migrator.drop_column("run", "created_at"), migrator.drop_column("definition", "wire")
    )
    SchemaVersion.delete().where(SchemaVersion.version >= 8).execute()
    SchemaVersion.create(version=7, applied_at=NOW)
    make_run()  # written without created_at, as version 7 did

    assert migrate(database) == 9

    assert Run.get().created_at == NOW
    assert stamped_versions()[-3:] == [7, 8, 9]
