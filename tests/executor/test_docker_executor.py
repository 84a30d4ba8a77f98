"""DockerExecutor against the real Docker Engine, with the busybox test image."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound

from executor.base import Ending
from executor.docker import DockerExecutor, DockerSettings
from executor.logs import parse_timestamp
from tests.executor.registry import serve_image
from tests.executor.support import RecordingListener, make_spec, wait_for

pytestmark = pytest.mark.docker

MakeExecutor = Callable[..., DockerExecutor]
SLEEP = ["sleep", "300"]


def test_environment_reaches_the_container(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(
        ["sh", "-c", 'echo "task=$GNOMON_TASK_ID"; echo "greeting=$GREETING"'],
        environment={"GNOMON_TASK_ID": "t-123", "GREETING": "hello world"},
    )
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.exit_code, outcome.reason) == (Ending.EXITED, 0, None)
    assert listener.messages(spec.task_id, "stdout") == ["task=t-123", "greeting=hello world"]


def test_limits_and_labels_are_visible_in_inspect(
    make_executor: MakeExecutor, listener: RecordingListener, docker_client: Any
) -> None:
    executor = make_executor(kill_grace_seconds=0)
    spec = make_spec(SLEEP, memory_mib=64, cpu_units=512)
    executor.start(spec)
    (_, started_at, container_id), *_ = wait_for(lambda: listener.starts(spec.task_id))
    info = docker_client.api.inspect_container(container_id)
    host = info["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["NetworkMode"] == "bridge"
    assert not host.get("AutoRemove")
    assert info["Config"]["Cmd"] == SLEEP
    labels = info["Config"]["Labels"]
    assert labels["gnomon.task_id"] == spec.task_id
    assert labels["gnomon.process_id"] == spec.process_id
    assert labels["gnomon.definition"] == spec.definition_name
    assert labels["gnomon.instance"] == executor._rt.settings.instance
    engine_started_at = parse_timestamp(info["State"]["StartedAt"])
    assert engine_started_at is not None
    assert started_at <= engine_started_at < started_at + timedelta(seconds=5)
    executor.kill(spec.task_id, "killed: run was killed")
    assert listener.wait_outcome(spec.task_id).ending == Ending.KILLED


def test_output_order_is_kept_per_stream(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(log_batch_lines=7)
    script = "i=0; while [ $i -lt 300 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done"
    spec = make_spec(["sh", "-c", script])
    executor.start(spec)
    listener.wait_outcome(spec.task_id)
    assert listener.messages(spec.task_id, "stdout") == [f"out {i}" for i in range(300)]
    assert listener.messages(spec.task_id, "stderr") == [f"err {i}" for i in range(300)]


def test_long_lines_are_split_in_chunks(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(["sh", "-c", "head -c 150000 /dev/zero | tr '\\0' x; echo; echo next"])
    executor.start(spec)
    listener.wait_outcome(spec.task_id)
    sizes = [len(m) for m in listener.messages(spec.task_id, "stdout")]
    assert sizes == [65536, 65536, 150000 - 2 * 65536, 4]


def test_kill_terminates_then_kills(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(kill_grace_seconds=1)
    # sh as PID 1 ignores SIGTERM, so this needs the SIGKILL after the grace period.
    ignores_term = make_spec(SLEEP)
    trapping = "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    obeys_term = make_spec(["sh", "-c", trapping])
    for spec in (ignores_term, obeys_term):
        executor.start(spec)
    wait_for(lambda: listener.starts(ignores_term.task_id))
    wait_for(lambda: listener.messages(obeys_term.task_id) == ["ready"], what="the trap set")
    for spec in (ignores_term, obeys_term):
        executor.kill(spec.task_id, "killed: run was killed")
    hard = listener.wait_outcome(ignores_term.task_id)
    soft = listener.wait_outcome(obeys_term.task_id)
    assert (hard.ending, hard.reason, hard.exit_code) == (
        Ending.KILLED,
        "killed: run was killed",
        137,
    )
    assert (soft.ending, soft.reason, soft.exit_code) == (
        Ending.KILLED,
        "killed: run was killed",
        0,
    )


class _BlockingListener(RecordingListener):
    """Holds the (single) start worker inside attempt_started until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def attempt_started(self, task_id: str, started_at: Any, container_id: str) -> None:
        """Record, then block."""
        super().attempt_started(task_id, started_at, container_id)
        self.release.wait(60)


