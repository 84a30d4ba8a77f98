"""Values the console's templates show: statuses with icons, durations, times, DAG pictures,
masked environments and version diffs. Pure functions of views."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from definitions import ProcessDefinition
from definitions.layout import Box, Layout, layout
from executor.base import REDACTED, SECRET_NAME
from scheduler.overview import RunDetail
from scheduler.views import RunView, TaskView

# Each status with a sign, so colour is never the only cue.
ICONS = {
    "succeeded": "✓",
    "failed": "✗",
    "running": "▶",
    "waiting": "…",
    "skipped": "⤼",
}
WAITING = frozenset({"submitted", "runnable", "pending"})
RUNNING = frozenset({"starting", "running"})
NAME_CHARS = 22  # what fits in a DAG box


@dataclass(frozen=True)
class TaskState:
    """A task of a run as the DAG picture shows it."""

    box: Box
    state: str  # waiting | running | succeeded | failed | skipped
    attempts: int
    duration: str
    latest: TaskView | None

    @property
    def label(self) -> str:
        """The name, shortened to fit its box."""
        return shorten(self.box.name, NAME_CHARS)


def state_of(status: str) -> str:
    """The console's five states from a task or run status."""
    if status in WAITING:
        return "waiting"
    if status in RUNNING:
        return "running"
    return status


def status_badge(status: str) -> Markup:
    """A status as a coloured badge with its sign and its word."""
    state = state_of(status)
    return Markup(
        f'<span class="status s-{state}"><span class="icon" aria-hidden="true">'
        f"{ICONS.get(state, '•')}</span> {escape(status)}</span>"
    )


def shorten(text: str, most: int) -> str:
    """`text`, cut with an ellipsis if longer than `most` characters."""
    return text if len(text) <= most else text[: most - 1] + "…"


def seconds_text(seconds: float) -> str:
    """A duration such as `850 ms`, `42 s`, `3 min 5 s` or `2 h 10 min`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def duration(start: datetime | None, end: datetime | None, now: datetime) -> str:
    """How long from `start` to `end` (or to `now` while going on); empty without a start."""
    if start is None:
        return ""
    return seconds_text(max(0.0, ((end or now) - start).total_seconds()))


def utc_text(when: datetime | None) -> str:
    """A UTC time as `2026-12-01 14:03:22Z`; empty for None."""
    return when.isoformat(" ", "seconds").replace("+00:00", "Z") if when else ""


def zoned_text(when: datetime | None, zone: str) -> str:
    """A time in the IANA `zone`, with its abbreviation; empty for None."""
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") if when else ""


def definition_zone(definition: ProcessDefinition) -> str:
    """The time zone the definition's schedule is written in (UTC if none)."""
    return getattr(definition.schedule, "time_zone", "UTC")


def run_states(detail: RunDetail, now: datetime) -> tuple[Layout, list[TaskState]]:
    """The DAG of a run's definition and each task's state in this run."""
    picture = layout(detail.definition)
    attempts: dict[str, list[TaskView]] = {}
    for task in detail.run.tasks:
        attempts.setdefault(task.task_name, []).append(task)
    ended = detail.run.status != "running"
    states = []
    for box in picture.boxes:
        tried = attempts.get(box.name, [])
        latest = tried[-1] if tried else None
        state = state_of(latest.status) if latest else ("skipped" if ended else "waiting")
        took = duration(latest.started_at, latest.ended_at, now) if latest else ""
        states.append(TaskState(box, state, len(tried), took, latest))
    return picture, states


@dataclass(frozen=True)
class Mark:
    """One run in a definition's history strip."""

    run: RunView
    state: str
    x: int
    height: int
    title: str


MARK_WIDTH = 7
MARK_GAP = 2
MARK_HEIGHT = 22


def history_marks(runs: tuple[RunView, ...], now: datetime) -> list[Mark]:
    """Marks for `runs` (newest first), oldest on the left, tall as their share of the longest."""
    ordered = list(reversed(runs))
    seconds = [((r.ended_at or now) - r.started_at).total_seconds() for r in ordered]
    longest = max(seconds, default=0) or 1
    return [
        Mark(
            run,
            state_of(run.status),
            i * (MARK_WIDTH + MARK_GAP),
            max(4, round(MARK_HEIGHT * s / longest)),
            f"{run.status} · {utc_text(run.started_at)} · {seconds_text(s)}",
        )
        for i, (run, s) in enumerate(zip(ordered, seconds, strict=True))
    ]


def marks_svg(marks: list[Mark], run_url: str) -> Markup:
    """The history strip: one bar per run, linking to it (`run_url` + id)."""
    if not marks:
        return Markup("")
    width = len(marks) * (MARK_WIDTH + MARK_GAP)
    label = ", ".join(m.state for m in marks)
    bars = "".join(
        f'<a href="{escape(run_url + m.run.id)}"><rect class="mark s-{m.state}" x="{m.x}"'
        f' y="{MARK_HEIGHT + 2 - m.height}" width="{MARK_WIDTH}" height="{m.height}">'
        f"<title>{escape(m.title)}</title></rect></a>"
        for m in marks
    )
    return Markup(
        f'<svg class="marks" width="{width}" height="{MARK_HEIGHT + 2}" role="img"'
        f' aria-label="last {len(marks)} runs, oldest first: {label}">{bars}</svg>'
    )


def masked_environment(definition: ProcessDefinition) -> dict[str, list[tuple[str, str]]]:
    """Per task, its environment variables with values whose names look secret masked."""
    return {
        task.task_definition_name: [
            (v.variable_name, REDACTED if SECRET_NAME.search(v.variable_name) else v.value)
            for v in task.executable.environment_variables
        ]
        for task in definition.task_definitions
    }


def masked_json(body: str) -> str:
    """A stored definition body as indented JSON, secret-looking environment values masked."""
    document = json.loads(body)
    for task in document.get("task_definitions", []):
        command = task.get("executable", {}).get("docker_image_command", {})
        for variable in command.get("environment_variables", []):
            if SECRET_NAME.search(str(variable.get("variable_name", ""))):
                variable["value"] = REDACTED
    return json.dumps(document, indent=2, sort_keys=True)


def version_diff(old: str, new: str, old_label: str, new_label: str) -> list[str]:
    """The unified diff of two stored bodies (secrets masked on both sides)."""
    return list(
        difflib.unified_diff(
            masked_json(old).splitlines(),
            masked_json(new).splitlines(),
            old_label,
            new_label,
            lineterm="",
        )
    )


def command_text(definition: ProcessDefinition, task_name: str) -> str:
    """A task's command as one shell-like line."""
    parts = definition.task(task_name).executable.command
    return " ".join(json.dumps(part) if " " in part or not part else part for part in parts)
