"""History benchmark: read latency of runs with 100,000 runs and 1,000,000 log entries stored.

Run from the repository root: `python -m bench.history --help`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from peewee import Database, Model, PostgresqlDatabase
from psycopg2.extras import execute_values

from scheduler.database import migrate, open_database
from scheduler.engine import LOG_ENTRY_FIELDS
from scheduler.models import Definition, DefinitionVersion, LogEntry, Run, Task

EPOCH = datetime(2024, 1, 1)  # naive UTC, as stored
DEFINITIONS = 50
TASK_NAMES = ("extract", "transform", "load", "report")
LIST_PATH = "/api/processes?max_records=100"


@dataclass(frozen=True)
class Size:
    """How much history to store."""

    runs: int
    log_entries: int


@dataclass
class Loaded:
    """What a load stored and how long it took."""

    runs: int
    tasks: int
    log_entries: int
    seconds: float
    run_ids: list[str]


@dataclass(frozen=True)
class Latency:
    """Percentiles of one request, in milliseconds."""

    database: str
    request: str
    store: str
    count: int
    p50: float
    p95: float
    p99: float


# Data generation -------------------------------------------------------------------------


def definition_body(name: str) -> str:
    """A canonical wire JSON definition of three to four busybox tasks."""
    tasks = [
        {
            "task_definition_name": task,
            "dependencies": [{"task_definition_name": TASK_NAMES[i - 1], "success_required": True}]
            if i
            else [],
            "executable": {
                "docker_image_command": {
                    "image": "busybox",
                    "tag": "latest",
                    "command": ["sh", "-c", f"echo {task}"],
                    "log_paths": [],
                    "environment_variables": [],
                }
            },
            "max_attempts": 2,
            "backoff_base_seconds": 0,
            "backoff_exponent": 1.0,
            "require_explicit_success": False,
        }
        for i, task in enumerate(TASK_NAMES)
    ]
    return json.dumps(
        {
            "process_definition_name": name,
            "paused": False,
            "schedule": {
                "cron_schedule": {
                    "minutes": "*/5",
                    "hours": "*",
                    "day_of_month": "*",
                    "month": "*",
                    "day_of_week": "?",
                }
            },
            "task_definitions": tasks,
            "overlap_action": "wait",
            "notifications": [],
        },
        sort_keys=True,
    )


class Generator:
    """Deterministic rows for runs, their task attempts and log entries."""

    def __init__(self, size: Size, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.bodies = {f"job-{i:03d}": definition_body(f"job-{i:03d}") for i in range(DEFINITIONS)}
        mean_tasks = 3.5
        self.logs_per_task = size.log_entries / (size.runs * mean_tasks)

    def uuid(self) -> str:
        """A random (seeded) version-4 UUID string."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def definitions(self) -> tuple[list[tuple], list[tuple]]:
        """Rows for Definition and DefinitionVersion."""
        current = [(n, 1, b, False, None, EPOCH, EPOCH, "bench") for n, b in self.bodies.items()]
        versions = [(n, 1, b, EPOCH, "bench") for n, b in self.bodies.items()]
        return current, versions

    def chunk(self, first: int, count: int) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """Rows for runs number first..first+count-1 (run i starts 5 minutes after run i-1)."""
        runs, tasks, logs = [], [], []
        for number in range(first, first + count):
            run, run_tasks, run_logs = self.run(number)
            runs.append(run)
            tasks.extend(run_tasks)
            logs.extend(run_logs)
        return runs, tasks, logs

    def run(self, number: int) -> tuple[tuple, list[tuple], list[tuple]]:
        """One run with three or four attempts and their log entries."""
        name = f"job-{number % DEFINITIONS:03d}"
        started = EPOCH + timedelta(minutes=5 * number)
        running = number >= self.size.runs - 3
        status = "running" if running else ("failed" if number % 17 == 0 else "succeeded")
        ended = None if running else started + timedelta(seconds=40)
        run_id = self.uuid()
        run = (run_id, name, 1, self.bodies[name], status, started, ended, "schedule", started)
        tasks, logs = [], []
        for index, task_name in enumerate(TASK_NAMES[: 3 + number % 2]):
            task_id = self.uuid()
            begin = started + timedelta(seconds=10 * index)
            tasks.append((task_id, run_id, name, task_name, 1, "succeeded", begin, begin, begin, 0))
            logs.extend(self.logs(task_id, task_name, begin))
        return run, tasks, logs

    def logs(self, task_id: str, source: str, begin: datetime) -> list[tuple]:
        """Log entries of one attempt; on average `logs_per_task` of them."""
        whole = int(self.logs_per_task)
        count = whole + (self.rng.random() < self.logs_per_task - whole)
        return [
            (self.uuid(), task_id, begin + timedelta(seconds=i), source, f"line {i} of {source}", i)
            for i in range(count)
        ]


