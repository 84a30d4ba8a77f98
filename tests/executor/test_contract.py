"""One executor contract, run against every real backend: the Docker Engine and Docker Swarm.

What the scheduler relies on is checked here once for both; what only one
backend does (pulls, log paths, service specs) has its own test module.
Differences the contract allows are named where they occur (a swarm kill
removes the service, so its exit code is unknown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from executor.base import Ending, EngineUnavailable, Executor, InFlight
from executor.docker import DockerExecutor, DockerSettings
from executor.swarm import SwarmExecutor, SwarmSettings
from tests.executor.support import FlakyListener, RecordingListener, make_spec, wait_for
from tests.support.callbacks import recording_server
from tests.support.leaks import session_instance

pytestmark = pytest.mark.docker

SLEEP = ["sleep", "300"]


@dataclass
class Backend:
    """One backend under test: how to make its executor and find what it left on the engine."""

    name: str
    make: Callable[..., Executor]  # (listener, instance=, **common settings) -> opened executor
    make_unopened: Callable[[str], Executor]  # (engine address) -> an executor
    find: Callable[[str], Any]  # task id -> its container or service, None once removed
    remove: Callable[[str], None]  # remove a task's container or service behind its back


def _docker_backend(instance: str, client: Any, opened: list[Executor]) -> Backend:
    def make(listener: RecordingListener, instance: str = instance, **common: Any) -> Executor:
        executor = DockerExecutor(DockerSettings(instance, network_mode="host", **common))
        executor.open(listener)
        opened.append(executor)
        return executor

    def find(task_id: str) -> Any:
        found = client.api.containers(all=True, filters={"label": f"gnomon.task_id={task_id}"})
        return found[0] if found else None

    return Backend(
        "docker",
        make,
        lambda host: DockerExecutor(DockerSettings(instance, docker_host=host)),
        find,
        lambda task_id: client.api.remove_container(find(task_id)["Id"], force=True),
    )


def _swarm_backend(instance: str, client: Any, opened: list[Executor]) -> Backend:
    def make(listener: RecordingListener, instance: str = instance, **common: Any) -> Executor:
        settings = SwarmSettings(instance, networks=("host",), poll_interval_seconds=0.2, **common)
        executor = SwarmExecutor(settings)
        executor.open(listener)
        opened.append(executor)
        return executor

    def find(task_id: str) -> Any:
        found = client.api.services(filters={"label": f"gnomon.task_id={task_id}"})
        return found[0] if found else None

    return Backend(
        "swarm",
        make,
        lambda host: SwarmExecutor(SwarmSettings(instance, manager_host=host)),
        find,
        lambda task_id: client.api.remove_service(find(task_id)["ID"]),
    )


@pytest.fixture(params=["docker", pytest.param("swarm", marks=pytest.mark.swarm)])
def backend(
    request: pytest.FixtureRequest, busybox_image: str, instance: str, docker_client: Any
) -> Iterator[Backend]:
    """Each backend in turn; its executors are closed after the test."""
    opened: list[Executor] = []
    if request.param == "swarm":
        request.getfixturevalue("swarm")
        yield _swarm_backend(instance, docker_client, opened)
    else:
        yield _docker_backend(instance, docker_client, opened)
    for executor in opened:
        executor.close()


@pytest.mark.parametrize(("code", "reason"), [(0, None), (3, "exit code 3")])
def test_exit_codes_and_reasons(
    backend: Backend, listener: RecordingListener, code: int, reason: str | None
) -> None:
    executor = backend.make(listener)
    spec = make_spec(["sh", "-c", f"exit {code}"])
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.exit_code, outcome.reason) == (Ending.EXITED, code, reason)
    assert outcome.started_at is not None and outcome.started_at <= outcome.ended_at
    assert len(listener.starts(spec.task_id)) == 1


def test_output_is_live_with_stdout_and_stderr_apart(
    backend: Backend, listener: RecordingListener, tmp_path: Path
) -> None:
    executor = backend.make(listener, log_batch_lines=7)
    script = (
        "echo first; echo oops >&2; "
        "i=0; while [ $i -lt 100 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done; "
        "sleep 2; echo last"
    )
    spec = make_spec(["sh", "-c", script])
    executor.start(spec)
    wait_for(lambda: "oops" in listener.messages(spec.task_id, "stderr"), what="live output")
    assert listener.outcome(spec.task_id) is None  # seen while it still runs
    outcome = listener.wait_outcome(spec.task_id)
    assert outcome.exit_code == 0
    numbered = [f"out {i}" for i in range(100)]
    assert listener.messages(spec.task_id, "stdout") == ["first", *numbered, "last"]
    assert listener.messages(spec.task_id, "stderr") == ["oops", *[f"err {i}" for i in range(100)]]


def test_an_attempt_calls_back_over_loopback(backend: Backend, listener: RecordingListener) -> None:
    with recording_server() as (url, paths):
        executor = backend.make(listener)
        spec = make_spec(
            ["sh", "-c", 'wget -q -O - "$GNOMON_URL/api/tasks/$GNOMON_TASK_ID/ping"'],
            environment={"GNOMON_URL": url, "GNOMON_TASK_ID": "task-42"},
        )
        executor.start(spec)
        outcome = listener.wait_outcome(spec.task_id)
    assert outcome.exit_code == 0, listener.messages(spec.task_id)
    assert paths == ["/api/tasks/task-42/ping"]


def test_a_memory_hog_is_killed_out_of_memory(
    backend: Backend, listener: RecordingListener
) -> None:
    executor = backend.make(listener)
    spec = make_spec(["sh", "-c", "x=a; while true; do x=$x$x; done"], memory_mib=6)
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.reason) == (Ending.OOM_KILLED, "killed: out of memory")
    assert outcome.oom_killed and outcome.exit_code == 137


def test_kill_stops_a_running_attempt(backend: Backend, listener: RecordingListener) -> None:
    executor = backend.make(listener, kill_grace_seconds=1)
    spec = make_spec(SLEEP)
    executor.start(spec)
    wait_for(lambda: listener.starts(spec.task_id), what="the start")
    executor.kill(spec.task_id, "killed: run was killed")
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.reason) == (Ending.KILLED, "killed: run was killed")
    # Docker reports SIGKILL's 137; a swarm kill removes the service, so no code is known.
    assert outcome.exit_code == (137 if backend.name == "docker" else None)
    wait_for(lambda: backend.find(spec.task_id) is None, 30, "the attempt removed")


def test_max_runtime_is_enforced(backend: Backend, listener: RecordingListener) -> None:
    executor = backend.make(listener, kill_grace_seconds=1)
    spec = make_spec(SLEEP, max_runtime_seconds=2)
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.reason) == (
        Ending.TIMED_OUT,
        "killed: exceeded max_runtime_seconds (2)",
    )
    assert outcome.started_at is not None
    assert 2 <= (outcome.ended_at - outcome.started_at).total_seconds() < 15


def test_a_missing_image_ends_the_attempt(backend: Backend, listener: RecordingListener) -> None:
    executor = backend.make(listener)
    spec = make_spec(["true"], image="gnomon-test/does-not-exist", tag="1.0")
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.reason) == (
        Ending.IMAGE_NOT_FOUND,
        "image not found: gnomon-test/does-not-exist:1.0",
    )
    assert listener.starts(spec.task_id) == []
    assert any("does-not-exist:1.0" in note for note in listener.messages(spec.task_id, "gnomon"))


def test_an_unreachable_engine_is_reported_not_failed(
    backend: Backend, listener: RecordingListener, tmp_path: Path
) -> None:
    executor = backend.make_unopened(f"unix://{tmp_path}/none.sock")
    executor.open(listener)
    try:
        health = executor.health()
        assert not health.ok and "none.sock" in health.detail
        with pytest.raises(EngineUnavailable):
            executor.start(make_spec(["true"]))
        executor.recover([InFlight(make_spec(["true"]))])  # it waits for the engine
        assert listener.finished == [] and listener.waiting == []
    finally:
        executor.close()


def test_an_attempt_removed_behind_its_back_is_lost(
    backend: Backend, listener: RecordingListener
) -> None:
    executor = backend.make(listener)
    spec = make_spec(SLEEP)
    executor.start(spec)
    wait_for(lambda: listener.starts(spec.task_id), what="the start")
    backend.remove(spec.task_id)
    outcome = listener.wait_outcome(spec.task_id, timeout=30)
    assert outcome.ending == Ending.LOST and "lost" in str(outcome.reason)


def test_finished_attempts_are_removed_once_their_output_is_stored(
    backend: Backend, listener: RecordingListener
) -> None:
    executor = backend.make(listener)
    good, bad = make_spec(["echo", "good"]), make_spec(["sh", "-c", "echo bad; exit 1"])
    for spec in (good, bad):
        executor.start(spec)
    for spec, line in ((good, "good"), (bad, "bad")):
        listener.wait_outcome(spec.task_id)
        assert listener.messages(spec.task_id, "stdout") == [line]
        wait_for(lambda s=spec: backend.find(s.task_id) is None, 30, f"{line} removed")


def test_recovery_adopts_running_finishes_ended_and_removes_strays(
    backend: Backend,
) -> None:
    before = RecordingListener()
    first = backend.make(before, kill_grace_seconds=0)
    counting = "i=0; while [ $i -lt 60 ]; do echo n $i; i=$((i+1)); sleep 0.05; done"
    running = make_spec(["sh", "-c", counting])
    exits_while_down = make_spec(["sh", "-c", "echo early; sleep 1; echo late; exit 4"])
    stray = make_spec(SLEEP)
    for spec in (running, exits_while_down, stray):
        first.start(spec)
    wait_for(lambda: len(before.messages(running.task_id)) >= 5, what="some output")
    wait_for(lambda: before.messages(exits_while_down.task_id) == ["early"], what="early")
    first.close()  # a "restart": containers and services keep running
    stored = before.lines(running.task_id)
    assert before.outcome(running.task_id) is None

    after = RecordingListener()
    second = backend.make(after, kill_grace_seconds=0)
    lost = make_spec(SLEEP)
    second.recover(
        [
            InFlight(running, logs_until=stored[-1].when),
            InFlight(exits_while_down, logs_until=before.lines(exits_while_down.task_id)[-1].when),
            InFlight(lost),
        ]
    )
    done = after.wait_outcome(running.task_id)
    assert (done.ending, done.exit_code) == (Ending.EXITED, 0)
    again = [line.message for line in stored] + after.messages(running.task_id, "stdout")
    assert again == [f"n {i}" for i in range(60)]
    assert len(after.starts(running.task_id)) == 1

    exited = after.wait_outcome(exits_while_down.task_id)
    assert (exited.ending, exited.exit_code, exited.reason) == (Ending.EXITED, 4, "exit code 4")
    # "late" may have been read before the close (on a busy machine); never twice, never lost.
    both = before.messages(exits_while_down.task_id) + after.messages(exits_while_down.task_id)
    assert both == ["early", "late"]

    assert after.wait_outcome(lost.task_id).ending == Ending.LOST
    wait_for(lambda: backend.find(stray.task_id) is None, 30, "stray removed")
    assert after.outcome(stray.task_id) is None


def test_a_failing_listener_is_asked_again_and_the_attempt_kept_until_stored(
    backend: Backend,
) -> None:
    spec = make_spec(["sh", "-c", "sleep 1; echo bye; exit 3"])
    kept: list[bool] = []
    flaky = FlakyListener(
        {"attempt_started": 2, "attempt_logs": 2, "attempt_finished": 3},
        lambda: kept.append(backend.find(spec.task_id) is not None),
    )
    executor = backend.make(flaky)
    executor.start(spec)
    outcome = flaky.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 3)
    assert flaky.failed == 7 and kept == [True] * 7  # never removed before it was stored
    assert flaky.outcomes(spec.task_id) == [outcome]
    assert len(flaky.starts(spec.task_id)) == 1
    assert flaky.messages(spec.task_id, "stdout") == ["bye"]
    wait_for(lambda: backend.find(spec.task_id) is None, 30, "removal once stored")


def test_recovery_adopts_across_instances_and_removes_only_its_own_first_strays(
    backend: Backend,
) -> None:
    a_name, b_name = session_instance(), session_instance()
    on_a = RecordingListener()
    a = backend.make(on_a, instance=a_name, kill_grace_seconds=0)
    theirs = make_spec(SLEEP)
    a.start(theirs)
    on_earlier_b = RecordingListener()
    earlier_b = backend.make(on_earlier_b, instance=b_name, kill_grace_seconds=0)
    stray = make_spec(SLEEP)
    earlier_b.start(stray)
    wait_for(lambda: on_a.starts(theirs.task_id), what="a's start")
    wait_for(lambda: on_earlier_b.starts(stray.task_id), what="b's stray running")
    a.close()  # instance a is gone; its attempt runs on
    earlier_b.close()

    on_b = RecordingListener()
    b = backend.make(on_b, instance=b_name, kill_grace_seconds=0)
    b.recover([])  # b's own start: its stray goes, nothing of a's is touched
    wait_for(lambda: backend.find(stray.task_id) is None, 30, "b's stray removed")
    assert backend.find(theirs.task_id) is not None

    on_later_b = RecordingListener()
    later_b = backend.make(on_later_b, instance=b_name, kill_grace_seconds=0)
    late = make_spec(SLEEP)
    later_b.start(late)
    wait_for(lambda: on_later_b.starts(late.task_id), what="a later attempt of b running")
    later_b.close()
    adopted = [InFlight(theirs, instance=a_name)]
    b.recover(adopted)  # found by its task id, though a made it
    b.recover(adopted)  # again, as a periodic adoption would: tracked attempts are skipped
    assert backend.find(late.task_id) is not None  # strays are judged at the first call only
    wait_for(lambda: on_b.starts(theirs.task_id), what="the adopted attempt running")
    b.kill(theirs.task_id, "killed: test over")
    assert on_b.wait_outcome(theirs.task_id, timeout=30).ending == Ending.KILLED
    wait_for(lambda: backend.find(theirs.task_id) is None, 30, "the adopted attempt removed")
    assert len(on_b.starts(theirs.task_id)) == 1 and len(on_b.outcomes(theirs.task_id)) == 1
    assert on_a.outcome(theirs.task_id) is None and on_b.outcome(late.task_id) is None
    backend.remove(late.task_id)
