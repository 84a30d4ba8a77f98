"""Factories for definitions used by scheduler tests."""

from __future__ import annotations

from typing import Any

from definitions import (
    CronSchedule,
    DockerImageCommand,
    ProcessDefinition,
    TaskDefinition,
    TaskDependency,
)

IMAGE = "gnomon-test/busybox"


def make_task(name: str, *deps: str | tuple[str, bool], **overrides: Any) -> TaskDefinition:
    """A task running `command` (default `true`), depending on `deps` (name or (name, required))."""
    command = overrides.pop("command", ("true",))
    env = overrides.pop("environment_variables", ())
    dependencies = tuple(
        TaskDependency(d) if isinstance(d, str) else TaskDependency(d[0], d[1]) for d in deps
    )
    executable = DockerImageCommand(
        image=overrides.pop("image", IMAGE),
        command=tuple(command),
        environment_variables=tuple(env),
    )
    return TaskDefinition(
        task_definition_name=name, executable=executable, dependencies=dependencies, **overrides
    )


def make_definition(*tasks: TaskDefinition, **overrides: Any) -> ProcessDefinition:
    """A process definition of `tasks` (default one task `main`), no schedule unless given."""
    return ProcessDefinition(
        process_definition_name=overrides.pop("name", "job"),
        task_definitions=tasks or (make_task("main"),),
        **overrides,
    )


def cron(minutes: str = "0", hours: str = "*", **kw: str) -> CronSchedule:
    """A cron schedule; every hour on the hour by default."""
    return CronSchedule(
        minutes=minutes,
        hours=hours,
        day_of_month=kw.get("day_of_month", "*"),
        month=kw.get("month", "*"),
        day_of_week=kw.get("day_of_week", "?"),
        time_zone=kw.get("time_zone", "UTC"),
    )
