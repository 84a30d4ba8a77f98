"""Every line a container prints is stored, up to the cap, across rotations of its log file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from executor.docker import DockerExecutor
from executor.docker.creation import Launcher
from tests.executor.support import RecordingListener, make_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MakeExecutor = Callable[..., DockerExecutor]
MIB = 1024 * 1024
LINES = 125_000  # 100 bytes each with the newline: 12.5 MB, several json-file logs
PAD = "x" * 92
PRINT = ["sh", "-c", f"seq -w 1 {LINES} | sed 's/$/ {PAD}/'"]  # "000001 xxx…"


@pytest.fixture(autouse=True)
def small_log_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotate each container's json-file log every 2 MB, whatever the daemon's default."""
    create_args = Launcher._container_args

    def with_rotation(self: Launcher, spec: Any, name: str) -> dict[str, Any]:
        arguments = create_args(self, spec, name)
        arguments["host_config"]["LogConfig"] = {
            "Type": "json-file",
            "Config": {"max-size": "2m", "max-file": "20"},
        }
        return arguments

    monkeypatch.setattr(Launcher, "_container_args", with_rotation)


def _numbers(listener: RecordingListener, task_id: str) -> list[int]:
    """The line numbers stored, in the order the API shows them (time, then arrival)."""
    lines = listener.lines(task_id, "stdout")
    ordered = sorted(enumerate(lines), key=lambda pair: (pair[1].when, pair[0]))
    return [int(line.message.split(" ", 1)[0]) for _, line in ordered]


def test_every_line_is_stored_across_log_rotations(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(log_cap_bytes=64 * MIB)
    spec = make_spec(PRINT)
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=240).exit_code == 0
    assert _numbers(listener, spec.task_id) == list(range(1, LINES + 1))
    assert all(len(m) == 99 for m in listener.messages(spec.task_id, "stdout"))
    assert listener.messages(spec.task_id, "gnomon") == []


def test_the_default_cap_is_filled_and_noted(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(PRINT)
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=240).exit_code == 0
    stored = listener.messages(spec.task_id, "stdout")
    assert sum(len(m) for m in stored) == 10 * MIB
    numbers = _numbers(listener, spec.task_id)
    assert len(set(numbers)) == len(numbers), "a line was stored twice"
    notes = listener.messages(spec.task_id, "gnomon")
    assert len(notes) == 1 and notes[0].startswith("output truncated")
