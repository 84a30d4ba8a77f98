"""A database that fails mid-request, or cannot be reached: 503 in the error form, no partial
write, never a 500."""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from peewee import Database, OperationalError, SqliteDatabase
from playhouse.pool import PooledDatabase

from scheduler.models import MODELS
from tests.app.conftest import Definition, gnomon_of, task, task_auth
from tests.app.test_errors import assert_error
from tests.support.live import free_port

Send = Callable[[FlaskClient], Any]
MOST_STATEMENTS = 200  # no request here runs more; a guard against an endless loop


def snapshot(database: Database) -> list[list[dict[str, Any]]]:
    """Every row of every table."""
    with database.connection_context():
        return [
            list(model.select().order_by(*model._meta.get_primary_keys()).dicts())
            for model in MODELS
        ]


def failing_at(database: Database, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """Make the `nth` statement the database runs from now on raise OperationalError."""
    calls = itertools.count(1)
    real = database.execute_sql

    def execute_sql(sql: str, *args: Any, **kwargs: Any) -> Any:
        if next(calls) == nth:
            raise OperationalError("injected failure")
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", execute_sql)


def setup_for(action: str, put: Callable[..., Definition], trigger: Callable[..., str]) -> str:
    """Prepare what `action` acts on; the id of a run when it needs one."""
    put()
    if action in {"kill", "retry"}:
        run_id = trigger()
        return run_id
    return ""


def request_for(action: str, run_id: str, make: Callable[..., Definition]) -> Send:
    """The request of `action`."""
    definitions = "/api/process_definitions"
    changed = make(task_definitions=[task("extract"), task("load", "extract"), task("report")])
    return {
        "create": lambda c: c.put(f"{definitions}/weekly", json=make("weekly")),
        "update": lambda c: c.put(f"{definitions}/nightly", json=changed),
        "trigger": lambda c: c.post(f"{definitions}/nightly/trigger"),
        "pause": lambda c: c.post(f"{definitions}/nightly/pause"),
        "delete": lambda c: c.delete(f"{definitions}/nightly"),
        "kill": lambda c: c.post(f"/api/processes/{run_id}/kill"),
        "retry": lambda c: c.post(f"/api/processes/{run_id}/retry"),
    }[action]


@pytest.mark.parametrize(
    "action", ["create", "update", "trigger", "pause", "delete", "kill", "retry"]
)
def test_a_failure_at_any_statement_is_503_and_stores_nothing(
    app: Flask,
    client: FlaskClient,
    make_definition: Callable[..., Definition],
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    run_id = setup_for(action, put_definition, trigger)
    if action == "retry":
        assert client.post(f"/api/processes/{run_id}/kill").status_code == 204
    send = request_for(action, run_id, make_definition)
    database = gnomon_of(app).database
    before = snapshot(database)
    for nth in range(1, MOST_STATEMENTS):
        failing_at(database, monkeypatch, nth)
        response = send(client)
        monkeypatch.undo()
        if response.status_code != 503:
            break
        assert_error(response, 503, "unavailable")
        assert snapshot(database) == before, f"statement {nth} failed after a partial write"
    assert nth > 1 and response.status_code < 300, response.get_json()
    assert snapshot(database) != before


def unreachable(database: Database, tmp_path: Path) -> None:
    """Make `database` impossible to connect to, as when its server is down."""
    database.close()
    if isinstance(database, PooledDatabase):
        database.close_all()  # the pool's open connections would still reach the moved file
    if isinstance(database, SqliteDatabase):
        path = Path(database.database)
        shutil.move(path, tmp_path / "moved.db")
        path.mkdir()  # a directory where the file was: SQLite cannot open it
    else:
        database.connect_params["port"] = free_port()


def test_an_unreachable_database_is_503_never_500(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition], tmp_path: Path
) -> None:
    unreachable(gnomon_of(app).database, tmp_path)
    requests = [
        client.get("/api/process_definitions"),
        client.put("/api/process_definitions/nightly", json=make_definition()),
        client.post("/api/process_definitions/nightly/trigger"),
        client.get("/api/processes"),
        client.get("/api/tasks"),
    ]
    for response in requests:
        assert_error(response, 503, "unavailable")
    health = client.get("/_internal_/healthcheck")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unhealthy"
    assert health.get_json()["checks"]["database"] == "unavailable: OperationalError"


class BrokenCursor:
    """A SQLite cursor whose bulk insert fails as a locked database does."""

    def __init__(self, real: sqlite3.Cursor) -> None:
        self.real = real

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("INSERT"):
            raise sqlite3.OperationalError("database is locked")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_driver_error_in_a_bulk_insert_is_503_and_stores_nothing(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_definition()
    run_id = trigger()
    task_id = client.get(f"/api/processes/{run_id}").get_json()["task"][0]["task_id"]
    database = gnomon_of(app).database
    if not isinstance(database, SqliteDatabase):
        pytest.skip("the broken cursor stands for SQLite's driver")
    entry = {"log_entry_id": str(uuid.uuid4()), "when": "2024-03-10T06:00:04Z",
             "source": "s", "message": "m"}  # fmt: skip
    real = database.cursor
    monkeypatch.setattr(database, "cursor", lambda: BrokenCursor(real()))

    response = client.post(
        f"/api/tasks/{task_id}/log_entries", json=[entry], headers=task_auth(app, task_id)
    )

    monkeypatch.undo()
    assert_error(response, 503, "unavailable")
    assert client.get(f"/api/tasks/{task_id}").get_json()["log_entries"] == []
