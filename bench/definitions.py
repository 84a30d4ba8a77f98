"""Many definitions: `gnomon apply`, idle cost, listing pages and the lag of a mass fire.

    .venv/bin/python -m bench.definitions [--definitions 10000 --due 1000 --idle-seconds 30]

Each size runs against its own `gnomon serve` (SQLite, scheduler on, executor `fake`:
the executor's start is stubbed, so a fire measures the scheduler alone; the engine
cannot start 1,000 containers a second here). The baseline is the same measurement
with a tenth of the definitions, in the same run.

1. `gnomon apply -f` of a JSON file of N definitions (yearly cron schedules, so none
   fires), as a subprocess: its wall time. The baseline is scaled up tenfold
   (ratio 1.0: apply time grows linearly with N).
2. Idle: the server's CPU time (/proc) over `--idle-seconds` with all N scheduled, as a
   percentage of one core, and its resident memory.
3. `GET /api/process_definitions?limit=100&after=<random name>`: p99 of 200 requests, and
   the server's CPU time a request; the same for 100 random pages of the console's
   definitions page (`/definitions?page=N`).
4. Mass fire (the large size only): `--due` of them re-applied to fire at one coming
   minute; for each run, `created_at - due_at` from the API; p50 and p99. And the server's
   CPU time from half a second before that minute until it is idle again (read from /proc
   before the runs are listed), per run fired: the fire pass, the dispatch after it and
   the periodic re-planning of the running runs. And, in this process without a server,
   the CPU time per fire of one `Engine.fire_due` over `--due` definitions due at once.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from resource import RUSAGE_CHILDREN, getrusage
from typing import Any

import requests

from bench.support import Figure, Served, cpu_seconds, format_table, gnomon_serve, percentile
from definitions import parse_definition
from executor.fake import FakeExecutor
from scheduler import catalog
from scheduler.database import migrate, open_database
from scheduler.engine import Engine, SchedulerSettings
from scheduler.models import Definition, Run

PAGE = 100
CONSOLE_PAGE = 50  # definitions a page of the console shows


def definition(name: str, minutes: str = "0", hours: str = "3", day: str = "1") -> dict:
    """A two-task definition on a cron schedule (by default once a year; with a `day` of
    `*`, every day)."""
    command = {"docker_image_command": {"image": "busybox", "command": ["true"]}}
    return {
        "process_definition_name": name,
        "schedule": {
            "cron_schedule": {
                "minutes": minutes,
                "hours": hours,
                "day_of_month": day,
                "month": "1" if day == "1" else "*",
                "day_of_week": "?",
            }
        },
        "task_definitions": [
            {"task_definition_name": "extract", "executable": command},
            {
                "task_definition_name": "load",
                "executable": command,
                "dependencies": [{"task_definition_name": "extract"}],
            },
        ],
    }


def apply(served: Served, definitions: list[dict], workdir: Path, name: str) -> tuple[float, float]:
    """Seconds `gnomon apply -f` takes to register `definitions`: wall time, and the CPU
    time the command and the server spent (what a machine with cores to spare would see)."""
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(definitions))
    server_cpu, children = cpu_seconds(served.process.pid), getrusage(RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "apply", "-f", str(path)],
        env={"GNOMON_URL": served.url, "PATH": "/usr/bin:/bin"},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = getrusage(RUSAGE_CHILDREN)
    command_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return wall, command_cpu + cpu_seconds(served.process.pid) - server_cpu


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid`, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def idle(served: Served, seconds: float) -> tuple[float, float]:
    """The server's CPU use (% of a core) over `seconds`, and its RSS (MiB) at the end."""
    pid = served.process.pid
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    return 100 * used / (time.monotonic() - started), rss_mib(pid)


def page_p99(served: Served, names: list[str], requests_: int = 200) -> tuple[float, float]:
    """p99 in ms of one page of definitions after a random name, and the server's CPU
    time per request in ms."""
    rng = random.Random(7)
    params = [{"limit": PAGE, "after": rng.choice(names)} for _ in range(requests_)]
    return timed_gets(served, "/api/process_definitions", params)


