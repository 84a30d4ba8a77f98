"""Bulk inserts: the ids a batch of container output gets, the times SQLite stores, the
statements rows go in."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peewee import Database, IntegrityError, SqliteDatabase

from scheduler.bulk import (
    PAGE_ROWS,
    batch_ids,
    insert_ignoring,
    insert_rows,
    sqlite_time,
    update_rows,
)
from scheduler.models import LogEntry, TriggerKey


def test_batch_ids_are_distinct_version_4_uuids_counting_up() -> None:
    first, second = batch_ids(1000), batch_ids(1000)
    assert len(set(first + second)) == 2000
    for text in first + second:
        assert str(uuid.UUID(text)) == text and uuid.UUID(text).version == 4
    assert first == sorted(first) and first[0][:24] != second[0][:24]
    assert batch_ids(0) == []


@given(
    st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
)
def test_sqlite_time_is_the_text_the_driver_stores(value: datetime) -> None:
    """The fast path gives what sqlite3 stores of UTCDateTimeField.db_value's value."""
    with closing(sqlite3.connect(":memory:")) as connection:
        (stored,) = connection.execute("SELECT ?", (LogEntry.when.db_value(value),)).fetchone()
    assert sqlite_time(value) == stored
    assert sqlite_time(None) is None


TRIGGER_KEY = (TriggerKey.definition_name, TriggerKey.key, TriggerKey.run_id, TriggerKey.created_at)


def trigger_keys(count: int) -> list[tuple[str, str, str, datetime]]:
    """`count` distinct rows of TRIGGER_KEY."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return [("load", f"key-{i}", str(uuid.uuid4()), now) for i in range(count)]


@contextmanager
def traced(database: Database) -> Iterator[list[str]]:
    """The statements SQLite runs while inside (none is noted on PostgreSQL)."""
    statements: list[str] = []
    if not isinstance(database, SqliteDatabase):
        yield statements
        return
    database.connection().set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        database.connection().set_trace_callback(None)


def test_rows_go_in_statements_of_many_rows(database: Database) -> None:
    """sqlite3's executemany steps once a row, giving the interpreter lock back each time:
    beside a busy thread each row then waited the switch interval. Here a statement
    holds PAGE_ROWS rows (fewer if SQLite's variable limit asks for it), and a row
    already stored is skipped or refused as asked."""
    rows = trigger_keys(2 * PAGE_ROWS + 500)
    with database.connection_context(), traced(database) as statements:
        connection = database.connection()
        with database.atomic():
            insert_rows(TRIGGER_KEY, rows)
        with database.atomic():
            insert_ignoring(TRIGGER_KEY, rows[:10] + trigger_keys(1))  # each stored already
        assert TriggerKey.select().count() == len(rows)
        with pytest.raises(IntegrityError), database.atomic():
            insert_rows(TRIGGER_KEY, rows[-1:])
        if isinstance(database, SqliteDatabase):
            inserts = [s for s in statements if s.startswith("INSERT")]
            assert len(inserts) == 3 + 1 + 1
            connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # older builds' limit
            statements.clear()
            more = [("other", *row[1:]) for row in rows]
            with database.atomic():
                insert_rows(TRIGGER_KEY, more)
            assert len([s for s in statements if s.startswith("INSERT")]) == -(-len(more) // 249)
            assert TriggerKey.select().count() == 2 * len(rows)


def test_rows_are_updated_by_their_key_in_pages(database: Database) -> None:
    with database.connection_context():
        with database.atomic():
            insert_rows(TRIGGER_KEY, trigger_keys(PAGE_ROWS + 500))
        ids = [row.id for row in TriggerKey.select(TriggerKey.id).order_by(TriggerKey.id)]
        with traced(database) as statements, database.atomic():
            update_rows([TriggerKey.run_id, TriggerKey.key], TriggerKey.id,
                        [(f"run-{i}", f"new-{i}", i) for i in ids[1:]])  # fmt: skip
        if isinstance(database, SqliteDatabase):
            assert len([s for s in statements if s.startswith("UPDATE")]) == 2
        stored = {row.id: (row.run_id, row.key) for row in TriggerKey.select()}
    assert stored[ids[0]][1] == "key-0"  # not in the update
    assert all(stored[i] == (f"run-{i}", f"new-{i}") for i in ids[1:])
