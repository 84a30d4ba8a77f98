"""DockerExecutor while the engine goes away and comes back (through a cuttable socket proxy)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executor.base import Ending, EngineUnavailable
from executor.docker import DockerExecutor
from tests.executor.engine_proxy import EngineProxy
from tests.executor.support import RecordingListener, make_spec, wait_for

pytestmark = pytest.mark.docker


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[EngineProxy]:
    """An engine proxy on a socket in tmp_path."""
    engine = EngineProxy(tmp_path / "engine.sock")
    yield engine
    engine.close()


def _refuses_start(executor: DockerExecutor) -> bool:
    try:
        executor.start(make_spec(["true"]))
    except EngineUnavailable:
        return True
    raise AssertionError("start() accepted an attempt while the engine was down")


def test_events_reconnect_when_the_engine_returns(
    proxy: EngineProxy,  # first, so that it outlives the executor
    make_executor: Callable[..., DockerExecutor],
    listener: RecordingListener,
    docker_client: Any,
) -> None:
    executor = make_executor(docker_host=f"unix://{proxy.path}", reconcile_interval_seconds=600)
    outage = make_spec(["sh", "-c", "echo before; sleep 2; echo during; exit 5"])
    executor.start(outage)
    wait_for(lambda: listener.messages(outage.task_id) == ["before"])
    proxy.cut()
    wait_for(lambda: not executor.health().ok, what="health to notice the outage")
    assert _refuses_start(executor)
    wait_for(lambda: _exited(docker_client, outage.task_id), what="exit during the outage")
    assert listener.outcome(outage.task_id) is None

    proxy.restore()
    wait_for(lambda: executor.health().ok, what="health to notice the engine is back")
    exited = listener.wait_outcome(outage.task_id)  # found by the reconnect's reconciliation
    assert (exited.ending, exited.exit_code) == (Ending.EXITED, 5)
    assert listener.messages(outage.task_id) == ["before", "during"]

    after = make_spec(["sh", "-c", "exit 7"])
    wait_for(lambda: _starts(executor, after), what="start() to accept again")
    outcome = listener.wait_outcome(after.task_id, timeout=30)  # only the event stream sees it
    assert outcome.exit_code == 7


def test_an_outage_during_an_asynchronous_start_sends_the_attempt_back(
    proxy: EngineProxy, make_executor: Callable[..., DockerExecutor]
) -> None:
    blocking = _BlockingListener()
    executor = make_executor(
        blocking, docker_host=f"unix://{proxy.path}", worker_threads=1, kill_grace_seconds=0
    )
    holder, victim = make_spec(["sleep", "300"]), make_spec(["true"])
    executor.start(holder)
    wait_for(lambda: blocking.starts(holder.task_id))
    executor.start(victim)  # queued behind the blocked worker while the engine is up
    proxy.cut()
    blocking.release.set()
    wait_for(lambda: blocking.waiting, what="the attempt to be sent back")
    assert [task_id for task_id, _ in blocking.waiting] == [victim.task_id]
    assert blocking.outcomes(victim.task_id) == []

    proxy.restore()
    wait_for(lambda: executor.health().ok, what="the engine to be back")
    executor.kill(holder.task_id, "killed: run was killed")
    assert blocking.wait_outcome(holder.task_id).ending == Ending.KILLED


class _BlockingListener(RecordingListener):
    """Holds the (single) start worker inside attempt_started until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def attempt_started(self, task_id: str, started_at: Any, container_id: str) -> None:
        """Record, then block."""
        super().attempt_started(task_id, started_at, container_id)
        self.release.wait(60)


def _starts(executor: DockerExecutor, spec: Any) -> bool:
    try:
        executor.start(spec)
    except EngineUnavailable:
        return False
    return True


def _exited(client: Any, task_id: str) -> bool:
    found = client.api.containers(all=True, filters={"label": f"gnomon.task_id={task_id}"})
    return bool(found) and found[0]["State"] == "exited"
