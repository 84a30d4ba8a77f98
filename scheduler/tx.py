"""Write transactions that serialise per definition on SQLite and PostgreSQL alike."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from peewee import InterfaceError, Model, ModelSelect, OperationalError, SqliteDatabase

from scheduler.models import Definition, Instance, Task, db

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

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


def lock_definitions(names: Collection[str]) -> dict[str, Definition]:
    """The stored rows of `names` by name, each held as `lock_definition` holds one (taken
    in name order, so that two writers of overlapping sets cannot deadlock)."""
    query = Definition.select().where(Definition.name.in_(sorted(names)))
    if not isinstance(db.obj, SqliteDatabase):
        query = query.order_by(Definition.name).for_update()
    return {row.name: row for row in query}


def lock_task(task_id: str) -> Task | None:
    """Read an attempt row, holding its lock until the transaction ends.

    A callback that checks the attempt has not ended, then stores something, holds
    this lock so that the attempt cannot end in between.
    """
    return _held(Task.select().where(Task.id == task_id))


def lock_task_status(task_id: str) -> str | None:
    """An attempt's status, its row held as `lock_task` holds it (one column: a callback
    checks only this, many times a second)."""
    return _locking(Task.select(Task.status).where(Task.id == task_id)).scalar()


def lock_instance(name: str) -> Instance | None:
    """Read an instance's lease row, holding its lock until the transaction ends."""
    return _held(Instance.select().where(Instance.name == name))


def _held(query: ModelSelect) -> Model | None:
    """The one row of `query`, locked until the transaction ends."""
    return _locking(query).get_or_none()


def _locking(query: ModelSelect) -> ModelSelect:
    """`query`, its rows locked until the transaction ends once read (SQLite's IMMEDIATE
    transaction already holds the whole database)."""
    return query if isinstance(db.obj, SqliteDatabase) else query.for_update()


@contextmanager
def recovering_connection() -> Iterator[None]:
    """One background unit of work: if the database connection broke during it, this
    thread's connection is closed, so that its next unit connects afresh."""
    try:
        yield
    except (OperationalError, InterfaceError):
        drop_connection()
        raise


def recovers_connection(function: Callable[P, R]) -> Callable[P, R]:
    """`function` as one background unit of work (see `recovering_connection`)."""

    @functools.wraps(function)
    def unit(*args: P.args, **kwargs: P.kwargs) -> R:
        with recovering_connection():
            return function(*args, **kwargs)

    return unit


def drop_connection() -> None:
    """Close this thread's connection, broken or not; the next query opens a new one."""
    try:
        db.obj.close()
    except (OperationalError, InterfaceError) as exc:  # closing a dead connection may fail
        log.debug("closing a broken database connection: %s", exc)
