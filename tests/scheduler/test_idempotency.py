"""Idempotency keys in the database: the unique index, and the migration that adds them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from peewee import Database, IntegrityError

from scheduler.database import latest_version, migrate
from scheduler.models import Run, TriggerKey
from tests.support.schema import back_to_version_1

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_key_is_stored_once_per_definition(database: Database) -> None:
    TriggerKey.create(definition_name="a", key="k", run_id="r1", created_at=NOW)
    with pytest.raises(IntegrityError), database.atomic():
        TriggerKey.create(definition_name="a", key="k", run_id="r2", created_at=NOW)
    TriggerKey.create(definition_name="b", key="k", run_id="r3", created_at=NOW)
    assert TriggerKey.select().count() == 2


def test_migration_5_adds_run_parameters_and_trigger_keys(database: Database) -> None:
    back_to_version_1(database, NOW)

    assert migrate(database, now=NOW) == latest_version() >= 5

    assert "parameters" in {column.name for column in database.get_columns("run")}
    assert TriggerKey.table_exists()
    indexes = database.get_indexes("trigger_key")
    assert any(i.unique and i.columns == ["definition_name", "key"] for i in indexes)
    assert Run.select().count() == 0
