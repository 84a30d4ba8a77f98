"""Views embed a task's newest log entries only; the rest is read page by page."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from peewee import Database

import scheduler.queries as queries
from scheduler.models import LogEntry, Run, Task
from tests.app.conftest import gnomon_of

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MIB = 1024 * 1024


def add_log(app: Flask, task_id: str, messages: list[str]) -> list[str]:
    """Store `messages` as the task's output, one second apart; their ids in order."""
    ids = [str(uuid.uuid4()) for _ in messages]
    rows = [
        {"id": i, "task": task_id, "when": T0 + timedelta(seconds=n), "source": "stdout",
         "message": m, "seq": n}
        for n, (i, m) in enumerate(zip(ids, messages, strict=True))
    ]  # fmt: skip
    with gnomon_of(app).database.connection_context():
        LogEntry.insert_many(rows).execute()
    return ids


@pytest.fixture
def task_id(app: Flask, put_definition: Callable[..., dict], trigger: Callable[..., str]) -> str:
    """The id of a task attempt (the first of a triggered run)."""
    put_definition("logs", task_definitions=[{
        "task_definition_name": "main",
        "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}},
    }])  # fmt: skip
    run_id = trigger("logs")
    with gnomon_of(app).database.connection_context():
        return Task.get(Task.run == run_id).id


def test_a_task_embeds_its_newest_entries_and_counts_them_all(
    app: Flask, client: FlaskClient, task_id: str
) -> None:
    ids = add_log(app, task_id, [f"line {n}" for n in range(250)])

    for path in ("/api/processes", f"/api/tasks/{task_id}", "/api/tasks"):
        body = client.get(path).get_json()
        view = body[0]["task"][0] if path == "/api/processes" else body
        view = view[0] if isinstance(view, list) else view
        assert view["log_entry_count"] == 250
        assert [e["log_entry_id"] for e in view["log_entries"]] == ids[-100:]


def test_the_embedded_entries_stay_within_64_kib(
    app: Flask, client: FlaskClient, task_id: str
) -> None:
    ids = add_log(app, task_id, ["a" * 40_000, "b" * 40_000, "c" * 20_000])

    view = client.get(f"/api/tasks/{task_id}").get_json()

    assert [e["log_entry_id"] for e in view["log_entries"]] == ids[1:]
    assert view["log_entry_count"] == 3


@pytest.mark.parametrize(
    ("seconds", "sizes"),
    [
        pytest.param(lambda n: n % 7, lambda n: 10, id="ties-in-time-and-seq"),
        pytest.param(lambda n: n // 3, lambda n: 2_000 + 37 * n, id="64-kib-within-the-newest-100"),
    ],
)
def test_the_embedded_entries_are_the_newest_of_the_whole_log(
    app: Flask, client: FlaskClient, task_id: str, seconds: Callable, sizes: Callable
) -> None:
    rows = [
        {"id": str(uuid.uuid4()), "task": task_id, "when": T0 + timedelta(seconds=seconds(n)),
         "source": "stdout", "message": "m" * sizes(n), "seq": n % 5}
        for n in range(230)
    ]  # fmt: skip
    with gnomon_of(app).database.connection_context():
        LogEntry.insert_many(rows).execute()
    whole = client.get(f"/api/tasks/{task_id}/log_entries", query_string={"limit": 1000})
    newest, chars = [], 0
    for entry in reversed(whole.get_json()[-100:]):  # the oracle: the log in order, from its end
        chars += len(entry["message"])
        if chars > 64 * 1024:
            break
        newest.insert(0, entry)

    for path in ("/api/processes", f"/api/tasks/{task_id}"):
        body = client.get(path).get_json()
        view = body[0]["task"][0] if path == "/api/processes" else body
        assert view["log_entries"] == newest
        assert view["log_entry_count"] == 230


def test_pages_read_every_entry_once_in_order(
    app: Flask, client: FlaskClient, task_id: str
) -> None:
    ids = add_log(app, task_id, [f"line {n}" for n in range(250)])
    read: list[str] = []
    after: dict[str, str] = {}
    while True:
        response = client.get(
            f"/api/tasks/{task_id}/log_entries", query_string={"limit": 100, **after}
        )
        assert response.status_code == 200
        page = response.get_json()
        read += [e["log_entry_id"] for e in page]
        if len(page) < 100:
            break
        after = {"after": page[-1]["log_entry_id"]}
    assert read == ids
    assert client.get(f"/api/tasks/{task_id}/log_entries").get_json()[0]["message"] == "line 0"


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"after": str(uuid.uuid4())}, 404, None),
        ({"after": "nope"}, 400, "after"),
        ({"limit": 0}, 400, "limit"),
        ({"limit": 1001}, 400, "limit"),
    ],
)
def test_a_bad_page_request_is_refused(
    client: FlaskClient, task_id: str, query: dict, status: int, field: str | None
) -> None:
    response = client.get(f"/api/tasks/{task_id}/log_entries", query_string=query)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"]
    if field:
        assert field in str(body["details"])


