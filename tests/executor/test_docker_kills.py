"""Kills and deadlines on the real engine: on time while other work is slow, at any start step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from executor.base import Ending
from executor.docker import DockerExecutor
from tests.executor.support import RecordingListener, make_spec, task_containers, wait_for

pytestmark = pytest.mark.docker

MakeExecutor = Callable[..., DockerExecutor]
SLEEP = ["sleep", "300"]


class _SlowStorage(RecordingListener):
    """A listener whose output writes hang (a locked database) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def attempt_logs(self, task_id: str, lines: Any) -> None:
        """Hang, then record."""
        self.release.wait(60)
        super().attempt_logs(task_id, lines)


def test_a_deadline_is_kept_while_reconciliation_and_log_flushes_hang(
    make_executor: MakeExecutor,
) -> None:
    slow = _SlowStorage()
    executor = make_executor(
        slow, kill_grace_seconds=0, reconcile_interval_seconds=0.2, log_batch_seconds=0.1
    )
    hang = threading.Event()
    state = executor._rt.engine.state

    def slow_state(container_id: str) -> Any:
        if threading.current_thread().name.startswith("gnomon-executor-reconcile"):
            hang.wait(60)  # an engine that takes its time to answer an inspect
        return state(container_id)

    executor._rt.engine.state = slow_state  # type: ignore[method-assign]
    chatty = make_spec(["sh", "-c", "while true; do echo out; sleep 0.05; done"])
    limited = make_spec(SLEEP, max_runtime_seconds=1)
    try:
        executor.start(chatty)
        wait_for(lambda: slow.starts(chatty.task_id))
        time.sleep(0.5)  # the flusher is now stuck delivering chatty's output
        executor.start(limited)
        outcome = slow.wait_outcome(limited.task_id, timeout=8)
        assert outcome.ending == Ending.TIMED_OUT
        assert outcome.started_at is not None
        assert (outcome.ended_at - outcome.started_at).total_seconds() < 4
    finally:
        hang.set()
        slow.release.set()
        executor.kill(chatty.task_id, "killed: test over")
        slow.wait_outcome(chatty.task_id)


@pytest.mark.parametrize("moment", ["after_create", "at_start"])
def test_a_kill_between_create_and_start_ends_the_attempt_killed(
    moment: str, make_executor: MakeExecutor, listener: RecordingListener, docker_client: Any
) -> None:
    executor = make_executor(kill_grace_seconds=0)
    spec = make_spec(SLEEP)
    engine = executor._rt.engine
    call = engine.create if moment == "after_create" else engine.start

    def then_kill(*args: Any) -> Any:
        result = call(*args)
        executor.kill(spec.task_id, "killed: run was killed")
        return result

    setattr(engine, "create" if moment == "after_create" else "start", then_kill)
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.reason) == (Ending.KILLED, "killed: run was killed")
    wait_for(lambda: not task_containers(docker_client, spec.task_id), what="the container removed")


def test_a_kill_during_a_pull_ends_the_attempt_at_once(
    make_executor: MakeExecutor, listener: RecordingListener, hung_registry: str
) -> None:
    executor = make_executor(pull_timeout_seconds=120)
    spec = make_spec(["true"], image=f"{hung_registry}/gnomon-test/hung", tag="1.0")
    executor.start(spec)
    pulling = f"image {spec.image_ref} is not present; pulling it"
    wait_for(lambda: _pulling(executor, spec.task_id), what="the pull")
    began = time.monotonic()
    executor.kill(spec.task_id, "killed: run was killed")
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert time.monotonic() - began < 5
    assert (outcome.ending, outcome.reason) == (Ending.KILLED, "killed: run was killed")
    assert pulling in listener.messages(spec.task_id, "gnomon")


def _pulling(executor: DockerExecutor, task_id: str) -> bool:
    attempt = executor._rt.attempts.get(task_id)
    return attempt is not None and bool(attempt.interrupters)