def test_kill_before_start_prevents_the_start(make_executor: MakeExecutor) -> None:
    blocking = _BlockingListener()
    executor = make_executor(blocking, worker_threads=1, kill_grace_seconds=0)
    first, second = make_spec(SLEEP), make_spec(SLEEP)
    executor.start(first)
    wait_for(lambda: blocking.starts(first.task_id))
    executor.start(second)  # queued behind the blocked worker
    executor.kill(second.task_id, "killed: run was killed")
    executor.kill(first.task_id, "killed: run was killed")
    blocking.release.set()
    outcome = blocking.wait_outcome(second.task_id)
    assert (outcome.ending, outcome.reason, outcome.started_at) == (
        Ending.KILLED,
        "killed: run was killed",
        None,
    )
    assert blocking.starts(second.task_id) == []
    assert blocking.wait_outcome(first.task_id).ending == Ending.KILLED


def test_an_exit_while_the_start_is_reported_keeps_order_and_output(
    make_executor: MakeExecutor, docker_client: Any
) -> None:
    # Regression: the exit of a container that ends at once used to be finalised
    # before its log reader had started (losing its output, or failing to join the
    # reader) and reported before its start.
    blocking = _BlockingListener()
    executor = make_executor(blocking)
    spec = make_spec(["echo", "hello"])
    executor.start(spec)
    wait_for(lambda: blocking.starts(spec.task_id))
    wait_for(lambda: _state(docker_client, spec.task_id) == "exited", what="the exit")
    time.sleep(0.3)  # its die event arrives while attempt_started is still running
    assert blocking.outcome(spec.task_id) is None
    blocking.release.set()
    outcome = blocking.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.exit_code, outcome.reason) == (Ending.EXITED, 0, None)
    assert blocking.messages(spec.task_id, "stdout") == ["hello"]


def test_many_instant_exits_are_all_finalised(
    make_executor: MakeExecutor, listener: RecordingListener, caplog: pytest.LogCaptureFixture
) -> None:
    executor = make_executor()
    specs = [make_spec(["sh", "-c", f"echo {i}"]) for i in range(12)]
    for spec in specs:
        executor.start(spec)
    for i, spec in enumerate(specs):
        outcome = listener.wait_outcome(spec.task_id)
        assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 0)
        assert listener.messages(spec.task_id, "stdout") == [str(i)]
        assert len(listener.starts(spec.task_id)) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_a_missing_image_ends_within_seconds(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(["true"], image="gnomon-test/does-not-exist", tag="1.0")
    began = time.monotonic()
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert time.monotonic() - began < 15
    assert (outcome.ending, outcome.reason) == (
        Ending.IMAGE_NOT_FOUND,
        "image not found: gnomon-test/does-not-exist:1.0",
    )
    notes = listener.messages(spec.task_id, "gnomon")
    assert any("pull of gnomon-test/does-not-exist:1.0 failed" in note for note in notes)


@pytest.fixture
def registry(busybox_image: str, docker_client: Any) -> Iterator[str]:
    """A registry on 127.0.0.1 serving the test image under any name; its `host:port`."""
    with serve_image(b"".join(docker_client.api.get_image(busybox_image))) as host:
        yield host


def test_a_missing_image_is_pulled(
    make_executor: MakeExecutor, listener: RecordingListener, registry: str, docker_client: Any
) -> None:
    executor = make_executor()
    image, tag = f"{registry}/gnomon-test/pulled", uuid.uuid4().hex
    spec = make_spec(["echo", "pulled"], image=image, tag=tag)
    try:
        executor.start(spec)
        outcome = listener.wait_outcome(spec.task_id)
    finally:
        with contextlib.suppress(ImageNotFound):
            docker_client.api.remove_image(spec.image_ref)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 0)
    assert listener.messages(spec.task_id, "stdout") == ["pulled"]
    notes = listener.messages(spec.task_id, "gnomon")
    assert f"image {spec.image_ref} is not present; pulling it" in notes


def test_a_hung_pull_ends_within_the_pull_timeout(
    make_executor: MakeExecutor, listener: RecordingListener, hung_registry: str
) -> None:
    executor = make_executor(pull_timeout_seconds=2)
    spec = make_spec(["true"], image=f"{hung_registry}/gnomon-test/hung", tag="1.0")
    began = time.monotonic()
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert time.monotonic() - began < 10
    assert (outcome.ending, outcome.reason) == (
        Ending.IMAGE_NOT_FOUND,
        f"image not found: {spec.image_ref}",
    )
    assert executor.health().ok  # a stuck registry is not an engine outage


