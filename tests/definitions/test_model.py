"""Tests for definitions.model."""

import dataclasses

import pytest

from definitions import DockerImageCommand, EnvironmentVariable, ProcessDefinition, TaskDefinition


def test_task_lookup_and_immutability() -> None:
    tasks = tuple(TaskDefinition(n, DockerImageCommand("alpine", ())) for n in ("a", "b"))
    definition = ProcessDefinition("job", tasks)
    assert definition.task("b") is tasks[1]
    with pytest.raises(KeyError):
        definition.task("c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.paused = True  # type: ignore[misc]


def test_environment_values_stay_out_of_reprs() -> None:
    variable = EnvironmentVariable("DB_PASSWORD", "hunter2")
    command = DockerImageCommand("alpine", (), environment_variables=(variable,))
    text = repr(ProcessDefinition("job", (TaskDefinition("main", command),)))
    assert "DB_PASSWORD" in text and "hunter2" not in text
