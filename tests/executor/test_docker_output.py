"""Every line a container prints is stored, up to the cap, across rotations of its log file;
read once when its log file never rotated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from executor.docker import DockerExecutor
from executor.docker.creation import Launcher
from executor.docker.engine import Engine
from tests.executor.support import RecordingListener, make_spec, task_containers, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MakeExecutor = Callable[..., DockerExecutor]
MIB = 1024 * 1024
LINES = 125_000  # 100 bytes each with the newline: 12.5 MB, several json-file logs
PAD = "x" * 92


@pytest.fixture
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


LIVE, LAST, ALL = "live", "last entry", "all"  # the kinds of log reads


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the log reads asked of the engine, in order."""
    asked: list[str] = []
    open_logs = Engine.open_logs

    def recorded(
        self: Engine, container_id: str, *, follow: bool, since: str | None, tail: int | None = None
    ) -> Any:
        asked.append(LIVE if follow else LAST if tail == 1 else ALL)
        return open_logs(self, container_id, follow=follow, since=since, tail=tail)

    monkeypatch.setattr(Engine, "open_logs", recorded)
    return asked


@pytest.fixture
def log_configs(monkeypatch: pytest.MonkeyPatch) -> list[Mapping[str, Any] | None]:
    """The LogConfigs the executor inspected."""
    seen: list[Mapping[str, Any] | None] = []
    log_config = Engine.log_config

    def recorded(self: Engine, container_id: str) -> Mapping[str, Any] | None:
        seen.append(log_config(self, container_id))
        return seen[-1]

    monkeypatch.setattr(Engine, "log_config", recorded)
    return seen


def _print(lines: int) -> list[str]:
    """A command printing `lines` numbered lines of about 100 bytes."""
    return ["sh", "-c", f"seq -w 1 {lines} | sed 's/$/ {PAD}/'"]


def test_an_output_whose_log_never_rotated_is_read_once(
    make_executor: MakeExecutor,
    listener: RecordingListener,
    reads: list[str],
    log_configs: list[Mapping[str, Any] | None],
    docker_client: Any,
) -> None:
    if docker_client.info()["LoggingDriver"] != "json-file":
        pytest.skip("the engine does not log to json-file")
    executor = make_executor(log_max_size="2m")
    # 0.5 MB (about 0.85 MB in the log file, bounded at 1.2 MB). The container exits
    # once every line was delivered: the engine's live stream can end before the log's
    # end when it lags behind at the exit (then the output is read again).
    spec = make_spec(["sh", "-c", f"{_print(5_000)[2]}; until [ -e /tmp/go ]; do sleep 0.02; done"])
    executor.start(spec)
    wait_for(lambda: len(listener.lines(spec.task_id, "stdout")) == 5_000, timeout=120)
    (container,) = task_containers(docker_client, spec.task_id)
    docker_client.api.exec_start(
        docker_client.api.exec_create(container["Id"], ["touch", "/tmp/go"])
    )
    assert listener.wait_outcome(spec.task_id, timeout=60).exit_code == 0
    assert _numbers(listener, spec.task_id) == list(range(1, 5_001))
    assert log_configs == [{"Type": "json-file", "Config": {"max-file": "2", "max-size": "2m"}}]
    assert reads == [LIVE, LAST]


def test_a_log_that_may_have_rotated_is_read_again(
    make_executor: MakeExecutor, listener: RecordingListener, reads: list[str]
) -> None:
    executor = make_executor(log_max_size="1m")
    spec = make_spec(_print(10_000))  # 1 MB: about 1.7 MB in the log file, two files
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=240).exit_code == 0
    assert _numbers(listener, spec.task_id) == list(range(1, 10_001))
    assert reads[0] == LIVE and reads[-1] == ALL


def test_no_output_is_read_once(
    make_executor: MakeExecutor, listener: RecordingListener, reads: list[str]
) -> None:
    executor = make_executor()
    spec = make_spec(["true"])
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=60).exit_code == 0
    assert reads == [LIVE, LAST]


def test_the_engine_log_options_are_kept_when_so_set(
    make_executor: MakeExecutor, listener: RecordingListener, docker_client: Any
) -> None:
    executor = make_executor(log_max_size="", keep_failed_containers=True)
    spec = make_spec(["sh", "-c", f"{_print(1_000)[2]}; exit 3"])
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=60).exit_code == 3
    assert _numbers(listener, spec.task_id) == list(range(1, 1_001))
    (kept,) = task_containers(docker_client, spec.task_id)
    try:
        created = docker_client.api.inspect_container(kept["Id"])
    finally:
        docker_client.api.remove_container(kept["Id"])
    bare = docker_client.api.create_container(created["Config"]["Image"], ["true"])
    try:
        engine_own = docker_client.api.inspect_container(bare)["HostConfig"]["LogConfig"]
    finally:
        docker_client.api.remove_container(bare)
    assert created["HostConfig"]["LogConfig"] == engine_own


@pytest.mark.usefixtures("small_log_files")
def test_every_line_is_stored_across_log_rotations(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(log_cap_bytes=64 * MIB)
    spec = make_spec(_print(LINES))
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=240).exit_code == 0
    assert _numbers(listener, spec.task_id) == list(range(1, LINES + 1))
    assert all(len(m) == 99 for m in listener.messages(spec.task_id, "stdout"))
    assert listener.messages(spec.task_id, "gnomon") == []


@pytest.mark.usefixtures("small_log_files")
def test_the_default_cap_is_filled_and_noted(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(_print(LINES))
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id, timeout=240).exit_code == 0
    stored = listener.messages(spec.task_id, "stdout")
    assert sum(len(m) for m in stored) == 10 * MIB
    numbers = _numbers(listener, spec.task_id)
    assert len(set(numbers)) == len(numbers), "a line was stored twice"
    notes = listener.messages(spec.task_id, "gnomon")
    assert len(notes) == 1 and notes[0].startswith("output truncated")
