"""The Swarm executor against the Docker executor: no-op throughput and DAG step latency.

    .venv/bin/python -m bench.swarm [--containers 50 --concurrency 8 --rounds 3]
                                    [--chains 2 --length 6]

Throughput: the same `--containers` no-op attempts (`true` in the test image,
host network) through a DockerExecutor and a SwarmExecutor, at most
`--concurrency` at a time, in alternating rounds; a round ends when every
outcome is in and every container or service is removed. Reports the median
round wall times and the ratio swarm / docker.

DAG step latency: a real scheduler (SQLite) runs `--chains` chains of
`--length` no-op tasks on each executor. A step is an upstream container's end
to the downstream container running, as the attempts record them, split into
Gnomon's part (the end to the downstream start request: noticing the end,
reading the output, the scheduler's pass) and the backend's part (the request
to the container running).

Where Swarm's time goes: `--probes` services of `true` made one after another
with the bare SDK, timed from the request (engine clocks; one node, so one
clock): the API call, the orchestrator creating the task, the task being
scheduled, assigned and its container started, the run, and the node
reporting the end. Each timed against the same container run by plain Docker.

Uses this engine as a one-node swarm: made (and left afterwards) only when the
engine is in none, as the tests do. Needs the test image (tests/images/build_busybox.sh).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker

from bench.executor_overhead import docker_executor, executor_round, spec, wait_removed
from bench.scheduler_latency import Recording, run_chains, summary
from executor import Executor
from executor.logs import parse_timestamp
from executor.swarm import SwarmExecutor, SwarmSettings
from executor.swarm.services import service_args
from scheduler.database import migrate, open_database
from scheduler.models import Task
from scheduler.service import Scheduler, SchedulerSettings
from tests.support.swarm import one_node_swarm

Make = Callable[[str, int], Executor]  # (instance, worker threads) -> an executor


def swarm_executor(instance: str, workers: int) -> Executor:
    """A SwarmExecutor whose services join the host network."""
    return SwarmExecutor(SwarmSettings(instance, networks=("host",), worker_threads=workers))


def wait_services_removed(client: docker.APIClient, label: str) -> None:
    """Wait until no service carries `label` any more."""
    while client.services(filters={"label": label}):
        time.sleep(0.01)


def wait_all_removed(client: docker.APIClient, label: str) -> None:
    """Wait until no container and no service carries `label` any more."""
    wait_removed(client, label)
    wait_services_removed(client, label)


def dag_steps(make: Make, chains: int, length: int) -> tuple[list[float], list[float]]:
    """Per step of `chains` chains run by a real scheduler: (Gnomon's part, the backend's part)."""
    with tempfile.TemporaryDirectory() as workdir:
        database = open_database(f"sqlite:///{Path(workdir) / 'bench.db'}")
        migrate(database)
        executor = Recording(make(f"bench-{uuid.uuid4().hex[:8]}", chains * 2))
        settings = SchedulerSettings(
            public_url="http://127.0.0.1:9", max_running_containers=chains * 2
        )
        scheduler = Scheduler(executor, settings)  # type: ignore[arg-type]
        scheduler.start()
        try:
            ids = run_chains(scheduler, chains, length)
            return step_parts(ids, executor.requested)
        finally:
            scheduler.stop()
            database.close()


def step_parts(run_ids: list[str], requested: dict[str, float]) -> tuple[list[float], list[float]]:
    """For every task after the first: request - upstream end, and start - request."""
    gnomon, backend = [], []
    for run_id in run_ids:
        tasks = {t.task_name: t for t in Task.select().where(Task.run == run_id)}
        for name, t in tasks.items():
            upstream = tasks.get(f"t{int(name[1:]) - 1}")
            if upstream is not None:
                gnomon.append(requested[t.id] - upstream.ended_at.timestamp())
                backend.append(t.started_at.timestamp() - requested[t.id])
    return gnomon, backend


def swarm_phases(client: docker.APIClient) -> dict[str, float]:
    """Seconds of each phase of one no-op service, from the request to the reported end."""
    probe = spec(0)
    settings = SwarmSettings("bench-probe", networks=("host",))
    began = time.time()
    service = client.create_service(**service_args(probe, settings))["ID"]
    created = time.time()
    try:
        task = _final_task(client, service)
        container = client.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
    finally:
        client.remove_service(service)
    state = container["State"]
    times = {
        "task made": _seconds(task["CreatedAt"]),
        "container started": _seconds(state["StartedAt"]),
        "container ended": _seconds(state["FinishedAt"]),
        "end reported": _seconds(task["Status"]["Timestamp"]),
    }
    phases, previous = {"API call": created - began}, began
    for name, when in times.items():
        phases[name], previous = when - previous, when
    return phases


def docker_phases(client: docker.APIClient) -> dict[str, float]:
    """Seconds from the request to a plain container's start, and its run."""
    host = client.create_host_config(network_mode="host")
    began = time.time()
    container = client.create_container("gnomon-test/busybox:latest", ["true"], host_config=host)
    client.start(container)
    client.wait(container)
    state = client.inspect_container(container)["State"]
    client.remove_container(container)
    started = _seconds(state["StartedAt"])
    return {"container started": started - began, "run": _seconds(state["FinishedAt"]) - started}


