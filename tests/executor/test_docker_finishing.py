"""A listener that cannot store (a locked or down database) is asked again until it has stored.

The container of a finished attempt stays until its outcome is stored; a start
or a batch of output that could not be stored is offered again, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from executor.base import Ending
from executor.docker import DockerExecutor
from tests.executor.support import FlakyListener, make_spec, task_containers, wait_for

pytestmark = pytest.mark.docker

MakeExecutor = Callable[..., DockerExecutor]


def test_an_outcome_is_retried_until_stored_and_only_then_the_container_removed(
    make_executor: MakeExecutor, docker_client: Any
) -> None:
    spec = make_spec(["sh", "-c", "echo bye; exit 3"])
    seen_at_failure: list[int] = []
    flaky = FlakyListener(
        {"attempt_finished": 3},
        lambda: seen_at_failure.append(len(task_containers(docker_client, spec.task_id))),
    )
    executor = make_executor(flaky)
    executor.start(spec)
    outcome = flaky.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 3)
    assert seen_at_failure == [1, 1, 1]  # kept while the outcome was not stored
    assert flaky.outcomes(spec.task_id) == [outcome]
    assert len(flaky.starts(spec.task_id)) == 1  # never run again
    assert flaky.messages(spec.task_id, "stdout") == ["bye"]
    wait_for(lambda: not task_containers(docker_client, spec.task_id), what="removal after storing")


def test_a_start_that_is_not_stored_is_retried_while_the_container_runs(
    make_executor: MakeExecutor, docker_client: Any
) -> None:
    spec = make_spec(["sh", "-c", "sleep 2; echo done"])
    running: list[str] = []
    flaky = FlakyListener(
        {"attempt_started": 2},
        lambda: running.extend(c["State"] for c in task_containers(docker_client, spec.task_id)),
    )
    executor = make_executor(flaky)
    executor.start(spec)
    outcome = flaky.wait_outcome(spec.task_id, timeout=30)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 0)
    assert running == ["running", "running"]
    assert len(flaky.starts(spec.task_id)) == 1
    assert flaky.messages(spec.task_id, "stdout") == ["done"]


def test_output_that_is_not_stored_is_offered_again_never_dropped(
    make_executor: MakeExecutor,
) -> None:
    flaky = FlakyListener({"attempt_logs": 3}, lambda: None)
    executor = make_executor(flaky, log_batch_lines=10)
    spec = make_spec(["sh", "-c", "i=0; while [ $i -lt 100 ]; do echo $i; i=$((i+1)); done"])
    executor.start(spec)
    assert flaky.wait_outcome(spec.task_id, timeout=30).exit_code == 0
    assert flaky.failed == 3
    assert flaky.messages(spec.task_id, "stdout") == [str(i) for i in range(100)]
