"""Where to draw a task graph: layered left to right, boxes never overlapping.

Layers by longest path (every task right of all its dependencies), order within a
layer by a few barycentre sweeps (fewer crossings), then a fixed grid, so the
picture is stable for one definition and costs O(tasks + edges) per sweep.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .dag import topological_order
from .model import ProcessDefinition

BOX_WIDTH = 168
BOX_HEIGHT = 44
GAP_X = 56
GAP_Y = 14
MARGIN = 8
SWEEPS = 4


@dataclass(frozen=True)
class Box:
    """One task's box: top-left corner and size, in SVG user units."""

    name: str
    x: int
    y: int
    width: int
    height: int
    layer: int


@dataclass(frozen=True)
class Edge:
    """A dependency drawn from `source` (upstream) to `target`; dashed when not required."""

    source: str
    target: str
    required: bool
    path: str  # SVG path data


@dataclass(frozen=True)
class Layout:
    """Every box and edge of a definition's graph and the picture's size."""

    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int

    def box(self, name: str) -> Box:
        """The box of task `name`; KeyError if none."""
        for box in self.boxes:
            if box.name == name:
                return box
        raise KeyError(name)


def layout(definition: ProcessDefinition) -> Layout:
    """The layered picture of `definition`'s tasks and dependencies."""
    layers = _layers(definition)
    order = _order(definition, layers)
    tallest = max((len(names) for names in order), default=0)
    boxes: dict[str, Box] = {}
    for layer, names in enumerate(order):
        offset = (tallest - len(names)) * (BOX_HEIGHT + GAP_Y) // 2
        for index, name in enumerate(names):
            x = MARGIN + layer * (BOX_WIDTH + GAP_X)
            y = MARGIN + offset + index * (BOX_HEIGHT + GAP_Y)
            boxes[name] = Box(name, x, y, BOX_WIDTH, BOX_HEIGHT, layer)
    edges = tuple(
        Edge(dep.task_definition_name, task.task_definition_name, dep.success_required,
             _curve(boxes[dep.task_definition_name], boxes[task.task_definition_name]))
        for task in definition.task_definitions
        for dep in task.dependencies
    )  # fmt: skip
    width = 2 * MARGIN + len(order) * (BOX_WIDTH + GAP_X) - GAP_X if order else 0
    height = 2 * MARGIN + tallest * (BOX_HEIGHT + GAP_Y) - GAP_Y if order else 0
    return Layout(tuple(boxes.values()), edges, max(width, 0), max(height, 0))


def _layers(definition: ProcessDefinition) -> dict[str, int]:
    """Each task's layer: one more than the highest layer among its dependencies."""
    layer: dict[str, int] = {}
    for name in topological_order(definition):
        deps = definition.task(name).dependencies
        layer[name] = 1 + max((layer[d.task_definition_name] for d in deps), default=-1)
    return layer


def _order(definition: ProcessDefinition, layer_of: dict[str, int]) -> list[list[str]]:
    """Tasks per layer, ordered by barycentres of their neighbours, sweeping both ways."""
    order: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for task in definition.task_definitions:
        order[layer_of[task.task_definition_name]].append(task.task_definition_name)
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for task in definition.task_definitions:
        for dep in task.dependencies:
            up[task.task_definition_name].append(dep.task_definition_name)
            down[dep.task_definition_name].append(task.task_definition_name)
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        neighbours = up if forward else down
        indices = range(1, len(order)) if forward else range(len(order) - 2, -1, -1)
        for i in indices:
            order[i] = _by_barycentre(order[i], neighbours, _positions(order))
    return order


def _positions(order: list[list[str]]) -> dict[str, int]:
    """Each task's index within its layer."""
    return {name: index for names in order for index, name in enumerate(names)}


def _by_barycentre(names: list[str], neighbours: dict[str, list[str]], at: dict[str, int]) -> list:
    """`names` sorted by the mean position of their neighbours; those without keep their place."""

    def key(item: tuple[int, str]) -> float:
        index, name = item
        linked = neighbours.get(name)
        return sum(at[n] for n in linked) / len(linked) if linked else float(index)

    return [name for _, name in sorted(enumerate(names), key=key)]


def _curve(source: Box, target: Box) -> str:
    """An S-shaped cubic from the right middle of `source` to the left middle of `target`."""
    x1, y1 = source.x + source.width, source.y + source.height // 2
    x2, y2 = target.x, target.y + target.height // 2
    bend = (x2 - x1) // 2
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