def test_an_unknown_task_has_no_log_pages(client: FlaskClient) -> None:
    response = client.get(f"/api/tasks/{uuid.uuid4()}/log_entries")
    assert response.status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_page_of_runs_with_10_mib_of_output_each_stays_small(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app()
    database = gnomon_of(app).database
    with database.connection_context():
        # 10 MiB each, in lines as long as the executor stores them
        fill_runs_with_output(database, runs=100, line_bytes=64 * 1024, lines=160)
    client = app.test_client()
    client.get("/api/processes?max_records=1")  # warm up: imports, caches

    tracemalloc.start()
    try:
        response = client.get("/api/processes?max_records=100")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 200
    page = response.get_json()
    assert len(page) == 100
    assert all(t["log_entry_count"] == 160 for run in page for t in run["task"])
    assert peak < 50 * MIB, f"the request grew the heap by {peak / MIB:.0f} MiB"


def fill_runs_with_output(database: Database, runs: int, line_bytes: int, lines: int) -> None:
    """Store `runs` finished runs of one attempt, each with `lines` lines of output, in SQL
    (SQLite, its journal off meanwhile: a gigabyte is written once rather than twice)."""
    database.execute_sql("PRAGMA journal_mode=OFF")
    Run.insert_many(
        {"id": str(uuid.uuid4()), "definition_name": "big", "definition_version": 1,
         "definition_body": "{}", "status": "succeeded", "started_at": T0 + timedelta(minutes=n),
         "trigger": "schedule"}
        for n in range(runs)
    ).execute()  # fmt: skip
    Task.insert_many(
        {"id": str(uuid.uuid4()), "run": run_id, "definition_name": "big", "task_name": "main",
         "attempt": 1, "status": "succeeded", "created_at": T0}
        for (run_id,) in Run.select(Run.id).tuples()
    ).execute()  # fmt: skip
    database.execute_sql(
        'INSERT INTO log_entry (id, task_id, "when", source, message, seq)'
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " SELECT lower(hex(randomblob(16))), task.id,"
        " datetime('2026-11-23 12:00:00', '+' || i || ' seconds'), 'stdout',"
        " printf('%.*c', ?, 'x'), i FROM task, n",
        (lines - 1, line_bytes),
    )
    database.execute_sql("PRAGMA journal_mode=WAL")


def test_a_view_read_again_shows_the_entries_added_since(
    app: Flask, client: FlaskClient, task_id: str
) -> None:
    """Views keep an attempt's embedded entries by its number of entries
    (scheduler.embedded): a new entry, even one timed before the others, shows at once."""
    ids = add_log(app, task_id, [f"line {n}" for n in range(150)])
    paths = ("/api/processes", f"/api/tasks/{task_id}", "/api/tasks")
    for path in paths:
        client.get(path)
    assert gnomon_of(app).embedded.get((task_id, 150)) is not None  # kept

    late = str(uuid.uuid4())
    with gnomon_of(app).database.connection_context():
        LogEntry.insert(id=late, task=task_id, when=T0 + timedelta(seconds=60, milliseconds=500),
                        source="stdout", message="late", seq=0).execute()  # fmt: skip
    for path in paths:
        body = client.get(path).get_json()
        view = body[0]["task"][0] if path == "/api/processes" else body
        view = view[0] if isinstance(view, list) else view
        assert view["log_entry_count"] == 151
        assert [e["log_entry_id"] for e in view["log_entries"]] == [*ids[51:61], late, *ids[61:]]


def test_an_attempt_read_again_unchanged_is_not_read_from_the_database(
    app: Flask, client: FlaskClient, task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_log(app, task_id, [f"line {n}" for n in range(120)])
    first = client.get(f"/api/tasks/{task_id}").get_json()

    def no_read(ids: list[str]) -> list[tuple]:
        assert not ids, "the attempt's entries were read again"
        return []

    monkeypatch.setattr(queries, "_newest_log_entries", no_read)
    assert client.get(f"/api/tasks/{task_id}").get_json() == first
    assert client.get("/api/processes").get_json()[0]["task"][0] == first
