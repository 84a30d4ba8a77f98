"""The DAG picture's layout: layered left to right, no two boxes overlapping, fast at 200 tasks."""

from __future__ import annotations

import itertools
import time

from bench.console import sample_dag
from definitions import DockerImageCommand, ProcessDefinition, TaskDefinition, TaskDependency
from definitions.layout import Box, layout


def make_definition(edges: dict[str, list[tuple[str, bool]]]) -> ProcessDefinition:
    """A definition whose tasks depend as `edges` says (task -> [(upstream, required)])."""
    command = DockerImageCommand(image="busybox", command=("true",))
    tasks = tuple(
        TaskDefinition(name, command, tuple(TaskDependency(d, r) for d, r in deps))
        for name, deps in edges.items()
    )
    return ProcessDefinition("picture", tasks)


def overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share any area."""
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


def test_every_task_is_right_of_its_dependencies() -> None:
    definition = sample_dag(60)
    picture = layout(definition)
    for task in definition.task_definitions:
        box = picture.box(task.task_definition_name)
        for dep in task.dependencies:
            upstream = picture.box(dep.task_definition_name)
            assert upstream.layer < box.layer
            assert upstream.x + upstream.width < box.x


def test_a_chain_is_one_row_and_a_fan_is_one_column() -> None:
    chain = layout(make_definition({"a": [], "b": [("a", True)], "c": [("b", True)]}))
    assert [b.layer for b in chain.boxes] == [0, 1, 2]
    assert len({b.y for b in chain.boxes}) == 1
    fan = layout(make_definition({"a": [], "b": [("a", True)], "c": [("a", False)]}))
    assert fan.box("b").x == fan.box("c").x and fan.box("b").y != fan.box("c").y


def test_optional_dependencies_are_marked_for_dashed_edges() -> None:
    picture = layout(make_definition({"a": [], "b": [("a", False)], "c": [("a", True)]}))
    assert {(e.source, e.target, e.required) for e in picture.edges} == {
        ("a", "b", False),
        ("a", "c", True),
    }


def test_two_hundred_tasks_have_no_overlapping_boxes_and_fit_the_picture() -> None:
    picture = layout(sample_dag(200))
    assert len(picture.boxes) == 200
    for a, b in itertools.combinations(picture.boxes, 2):
        assert not overlap(a, b), (a, b)
    for box in picture.boxes:
        assert box.x >= 0 and box.x + box.width <= picture.width
        assert box.y >= 0 and box.y + box.height <= picture.height


def test_two_hundred_tasks_are_laid_out_in_under_100_ms() -> None:
    definition = sample_dag(200)
    layout(definition)  # warm up
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        layout(definition)
        timings.append(time.perf_counter() - began)
    assert min(timings) < 0.1, timings


def test_barycentre_ordering_uncrosses_a_swapped_pair() -> None:
    # x and y are listed in the opposite order of their parents q and p
    picture = layout(make_definition({"p": [], "q": [], "x": [("q", True)], "y": [("p", True)]}))
    assert picture.box("p").y < picture.box("q").y
    assert picture.box("y").y < picture.box("x").y