RUN_FIELDS = (
    Run.id,
    Run.definition_name,
    Run.definition_version,
    Run.definition_body,
    Run.status,
    Run.started_at,
    Run.ended_at,
    Run.trigger,
    Run.scheduled_for,
)
TASK_FIELDS = (
    Task.id,
    Task.run,
    Task.definition_name,
    Task.task_name,
    Task.attempt,
    Task.status,
    Task.created_at,
    Task.started_at,
    Task.ended_at,
    Task.exit_code,
)
DEFINITION_FIELDS = (
    Definition.name,
    Definition.version,
    Definition.body,
    Definition.paused,
    Definition.next_fire_at,
    Definition.created_at,
    Definition.updated_at,
    Definition.updated_by,
)
VERSION_FIELDS = (
    DefinitionVersion.name,
    DefinitionVersion.version,
    DefinitionVersion.body,
    DefinitionVersion.created_at,
    DefinitionVersion.created_by,
)


def insert(db: Database, model: type[Model], fields: Sequence[Any], rows: list[tuple]) -> None:
    """Bulk-insert `rows`: peewee writes the statement and converts values, the driver batches.

    Building a many-row `insert_many` query spends ~80% of the load in peewee's SQL
    generation; reusing its one-row statement with executemany/execute_values is ~5x faster.
    """
    if not rows:
        return
    converters = [field.db_value for field in fields]
    values = [tuple(c(v) for c, v in zip(converters, row, strict=True)) for row in rows]
    statement, _ = model.insert_many(rows[:1], fields=list(fields)).sql()
    cursor = db.cursor()
    if isinstance(db, PostgresqlDatabase):
        head = statement[: statement.rindex(" VALUES ")]
        execute_values(cursor, head + " VALUES %s", values, page_size=5_000)
    else:
        cursor.executemany(statement, values)


