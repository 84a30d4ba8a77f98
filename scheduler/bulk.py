"""Rows through the driver at once, skipping peewee's per-value SQL building and conversion.

peewee writes an INSERT of 1,000 rows by visiting every value (~0.2 s for a batch of
log entries); the drivers take the rows as they are, many to a statement: `INSERT …
VALUES (…), (…), …` and `UPDATE … FROM (VALUES …)` on SQLite, `execute_values` and
`execute_batch` on PostgreSQL (its `executemany` is one round trip a row).

Not sqlite3's `executemany`: it lets go of the interpreter lock around each row's step
and takes it back after, and while another thread is busy in Python each taking-back
waits for the switch interval (5 ms): 20,000 rows took 110 s beside one busy thread,
against 0.4 s as statements of 1,000 rows, one wait a statement (`bench.busy_thread`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import peewee
from peewee import CharField, Field, ForeignKeyField, SqliteDatabase, TextField
from psycopg2.extras import execute_batch, execute_values

from scheduler.models import UTCDateTimeField, db

PAGE_ROWS = 1000  # rows per statement (fewer on SQLite if its variable limit is lower)
_COUNTER_BITS = 32  # the low bits of a batch's ids count up from zero


def batch_ids(count: int) -> list[str]:
    """`count` new version-4 UUIDs (at most 2**32) that share a random prefix and count up.

    A batch's rows then go to one place of the primary key's index instead of one
    random place each, and one random number is drawn instead of `count`.
    """
    base = f"{uuid.uuid4().int >> _COUNTER_BITS:024x}"  # the counter is the last 8 hex digits
    prefix = f"{base[:8]}-{base[8:12]}-{base[12:16]}-{base[16:20]}-{base[20:]}"
    return [f"{prefix}{i:08x}" for i in range(count)]


def insert_ignoring(fields: Sequence[Field], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` (values in the order of `fields`, all of one table); a row whose
    primary key is already stored is skipped. Values go through each field's db_value
    (strings of text fields as they are), so they are stored exactly as peewee stores them."""
    _insert(fields, rows, " ON CONFLICT DO NOTHING")


def insert_rows(fields: Sequence[Field], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` as `insert_ignoring` does, but a stored primary key is an IntegrityError."""
    _insert(fields, rows, "")


def update_rows(fields: Sequence[Field], key: Field, rows: Iterable[Sequence[Any]]) -> None:
    """Set `fields` of the rows whose `key` is each row's last value (the others are in the
    order of `fields`); the keys must differ. On SQLite one `UPDATE … FROM (VALUES …)`
    a page of rows, on PostgreSQL pages of statements (`execute_batch`)."""
    values = _db_values([*fields, key], rows)
    if not values:
        return
    table = key.model._meta.table_name
    with peewee.__exception_wrapper__:
        cursor = db.obj.cursor()
        if isinstance(db.obj, SqliteDatabase):
            columns = ", ".join(f'"{f.column_name}" = v.column{i}' for i, f in enumerate(fields, 1))
            head = f'UPDATE "{table}" SET {columns} FROM (VALUES'
            tail = f') AS v WHERE "{table}"."{key.column_name}" = v.column{len(fields) + 1}'
            _in_pages(cursor, head, tail, values)
        else:
            columns = ", ".join(f'"{field.column_name}" = %s' for field in fields)
            sql = f'UPDATE "{table}" SET {columns} WHERE "{key.column_name}" = %s'
            execute_batch(cursor, sql, values, page_size=PAGE_ROWS)


def _insert(fields: Sequence[Field], rows: Iterable[Sequence[Any]], conflict: str) -> None:
    """Insert `rows` through the driver, `conflict` ending the statement."""
    values = _db_values(fields, rows)
    if not values:
        return
    table = fields[0].model._meta.table_name
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    database = db.obj
    # the driver's errors become peewee's, as in peewee's own execute_sql (a 503, not a 500)
    with peewee.__exception_wrapper__:
        cursor = database.cursor()
        if isinstance(database, SqliteDatabase):
            _in_pages(cursor, f'INSERT INTO "{table}" ({columns}) VALUES', conflict, values)
        else:
            sql = f'INSERT INTO "{table}" ({columns}) VALUES %s{conflict}'
            execute_values(cursor, sql, values, page_size=PAGE_ROWS)


def _in_pages(cursor: Any, head: str, tail: str, values: list[list[Any]]) -> None:
    """On SQLite, `head (…), (…), … tail` for each page of `values`: PAGE_ROWS rows at most,
    within SQLite's limit on variables."""
    width = len(values[0])
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    page = max(1, min(PAGE_ROWS, limit // width))
    row = f"({', '.join('?' * width)})"
    for start in range(0, len(values), page):
        part = values[start : start + page]
        sql = f"{head} {', '.join([row] * len(part))}{tail}"
        cursor.execute(sql, [value for row_values in part for value in row_values])


def _db_values(fields: Sequence[Field], rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """`rows` with each value through its field's db_value (text fields' strings as they are;
    on SQLite, times straight to the text the driver would make of db_value's)."""
    sqlite = isinstance(db.obj, SqliteDatabase)
    convert = [
        (i, sqlite_time if sqlite and isinstance(field, UTCDateTimeField) else field.db_value)
        for i, field in enumerate(fields)
        if not _is_text(field)
    ]
    return converted(rows, convert)


def sqlite_time(value: datetime | None) -> str | None:
    """A time as SQLite stores it: the ISO text of the naive UTC time (what the driver's
    adapter makes of UTCDateTimeField.db_value's), in one step instead of three and a call
    from the driver, which for a batch of output lines was a third of storing them."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ")
    if value.tzinfo is not UTC and value.utcoffset():  # most are UTC: no offset to ask for
        value = value.astimezone(UTC)
    return value.isoformat(" ")[:-6]  # without its "+00:00"


def converted(
    rows: Iterable[Sequence[Any]], convert: Sequence[tuple[int, Callable[[Any], Any]]]
) -> list[list[Any]]:
    """`rows` as lists, each value at an index of `convert` passed through its function, the
    others as they are (the drivers' values, to or from peewee's, only where they differ)."""
    values = []
    for row in rows:
        value = list(row)
        for i, function in convert:
            value[i] = function(value[i])
        values.append(value)
    return values


def _is_text(field: Field) -> bool:
    """Whether the field stores strings as given (its db_value only checks they are strings)."""
    if isinstance(field, ForeignKeyField):
        field = field.rel_field
    return isinstance(field, CharField | TextField)
