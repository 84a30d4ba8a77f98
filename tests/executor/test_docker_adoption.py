"""Adoption across instances on the real engine: containers are found by task id, whoever
started them, and an instance's own recovery never touches another's containers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from executor.base import Ending, InFlight
from executor.docker import DockerExecutor
from tests.executor.support import RecordingListener, make_spec, task_containers, wait_for
from tests.support.leaks import session_instance

pytestmark = pytest.mark.docker

MakeExecutor = Callable[..., DockerExecutor]
COUNTING = "i=0; while [ $i -lt 100 ]; do echo n $i; i=$((i+1)); sleep 0.05; done"


def _state(client: Any, task_id: str) -> str | None:
    found = task_containers(client, task_id)
    return found[0]["State"] if found else None


def test_b_adopts_the_attempts_of_a_stopped_instance_a(
    make_executor: MakeExecutor, docker_client: Any
) -> None:
    a_name, b_name = session_instance(), session_instance()
    on_a = RecordingListener()
    a = make_executor(on_a, instance=a_name)
    running = make_spec(["sh", "-c", COUNTING])
    exits = make_spec(["sh", "-c", "echo early; sleep 2; echo late; exit 4"])
    for spec in (running, exits):
        a.start(spec)
    wait_for(lambda: len(on_a.messages(running.task_id)) >= 3, what="some output")
    wait_for(lambda: on_a.messages(exits.task_id) == ["early"])
    a.close()  # instance a is gone; its containers run on
    wait_for(lambda: _state(docker_client, exits.task_id) == "exited", what="an exit meanwhile")
    stored = on_a.lines(running.task_id)

    on_b = RecordingListener()
    b = make_executor(on_b, instance=b_name)
    b.recover([])  # b's own start: nothing of a's is touched
    assert _state(docker_client, running.task_id) == "running"
    lost = make_spec(["true"])
    adopted = [
        InFlight(running, logs_until=stored[-1].when, instance=a_name),
        InFlight(exits, logs_until=on_a.lines(exits.task_id)[-1].when, instance=a_name),
        InFlight(lost, instance=a_name),
    ]
    b.recover(adopted)
    b.recover(adopted)  # again, as a periodic adoption would: tracked attempts are skipped

    done = on_b.wait_outcome(running.task_id)
    assert (done.ending, done.exit_code) == (Ending.EXITED, 0)
    again = [line.message for line in stored] + on_b.messages(running.task_id, "stdout")
    assert again == [f"n {i}" for i in range(100)]
    assert len(on_b.starts(running.task_id)) == 1
    exited = on_b.wait_outcome(exits.task_id)
    assert (exited.ending, exited.exit_code) == (Ending.EXITED, 4)
    both = on_a.messages(exits.task_id) + on_b.messages(exits.task_id)
    assert both == ["early", "late"]  # "late" may come before a's close: never twice or lost
    gone = on_b.wait_outcome(lost.task_id)
    assert (gone.ending, gone.reason) == (Ending.LOST, "container lost")
    for spec in (running, exits, lost):
        assert len(on_b.outcomes(spec.task_id)) == 1
    for spec in (running, exits):
        wait_for(lambda s=spec: not task_containers(docker_client, s.task_id), what="removal")


def test_an_instance_recovering_never_touches_the_containers_of_another(
    make_executor: MakeExecutor, docker_client: Any
) -> None:
    on_a, on_b = RecordingListener(), RecordingListener()
    a = make_executor(on_a, instance=session_instance(), kill_grace_seconds=0)
    b_name = session_instance()
    b = make_executor(on_b, instance=b_name)
    theirs = make_spec(["sleep", "300"])
    a.start(theirs)
    wait_for(lambda: on_a.starts(theirs.task_id))
    b_stray = make_executor(RecordingListener(), instance=b_name)  # an earlier life of b
    mine = make_spec(["sleep", "300"])
    b_stray.start(mine)
    wait_for(lambda: _state(docker_client, mine.task_id) == "running")
    b_stray.close()

    b.recover([])
    wait_for(lambda: _state(docker_client, mine.task_id) is None, what="b's stray removed")
    assert _state(docker_client, theirs.task_id) == "running"
    assert on_b.finished == [] and on_a.outcome(theirs.task_id) is None
    a.kill(theirs.task_id, "killed: test over")
    assert on_a.wait_outcome(theirs.task_id).ending == Ending.KILLED
