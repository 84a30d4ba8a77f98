"""Values the console's templates show: statuses with icons, durations, times, DAG pictures,
masked environments and notifications, container options and version diffs. Pure functions
of views."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from definitions import (
    DockerImageCommand,
    Notification,
    ProcessDefinition,
    mask_notification_secrets,
)
from definitions.layout import Box, Layout, layout
from executor.base import REDACTED, SECRET_NAME
from scheduler.notify.deliver import kind_of, target_of
from scheduler.overview import RecentRun, RunDetail
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


MARK_WIDTH = 7
MARK_GAP = 2
MARK_HEIGHT = 22
STATES = {status: state_of(status) for status in ("running", "succeeded", "failed")}


def history_svg(runs: Sequence[RecentRun], now: datetime, run_url: str) -> Markup:
    """The history strip of `runs` (newest first): one bar per run, oldest on the left,
    coloured by status, as tall as its share of the longest, linking to `run_url` + id.

    Written as one string, not through the template: the definitions page has 1,000 bars.
    Nothing in a bar comes from a user (run ids are UUIDs the scheduler made; titles are
    statuses, times and durations), so only `run_url` is escaped.
    """
    if not runs:
        return Markup("")
    ordered = runs[::-1]
    seconds = [((r.ended_at or now) - r.started_at).total_seconds() for r in ordered]
    longest = max(seconds) or 1
    base = escape(run_url)
    bars = []
    for i, (run, took) in enumerate(zip(ordered, seconds, strict=True)):
        height = max(4, round(MARK_HEIGHT * took / longest))
        when = run.started_at.isoformat(" ", "seconds").replace("+00:00", "Z")
        bars.append(
            f'<a href="{base}{run.id}"><rect class="mark s-{STATES.get(run.status, "waiting")}"'
            f' x="{i * (MARK_WIDTH + MARK_GAP)}" y="{MARK_HEIGHT + 2 - height}"'
            f' width="{MARK_WIDTH}" height="{height}"><title>{run.status} · {when} ·'
            f" {seconds_text(took)}</title></rect></a>"
        )
    label = ", ".join(run.status for run in ordered)
    return Markup(
        f'<svg class="marks" width="{len(ordered) * (MARK_WIDTH + MARK_GAP)}"'
        f' height="{MARK_HEIGHT + 2}" role="img"'
        f' aria-label="last {len(ordered)} runs, oldest first: {label}">{"".join(bars)}</svg>'
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
    """A stored definition body as indented JSON, secret values (marked secret, or with
    names that look secret) masked."""
    document = json.loads(body)
    for task in document.get("task_definitions", []):
        command = task.get("executable", {}).get("docker_image_command", {})
        for variable in command.get("environment_variables", []):
            secret = variable.get("secret") is True
            if (secret or SECRET_NAME.search(str(variable.get("variable_name", "")))) and (
                "value" in variable
            ):
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
    return shell_line(definition.task(task_name).executable.command)


def shell_line(parts: Sequence[str]) -> str:
    """Words as one shell-like line, quoting those with spaces and empty ones."""
    return " ".join(json.dumps(part) if " " in part or not part else part for part in parts)


def container_options(command: DockerImageCommand) -> list[tuple[str, str]]:
    """The container options a task sets, as (option, value) pairs; empty if none."""
    mounts = [
        f"{m.type} {m.source} → {m.target}{' (read-only)' if m.read_only else ''}"
        for m in command.mounts
    ]
    options = [
        *(("mount", mount) for mount in mounts),
        ("user", command.user or ""),
        ("working_dir", command.working_dir or ""),
        ("entrypoint", "" if command.entrypoint is None else shell_line(command.entrypoint)),
        ("network", command.network or ""),
        ("read_only", "yes" if command.read_only else ""),
        ("cap_drop", ", ".join(command.cap_drop)),
        ("shm_size", f"{command.shm_size} MiB" if command.shm_size else ""),
        *(("label", f"{key}={value}") for key, value in sorted(command.labels.items())),
    ]
    return [(option, value) for option, value in options if value]


@dataclass(frozen=True)
class NotificationRow:
    """A notification of a definition as its page lists it (no secret in it)."""

    kind: str
    target: str
    when: str


def notification_rows(definition: ProcessDefinition) -> list[NotificationRow]:
    """The definition's notifications, secrets masked: kind, where to, and when they send."""
    return [
        NotificationRow(kind_of(n), target_of(n), _sends_when(n))
        for n in mask_notification_secrets(definition).notifications
    ]


def _sends_when(notification: Notification) -> str:
    """A notification's `notify_when`, or when a PagerDuty one pages."""
    when = getattr(notification, "notify_when", None)
    if when is not None:
        return when
    count = getattr(notification, "num_consecutive_failures", 1)
    return f"after {count} failed run{'s' if count != 1 else ''} in a row"


def fire_lag(run: RunView) -> str:
    """How long after its fire time a scheduled run was created; empty for other runs."""
    if run.due_at is None or run.created_at is None:
        return ""
    return seconds_text(max(0.0, (run.created_at - run.due_at).total_seconds()))
