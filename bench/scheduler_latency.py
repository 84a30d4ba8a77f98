"""Schedule lag and DAG step overhead of the real scheduler, against bare baselines.

    .venv/bin/python -m bench.scheduler_latency [--chains 4 --length 6 --continuous 8 --seconds 30]

DAG step overhead: upstream container exit (the engine's FinishedAt, read
just before the executor removes the container: Gnomon records the time of the
`die` event, which comes later) to the downstream container's start being
requested from the executor. Baseline: the same chains driven by the bare
Docker SDK, reacting to the `die` event of one events stream by creating the
next container at once.

Schedule lag: a run's first container start requested minus its due time, for
continuous definitions (`buffer_seconds=1`, so a fire falls due every second
or so). Baseline: bare APScheduler date jobs at the same offsets in the same
process (the timer's own precision).

Needs the Docker Engine and the test image (tests/images/build_busybox.sh).
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
from apscheduler.schedulers.background import BackgroundScheduler
from docker.errors import NotFound

from definitions import ContinuousSchedule, DockerImageCommand, ProcessDefinition, TaskDefinition
from definitions import TaskDependency as Dep
from executor import AttemptSpec, Executor
from executor.docker import (
    LABEL_INSTANCE,
    LABEL_TASK_ID,
    DockerExecutor,
    DockerSettings,
)
from scheduler.database import migrate, open_database
from scheduler.models import Run, Task
from scheduler.service import Scheduler, SchedulerSettings

IMAGE, TAG = "gnomon-test/busybox", "latest"


class Recording:
    """An executor that notes when each start was requested (wall clock)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.requested: dict[str, float] = {}

    def start(self, spec: AttemptSpec) -> None:
        self.requested[spec.task_id] = time.time()
        self.inner.start(spec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class NotingExits(DockerExecutor):
    """A DockerExecutor that notes each container's FinishedAt just before removing it.

    Closed, it removes what it left running: the benchmark leaves no container behind.
    """

    def __init__(self, settings: DockerSettings) -> None:
        super().__init__(settings)
        self.instance = settings.instance
        self.finished_at: dict[str, float] = {}  # task id -> the engine's exit time
        self._client = docker.APIClient(timeout=60)
        self._engine_remove = self._rt.engine.remove
        self._rt.engine.remove = self._remove  # type: ignore[method-assign]

    def _remove(self, container: str) -> None:
        """Note the container's FinishedAt, then remove it."""
        try:
            info = self._client.inspect_container(container)
        except NotFound:
            return
        task_id = info["Config"]["Labels"][LABEL_TASK_ID]
        self.finished_at[task_id] = engine_time(info["State"]["FinishedAt"])
        self._engine_remove(container)

    def close(self) -> None:
        """Close the executor, remove the containers it left running, close the client."""
        super().close()
        label = f"{LABEL_INSTANCE}={self.instance}"
        for container in self._client.containers(all=True, filters={"label": label}):
            self._client.remove_container(container["Id"], v=True, force=True)
        self._client.close()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    """p50/p95/p99 in milliseconds."""
    return "n={:4d} p50={:7.1f} p95={:7.1f} p99={:7.1f} ms".format(
        len(values), *(percentile(values, f) * 1000 for f in (0.5, 0.95, 0.99))
    )


def task(name: str, *after: str) -> TaskDefinition:
    """A no-op task."""
    command = DockerImageCommand(image=IMAGE, tag=TAG, command=("true",))
    return TaskDefinition(name, command, tuple(Dep(a) for a in after))


def chain(name: str, length: int) -> ProcessDefinition:
    """t0 -> t1 -> ... -> t(length-1)."""
    tasks = [task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, length)]
    return ProcessDefinition(name, tuple(tasks))


def wait_until(probe: Callable[[], bool], timeout: float) -> None:
    """Poll until `probe()` or fail."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish in time")
        time.sleep(0.05)


def start_scheduler(workdir: Path, max_running: int) -> tuple[Scheduler, Recording]:
    """A real scheduler on a fresh SQLite database, host networking, its own instance."""
    database = open_database(f"sqlite:///{workdir / f'{uuid.uuid4().hex}.db'}")
    migrate(database)
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    executor = Recording(NotingExits(DockerSettings(instance=instance, network_mode="host")))
    settings = SchedulerSettings(
        public_url="http://127.0.0.1:9", max_running_containers=max_running
    )
    scheduler = Scheduler(executor, settings)
    scheduler.start()
    return scheduler, executor


def run_chains(scheduler: Scheduler, chains: int, length: int) -> list[str]:
    """Register and trigger `chains` chains of `length` no-ops; their run ids once all ended."""
    ids = []
    for c in range(chains):
        scheduler.save_definition(chain(f"chain-{c}", length), actor="bench")
        ids.append(scheduler.trigger(f"chain-{c}", actor="bench"))
    done = Run.select().where(Run.id.in_(ids) & (Run.status != "running"))
    wait_until(lambda: done.count() == len(ids), 600)
    return ids


def gnomon_steps(workdir: Path, chains: int, length: int) -> list[float]:
    """DAG step overheads of `chains` parallel chains run by the scheduler."""
    scheduler, executor = start_scheduler(workdir, max_running=chains * 2)
    try:
        ids = run_chains(scheduler, chains, length)
        exits = executor.inner.finished_at
        wait_until(lambda: len(exits) == chains * length, 60)  # the last removals
        return step_overheads(ids, executor.requested, exits)
    finally:
        scheduler.stop()


def step_overheads(
    run_ids: list[str], requested: dict[str, float], exits: dict[str, float]
) -> list[float]:
    """For every task after the first: its start request minus its upstream's exit."""
    overheads = []
    for run_id in run_ids:
        tasks = {t.task_name: t for t in Task.select().where(Task.run == run_id)}
        for name, t in tasks.items():
            upstream = tasks.get(f"t{int(name[1:]) - 1}")
            if upstream is not None:
                overheads.append(requested[t.id] - exits[upstream.id])
    return overheads


