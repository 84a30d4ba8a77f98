"""Write transactions that serialise per definition on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from peewee import Model, ModelSelect, SqliteDatabase

from scheduler.models import Definition, Task, db

# SQLite has one writer at a time. Writers of this process queue on this lock
# instead of meeting in SQLite's busy handler, whose back-off sleeps (up to
# 100 ms a try) would otherwise put a long tail on every latency.
_SQLITE_WRITER = threading.RLock()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A write transaction; on SQLite it takes the write lock at once (no upgrade deadlocks)."""
    database = db.obj
    if isinstance(database, SqliteDatabase):
        with _SQLITE_WRITER, database.atomic(lock_type="IMMEDIATE"):
            yield
    else:
        with database.atomic():
            yield


def lock_definition(name: str) -> Definition | None:
    """Read a definition row, holding its lock until the transaction ends.

    Every decision to start a run takes this lock first, so two schedulers (or a
    trigger racing a schedule) decide one after the other. SQLite's IMMEDIATE
    transaction already serialises writers.
    """
    return _held(Definition.select().where(Definition.name == name))


def lock_task(task_id: str) -> Task | None:
    """Read an attempt row, holding its lock until the transaction ends.

    A callback that checks the attempt has not ended, then stores something, holds
    this lock so that the attempt cannot end in between.
    """
    return _held(Task.select().where(Task.id == task_id))


def _held(query: ModelSelect) -> Model | None:
    """The one row of `query`, locked until the transaction ends (SQLite's IMMEDIATE
    transaction already holds the whole database)."""
    if not isinstance(db.obj, SqliteDatabase):
        query = query.for_update()
    return query.get_or_none()