def _final_task(client: docker.APIClient, service: str) -> dict:
    """The service's task once it has ended, polled every 10 ms."""
    while True:
        tasks = client.tasks(filters={"service": service})
        if tasks and tasks[0]["Status"]["State"] in ("complete", "failed", "rejected"):
            return tasks[0]
        time.sleep(0.01)


def _seconds(stamp: str) -> float:
    parsed = parse_timestamp(stamp)
    assert parsed is not None, stamp
    return parsed.timestamp()


def print_phases(client: docker.APIClient, probes: int) -> None:
    """Median phases of `probes` services and of as many plain containers."""
    for name, probe in (("swarm", swarm_phases), ("docker", docker_phases)):
        runs = [probe(client) for _ in range(probes)]
        medians = {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}
        shown = ", ".join(f"{phase} +{m * 1000:.0f} ms" for phase, m in medians.items())
        print(f"  {name:6s} {shown}")


def main() -> None:
    """Throughput rounds, then DAG steps, on both executors; print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--length", type=int, default=6)
    parser.add_argument("--probes", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped" notes under load
    executors: dict[str, Make] = {"docker": docker_executor, "swarm": swarm_executor}
    client = docker.APIClient(timeout=120)
    with one_node_swarm():
        times: dict[str, list[float]] = {name: [] for name in executors}
        for round_ in range(1, args.rounds + 1):
            for name, make in executors.items():
                seconds = executor_round(
                    client, args.containers, args.concurrency, make, wait_all_removed
                )
                times[name].append(seconds)
            print(f"round {round_}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"{args.containers} no-op attempts, concurrency {args.concurrency}, median:")
        for name, median in medians.items():
            print(f"  {name:6s} {median:6.2f} s  ({args.containers / median:5.1f} attempts/s)")
        print(f"  ratio swarm/docker: {medians['swarm'] / medians['docker']:.2f}")
        print(f"DAG steps ({args.chains} chains of {args.length}): upstream end -> downstream runs")
        for name, make in executors.items():
            gnomon, backend = dag_steps(make, args.chains, args.length)
            total = [g + b for g, b in zip(gnomon, backend, strict=True)]
            print(f"  {name:6s} step     {summary(total)}")
            print(f"  {name:6s} gnomon   {summary(gnomon)}")
            print(f"  {name:6s} backend  {summary(backend)}")
        print(f"Where the time goes (median of {args.probes}, one after another):")
        print_phases(client, args.probes)
    client.close()


if __name__ == "__main__":
    main()
