"""The task graph of a process definition: validation, upstream lookups, topological order."""

from .errors import DefinitionError
from .model import ProcessDefinition, TaskDependency


def check_graph(definition: ProcessDefinition) -> None:
    """Raise DefinitionError for duplicate names, unknown or self dependencies, and cycles."""
    _check_unique_names(definition)
    _check_dependencies(definition)
    _check_acyclic(definition)


def upstream(definition: ProcessDefinition, task_name: str) -> tuple[TaskDependency, ...]:
    """The dependencies of `task_name`; KeyError if there is no such task."""
    return definition.task(task_name).dependencies


def downstream(definition: ProcessDefinition, task_name: str) -> tuple[str, ...]:
    """The names of the tasks that depend directly on `task_name`, in definition order."""
    return tuple(
        task.task_definition_name
        for task in definition.task_definitions
        if any(dep.task_definition_name == task_name for dep in task.dependencies)
    )


def topological_order(definition: ProcessDefinition) -> tuple[str, ...]:
    """Every task name, each after its dependencies; ties keep definition order."""
    order: list[str] = []
    done: set[str] = set()
    pending = [task.task_definition_name for task in definition.task_definitions]
    while pending:
        ready = [name for name in pending if _deps_done(definition, name, done)]
        if not ready:
            raise DefinitionError.at("task_definitions", f"cycle among: {', '.join(pending)}")
        order.extend(ready)
        done.update(ready)
        pending = [name for name in pending if name not in done]
    return tuple(order)


def _deps_done(definition: ProcessDefinition, name: str, done: set[str]) -> bool:
    """Whether every dependency of `name` is in `done`."""
    return all(dep.task_definition_name in done for dep in upstream(definition, name))


def _check_unique_names(definition: ProcessDefinition) -> None:
    """Task names must be unique within a process."""
    seen: set[str] = set()
    for index, task in enumerate(definition.task_definitions):
        if task.task_definition_name in seen:
            path = f"task_definitions.{index}.task_definition_name"
            raise DefinitionError.at(path, f"duplicate task name {task.task_definition_name!r}")
        seen.add(task.task_definition_name)


def _check_dependencies(definition: ProcessDefinition) -> None:
    """Each dependency names another task of this process, at most once."""
    names = {task.task_definition_name for task in definition.task_definitions}
    for index, task in enumerate(definition.task_definitions):
        listed: set[str] = set()
        for dep_index, dep in enumerate(task.dependencies):
            path = f"task_definitions.{index}.dependencies.{dep_index}.task_definition_name"
            problem = _dependency_problem(task.task_definition_name, dep.task_definition_name)
            problem = problem or _listing_problem(dep.task_definition_name, names, listed)
            if problem:
                raise DefinitionError.at(path, problem)
            listed.add(dep.task_definition_name)


def _dependency_problem(task: str, dependency: str) -> str | None:
    """Why a task may not depend on `dependency`, if it may not."""
    if dependency == task:
        return f"task {task!r} depends on itself"
    return None


def _listing_problem(dependency: str, names: set[str], listed: set[str]) -> str | None:
    """Why `dependency` is not a valid entry of a dependency list, if it is not."""
    if dependency not in names:
        return f"depends on {dependency!r}, which is not a task of this process"
    if dependency in listed:
        return f"lists dependency {dependency!r} twice"
    return None


def _check_acyclic(definition: ProcessDefinition) -> None:
    """No task may (indirectly) depend on itself; the error names the tasks on the cycle."""
    state: dict[str, str] = {}
    for task in definition.task_definitions:
        cycle = _find_cycle(definition, task.task_definition_name, state, [])
        if cycle:
            raise DefinitionError.at("task_definitions", "cycle: " + " -> ".join(cycle))


def _find_cycle(
    definition: ProcessDefinition, name: str, state: dict[str, str], path: list[str]
) -> list[str] | None:
    """Depth-first search along dependencies; return the cycle through `path`, if any."""
    if state.get(name) == "done":
        return None
    if state.get(name) == "open":
        return [*path[path.index(name) :], name]
    state[name] = "open"
    for dep in upstream(definition, name):
        cycle = _find_cycle(definition, dep.task_definition_name, state, [*path, name])
        if cycle:
            return cycle
    state[name] = "done"
    return None