def console_p99(served: Served, count: int, requests_: int = 100) -> tuple[float, float]:
    """p99 in ms of a random page of the console's definitions page, and the server's CPU
    time per request in ms."""
    rng = random.Random(11)
    pages = -(-count // CONSOLE_PAGE)
    params = [{"page": rng.randrange(pages)} for _ in range(requests_)]
    return timed_gets(served, "/definitions", params)


def timed_gets(served: Served, path: str, params: list[dict[str, Any]]) -> tuple[float, float]:
    """p99 in ms of a GET of `path` with each of `params`, and the server's CPU ms per GET."""
    session, times = requests.Session(), []
    server_cpu = cpu_seconds(served.process.pid)
    for query in params:
        started = time.perf_counter()
        response = session.get(f"{served.url}{path}", params=query)
        times.append(1000 * (time.perf_counter() - started))
        response.raise_for_status()
    used = cpu_seconds(served.process.pid) - server_cpu
    return percentile(times, 0.99), 1000 * used / len(params)


def fire_minute(now: datetime, lead_seconds: float) -> datetime:
    """The first whole minute at least `lead_seconds` from `now`."""
    return (now + timedelta(seconds=lead_seconds + 60)).replace(second=0, microsecond=0)


def mass_fire(
    served: Served, names: list[str], workdir: Path, per_apply: float
) -> tuple[list[float], float]:
    """Lags (s) from due to created of the runs of `names`, re-applied to fire at one minute
    (far enough ahead for the apply to end first, at `per_apply` seconds a definition), and
    the server's CPU seconds from just before that minute until it is idle again."""
    due = fire_minute(datetime.now(UTC), lead_seconds=10 + 2 * per_apply * len(names))
    moved = [definition(n, str(due.minute), str(due.hour), "*") for n in names]
    apply(served, moved, workdir, "due")
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 0.5))
    cpu = busy_cpu(served.process.pid, until=due + timedelta(seconds=180))
    deadline = due + timedelta(seconds=180)
    session, runs = requests.Session(), []
    while datetime.now(UTC) < deadline:
        params = {"max_records": len(names) * 2}
        runs = session.get(f"{served.url}/api/processes", params=params).json()
        if len([r for r in runs if r.get("due_at")]) >= len(names):
            break
        time.sleep(1)
    return [_lag(run) for run in runs if run.get("due_at")], cpu


def busy_cpu(pid: int, until: datetime, window: float = 1.0, idle_cpu: float = 0.02) -> float:
    """CPU seconds process `pid` spends from now until a `window` in which it used less than
    `idle_cpu` (read from /proc, so the reading costs the server nothing), after at least
    two windows; at most until `until`."""
    started, windows = cpu_seconds(pid), 0
    previous = started
    while datetime.now(UTC) < until:
        time.sleep(window)
        current, windows = cpu_seconds(pid), windows + 1
        if windows >= 2 and current - previous < idle_cpu:
            return current - started
        previous = current
    return cpu_seconds(pid) - started


def fire_pass_cpu(due: int, workdir: Path) -> float:
    """CPU milliseconds per fire of one `Engine.fire_due` over `due` definitions due at one
    instant, in this process (SQLite, fake executor, fixed clock): the fires alone, without
    the server's other threads, the dispatch or the periodic re-planning of running runs."""
    database = open_database(f"sqlite:///{workdir / 'fire.db'}")
    migrate(database)
    stored = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(due):
        wire = definition(f"due-{i:06d}", "*", "*", "*")
        catalog.save(parse_definition(wire), actor="bench", now=stored)
    Definition.update(next_fire_at=stored + timedelta(minutes=1)).execute()
    now = stored + timedelta(minutes=1, milliseconds=5)
    settings = SchedulerSettings(public_url="http://127.0.0.1:9")
    engine = Engine(FakeExecutor(), settings, clock=lambda: now)
    started = time.process_time()
    engine.fire_due(now)
    used = time.process_time() - started
    if Run.select().count() != due:
        raise RuntimeError(f"{Run.select().count()} runs made, not {due}")
    database.close()
    return 1000 * used / due