def load(db: Database, size: Size, chunk_runs: int = 2_000, progress: bool = False) -> Loaded:
    """Store `size` worth of history, a transaction per chunk of runs."""
    started = time.perf_counter()
    generator = Generator(size)
    current, versions = generator.definitions()
    with db.atomic():
        insert(db, Definition, DEFINITION_FIELDS, current)
        insert(db, DefinitionVersion, VERSION_FIELDS, versions)
    counts = [0, 0, 0]
    run_ids: list[str] = []
    for first in range(0, size.runs, chunk_runs):
        runs, tasks, logs = generator.chunk(first, min(chunk_runs, size.runs - first))
        with db.atomic():
            insert(db, Run, RUN_FIELDS, runs)
            insert(db, Task, TASK_FIELDS, tasks)
            insert(db, LogEntry, LOG_ENTRY_FIELDS, logs)
        counts = [counts[0] + len(runs), counts[1] + len(tasks), counts[2] + len(logs)]
        run_ids.extend(run[0] for run in runs[:: max(1, len(runs) // 50)])
        if progress:
            print(f"  {counts[0]:>7} runs {counts[2]:>8} log entries", end="\r", file=sys.stderr)
    return Loaded(*counts, seconds=time.perf_counter() - started, run_ids=run_ids)


# Timing ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def time_requests(call: Callable[[], Any], count: int, warmup: int = 10) -> list[float]:
    """Milliseconds taken by each of `count` calls, after `warmup` untimed ones, sorted."""
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return sorted(timings)


def get_ok(client: Any, path: str) -> Callable[[], Any]:
    """A call that GETs `path` and insists on a 200."""

    def call() -> Any:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data(True)}")
        return response

    return call


def measure(url: str, database: str, store: str, run_ids: list[str], count: int) -> list[Latency]:
    """Latency of the list and the one-run request against the app serving `url`."""
    from app import create_app  # late: the benchmark's data half runs without the app
    from app.cli import settle_heap

    settings = {"DATABASE_URL": url, "SCHEDULER_ENABLED": False, "TESTING": True}
    app = create_app({**settings, "EXECUTOR": "fake"})  # reads only: no Docker needed
    settle_heap()  # as `gnomon serve` does once started
    client = app.test_client()
    rng = random.Random(11)
    requests = {
        "GET " + LIST_PATH: get_ok(client, LIST_PATH),
        "GET /api/processes/{id}": lambda: get_ok(
            client, f"/api/processes/{rng.choice(run_ids)}"
        )(),
    }
    results = []
    for name, call in requests.items():
        ms = time_requests(call, count)
        p50, p95, p99 = (percentile(ms, f) for f in (0.50, 0.95, 0.99))
        results.append(Latency(database, name, store, count, p50, p95, p99))
    return results


# Databases -------------------------------------------------------------------------------


@contextmanager
def sqlite_urls(workdir: Path) -> Iterator[Callable[[str], str]]:
    """URLs of SQLite files in `workdir`, one per store name."""
    yield lambda store: f"sqlite:///{workdir / f'{store}.db'}"


@contextmanager
def postgresql_urls(workdir: Path) -> Iterator[Callable[[str], str]]:
    """URLs of new databases on a private PostgreSQL server, stopped on exit."""
    from tests.support.postgres import start_server

    server = start_server()
    try:
        yield lambda store: server.url(server.create_database())
    finally:
        server.stop()


BACKENDS = {"sqlite": sqlite_urls, "postgresql": postgresql_urls}


def prepare(url: str, size: Size, progress: bool) -> Loaded:
    """Create the schema at `url` and load `size` of history into it."""
    db = open_database(url)
    migrate(db)
    loaded = load(db, size, progress=progress)
    if progress:
        print(file=sys.stderr)
    if url.startswith("postgres"):
        db.execute_sql("ANALYZE")
    else:
        db.execute_sql("PRAGMA optimize")
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return loaded


def bench_backend(
    name: str, size: Size, baseline: Size, count: int, workdir: Path, timed: bool = True
) -> dict:
    """Load both stores on one backend and (if `timed`) time the requests against each."""
    with BACKENDS[name](workdir) as url_for:
        stores = {"baseline": (url_for("baseline"), baseline), "large": (url_for("large"), size)}
        report: dict[str, Any] = {"database": name, "loads": {}, "latencies": []}
        for store, (url, store_size) in stores.items():
            print(f"{name}: loading {store} ({store_size.runs} runs)", file=sys.stderr)
            loaded = prepare(url, store_size, progress=True)
            report["loads"][store] = {k: v for k, v in asdict(loaded).items() if k != "run_ids"}
            if timed:
                latencies = measure(url, name, store, loaded.run_ids, count)
                report["latencies"] += [asdict(x) for x in latencies]
        return report


def table(reports: list[dict]) -> str:
    """A markdown table of large-store latencies with the ratio to the baseline's p50."""
    lines = [
        "| database | request | p50 ms | p95 ms | p99 ms | vs baseline (p50) |",
        "|---|---|---|---|---|---|",
    ]
    for report in reports:
        base = {x["request"]: x for x in report["latencies"] if x["store"] == "baseline"}
        for row in (x for x in report["latencies"] if x["store"] == "large"):
            ratio = row["p50"] / base[row["request"]]["p50"]
            lines.append(
                f"| {row['database']} | `{row['request']}` | {row['p50']:.1f} | {row['p95']:.1f}"
                f" | {row['p99']:.1f} | {ratio:.1f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the large store")
    parser.add_argument("--log-entries", type=int, default=1_000_000, help="log entries in it")
    parser.add_argument("--baseline-runs", type=int, default=100, help="runs in the baseline")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--load-only", action="store_true", help="load and time the load only")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a markdown table of the results."""
    args = parse_args(argv)
    size = Size(args.runs, args.log_entries)
    ratio = args.log_entries / args.runs
    baseline = Size(args.baseline_runs, round(args.baseline_runs * ratio))
    reports = []
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as workdir:
        for name in args.databases.split(","):
            timed = not args.load_only
            report = bench_backend(name, size, baseline, args.requests, Path(workdir), timed)
            reports.append(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2))
    for report in reports:
        large = report["loads"]["large"]
        print(
            f"{report['database']}: {large['runs']} runs, {large['tasks']} attempts,"
            f" {large['log_entries']} log entries loaded in {large['seconds']:.0f} s"
        )
    print(table(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
