"""Wall time of no-op containers run through DockerExecutor against the bare Docker SDK.

    .venv/bin/python -m bench.executor_overhead [--containers 50 --concurrency 8 --rounds 3]

Both sides run the same `true` containers of the test image with host
networking, at most `--concurrency` at a time, in this one process, in
alternating rounds (bare first). Bare SDK: each of `--concurrency` threads
creates, starts, waits for and removes one container after another. Executor:
a new attempt starts as soon as one finishes; a round ends when every outcome is
in and every container has been removed. The figure is the ratio of the median
round wall times, executor / bare (target <= 1.10).

Needs the Docker Engine and the test image (tests/images/build_busybox.sh).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import docker

from executor import AttemptSpec, Executor, LogLine, Outcome
from executor.docker import LABEL_INSTANCE, DockerExecutor, DockerSettings

IMAGE, TAG = "gnomon-test/busybox", "latest"
COMMAND = ("true",)


class Throttle:
    """An ExecutorListener that lets `limit` attempts run at once and counts the outcomes."""

    def __init__(self, limit: int, total: int) -> None:
        self.slots = threading.Semaphore(limit)
        self.total = total
        self.outcomes: list[Outcome] = []
        self.done = threading.Event()
        self._lock = threading.Lock()

    def attempt_started(
        self, task_id: str, started_at: datetime, container_id: str, node: str | None = None
    ) -> None:
        """Nothing to do."""

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Nothing to do."""

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """The engine went away: the benchmark cannot go on."""
        raise RuntimeError(f"attempt {task_id} sent back: {reason}")

    def attempt_finished(self, outcome: Outcome) -> None:
        """Free a slot; the last outcome ends the round."""
        with self._lock:
            self.outcomes.append(outcome)
            if len(self.outcomes) == self.total:
                self.done.set()
        self.slots.release()


def spec(number: int) -> AttemptSpec:
    """A no-op attempt."""
    task_id = str(uuid.uuid4())
    return AttemptSpec(task_id, "bench", "bench", f"noop-{number}", 1, IMAGE, TAG, COMMAND)


def docker_executor(instance: str, workers: int) -> Executor:
    """A DockerExecutor on the host network."""
    return DockerExecutor(DockerSettings(instance, network_mode="host", worker_threads=workers))


def executor_round(
    client: docker.APIClient,
    containers: int,
    concurrency: int,
    make: Callable[[str, int], Executor] = docker_executor,
    wait_gone: Callable[[docker.APIClient, str], None] | None = None,
) -> float:
    """Seconds to run `containers` no-op attempts through an executor (`make(instance,
    workers)`) until `wait_gone(client, label)` sees its containers removed."""
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    executor = make(instance, concurrency)
    throttle = Throttle(concurrency, containers)
    executor.open(throttle)
    try:
        began = time.perf_counter()
        for number in range(containers):
            throttle.slots.acquire()
            executor.start(spec(number))
        if not throttle.done.wait(timeout=300):
            raise TimeoutError("the executor round did not finish in 300 s")
        (wait_gone or wait_removed)(client, f"{LABEL_INSTANCE}={instance}")
        elapsed = time.perf_counter() - began
    finally:
        executor.close()
    failed = [o for o in throttle.outcomes if o.exit_code != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} attempts failed, e.g. {failed[0]}")
    return elapsed


def wait_removed(client: docker.APIClient, label: str) -> None:
    """Wait until no container carries `label` any more."""
    while client.containers(all=True, filters={"label": label}):
        time.sleep(0.01)


def bare_round(client: docker.APIClient, containers: int, concurrency: int) -> float:
    """Seconds to create, start, wait for and remove `containers` containers with the SDK."""
    label = f"bench-bare-{uuid.uuid4().hex[:8]}"
    host = client.create_host_config(network_mode="host")

    def one(_: int) -> int:
        container = client.create_container(
            f"{IMAGE}:{TAG}", list(COMMAND), labels={label: "1"}, host_config=host
        )["Id"]
        client.start(container)
        code = int(client.wait(container)["StatusCode"])
        client.remove_container(container, v=True)
        return code

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        codes = list(pool.map(one, range(containers)))
    elapsed = time.perf_counter() - began
    if any(codes):
        raise RuntimeError(f"bare containers failed: exit codes {sorted(set(codes))}")
    return elapsed


def main() -> None:
    """Alternate bare and executor rounds; print each round and the ratio of the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = docker.APIClient(timeout=120, max_pool_size=args.concurrency + 4)
    bare_round(client, args.concurrency, args.concurrency)  # warm up: not timed
    times: dict[str, list[float]] = {"bare SDK": [], "executor": []}
    for round_ in range(1, args.rounds + 1):
        times["bare SDK"].append(bare_round(client, args.containers, args.concurrency))
        times["executor"].append(executor_round(client, args.containers, args.concurrency))
        print(
            f"round {round_}: bare {times['bare SDK'][-1]:.2f} s, "
            f"executor {times['executor'][-1]:.2f} s"
        )
    client.close()
    medians = {side: statistics.median(values) for side, values in times.items()}
    print(
        f"{args.containers} no-op containers, concurrency {args.concurrency}, "
        f"median of {args.rounds} rounds:"
    )
    for side, median in medians.items():
        print(f"  {side:9s} {median:6.2f} s  ({args.containers / median:5.1f} containers/s)")
    print(f"  ratio executor/bare: {medians['executor'] / medians['bare SDK']:.2f}")


if __name__ == "__main__":
    main()
