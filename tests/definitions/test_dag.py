"""Tests for definitions.dag: graph validation, upstream/downstream, topological order."""

from typing import Any

import pytest

from definitions import DefinitionError, parse_definition, topological_order, upstream
from definitions.dag import downstream

from .samples import wire_definition, wire_task


@pytest.mark.parametrize(
    ("tasks", "path", "words"),
    [
        pytest.param(
            [wire_task("a"), wire_task("a")],
            "task_definitions.1.task_definition_name",
            "duplicate task name 'a'",
            id="duplicate_name",
        ),
        pytest.param(
            [wire_task("a"), wire_task("b", "a", "ghost")],
            "task_definitions.1.dependencies.1.task_definition_name",
            "'ghost', which is not a task",
            id="unknown_dependency",
        ),
        pytest.param(
            [wire_task("a", "a")],
            "task_definitions.0.dependencies.0.task_definition_name",
            "depends on itself",
            id="self_dependency",
        ),
        pytest.param(
            [wire_task("a"), wire_task("b", "a", "a")],
            "task_definitions.1.dependencies.1.task_definition_name",
            "twice",
            id="dependency_listed_twice",
        ),
        pytest.param(
            [wire_task("a", "b"), wire_task("b", "a")],
            "task_definitions",
            "cycle: a -> b -> a",
            id="two_cycle",
        ),
        pytest.param(
            [
                wire_task("root"),
                wire_task("x", "root", "z"),
                wire_task("y", "x"),
                wire_task("z", "y"),
            ],
            "task_definitions",
            "cycle: x -> z -> y -> x",
            id="three_cycle_behind_root",
        ),
    ],
)
def test_graph_errors(tasks: list[dict[str, Any]], path: str, words: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(wire_definition(*tasks))
    assert words in caught.value.fields[path][0]
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("tasks", "order"),
    [
        pytest.param([wire_task("a")], ("a",), id="single"),
        pytest.param([wire_task("b", "a"), wire_task("a")], ("a", "b"), id="reversed"),
        pytest.param(
            [wire_task("d", "b", "c"), wire_task("c", "a"), wire_task("b", "a"), wire_task("a")],
            ("a", "c", "b", "d"),
            id="diamond_keeps_definition_order",
        ),
        pytest.param(
            [wire_task("x"), wire_task("y"), wire_task("z", "x")],
            ("x", "y", "z"),
            id="independent",
        ),
    ],
)
def test_topological_order(tasks: list[dict[str, Any]], order: tuple[str, ...]) -> None:
    assert topological_order(parse_definition(wire_definition(*tasks))) == order


def test_upstream_and_downstream() -> None:
    definition = parse_definition(
        wire_definition(wire_task("a"), wire_task("b", "a"), wire_task("c", "a", "b"))
    )
    assert [dep.task_definition_name for dep in upstream(definition, "c")] == ["a", "b"]
    assert upstream(definition, "a") == ()
    assert downstream(definition, "a") == ("b", "c")
    with pytest.raises(KeyError):
        upstream(definition, "nope")
