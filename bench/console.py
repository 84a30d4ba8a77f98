"""Console benchmark: each page's render time on the bench.history store (100,000 runs,
1,000,000 log entries) against a 100-run baseline, and the layout time of a 200-task DAG.

Run from the repository root: `python -m bench.console --help`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.history import Size, get_ok, percentile, prepare, time_requests
from definitions import DockerImageCommand, ProcessDefinition, TaskDefinition, TaskDependency
from definitions.layout import layout

PAGES = (
    "/",
    "/?status=failed",
    "/?definition=job-007&page=3",
    "/?partial=1",
    "/definitions",
    "/definitions/job-007",
    "/runs/{id}",
    "/runs/{id}?partial=1",
)


def sample_dag(size: int, seed: int = 3) -> ProcessDefinition:
    """`size` tasks, each depending on up to three of the 30 before it, some optionally."""
    rng = random.Random(seed)
    command = DockerImageCommand(image="busybox", command=("true",))
    tasks = []
    for i in range(size):
        earlier = [f"task-{j:03d}" for j in range(max(0, i - 30), i)]
        picks = rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))
        deps = tuple(TaskDependency(p, rng.random() < 0.8) for p in picks)
        tasks.append(TaskDefinition(f"task-{i:03d}", command, deps))
    return ProcessDefinition("sample", tuple(tasks))


def time_pages(url: str, run_ids: list[str], count: int) -> dict[str, list[float]]:
    """Sorted milliseconds of `count` renders of each page of the console serving `url`."""
    from app import create_app  # late: loading the data needs no app
    from app.cli import settle_heap

    app = create_app({"DATABASE_URL": url, "SCHEDULER_ENABLED": False, "TESTING": True,
                      "EXECUTOR": "fake"})  # fmt: skip
    settle_heap()
    client = app.test_client()
    rng = random.Random(5)
    timings = {}
    for page in PAGES:
        call: Callable[[], Any] = (
            (lambda p=page: get_ok(client, p.format(id=rng.choice(run_ids)))())
            if "{id}" in page
            else get_ok(client, page)
        )
        timings[page] = time_requests(call, count)
    return timings


def time_layout(size: int, count: int) -> list[float]:
    """Sorted milliseconds of `count` layouts of a `size`-task DAG."""
    definition = sample_dag(size)
    return time_requests(lambda: layout(definition), count, warmup=3)


def row(name: str, ms: Sequence[float], base: Sequence[float] | None) -> str:
    """One markdown table row: fastest, p50, p95, p99 and the ratio to the baseline's p50.

    The fastest render shows the cost without other processes competing for the CPU.
    """
    p50, p95, p99 = (percentile(ms, f) for f in (0.50, 0.95, 0.99))
    ratio = f"{p50 / percentile(base, 0.5):.1f}" if base else "—"
    return f"| `{name}` | {ms[0]:.1f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {ratio} |"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the large store")
    parser.add_argument("--log-entries", type=int, default=1_000_000, help="log entries in it")
    parser.add_argument("--baseline-runs", type=int, default=100, help="runs in the baseline")
    parser.add_argument("--requests", type=int, default=200, help="timed renders per page")
    parser.add_argument("--dag-tasks", type=int, default=200, help="tasks of the layout DAG")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load both stores on SQLite, time every page on each, and print a markdown table."""
    args = parse_args(argv)
    ratio = args.log_entries / args.runs
    stores = {"baseline": Size(args.baseline_runs, round(args.baseline_runs * ratio)),
              "large": Size(args.runs, args.log_entries)}  # fmt: skip
    timings: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as workdir:
        for store, size in stores.items():
            url = f"sqlite:///{Path(workdir) / f'{store}.db'}"
            print(f"sqlite: loading {store} ({size.runs} runs)", file=sys.stderr)
            began = time.perf_counter()
            loaded = prepare(url, size, progress=True)
            print(f"  loaded in {time.perf_counter() - began:.0f} s", file=sys.stderr)
            timings[store] = time_pages(url, loaded.run_ids, args.requests)
    print(f"SQLite, {args.runs} runs, {args.log_entries} log entries;"
          f" {args.requests} renders per page after 10 untimed")  # fmt: skip
    print("| page | min ms | p50 ms | p95 ms | p99 ms | vs baseline (p50) |")
    print("|---|---|---|---|---|---|")
    for page in PAGES:
        print(row(f"GET {page}", timings["large"][page], timings["baseline"][page]))
    print(row(f"layout({args.dag_tasks}-task DAG)", time_layout(args.dag_tasks, 50), None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
