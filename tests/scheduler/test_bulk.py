"""Bulk inserts: the ids a batch of container output gets, the times SQLite stores."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from scheduler.bulk import batch_ids, sqlite_time
from scheduler.models import LogEntry


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
