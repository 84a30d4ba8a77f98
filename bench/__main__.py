"""Quick versions of every benchmark, side by side in one table.

    .venv/bin/python -m bench                     # all of them (a few minutes)
    .venv/bin/python -m bench --only callbacks,definitions
    .venv/bin/python -m bench --tiny              # smallest sizes: checks they run, not figures

Each figure comes with its baseline measured in the same run, their ratio and the
target; the exit status is 1 if a target is missed. The benchmarks that start
containers need the Docker Engine and the test image (tests/images/build_busybox.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import busy_thread, callbacks, definitions
from bench.support import Figure, format_table, percentile


def history(tiny: bool) -> list[Figure]:
    """bench.history on SQLite: 5,000 runs and 50,000 log entries against 100 runs."""
    from bench.history import Size, bench_backend

    size = Size(200, 2000) if tiny else Size(5000, 50_000)
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as tmp:
        report = bench_backend("sqlite", size, Size(100, 1000), 20 if tiny else 100, Path(tmp))
    by = {(x["store"], x["request"]): x for x in report["latencies"]}
    return [
        Figure("history", f"{request} p99, {size.runs:,} runs", by["large", request]["p99"], "ms",
               baseline=by["baseline", request]["p99"], target=target)
        for request, target in (
            ("GET /api/processes?max_records=100", 50),
            ("GET /api/processes/{id}", None),
        )
    ]  # fmt: skip


def executor_overhead(tiny: bool) -> list[Figure]:
    """bench.executor_overhead: 20 no-op containers, 8 at a time, median of 2 rounds."""
    import docker

    from bench.executor_overhead import bare_round, executor_round

    containers, rounds = (4, 1) if tiny else (20, 2)
    client = docker.APIClient(timeout=120, max_pool_size=12)
    try:
        bare = statistics.median(bare_round(client, containers, 8) for _ in range(rounds))
        ours = statistics.median(executor_round(client, containers, 8) for _ in range(rounds))
    finally:
        client.close()
    return [
        Figure("executor_overhead", f"{containers} containers, executor vs SDK", ours, "s",
               baseline=bare, target=1.10, target_on_ratio=True)
    ]  # fmt: skip


def scheduler_latency(tiny: bool) -> list[Figure]:
    """bench.scheduler_latency: one chain of 6, and 4 continuous definitions for 10 s."""
    from bench.scheduler_latency import bare_lag, bare_steps, gnomon_lag, gnomon_steps

    length, seconds = (3, 3) if tiny else (6, 10)
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as tmp:
        bare = bare_steps(1, length)
        steps = gnomon_steps(Path(tmp), 1, length)
        lag = gnomon_lag(Path(tmp), 4, seconds)
    timer = bare_lag(50)
    ms = 1000
    return [
        Figure("scheduler_latency", "DAG step p50", ms * percentile(steps, 0.5), "ms",
               baseline=ms * percentile(bare, 0.5), target=50),
        Figure("scheduler_latency", "schedule lag p99", ms * percentile(lag, 0.99), "ms",
               baseline=ms * percentile(timer, 0.99), target=100),
    ]  # fmt: skip


def quick_callbacks(tiny: bool) -> list[Figure]:
    """bench.callbacks: 20,000 log entries in batches of 1,000."""
    return callbacks.measure(2000 if tiny else 20_000, 1000)


def quick_definitions(tiny: bool) -> list[Figure]:
    """bench.definitions: 1,000 definitions (against 100), 100 fired at once (none if tiny)."""
    return definitions.measure(100, 0, 1) if tiny else definitions.measure(1000, 100, 5)


def quick_busy_thread(tiny: bool) -> list[Figure]:
    """bench.busy_thread: 1,000 rows inserted beside a busy thread, 5 times."""
    return busy_thread.measure(100 if tiny else 1000, 1 if tiny else 5)


def quick_output(tiny: bool) -> list[Figure]:
    """bench.executor_output: 8 MiB of 100-byte lines stored, against the bare SDK."""
    from bench.executor_output import measure

    return measure(2000 if tiny else 83_887)


def quick_load(tiny: bool) -> list[Figure]:
    """bench.load: 50 console users, 20 log streams and 16 talking containers for 20 s."""
    from bench.load import measure

    return measure(8, 4, 2, 2, 3) if tiny else measure(20, 50, 20, 16, 6)


BENCHES: dict[str, Callable[[bool], list[Figure]]] = {
    "callbacks": quick_callbacks,
    "definitions": quick_definitions,
    "history": history,
    "busy_thread": quick_busy_thread,
    "executor_overhead": executor_overhead,
    "scheduler_latency": scheduler_latency,
    "executor_output": quick_output,
    "load": quick_load,
}


def run(names: list[str], tiny: bool) -> list[Figure]:
    """The figures of the benchmarks `names`, one after another."""
    figures: list[Figure] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        figures += BENCHES[name](tiny)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table; 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated names")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (a smoke test)")
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - BENCHES.keys()
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    figures = run(names, args.tiny)
    print(format_table(figures))
    return 1 if any(f.met is False for f in figures) else 0


if __name__ == "__main__":
    raise SystemExit(main())