def bare_steps(chains: int, length: int) -> list[float]:
    """The same chains with the bare SDK: one events stream, next container on `die`."""
    client = docker.APIClient(timeout=60)
    label = f"bench-bare-{uuid.uuid4().hex[:8]}"
    events = client.events(decode=True, filters={"label": label, "event": "die"})
    inboxes: dict[str, queue.Queue] = {}
    reader = threading.Thread(target=_route_events, args=(events, inboxes), daemon=True)
    reader.start()
    results: list[float] = []
    workers = [
        threading.Thread(target=_bare_chain, args=(client, label, length, inboxes, results))
        for _ in range(chains)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    events.close()
    return results


def _route_events(events: Any, inboxes: dict[str, queue.Queue]) -> None:
    """Deliver each die event to the chain waiting for that container."""
    try:
        for event in events:
            box = inboxes.get(event.get("id", ""))
            if box is not None:
                box.put(time.time())
    except Exception:  # the stream is closed at the end of the run
        return


def _bare_chain(
    client: docker.APIClient, label: str, length: int, inboxes: dict, results: list[float]
) -> None:
    """Run one chain: create/start, wait for die, then the next; note each reaction."""
    host = client.create_host_config(network_mode="host")
    previous: str | None = None
    for _ in range(length):
        requested = time.time()
        container = client.create_container(
            f"{IMAGE}:{TAG}", ["true"], labels={label: "1"}, host_config=host
        )["Id"]
        box: queue.Queue = queue.Queue()
        inboxes[container] = box
        if previous is not None:
            results.append(requested - _finished_at(client, previous))
            client.remove_container(previous, force=True)
        client.start(container)
        box.get(timeout=60)
        previous = container
    client.remove_container(previous, force=True)


def _finished_at(client: docker.APIClient, container: str) -> float:
    """The engine's FinishedAt of a container, as a Unix time."""
    return engine_time(client.inspect_container(container)["State"]["FinishedAt"])


def engine_time(text: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, UTC) as a Unix time."""
    whole, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return stamp + float(f"0.{frac or 0}")


def gnomon_lag(workdir: Path, definitions: int, seconds: float) -> list[float]:
    """Schedule lags of continuous definitions (buffer 1 s) run for `seconds`."""
    scheduler, executor = start_scheduler(workdir, max_running=definitions * 2)
    try:
        for d in range(definitions):
            definition = ProcessDefinition(
                f"loop-{d}", (task("t0"),), schedule=ContinuousSchedule(buffer_seconds=1)
            )
            scheduler.save_definition(definition, actor="bench")
        time.sleep(seconds)
    finally:
        scheduler.stop()
    lags = []
    for run in Run.select().where(Run.trigger == "schedule"):
        first = Task.select().where(Task.run == run.id).order_by(Task.created_at).first()
        if first is not None and first.id in executor.requested:
            lags.append(executor.requested[first.id] - run.scheduled_for.timestamp())
    return lags


def bare_lag(samples: int) -> list[float]:
    """APScheduler date jobs, each due 20-120 ms ahead: actual minus due time."""
    timer = BackgroundScheduler(timezone=UTC)
    timer.start()
    lags: list[float] = []
    done = threading.Event()

    def fired(due: float) -> None:
        lags.append(time.time() - due)
        if len(lags) == samples:
            done.set()

    for i in range(samples):
        due = datetime.now(UTC) + timedelta(milliseconds=20 + (i * 37) % 100)
        timer.add_job(fired, "date", run_date=due, args=[due.timestamp()])
        time.sleep(0.01)
    done.wait(timeout=60)
    timer.shutdown()
    return lags


def main() -> None:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--length", type=int, default=6)
    parser.add_argument("--continuous", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare = bare_steps(args.chains, args.length)
        steps = gnomon_steps(workdir, args.chains, args.length)
        lag = gnomon_lag(workdir, args.continuous, args.seconds)
    timer = bare_lag(200)
    print(f"DAG step overhead, gnomon:      {summary(steps)}")
    print(f"DAG step overhead, bare SDK:    {summary(bare)}")
    print(f"  ratio p50 gnomon/bare: {percentile(steps, 0.5) / percentile(bare, 0.5):.2f}")
    print(f"schedule lag, gnomon:           {summary(lag)}")
    print(f"schedule lag, bare APScheduler: {summary(timer)}")
    print(f"  ratio p99 gnomon/bare: {percentile(lag, 0.99) / percentile(timer, 0.99):.2f}")


if __name__ == "__main__":
    main()
