"""Retention benchmark: API latency while 100,000 runs (and their 1,000,000 log entries) are
pruned in the background, on SQLite and PostgreSQL.

The history is bench.history's (every run older than the cut-off, 50 definitions); the prune
keeps the newest 10 runs of each. While it runs, the main thread times a page of runs, one
definition and a definition PUT (a write, which waits for the prune's batch transactions).

Run from the repository root: `python -m bench.retention --help`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.history import BACKENDS, LIST_PATH, Size, get_ok, percentile, prepare
from scheduler.retention import RetentionSettings, prune

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # every run bench.history stores is older than 30 days


def put_ok(client: Any, path: str, body: dict[str, Any]) -> Callable[[], Any]:
    """A call that PUTs `body` (changing its description each time) and insists on a 200."""
    count = iter(range(10**9))

    def call() -> Any:
        response = client.put(path, json={**body, "process_description": f"v{next(count)}"})
        if response.status_code != 200:
            raise RuntimeError(f"PUT {path}: {response.status_code} {response.get_data(True)}")
        return response

    return call


def measure_while_pruning(url: str, settings: RetentionSettings) -> dict[str, Any]:
    """Time API requests round-robin until a prune of the store at `url` has finished."""
    from app import create_app
    from app.cli import settle_heap
    from scheduler.models import db

    app = create_app({"DATABASE_URL": url, "SCHEDULER_ENABLED": False, "EXECUTOR": "fake"})
    settle_heap()
    client = app.test_client()
    definition = client.get("/api/process_definitions/job-001").get_json()
    calls = {
        "GET " + LIST_PATH: get_ok(client, LIST_PATH),
        "GET /api/process_definitions/{name}": get_ok(client, "/api/process_definitions/job-001"),
        "PUT /api/process_definitions/{name}": put_ok(
            client, "/api/process_definitions/job-001", definition
        ),
    }
    result: dict[str, Any] = {}

    def pruner() -> None:
        began = time.perf_counter()
        with db.connection_context():
            result["pruned"] = dict(prune(settings, NOW))
        result["seconds"] = time.perf_counter() - began

    thread = threading.Thread(target=pruner, name="bench-prune")
    baseline = time_rounds(calls, lambda rounds: rounds < BASELINE_ROUNDS)
    thread.start()
    during = time_rounds(calls, lambda _rounds: thread.is_alive())
    thread.join()
    result["latencies"] = {"baseline": summary(baseline), "pruning": summary(during)}
    return result


BASELINE_ROUNDS = 100
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def time_rounds(
    calls: dict[str, Callable[[], Any]], go_on: Callable[[int], bool]
) -> dict[str, list[float]]:
    """Milliseconds of each call, round-robin, while `go_on(rounds done)` holds."""
    timings: dict[str, list[float]] = {name: [] for name in calls}
    rounds = 0
    while go_on(rounds):
        for name, call in calls.items():
            began = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - began) * 1000)
        rounds += 1
    return timings


def summary(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Count and percentiles of each request's timings."""
    return {
        name: {"count": len(ms), **{p: percentile(sorted(ms), f) for p, f in PERCENTILES}}
        for name, ms in timings.items()
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000, help="runs stored, then pruned")
    parser.add_argument("--log-entries", type=int, default=1_000_000, help="log entries")
    parser.add_argument("--batch", type=int, default=RetentionSettings.batch, help="runs a batch")
    parser.add_argument("--keep-runs", type=int, default=10, help="kept per definition")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite,postgresql")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load, prune while timing requests, print a markdown table."""
    args = parse_args(argv)
    settings = RetentionSettings(days=30, keep_runs=args.keep_runs, batch=args.batch)
    rows = ["| database | request | phase | requests | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    notes = []
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as workdir:
        for name in args.databases.split(","):
            with BACKENDS[name](Path(workdir)) as url_for:
                url = url_for("retention")
                print(f"{name}: loading {args.runs} runs", file=sys.stderr)
                prepare(url, Size(args.runs, args.log_entries), progress=True)
                result = measure_while_pruning(url, settings)
            for phase, latencies in result["latencies"].items():
                for request, row in latencies.items():
                    cells = (name, f"`{request}`", phase, row["count"],
                             *(f"{row[p]:.1f}" for p, _ in PERCENTILES))  # fmt: skip
                    rows.append("| " + " | ".join(map(str, cells)) + " |")
            pruned = ", ".join(f"{n} {k}" for k, n in sorted(result["pruned"].items()))
            notes.append(f"{name}: pruned {pruned} in {result['seconds']:.1f} s")
    print("\n".join(rows + notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
