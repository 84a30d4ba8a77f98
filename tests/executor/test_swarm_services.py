"""A swarm task's status read as the attempt's end (pure: no engine)."""

from __future__ import annotations

from typing import Any

import pytest

from executor.base import Ending
from executor.swarm.services import TaskStatus


@pytest.mark.parametrize(
    ("task", "ending", "reason"),
    [
        pytest.param({"State": "complete", "ContainerStatus": {"ContainerID": "c", "ExitCode": 0}},
                     Ending.EXITED, None, id="complete"),
        pytest.param({"State": "failed", "Err": "task: non-zero exit (3)",
                      "ContainerStatus": {"ContainerID": "c", "ExitCode": 3}},
                     Ending.EXITED, "exit code 3", id="failed"),
        pytest.param({"State": "rejected", "Err": "No such image: x:1"},
                     Ending.IMAGE_NOT_FOUND, None, id="no-image"),
        pytest.param({"State": "failed", "Err": "starting container failed: no such file",
                      "ContainerStatus": {"ContainerID": "c", "ExitCode": 128}},
                     Ending.START_FAILED, "start failed: starting container failed: no such file",
                     id="bad-command"),
        pytest.param({"State": "orphaned", "Err": "node is down"},
                     Ending.LOST, "node lost: task orphaned (node is down)", id="orphaned"),
    ],
)  # fmt: skip
def test_a_task_status_says_how_the_attempt_ended(
    task: dict[str, Any], ending: Ending, reason: str | None
) -> None:
    assert TaskStatus.of({"Status": task}).ending() == (ending, reason)
