"""Many console users: page reads and log streams while containers run, post callbacks
and a DAG steps on.

    .venv/bin/python -m bench.load [--seconds 30 --clients 50 --streams 20 --containers 16]
                                   [--reads console|api]

A real `gnomon serve` (SQLite, Docker executor, host networking, on loopback) runs
`--containers` busybox containers that print a line and post a log entry through
the shell helper `gnomon-task` four times a second. Meanwhile, for `--seconds`:

- `--clients` readers each take a round of reads, then wait the console's own refresh
  period (`POLL_MS` in app/static/console.js) before the next, starting at random
  offsets. Without the wait, threads that read back to back measure the server's
  saturation (p99 = queue length x service time), not what users see. With `--reads
  console` (the default) a reader is a console user: what the console's script fetches
  on a refresh of the runs page and of a run's page (`/?partial=1`, `/runs/{id}?partial=1`)
  and a page of an attempt's log (`GET /api/tasks/{id}/log_entries?limit=100`). With
  `--reads api` it is a Sundial API client: `GET /api/processes?max_records=20`, a run
  `GET /api/processes/{id}` and an attempt `GET /api/tasks/{id}`, each attempt in them
  with its newest 100 log entries (a run of the 16 talkers is ~210 KB of JSON);
- `--streams` followers each read a running attempt's log stream, `GET
  /api/tasks/{id}/log_stream` (server-sent events, as the console's live log does),
  reconnecting with `Last-Event-ID` if it breaks;
- a chain of `--chain` no-op tasks runs again and again; its DAG step (a task's start
  minus its upstream's end, as the API shows them) is compared with the same chain
  run twice alone just before (the baseline). Beside it, the engine's own part: the
  SDK's start of a created container, timed alone before and between chain runs.

The server is configured for that many streams (`GNOMON_LOG_STREAMS_MAX`); the rest
of its settings are the defaults.

Reported: read p99 and p50, read errors (any non-2xx or failed request), stream
errors (a refused or broken stream, or one that ended before its attempt) and the
delay of streamed output lines (received minus the line's time), callbacks refused (a
`gnomon-task log` that gave up, counted from the containers' stderr), callback
entries missing from the store (counted through `GET /api/tasks/{id}/log_entries`,
page by page: the attempt's view embeds only its newest entries), DAG step p50
loaded / idle and the engine's container start p50 loaded / idle. Bounded: it stops
after `--seconds` plus at most a minute of waiting for the talkers, and removes its
containers.
"""

from __future__ import annotations

import argparse
import codecs
import itertools
import json
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests

from app.config import defaults
from bench.support import Figure, Served, cpu_seconds, format_table, gnomon_serve, percentile

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "gnomon-test/busybox"
HELPER = ROOT / "app" / "helpers" / "gnomon-task"
CONSOLE_JS = ROOT / "app" / "static" / "console.js"
TALK = (
    'printf "%s" "$HELPER" > /tmp/gnomon-task && chmod +x /tmp/gnomon-task; i=0; '
    'end=$(($(date +%s) + SECONDS_TO_TALK)); while [ "$(date +%s)" -lt $end ]; do echo "out $i"; '
    '/tmp/gnomon-task log "callback $i" || echo REFUSED >&2; i=$((i+1)); sleep 0.25; done; '
    'echo "talked $i"'
)
PAGE = 1000  # entries per page of GET /api/tasks/{id}/log_entries (its maximum)


def console_period() -> float:
    """The console's refresh period in seconds: POLL_MS of its script."""
    found = re.search(r"\bPOLL_MS = (\d+);", CONSOLE_JS.read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(f"no POLL_MS in {CONSOLE_JS}")
    return int(found[1]) / 1000


@dataclass
class Reads:
    """Latencies (ms) and errors of the readers, shared by their threads."""

    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, session: requests.Session, url: str, **params: Any) -> None:
        """GET `url`, noting its latency or its failure."""
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