def test_a_bad_command_fails_to_start(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    spec = make_spec(["no-such-program"])
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert outcome.ending == Ending.START_FAILED
    assert outcome.reason is not None and "no-such-program" in outcome.reason
    assert listener.starts(spec.task_id) == []


def test_log_paths_are_collected_at_exit(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor()
    script = (
        "mkdir -p /tmp/logs; printf 'one\\ntwo\\n' > /tmp/app.log; echo three > /tmp/logs/b.log"
    )
    spec = make_spec(["sh", "-c", script], log_paths=("/tmp/app.log", "/tmp/logs", "/nope"))
    executor.start(spec)
    listener.wait_outcome(spec.task_id)
    assert listener.messages(spec.task_id, "/tmp/app.log") == ["one", "two"]
    assert listener.messages(spec.task_id, "/tmp/logs/b.log") == ["three"]
    assert "log path /nope not found in the container" in listener.messages(spec.task_id, "gnomon")


def test_output_is_capped_with_one_note(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(log_cap_bytes=1000)
    spec = make_spec(["sh", "-c", "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done"])
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert outcome.exit_code == 0
    stored = listener.messages(spec.task_id, "stdout")
    assert sum(len(m) for m in stored) == 1000  # filled to the byte
    expected = [f"line {i}" for i in range(len(stored))]
    assert stored[:-1] == expected[:-1] and expected[-1].startswith(stored[-1])
    notes = listener.messages(spec.task_id, "gnomon")
    assert len(notes) == 1 and notes[0].startswith("output truncated")


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
def test_printing_200_mb_keeps_memory_bounded(make_executor: MakeExecutor) -> None:
    counting = RecordingListener(keep_lines=False)
    executor = make_executor(counting)
    line = "0123456789" * 10  # 101 bytes a line with its newline
    spec = make_spec(["sh", "-c", f"yes {line} | head -c 200000000"])
    before = _rss_bytes()
    peak = before
    executor.start(spec)

    def done() -> bool:
        nonlocal peak
        peak = max(peak, _rss_bytes())
        return counting.outcome(spec.task_id) is not None

    wait_for(done, timeout=240)
    assert counting.outcome(spec.task_id).exit_code == 0  # type: ignore[union-attr]
    assert counting.byte_count <= 10 * 1024 * 1024
    assert counting.byte_count > 9 * 1024 * 1024
    assert peak - before < 40 * 1024 * 1024, f"RSS grew by {(peak - before) / 2**20:.1f} MiB"


def test_reconciliation_finds_an_exit_the_event_stream_missed(
    make_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_executor(reconcile_interval_seconds=0.5)
    executor._exits._on_event = lambda event: None  # type: ignore[method-assign]  # every die is missed
    spec = make_spec(["sh", "-c", "echo done; exit 3"])
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=20)
    assert (outcome.ending, outcome.exit_code, outcome.reason) == (
        Ending.EXITED,
        3,
        "exit code 3",
    )
    assert listener.messages(spec.task_id, "stdout") == ["done"]


def test_finished_containers_are_removed_unless_kept(
    make_executor: MakeExecutor, listener: RecordingListener, docker_client: Any
) -> None:
    executor = make_executor(keep_failed_containers=True)
    good, bad = make_spec(["true"]), make_spec(["false"])
    executor.start(good)
    executor.start(bad)
    listener.wait_outcome(good.task_id)
    listener.wait_outcome(bad.task_id)
    wait_for(lambda: _state(docker_client, good.task_id) is None, what="good removed")
    # The outcome comes from the die event, which the engine may send a moment before
    # its container list shows the exit: the kept container must end up `exited`.
    try:
        wait_for(lambda: _state(docker_client, bad.task_id) == "exited", 10, "bad kept, exited")
    finally:
        docker_client.api.remove_container(listener.starts(bad.task_id)[0][2], force=True)


def _state(client: Any, task_id: str) -> str | None:
    found = client.api.containers(all=True, filters={"label": f"gnomon.task_id={task_id}"})
    return found[0]["State"] if found else None


def test_health_answers_quickly_when_the_socket_hangs(
    busybox_image: str, instance: str, tmp_path: Path
) -> None:
    path = tmp_path / "hang.sock"
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(str(path))
    hung.listen(16)  # accepts connections, never answers
    executor = DockerExecutor(DockerSettings(instance=instance, docker_host=f"unix://{path}"))
    try:
        began = time.monotonic()
        health = executor.health()
        assert time.monotonic() - began < 2.5
        assert not health.ok
        began = time.monotonic()
        assert executor.health() == health  # cached
        assert time.monotonic() - began < 0.1
    finally:
        executor.close()
        hung.close()