def _lag(run: dict[str, Any]) -> float:
    """created_at minus due_at of a run, in seconds."""
    created = datetime.fromisoformat(run["created_at"].replace("Z", "+00:00"))
    return (created - datetime.fromisoformat(run["due_at"].replace("Z", "+00:00"))).total_seconds()


def one_size(count: int, due: int, idle_seconds: float, workdir: Path) -> dict[str, Any]:
    """All figures for `count` definitions (a mass fire of `due` of them if due > 0)."""
    names = [f"customer-{i:06d}" for i in range(count)]
    found: dict[str, Any] = {}
    with gnomon_serve(workdir, {"GNOMON_EXECUTOR": "fake"}) as served:
        found["apply"], found["apply_cpu"] = apply(
            served, [definition(n) for n in names], workdir, "all"
        )
        found["cpu"], found["rss"] = idle(served, idle_seconds)
        found["page"], found["page_cpu"] = page_p99(served, names)
        found["console"], found["console_cpu"] = console_p99(served, count)
        if due:
            due_names = random.Random(3).sample(names, due)
            found["lags"], found["fire_cpu"] = mass_fire(
                served, due_names, workdir, found["apply"] / count
            )
    if due:
        found["pass_cpu"] = fire_pass_cpu(due, workdir)
    return found


def measure(definitions: int = 10_000, due: int = 1000, idle_seconds: float = 30) -> list[Figure]:
    """The figures for `definitions`, each against a tenth of them."""
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-defs-") as tmp:
        small_dir, large_dir = Path(tmp, "small"), Path(tmp, "large")
        small_dir.mkdir()
        large_dir.mkdir()
        small = one_size(definitions // 10, 0, idle_seconds, small_dir)
        large = one_size(definitions, due, idle_seconds, large_dir)
    n = f"{definitions:,}"
    figures = [
        Figure("definitions", f"gnomon apply of {n}", large["apply"], "s",
               baseline=10 * small["apply"], target=60),
        Figure("definitions", f"gnomon apply of {n}: CPU of command + server", large["apply_cpu"],
               "s", baseline=10 * small["apply_cpu"], target=60),
        Figure("definitions", f"idle CPU with {n} scheduled", large["cpu"], "% core",
               baseline=small["cpu"], target=1),
        Figure("definitions", f"RSS with {n} scheduled", large["rss"], "MiB",
               baseline=small["rss"], target=250),
        Figure("definitions", f"GET page of {PAGE} p99 at {n}", large["page"], "ms",
               baseline=small["page"], target=100),
        Figure("definitions", f"GET page of {PAGE}: server CPU a request at {n}",
               large["page_cpu"], "ms", baseline=small["page_cpu"]),
        Figure("definitions", f"console definitions page p99 at {n}", large["console"], "ms",
               baseline=small["console"], target=100),
        Figure("definitions", f"console definitions page: server CPU a request at {n}",
               large["console_cpu"], "ms", baseline=small["console_cpu"]),
    ]  # fmt: skip
    if due:
        lags, stubbed = large["lags"], f"{len(large['lags'])} fired, executor stubbed"
        figures += [
            Figure("definitions", f"due -> created p50 ({stubbed})", percentile(lags, 0.5), "s"),
            Figure("definitions", f"due -> created p99 ({stubbed})", percentile(lags, 0.99), "s",
                   target=1),
            Figure("definitions", f"server CPU per fire, until idle ({stubbed})",
                   1000 * large["fire_cpu"] / max(1, len(lags)), "ms"),
            Figure("definitions", f"CPU per fire of one pass's fires, in process ({due:,} due)",
                   large["pass_cpu"], "ms"),
        ]  # fmt: skip
    return figures


def main() -> None:
    """Run the benchmark from the command line and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--definitions", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    print(format_table(measure(args.definitions, args.due, args.idle_seconds)))


if __name__ == "__main__":
    main()
