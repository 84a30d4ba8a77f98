"""What only the Swarm executor does, on the session's one-node swarm (tests/support/swarm.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from executor.base import Ending, InFlight
from executor.swarm import SwarmExecutor, SwarmSettings
from tests.executor.support import RecordingListener, make_spec, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

MakeExecutor = Callable[..., SwarmExecutor]
SLEEP = ["sleep", "300"]


@pytest.fixture
def make_swarm_executor(
    swarm: None, busybox_image: str, instance: str, listener: RecordingListener
) -> Iterator[MakeExecutor]:
    """Factory: an opened SwarmExecutor (host network, quick polls); closed after the test."""
    opened: list[SwarmExecutor] = []

    def make(listener: RecordingListener = listener, **overrides: Any) -> SwarmExecutor:
        values: dict[str, Any] = {
            "instance": instance,
            "networks": ("host",),
            "poll_interval_seconds": 0.2,
            "kill_grace_seconds": 0,
        }
        executor = SwarmExecutor(SwarmSettings(**{**values, **overrides}))
        executor.open(listener)
        opened.append(executor)
        return executor

    yield make
    for executor in opened:
        executor.close()


def _service(client: Any, task_id: str) -> dict[str, Any] | None:
    found = client.api.services(filters={"label": f"gnomon.task_id={task_id}"})
    return found[0] if found else None


def test_an_attempt_is_a_one_shot_service_with_limits_reservations_and_labels(
    make_swarm_executor: MakeExecutor, listener: RecordingListener, docker_client: Any
) -> None:
    executor = make_swarm_executor()
    spec = make_spec(
        SLEEP,
        memory_mib=64,
        cpu_units=512,
        placement=("node.role==manager",),
        log_paths=("/tmp/out.log",),
        environment={"GNOMON_TASK_ID": "t-1", "GREETING": "hello"},
    )
    executor.start(spec)
    wait_for(lambda: listener.starts(spec.task_id), what="the start")
    service = _service(docker_client, spec.task_id)
    assert service is not None
    assert "ReplicatedJob" in service["Spec"]["Mode"]
    template = service["Spec"]["TaskTemplate"]
    assert template["RestartPolicy"]["Condition"] == "none"
    resources = template["Resources"]
    assert resources["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024}
    assert resources["Reservations"] == resources["Limits"]
    assert template["Placement"]["Constraints"] == ["node.role==manager"]
    assert template["ContainerSpec"]["Args"] == SLEEP
    assert sorted(template["ContainerSpec"]["Env"]) == ["GNOMON_TASK_ID=t-1", "GREETING=hello"]
    labels = service["Spec"]["Labels"]
    assert labels["gnomon.task_id"] == spec.task_id
    assert labels["gnomon.instance"] == executor._settings.instance
    assert labels["gnomon.process_id"] == spec.process_id
    hostname = docker_client.info()["Name"]
    assert listener.nodes[spec.task_id] == hostname
    executor.kill(spec.task_id, "killed: run was killed")
    assert listener.wait_outcome(spec.task_id).ending == Ending.KILLED
    notes = listener.messages(spec.task_id, "gnomon")
    assert notes == ["log_paths are not collected by the Swarm executor"]


def test_a_placement_no_node_satisfies_waits_with_a_note_until_killed(
    make_swarm_executor: MakeExecutor, listener: RecordingListener
) -> None:
    executor = make_swarm_executor()
    spec = make_spec(["true"], placement=("node.labels.disk==ssd",))
    executor.start(spec)
    notes = wait_for(lambda: listener.messages(spec.task_id, "gnomon"), what="a note")
    assert "no suitable node" in notes[0]
    assert listener.starts(spec.task_id) == []
    executor.kill(spec.task_id, "killed: run was killed")
    outcome = listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.started_at) == (Ending.KILLED, None)


def test_another_instance_adopts_attempts_and_leaves_its_strays(
    make_swarm_executor: MakeExecutor, docker_client: Any, instance: str
) -> None:
    first_listener, second_listener = RecordingListener(), RecordingListener()
    first = make_swarm_executor(first_listener, instance=f"{instance}-a")
    adopted, foreign_stray = make_spec(["sh", "-c", "sleep 1; echo adopted"]), make_spec(SLEEP)
    for spec in (adopted, foreign_stray):
        first.start(spec)
    wait_for(lambda: first_listener.starts(adopted.task_id), what="the start")
    first.close()  # its instance is "lost": its lease expired

    second = make_swarm_executor(second_listener)
    own = make_spec(["sh", "-c", "sleep 1; echo own"])
    second.start(own)
    wait_for(lambda: second_listener.starts(own.task_id), what="own start")
    owner = first._settings.instance
    second.recover([InFlight(adopted, instance=owner), InFlight(own)])
    assert second_listener.wait_outcome(adopted.task_id).exit_code == 0
    assert second_listener.messages(adopted.task_id, "stdout") == ["adopted"]
    assert second_listener.wait_outcome(own.task_id).exit_code == 0
    assert len(second_listener.starts(own.task_id)) == 1  # tracked already: not adopted again
    assert _service(docker_client, foreign_stray.task_id) is not None  # not its to remove
    docker_client.api.remove_service(_service(docker_client, foreign_stray.task_id)["ID"])


def test_a_start_of_an_attempt_whose_service_exists_takes_it_over(
    make_swarm_executor: MakeExecutor, docker_client: Any
) -> None:
    first_listener, second_listener = RecordingListener(), RecordingListener()
    first = make_swarm_executor(first_listener)
    spec = make_spec(["sh", "-c", "echo ran; sleep 2"])
    first.start(spec)
    wait_for(lambda: first_listener.starts(spec.task_id), what="the start")
    first.close()  # crashed before its start was stored: the attempt is offered again
    second = make_swarm_executor(second_listener)
    second.start(spec)
    outcome = second_listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 0)
    assert second_listener.messages(spec.task_id, "stdout") == ["ran"]  # one run, not two
    wait_for(lambda: _service(docker_client, spec.task_id) is None, 30, "the service removed")