@dataclass
class Streams:
    """What the followers saw: log events, delays of output lines (ms), errors."""

    events: int = 0
    delays: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, entry: dict[str, Any], opened: float) -> None:
        """Count one received entry; an output line printed after the stream was `opened`
        (a time.time()) has a delay: now minus its time."""
        now, printed = time.time(), _time(entry["when"])
        with self.lock:
            self.events += 1
            if entry["source"] == "stdout" and printed >= opened:
                self.delays.append(1000 * (now - printed))

    def error(self, problem: str) -> None:
        """Note a refused, broken or cut stream."""
        with self.lock:
            self.errors.append(problem)


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


def talkers(containers: int, seconds: float) -> dict[str, Any]:
    """`containers` independent tasks that print and post log entries for `seconds`, then
    print `talked N`, N being how many entries they posted."""
    helper = HELPER.read_text(encoding="utf-8")
    tasks = [
        {
            "task_definition_name": f"talk{i:02d}",
            "executable": command(TALK, HELPER=helper, SECONDS_TO_TALK=str(round(seconds))),
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


Attempts = dict[str, list[str]]  # the attempt ids of each run a reader may open


def console_round(
    session: requests.Session, url: str, reads: Reads, attempts: Attempts, rng: random.Random
) -> None:
    """What the console's script fetches on a refresh of each page a user has open: the
    runs page and a run's page (their live parts), and a page of an attempt's log."""
    run_id = rng.choice(list(attempts))
    reads.get(session, f"{url}/", partial=1)
    reads.get(session, f"{url}/runs/{run_id}", partial=1)
    if attempts[run_id]:
        task_id = rng.choice(attempts[run_id])
        reads.get(session, f"{url}/api/tasks/{task_id}/log_entries", limit=100)


def api_round(
    session: requests.Session, url: str, reads: Reads, attempts: Attempts, rng: random.Random
) -> None:
    """A Sundial API client's reads: the run list, a run and an attempt (each with its
    attempts' newest 100 log entries embedded, as the API shows them)."""
    run_id = rng.choice(list(attempts))
    reads.get(session, f"{url}/api/processes", max_records=20)
    reads.get(session, f"{url}/api/processes/{run_id}")
    if attempts[run_id]:
        reads.get(session, f"{url}/api/tasks/{rng.choice(attempts[run_id])}")


ROUNDS = {"console": console_round, "api": api_round}


def reader(
    url: str, reads: Reads, rounds: str, attempts: Attempts, stop: threading.Event, period: float
) -> None:
    """One reader until `stop`: a round of `rounds` reads, then `period` seconds until the
    next; the first round at a random offset."""
    session, rng = requests.Session(), random.Random()
    stop.wait(rng.uniform(0, period))
    while not stop.is_set():
        ROUNDS[rounds](session, url, reads, attempts, rng)
        stop.wait(period)


def follower(url: str, streams: Streams, task_id: str, stop: threading.Event) -> None:
    """Follow attempt `task_id`'s log stream until `stop` or its end, as the console's
    EventSource does: reopen a broken stream from the last event id."""
    session, last_id = requests.Session(), ""
    while not stop.is_set():
        opened = time.time()
        try:
            with session.get(
                f"{url}/api/tasks/{task_id}/log_stream",
                headers={"Last-Event-ID": last_id} if last_id else {},
                stream=True,
                timeout=(5, 30),
            ) as response:
                if response.status_code != 200:
                    streams.error(str(response.status_code))
                    stop.wait(1.0)
                    continue
                for event in sse_events(response):
                    last_id = event.get("id", last_id)
                    if event.get("event") == "log":
                        streams.event(json.loads(event["data"]), opened)
                    if event.get("event") == "end" or stop.is_set():
                        return
            streams.error("stream cut before the attempt ended")
        except requests.RequestException as error:
            streams.error(type(error).__name__)


def sse_events(response: requests.Response) -> Iterator[dict[str, str]]:
    """The fields of each server-sent event as it arrives (a comment gives an empty dict)."""
    decoder, buffer = codecs.getincrementaldecoder("utf-8")(), ""
    for chunk in response.iter_content(chunk_size=None):
        *blocks, buffer = (buffer + decoder.decode(chunk)).split("\n\n")
        for block in blocks:
            fields = (line.partition(":") for line in block.split("\n"))
            yield {name: value.removeprefix(" ") for name, _, value in fields if name}


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


def engine_starts(engine: docker.DockerClient, count: int) -> list[float]:
    """The engine's own part of a DAG step, measured with the SDK: `count` times, the
    time (ms) to start a created container of the test image."""
    times = []
    for _ in range(count):
        container = engine.containers.create(IMAGE, ["true"], network_mode="host")
        try:
            began = time.perf_counter()
            container.start()
            times.append(1000 * (time.perf_counter() - began))
            container.wait(timeout=60)
        finally:
            container.remove(force=True)
    return times


def load(served: Served, args: argparse.Namespace) -> dict[str, Any]:
    """The loaded phase: readers, followers, talkers and chain runs."""
    url, session = served.url, requests.Session()
    session.put(f"{url}/api/process_definitions/chain", json=chain(args.chain)).raise_for_status()
    talk = talkers(args.containers, args.seconds + 5)
    session.put(f"{url}/api/process_definitions/talkers", json=talk).raise_for_status()
    idle = steps(run_to_end(session, url, "chain", 120)) + steps(
        run_to_end(session, url, "chain", 120)
    )
    engine = docker.from_env()
    engine_idle = engine_starts(engine, 10)
    run_path = session.post(f"{url}/api/process_definitions/talkers/trigger").headers["Location"]
    running = wait_running(session, url, run_path, args.containers)
    attempts = {
        run["process_id"]: [task["task_id"] for task in run["task"]]
        for run in session.get(f"{url}/api/processes").json()
    }
    reads, streams, stop = Reads(), Streams(), threading.Event()
    period = console_period()
    threads = [
        threading.Thread(target=reader, args=(url, reads, args.reads, attempts, stop, period))
        for _ in range(args.clients)
    ]
    threads += [
        threading.Thread(target=follower, args=(url, streams, running[i % len(running)], stop))
        for i in range(args.streams)
    ]
    for thread in threads:
        thread.start()
    started, loaded, engine_loaded = time.monotonic(), [], []
    cpu, own = cpu_seconds(served.process.pid), time.process_time()
    try:
        while time.monotonic() - started < args.seconds - 5:
            loaded += steps(run_to_end(session, url, "chain", 120))
            engine_loaded += engine_starts(engine, 2)
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        cores = (cpu_seconds(served.process.pid) - cpu) / elapsed
        client_cores = (time.process_time() - own) / elapsed
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        engine.close()
    talkers_run = wait_for_end(session, url, run_path, 60)
    return {
        "reads": reads,
        "streams": streams,
        "idle": idle,
        "loaded": loaded,
        "engine_idle": engine_idle,
        "engine_loaded": engine_loaded,
        "cores": cores,
        "client_cores": client_cores,
        **callbacks(session, url, talkers_run),
    }


def callbacks(session: requests.Session, url: str, run: dict[str, Any]) -> dict[str, int]:
    """Callbacks the talkers gave up on (from their stderr) and the entries they posted
    that are not in the store, read page by page."""
    refused = missing = 0
    for task in run["task"]:
        messages = [e["message"] for e in log_entries(session, url, task["task_id"])]
        talked = [int(m.split()[1]) for m in messages if m.startswith("talked ")]
        if not talked:
            raise RuntimeError(f"{task['task_definition_name']} did not finish talking")
        refused += messages.count("REFUSED")
        missing += talked[0] - len({m for m in messages if m.startswith("callback ")})
    return {"refused": refused, "missing": missing}


def log_entries(session: requests.Session, url: str, task_id: str) -> Iterator[dict[str, Any]]:
    """Every stored log entry of attempt `task_id`, through the paged log entries endpoint."""
    after: dict[str, str] = {}
    while True:
        response = session.get(
            f"{url}/api/tasks/{task_id}/log_entries", params={"limit": PAGE, **after}, timeout=30
        )
        response.raise_for_status()
        page = response.json()
        yield from page
        if len(page) < PAGE:
            return
        after = {"after": page[-1]["log_entry_id"]}


def stream_settings(streams: int) -> dict[str, str]:
    """The server's settings for `streams` open log streams, when its defaults allow fewer."""
    most, threads = int(defaults()["LOG_STREAMS_MAX"]), int(defaults()["SERVE_THREADS"])
    if streams <= most:
        return {}
    spare = threads - most
    return {"GNOMON_LOG_STREAMS_MAX": str(streams), "GNOMON_SERVE_THREADS": str(streams + spare)}


def measure(
    seconds: float = 30,
    clients: int = 50,
    streams: int = 20,
    containers: int = 16,
    chain_length: int = 6,
    reads: str = "console",
) -> list[Figure]:
    """The load figures."""
    args = argparse.Namespace(
        seconds=seconds,
        clients=clients,
        streams=streams,
        containers=containers,
        chain=chain_length,
        reads=reads,
    )
    instance = f"bench-load-{uuid.uuid4().hex[:8]}"
    env = {
        "GNOMON_EXECUTOR": "docker",
        "GNOMON_DOCKER_NETWORK_MODE": "host",
        "GNOMON_INSTANCE": instance,
        "GNOMON_MAX_RUNNING_CONTAINERS": str(containers + 4),
        "GNOMON_KILL_GRACE_SECONDS": "1",
        **stream_settings(streams),
    }
    try:
        with (
            tempfile.TemporaryDirectory(prefix="gnomon-bench-load-") as tmp,
            gnomon_serve(Path(tmp), env) as served,
        ):
            found = load(served, args)
    finally:
        remove_containers(instance)
    seen: Reads = found["reads"]
    flows: Streams = found["streams"]
    readers = "console users" if reads == "console" else "API clients"
    label = f"{clients} {readers} + {streams} streams + {containers} containers"
    return [
        Figure("load", f"read p99, {label}", percentile(seen.times, 0.99), "ms",
               baseline=percentile(seen.times, 0.5), target=100),
        Figure("load", f"read errors of {len(seen.times)}", len(seen.errors), "", target=0),
        Figure("load", f"stream errors ({flows.events} events)", len(flows.errors), "", target=0),
        Figure("load", "streamed output line delay p99", percentile(flows.delays, 0.99), "ms",
               baseline=percentile(flows.delays, 0.5)),
        Figure("load", "server CPU while loaded", found["cores"], "cores"),
        Figure("load", "CPU of the readers and followers", found["client_cores"], "cores"),
        Figure("load", "callbacks refused", found["refused"], "", target=0),
        Figure("load", "callback entries missing", found["missing"], "", target=0),
        Figure("load", "DAG step p50, loaded vs idle", percentile(found["loaded"], 0.5), "ms",
               baseline=percentile(found["idle"], 0.5), target=1.5, target_on_ratio=True),
        Figure("load", "engine's container start p50 (SDK), loaded vs idle",
               percentile(found["engine_loaded"], 0.5), "ms",
               baseline=percentile(found["engine_idle"], 0.5)),
    ]  # fmt: skip


def main() -> None:
    """Run the benchmark from the command line and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--containers", type=int, default=16)
    parser.add_argument("--chain", type=int, default=6)
    parser.add_argument("--reads", choices=sorted(ROUNDS), default="console")
    args = parser.parse_args()
    figures = measure(
        args.seconds, args.clients, args.streams, args.containers, args.chain, args.reads
    )
    print(format_table(figures))


if __name__ == "__main__":
    main()
