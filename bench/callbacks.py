"""Callback throughput: log entries a task posts to `POST /api/tasks/{id}/log_entries`.

    .venv/bin/python -m bench.callbacks [--entries 100000 --batch 1000]

A task posts `--entries` log entries in batches of `--batch` (the callback cap),
one request after another, through Flask's test client and through a real
`gnomon serve` over loopback HTTP (SQLite, fake executor, scheduler off). The
figure is entries stored per second. Baseline: the same rows inserted with the
bare `sqlite3` module (`executemany`, one transaction a batch) into a database
with the same table, in the same process.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import requests

from app import create_app
from app.state import EXTENSION_KEY
from bench.support import Figure, cpu_seconds, format_table, gnomon_serve
from scheduler.models import LogEntry
from scheduler.tokens import server_secret, task_token

TARGET_PER_SECOND = 50_000
FIRST = datetime(2026, 1, 1)  # a task's entries come one after another, a millisecond apart
DEFINITION = {
    "process_definition_name": "talker",
    "task_definitions": [
        {
            "task_definition_name": "talk",
            "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}},
        }
    ],
}


def batches(entries: int, batch: int) -> list[bytes]:
    """The request bodies: `entries` distinct log entries, `batch` to a body, in time order."""
    bodies = []
    for start in range(0, entries, batch):
        items = [
            {
                "log_entry_id": str(uuid.uuid4()),
                "when": f"{FIRST + timedelta(milliseconds=i):%Y-%m-%dT%H:%M:%S.%f}Z",
                "source": "talk",
                "message": f"line {i}: the quick brown fox jumps over the lazy dog",
            }
            for i in range(start, min(start + batch, entries))
        ]
        bodies.append(json.dumps(items).encode())
    return bodies


def bare_rate(bodies: Sequence[bytes], workdir: Path) -> tuple[float, float]:
    """Entries inserted by bare sqlite3 into a table like LogEntry's: per second, and per
    second of CPU time."""
    connection = sqlite3.connect(workdir / "bare.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute("PRAGMA synchronous=normal")
    connection.execute(
        'CREATE TABLE log_entry (id VARCHAR(36) PRIMARY KEY, task_id VARCHAR(36), "when" '
        "DATETIME, source VARCHAR(255), message TEXT, seq INTEGER)"
    )
    connection.execute('CREATE INDEX log_entry_task ON log_entry (task_id, "when", seq)')
    task_id = str(uuid.uuid4())
    count = 0
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        rows = [
            (e["log_entry_id"], task_id, e["when"], e["source"], e["message"], 0)
            for e in json.loads(body)
        ]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany("INSERT OR IGNORE INTO log_entry VALUES (?, ?, ?, ?, ?, ?)", rows)
        connection.execute("COMMIT")
        count += len(rows)
    rates = count / (time.perf_counter() - started), count / (time.process_time() - cpu)
    connection.close()
    return rates


def test_client_rate(bodies: Sequence[bytes], workdir: Path) -> tuple[float, float]:
    """Entries stored through Flask's test client (no network): per second, and per second
    of CPU time."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'client.db'}",
            "EXECUTOR": "fake",
            "SCHEDULER_ENABLED": False,
            "PUBLIC_URL": "http://127.0.0.1:9",
        }
    )
    client = app.test_client()
    client.put("/api/process_definitions/talker", json=DEFINITION)
    run = client.post("/api/process_definitions/talker/trigger").headers["Location"]
    task_id = client.get(run).get_json()["task"][0]["task_id"]
    state = app.extensions[EXTENSION_KEY]
    with state.database.connection_context():
        headers = {
            "Authorization": f"Bearer {task_token(server_secret(), task_id)}",
            "Content-Type": "application/json",
        }
    path = f"/api/tasks/{task_id}/log_entries"
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == 204, response.get_data(as_text=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with state.database.connection_context():
        stored = LogEntry.select().where(LogEntry.task == task_id).count()
    state.database.close()
    return stored / elapsed, stored / cpu


def served_rate(bodies: Sequence[bytes], workdir: Path) -> tuple[float, float]:
    """Entries stored by a real `gnomon serve` over loopback HTTP: per second, and per
    second of the server's CPU time."""
    with gnomon_serve(
        workdir, {"GNOMON_EXECUTOR": "fake", "GNOMON_SCHEDULER_ENABLED": "false"}
    ) as s:
        session = requests.Session()
        session.put(f"{s.url}/api/process_definitions/talker", json=DEFINITION).raise_for_status()
        run = session.post(f"{s.url}/api/process_definitions/talker/trigger").headers["Location"]
        task_id = session.get(s.url + run).json()["task"][0]["task_id"]
        headers = {
            "Authorization": f"Bearer {s.task_token(task_id)}",
            "Content-Type": "application/json",
        }
        path = f"{s.url}/api/tasks/{task_id}/log_entries"
        started, cpu = time.perf_counter(), cpu_seconds(s.process.pid)
        for body in bodies:
            response = session.post(path, data=body, headers=headers)
            assert response.status_code == 204, response.text
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(s.process.pid) - cpu
    # counted in the database: the API embeds only an attempt's newest entries
    with closing(sqlite3.connect(workdir / "gnomon.db")) as connection:
        query = "SELECT count(*) FROM log_entry WHERE task_id = ?"
        (stored,) = connection.execute(query, (task_id,)).fetchone()
    return stored / elapsed, stored / cpu


def measure(entries: int = 100_000, batch: int = 1000) -> list[Figure]:
    """The callback figures: test client and served rates, against bare sqlite3."""
    bodies = batches(entries, batch)
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-callbacks-") as tmp:
        workdir = Path(tmp)
        bare = bare_rate(bodies, workdir)
        via_client = test_client_rate(bodies, workdir)
        via_http = served_rate(bodies, workdir)
    figures = []
    for kind, index in (("", 0), (" per CPU second", 1)):
        for where, rate in (("test client", via_client), ("gnomon serve over HTTP", via_http)):
            figures.append(
                Figure("callbacks", f"log entries stored{kind}, {where}", rate[index],
                       "entries/s", baseline=bare[index], higher_is_better=True,
                       target=TARGET_PER_SECOND)
            )  # fmt: skip
    return figures


def main() -> None:
    """Run the benchmark from the command line and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    print(format_table(measure(args.entries, args.batch)))


if __name__ == "__main__":
    main()
