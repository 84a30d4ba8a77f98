"""Secret environment variables of a definition: where they are, and their masked form."""

from collections.abc import Callable
from dataclasses import replace

from .model import EnvironmentVariable, ProcessDefinition

# What a reader sees instead of a secret value; a PUT carrying it back keeps the stored value.
SECRET_MASK = "********"


def variable_path(task_index: int, variable_index: int) -> str:
    """The dotted wire path of a variable's value, for error details."""
    return (
        f"task_definitions.{task_index}.executable.docker_image_command."
        f"environment_variables.{variable_index}.value"
    )


def map_secret_values(
    definition: ProcessDefinition, change: Callable[[str, str, EnvironmentVariable], str]
) -> ProcessDefinition:
    """`definition` with each secret value replaced by `change(path, task name, variable)`."""
    tasks = []
    for t, task in enumerate(definition.task_definitions):
        command = task.executable
        variables = tuple(
            replace(var, value=change(variable_path(t, v), task.task_definition_name, var))
            if var.secret and var.value is not None
            else var
            for v, var in enumerate(command.environment_variables)
        )
        tasks.append(replace(task, executable=replace(command, environment_variables=variables)))
    return replace(definition, task_definitions=tuple(tasks))


def has_secret_values(definition: ProcessDefinition) -> bool:
    """Whether any environment variable of `definition` is secret."""
    return any(
        var.secret
        for task in definition.task_definitions
        for var in task.executable.environment_variables
    )


def mask_secret_values(definition: ProcessDefinition) -> ProcessDefinition:
    """`definition` with every secret value shown as SECRET_MASK."""
    if not has_secret_values(definition):
        return definition
    return map_secret_values(definition, lambda _path, _task, _var: SECRET_MASK)
