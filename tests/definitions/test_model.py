"""Tests for definitions.model."""

import dataclasses

import pytest

from definitions import DockerImageCommand, ProcessDefinition, TaskDefinition


def test_task_lookup_and_immutability() -> None:
    tasks = tuple(TaskDefinition(n, DockerImageCommand("alpine", ())) for n in ("a", "b"))
    definition = ProcessDefinition("job", tasks)
    assert definition.task("b") is tasks[1]
    with pytest.raises(KeyError):
        definition.task("c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.paused = True  # type: ignore[misc]
