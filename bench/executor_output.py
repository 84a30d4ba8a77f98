"""Storing a big output through Gnomon against a bare run + wait + logs with the SDK.

    .venv/bin/python -m bench.executor_output [--lines 83887]

One container prints `--lines` numbered lines of 100 bytes (83,887: 8 MiB).

- **Stored**: the app (SQLite, Docker executor, scheduler on) runs it as a one-task
  definition with the default 10 MiB cap; from the trigger to the run's outcome seen
  in the database (polled every 20 ms), with every line stored (counted in the database).
- **Executor alone**: DockerExecutor with a listener that only counts; start() to outcome.
- **Bare**: the Docker SDK runs the container, waits for it, and reads its whole
  output with timestamps.

The line counts are printed, so a lost line shows. Needs the Docker Engine and the
test image.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

import docker

from app import create_app
from app.state import EXTENSION_KEY
from bench.support import Figure, format_table
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
    """Run, wait, read the whole output with timestamps through the SDK; the lines read."""
    client = docker.from_env(timeout=600)
    began = time.monotonic()
    container = client.containers.run(f"{IMAGE}:{TAG}", ["sh", "-c", script], detach=True)
    container.wait()
    output = container.logs(timestamps=True)
    took = time.monotonic() - began
    container.remove()
    client.close()
    return took, output.count(b"\n")


def stored_seconds(script: str, workdir: Path) -> tuple[float, int]:
    """Trigger to outcome through the app (SQLite, Docker executor); the lines stored."""
    database = workdir / "output.db"
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{database}", "EXECUTOR": "docker",
         "PUBLIC_URL": "http://127.0.0.1:9", "INSTANCE": f"bench-{uuid.uuid4().hex[:8]}"}
    )  # fmt: skip
    client = app.test_client()
    command = {"image": IMAGE, "tag": TAG, "command": ["sh", "-c", script]}
    definition = {
        "process_definition_name": "printer",
        "task_definitions": [
            {"task_definition_name": "print", "executable": {"docker_image_command": command}}
        ],
    }
    assert client.put("/api/process_definitions/printer", json=definition).status_code < 300
    state = app.extensions[EXTENSION_KEY]
    with state.database.connection_context():
        state.scheduler.start()
    began = time.monotonic()
    run = client.post("/api/process_definitions/printer/trigger").headers["Location"]
    run_id = run.rsplit("/", 1)[-1]
    with closing(sqlite3.connect(database)) as connection:
        # polled in the database: the run's API answer ranks its attempts' log entries
        while connection.execute(
            "SELECT status FROM run WHERE id = ?", (run_id,)
        ).fetchone() not in (("succeeded",), ("failed",)):
            time.sleep(0.02)
        took = time.monotonic() - began
        (stored,) = connection.execute(
            "SELECT count(*) FROM log_entry WHERE source = 'stdout'"
        ).fetchone()
    state.scheduler.stop()
    state.database.close()
    return took, stored


def measure(lines: int = 83_887) -> list[Figure]:
    """The three timings, bare first; figures against the bare one."""
    script = f"seq -w 1 {lines} | sed 's/$/ {'x' * 92}/'"
    bare, read = bare_seconds(script)
    alone, delivered = executor_seconds(script)
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-output-") as tmp:
        stored, kept = stored_seconds(script, Path(tmp))
    for what, count in (("bare read", read), ("executor delivered", delivered),
                        ("stored", kept)):  # fmt: skip
        if count != lines:
            raise RuntimeError(f"{what} {count} of {lines} lines")
    size = f"{lines * 100 / (1 << 20):.1f} MiB"
    return [
        Figure("executor_output", f"{size} of output stored, trigger to outcome", stored, "s",
               baseline=bare, target=1.5, target_on_ratio=True),
        Figure("executor_output", f"{size} of output, executor alone, start to outcome", alone,
               "s", baseline=bare),
    ]  # fmt: skip


def main() -> None:
    """Run the three sides once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=83_887)
    print(format_table(measure(parser.parse_args().lines)))


if __name__ == "__main__":
    main()
