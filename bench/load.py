"""Many readers: API reads while containers run, post callbacks and a DAG steps on.

    .venv/bin/python -m bench.load [--seconds 30 --clients 50 --streams 20 --containers 16]

A real `gnomon serve` (SQLite, Docker executor, host networking, on loopback) runs
`--containers` busybox containers that print a line and post a log entry through
the shell helper `gnomon-task` four times a second. Meanwhile, for `--seconds`:

- `--clients` threads read in a loop: `GET /api/processes?max_records=20`, a run
  `GET /api/processes/{id}` and an attempt with its log `GET /api/tasks/{id}`;
- `--streams` threads follow a running attempt's log. The console's log stream is
  not on this branch: they poll `GET /api/tasks/{id}` once a second as a stand-in;
- a chain of `--chain` no-op tasks runs twice; its DAG step (a task's start minus
  its upstream's end, as the API shows them) is compared with the same chain run
  alone just before (the baseline).

Reported: read p99 and p50, errors (any non-2xx or failed request), callbacks
refused (a `gnomon-task log` that gave up; each is counted from the container's
stderr, and as entries missing from the store), DAG step p50 loaded / idle.
Bounded: it stops after `--seconds` plus at most a minute of waiting, and removes
its containers.
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests

from bench.support import Figure, Served, format_table, gnomon_serve, percentile

IMAGE = "gnomon-test/busybox"
HELPER = Path(__file__).resolve().parents[1] / "app" / "helpers" / "gnomon-task"
TALK = (
    'printf "%s" "$HELPER" > /tmp/gnomon-task && chmod +x /tmp/gnomon-task; i=0; '
    'while [ $i -lt "$LINES" ]; do echo "out $i"; '
    '/tmp/gnomon-task log "callback $i" || echo REFUSED >&2; i=$((i+1)); sleep 0.25; done'
)


@dataclass
class Reads:
    """Latencies (ms) and errors of the readers, shared by their threads."""

    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, session: requests.Session, url: str, **params: Any) -> Any:
        """GET `url`, noting its latency or its failure; the JSON body or None."""
        started = time.perf_counter()
        try:
            response = session.get(url, params=params, timeout=30)
            ok = response.status_code == 200
        except requests.RequestException as error:
            response, ok = None, False
            problem = type(error).__name__
        elapsed = 1000 * (time.perf_counter() - started)
        with self.lock:
            self.times.append(elapsed)
            if not ok:
                self.errors.append(problem if response is None else str(response.status_code))
        return response.json() if ok else None


def command(script: str, **env: str) -> dict[str, Any]:
    """A docker_image_command of the test image running `script` with `env`."""
    variables = [{"variable_name": k, "value": v} for k, v in env.items()]
    return {
        "docker_image_command": {
            "image": IMAGE,
            "command": ["sh", "-c", script],
            "environment_variables": variables,
        }
    }


def chain(length: int) -> dict[str, Any]:
    """A chain of `length` no-op tasks."""
    tasks = [
        {
            "task_definition_name": f"step{i}",
            "executable": command("true"),
            "dependencies": [{"task_definition_name": f"step{i - 1}"}] if i else [],
        }
        for i in range(length)
    ]
    return {"process_definition_name": "chain", "task_definitions": tasks}


def talkers(containers: int, lines: int) -> dict[str, Any]:
    """`containers` independent tasks that print and post `lines` log entries each."""
    helper = HELPER.read_text(encoding="utf-8")
    tasks = [
        {
            "task_definition_name": f"talk{i:02d}",
            "executable": command(TALK, HELPER=helper, LINES=str(lines)),
        }
        for i in range(containers)
    ]
    return {"process_definition_name": "talkers", "task_definitions": tasks}


def run_to_end(session: requests.Session, url: str, name: str, limit: float) -> dict[str, Any]:
    """Trigger `name` and wait (at most `limit` s) for its run to end; the run."""
    location = session.post(f"{url}/api/process_definitions/{name}/trigger").headers["Location"]
    return wait_for_end(session, url, location, limit)


def wait_for_end(
    session: requests.Session, url: str, run_path: str, limit: float
) -> dict[str, Any]:
    """Wait (at most `limit` s, then kill it) for the run at `run_path` to end; the run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        run = session.get(url + run_path).json()
        if run["status"] != "running":
            return run
        time.sleep(0.2)
    session.post(url + run_path + "/kill")
    return session.get(url + run_path).json()


def steps(run: dict[str, Any]) -> list[float]:
    """DAG steps of a chain run, in ms: each task's start minus its upstream's end."""
    tasks = sorted(run["task"], key=lambda t: t["task_definition_name"])
    when = [(_time(t["start_time"]), _time(t["end_time"])) for t in tasks]
    return [1000 * (start - prev_end) for (_, prev_end), (start, _) in itertools.pairwise(when)]


