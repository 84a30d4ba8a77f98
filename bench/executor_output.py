"""Storing a big output through DockerExecutor against a bare `docker run` + `docker logs`.

    .venv/bin/python -m bench.executor_output [--lines 83887]

One container prints `--lines` numbered lines of 100 bytes (83,887: 8 MiB);
the executor runs it with a 64 MiB cap and a listener that only counts.
Executor: start() to outcome, with every line delivered. Bare: `docker run -d`,
`docker wait`, `docker logs -t` read to the end. Both counts are printed, so a
lost line shows. Needs the Docker Engine and the test image.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from executor import AttemptSpec, LogLine, Outcome
from executor.docker import DockerExecutor, DockerSettings

IMAGE, TAG = "gnomon-test/busybox", "latest"


class Counter:
    """An ExecutorListener that counts output lines and waits for the outcome."""

    def __init__(self) -> None:
        self.lines = 0
        self.done = threading.Event()

    def attempt_started(self, task_id: str, started_at: datetime, container_id: str) -> None:
        """Nothing to do."""

    def attempt_logs(self, task_id: str, lines: Sequence[LogLine]) -> None:
        """Count the output lines."""
        self.lines += sum(1 for line in lines if line.source == "stdout")

    def attempt_waiting(self, task_id: str, reason: str) -> None:
        """The engine went away: the benchmark cannot go on."""
        raise RuntimeError(f"attempt {task_id} sent back: {reason}")

    def attempt_finished(self, outcome: Outcome) -> None:
        """The run is over."""
        self.done.set()


def executor_seconds(script: str) -> tuple[float, int]:
    """Start to outcome through DockerExecutor; the lines delivered."""
    counter = Counter()
    executor = DockerExecutor(
        DockerSettings(instance=f"bench-{uuid.uuid4().hex[:8]}", log_cap_bytes=64 << 20)
    )
    executor.open(counter)
    task_id = str(uuid.uuid4())
    spec = AttemptSpec(task_id, task_id, "bench", "print", 1, IMAGE, TAG, ("sh", "-c", script))
    began = time.monotonic()
    executor.start(spec)
    counter.done.wait(600)
    took = time.monotonic() - began
    executor.close()
    return took, counter.lines


def bare_seconds(script: str) -> tuple[float, int]:
    """`docker run -d`, `docker wait`, `docker logs -t`; the lines read."""
    began = time.monotonic()
    run = ["docker", "run", "-d", f"{IMAGE}:{TAG}", "sh", "-c", script]
    container = subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["docker", "wait", container], capture_output=True, check=True)
    logs = subprocess.run(["docker", "logs", "-t", container], capture_output=True, check=True)
    took = time.monotonic() - began
    subprocess.run(["docker", "rm", container], capture_output=True, check=True)
    return took, logs.stdout.count(b"\n")


def main() -> None:
    """Run both sides once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=83_887)
    lines = parser.parse_args().lines
    script = f"seq -w 1 {lines} | sed 's/$/ {'x' * 92}/'"
    ours, stored = executor_seconds(script)
    bare, read = bare_seconds(script)
    print(f"executor: {stored} of {lines} lines stored, {ours:.2f} s start to outcome")
    print(f"bare:     {read} of {lines} lines read, {bare:.2f} s run + wait + logs")


if __name__ == "__main__":
    main()
