"""What a task is given besides its definition: run parameters and its upstream tasks' outputs.

Both reach a container as environment variables whose names are built here:
`GNOMON_PARAM_<NAME>` and `GNOMON_INPUT_<TASK>_<NAME>`, each part upper-cased with every
character other than A-Z, 0-9 and `_` replaced by `_` (task `load-db`, output `rows`:
`GNOMON_INPUT_LOAD_DB_ROWS`). A task publishes an output as a metadata entry whose key
is `output.<name>`.
"""

import re
from collections.abc import Iterable, Mapping

from . import limits
from .dag import upstream
from .errors import DefinitionError
from .model import ProcessDefinition

PARAMETER_PREFIX = "GNOMON_PARAM_"
INPUT_PREFIX = "GNOMON_INPUT_"
OUTPUT_KEY_PREFIX = "output."
_OUTPUT_NAME = re.compile(limits.OUTPUT_NAME_PATTERN)


def variable_part(name: str) -> str:
    """`name` as part of an environment variable name: upper case, other characters `_`."""
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def parameter_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The `GNOMON_PARAM_<NAME>` variables of a run's parameter values."""
    return {PARAMETER_PREFIX + variable_part(name): value for name, value in values.items()}


def input_environment(outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The `GNOMON_INPUT_<TASK>_<NAME>` variables of upstream outputs, given by task name."""
    return {
        f"{INPUT_PREFIX}{variable_part(task)}_{variable_part(name)}": value
        for task, named in outputs.items()
        for name, value in named.items()
    }


def resolve_parameters(definition: ProcessDefinition, given: Mapping[str, str]) -> dict[str, str]:
    """A run's parameter values: `given` over the defaults; DefinitionError for an unknown
    or a missing required parameter."""
    declared = {p.name for p in definition.parameters}
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise DefinitionError.at(
                f"parameters.{name}", f"unknown parameter; the definition declares: {known}"
            )
    for parameter in definition.parameters:
        if parameter.required and parameter.name not in given:
            raise DefinitionError.at(
                f"parameters.{parameter.name}", "required parameter is missing"
            )
    return {p.name: given.get(p.name, p.default) for p in definition.parameters}


def output_name(key: str) -> str | None:
    """The output a metadata key publishes (`output.<name>`), or None for other metadata."""
    return key.removeprefix(OUTPUT_KEY_PREFIX) if key.startswith(OUTPUT_KEY_PREFIX) else None


def output_key_problem(key: str) -> str | None:
    """Why a metadata key cannot publish an output, if it starts with `output.` and cannot."""
    name = output_name(key)
    if name is None or _OUTPUT_NAME.fullmatch(name):
        return None
    return "an output name (after `output.`) must be 1 to 64 letters, digits or '_'"


def check_output_count(names: Iterable[str]) -> None:
    """DefinitionError if an attempt would publish more outputs than allowed."""
    count = len(set(names))
    if count > limits.MAX_OUTPUTS:
        raise DefinitionError.at(
            "key", f"an attempt may publish at most {limits.MAX_OUTPUTS} outputs, not {count}"
        )


def ancestors(definition: ProcessDefinition, task_name: str) -> set[str]:
    """Every task `task_name` depends on, directly or not: the tasks whose outputs it sees."""
    found: set[str] = set()
    pending = [dep.task_definition_name for dep in upstream(definition, task_name)]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(dep.task_definition_name for dep in upstream(definition, name))
    return found


def check_variable_names(definition: ProcessDefinition) -> None:
    """Task names and parameter names must stay distinct once made into variable names."""
    _check_distinct(
        "task_definitions", "task_definition_name",
        [t.task_definition_name for t in definition.task_definitions],
    )  # fmt: skip
    _check_distinct("parameters", "name", [p.name for p in definition.parameters])


def _check_distinct(path: str, field: str, names: list[str]) -> None:
    """DefinitionError at the first name whose variable part an earlier name already has."""
    seen: dict[str, str] = {}
    for index, name in enumerate(names):
        part = variable_part(name)
        if part in seen:
            raise DefinitionError.at(
                f"{path}.{index}.{field}",
                f"{name!r} and {seen[part]!r} give the same variable name part {part!r}",
            )
        seen[part] = name