def _time(text: str) -> float:
    """An API timestamp as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def reader(url: str, reads: Reads, runs: list[str], stop: threading.Event) -> None:
    """One console reader: run list, a run, an attempt with its log, until `stop`."""
    session, rng = requests.Session(), random.Random()
    while not stop.is_set():
        reads.get(session, f"{url}/api/processes", max_records=20)
        run = reads.get(session, f"{url}/api/processes/{rng.choice(runs)}")
        if run and run["task"]:
            reads.get(session, f"{url}/api/tasks/{rng.choice(run['task'])['task_id']}")


def follower(url: str, reads: Reads, task_id: str, stop: threading.Event) -> None:
    """A log stream stand-in: poll one attempt once a second until `stop`."""
    session = requests.Session()
    while not stop.wait(1.0):
        reads.get(session, f"{url}/api/tasks/{task_id}")


def wait_running(session: requests.Session, url: str, run_path: str, count: int) -> list[str]:
    """Wait (at most 60 s) until `count` attempts of the run are running; their ids."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = session.get(url + run_path).json()["task"]
        running = [t["task_id"] for t in tasks if t["status"] == "running"]
        if len(running) >= count:
            return running
        time.sleep(0.2)
    raise RuntimeError("the talkers did not all start within 60 s")


def remove_containers(instance: str) -> None:
    """Remove every container this benchmark's instance left."""
    client = docker.from_env()
    for container in client.containers.list(
        all=True, filters={"label": f"gnomon.instance={instance}"}
    ):
        container.remove(force=True)
    client.close()


def load(served: Served, args: argparse.Namespace) -> dict[str, Any]:
    """The loaded phase: readers, followers, talkers and two chain runs."""
    url, session = served.url, requests.Session()
    lines = int(args.seconds * 4) + 8
    session.put(f"{url}/api/process_definitions/chain", json=chain(args.chain)).raise_for_status()
    talk = talkers(args.containers, lines)
    session.put(f"{url}/api/process_definitions/talkers", json=talk).raise_for_status()
    idle = steps(run_to_end(session, url, "chain", 120)) + steps(
        run_to_end(session, url, "chain", 120)
    )
    run_path = session.post(f"{url}/api/process_definitions/talkers/trigger").headers["Location"]
    running = wait_running(session, url, run_path, args.containers)
    runs = [r["process_id"] for r in session.get(f"{url}/api/processes").json()]
    reads, stop = Reads(), threading.Event()
    threads = [
        threading.Thread(target=reader, args=(url, reads, runs, stop)) for _ in range(args.clients)
    ]
    threads += [
        threading.Thread(target=follower, args=(url, reads, running[i % len(running)], stop))
        for i in range(args.streams)
    ]
    for thread in threads:
        thread.start()
    started, loaded = time.monotonic(), []
    try:
        while time.monotonic() - started < args.seconds - 5:
            loaded += steps(run_to_end(session, url, "chain", 120))
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    talkers_run = wait_for_end(session, url, run_path, args.seconds + 60)
    return {
        "reads": reads,
        "idle": idle,
        "loaded": loaded,
        **refusals(session, url, talkers_run, lines),
    }


def refusals(
    session: requests.Session, url: str, run: dict[str, Any], lines: int
) -> dict[str, int]:
    """Callbacks the talkers gave up on (from their stderr) and entries missing from the store."""
    refused = missing = 0
    for task in run["task"]:
        entries = session.get(f"{url}/api/tasks/{task['task_id']}").json()["log_entries"]
        refused += sum(e["message"] == "REFUSED" for e in entries)
        missing += lines - sum(e["message"].startswith("callback ") for e in entries)
    return {"refused": refused, "missing": missing}


def measure(
    seconds: float = 30,
    clients: int = 50,
    streams: int = 20,
    containers: int = 16,
    chain_length: int = 6,
) -> list[Figure]:
    """The load figures."""
    args = argparse.Namespace(
        seconds=seconds, clients=clients, streams=streams, containers=containers, chain=chain_length
    )
    instance = f"bench-load-{uuid.uuid4().hex[:8]}"
    env = {
        "GNOMON_EXECUTOR": "docker",
        "GNOMON_DOCKER_NETWORK_MODE": "host",
        "GNOMON_INSTANCE": instance,
        "GNOMON_MAX_RUNNING_CONTAINERS": str(containers + 4),
        "GNOMON_KILL_GRACE_SECONDS": "1",
    }
    try:
        with (
            tempfile.TemporaryDirectory(prefix="gnomon-bench-load-") as tmp,
            gnomon_serve(Path(tmp), env) as served,
        ):
            found = load(served, args)
    finally:
        remove_containers(instance)
    reads: Reads = found["reads"]
    label = f"{clients} readers + {streams} followers + {containers} containers"
    return [
        Figure("load", f"read p99, {label}", percentile(reads.times, 0.99), "ms",
               baseline=percentile(reads.times, 0.5), target=100),
        Figure("load", f"read errors of {len(reads.times)}", len(reads.errors), "", target=0),
        Figure("load", "callbacks refused", found["refused"], "", target=0),
        Figure("load", "callback entries missing", found["missing"], "", target=0),
        Figure("load", "DAG step p50, loaded vs idle", percentile(found["loaded"], 0.5), "ms",
               baseline=percentile(found["idle"], 0.5), target=1.5, target_on_ratio=True),
    ]  # fmt: skip


def main() -> None:
    """Run the benchmark from the command line and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--containers", type=int, default=16)
    parser.add_argument("--chain", type=int, default=6)
    args = parser.parse_args()
    print(
        format_table(measure(args.seconds, args.clients, args.streams, args.containers, args.chain))
    )


if __name__ == "__main__":
    main()
