"""Writes of definitions: save (versioned), delete, pause and resume, each audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from peewee import fn

from definitions import (
    ContinuousSchedule,
    CronSchedule,
    ProcessDefinition,
    definition_from_json,
    definition_to_json,
    next_fire_time,
)
from scheduler.errors import NotFound
from scheduler.models import AuditEvent, Definition, DefinitionVersion, Run
from scheduler.secrets import NO_KEY, SecretBox
from scheduler.states import ACTIVE_RUN
from scheduler.tx import lock_definition, write_transaction


def save(
    definition: ProcessDefinition, *, actor: str, now: datetime, secrets: SecretBox = NO_KEY
) -> bool:
    """Store `definition`, as a new version if it changed; True if it is new.

    Secret values are stored sealed; a masked one keeps the value stored before.
    """
    name = definition.process_definition_name
    with write_transaction():
        row = lock_definition(name)
        previous = None if row is None else definition_from_json(row.body)
        definition = secrets.seal(definition, previous)
        body = definition_to_json(replace(definition, paused=None))
        if row is None:
            _create(definition, body, actor, now)
            return True
        _update(row, definition, body, actor, now)
        return False


def _create(definition: ProcessDefinition, body: str, actor: str, now: datetime) -> None:
    """Insert a definition that does not exist (its version numbers go on from any old one)."""
    name = definition.process_definition_name
    version = _last_version(name) + 1
    Definition.create(
        name=name,
        version=version,
        body=body,
        paused=bool(definition.paused),
        next_fire_at=first_fire(definition, now),
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )
    DefinitionVersion.create(
        name=name, version=version, body=body, created_at=now, created_by=actor
    )
    audit(actor, "create", name, f"version {version}", now)


def _update(
    row: Definition, definition: ProcessDefinition, body: str, actor: str, now: datetime
) -> None:
    """Apply a PUT to an existing definition; an identical body makes no new version."""
    paused = row.paused if definition.paused is None else definition.paused
    if body == row.body and paused == row.paused:
        return
    if body != row.body:
        row.version = _last_version(row.name) + 1
        DefinitionVersion.create(
            name=row.name, version=row.version, body=body, created_at=now, created_by=actor
        )
        if _schedule_of(row.body) != definition.schedule:
            row.next_fire_at = first_fire(definition, now)
        audit(actor, "update", row.name, f"version {row.version}", now)
    if paused != row.paused:
        row.next_fire_at = first_fire(definition, now)
        audit(actor, "pause" if paused else "resume", row.name, None, now)
    row.body, row.paused, row.updated_at, row.updated_by = body, paused, now, actor
    row.schedule_error = None  # a changed definition gets a fresh chance to fire
    row.save()


def _schedule_of(body: str) -> object:
    """The schedule of a stored definition body."""
    return definition_from_json(body).schedule


def _last_version(name: str) -> int:
    """The highest version `name` ever had, 0 if none."""
    last = DefinitionVersion.select(fn.MAX(DefinitionVersion.version))
    return last.where(DefinitionVersion.name == name).scalar() or 0


def first_fire(definition: ProcessDefinition, now: datetime) -> datetime | None:
    """When a (re)scheduled definition fires first: missed fires before `now` do not count."""
    schedule = definition.schedule
    if isinstance(schedule, CronSchedule):
        return next_fire_time(schedule, now)
    if isinstance(schedule, ContinuousSchedule):
        active = Run.select().where(
            (Run.definition_name == definition.process_definition_name) & Run.status.in_(ACTIVE_RUN)
        )
        return None if active.exists() else now
    return None


def delete(name: str, *, actor: str, now: datetime) -> None:
    """Delete a definition; its versions and its runs' history stay."""
    with write_transaction():
        if not Definition.delete().where(Definition.name == name).execute():
            raise NotFound("process_definition", name)
        audit(actor, "delete", name, None, now)


def set_paused(name: str, paused: bool, *, actor: str, now: datetime) -> None:
    """Pause or resume a definition's schedule; resuming skips the fires missed while paused."""
    with write_transaction():
        row = lock_definition(name)
        if row is None:
            raise NotFound("process_definition", name)
        if row.paused != paused:
            next_fire = first_fire(definition_from_json(row.body), now)
            Definition.update(
                paused=paused, next_fire_at=next_fire, updated_at=now, updated_by=actor
            ).where(Definition.name == name).execute()
        audit(actor, "pause" if paused else "resume", name, None, now)


def audit(actor: str, action: str, target: str, detail: str | None, now: datetime) -> None:
    """Record who did what to which target."""
    AuditEvent.create(at=now, actor=actor, action=action, target=target, detail=detail)
