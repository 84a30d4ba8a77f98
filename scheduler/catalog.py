"""Writes of definitions: save (versioned), delete, pause and resume, each audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from peewee import fn

from definitions import (
    ContinuousSchedule,
    CronSchedule,
    DefinitionError,
    ProcessDefinition,
    definition_from_json,
    definition_to_json,
    has_secret_values,
    next_fire_time,
)
from scheduler.bulk import insert_rows, update_rows
from scheduler.errors import NotFound
from scheduler.models import AuditEvent, Definition, DefinitionVersion, Run
from scheduler.secrets import NO_KEY, SecretBox
from scheduler.states import ACTIVE_RUN
from scheduler.tx import lock_definition, lock_definitions, write_transaction
from scheduler.views import wire_json


@dataclass(frozen=True)
class Saved:
    """What saving one definition did: `created`, `updated` or `unchanged`, at `version`."""

    name: str
    version: int
    outcome: str


@dataclass
class _Writes:
    """The rows a save of several definitions writes, in the order they are made."""

    actor: str
    now: datetime
    created: list[tuple] = field(default_factory=list)
    updated: list[tuple] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)
    audits: list[tuple] = field(default_factory=list)

    def version(self, name: str, version: int, body: str) -> None:
        """A new version row."""
        self.versions.append((name, version, body, self.now, self.actor))

    def audit(self, action: str, name: str, detail: str | None) -> None:
        """An audit event of the actor, now."""
        self.audits.append((self.now, self.actor, action, name, detail))

    def flush(self) -> None:
        """Write every row, a few statements in all."""
        insert_rows(_CREATED, self.created)
        update_rows(_UPDATED, Definition.name, self.updated)
        insert_rows(_VERSION, self.versions)
        insert_rows(_AUDIT, self.audits)


_CREATED = (
    Definition.name, Definition.version, Definition.body, Definition.paused,
    Definition.next_fire_at, Definition.created_at, Definition.updated_at,
    Definition.updated_by, Definition.wire,
)  # fmt: skip
_UPDATED = (
    Definition.version, Definition.body, Definition.paused, Definition.next_fire_at,
    Definition.updated_at, Definition.updated_by, Definition.schedule_error, Definition.wire,
)  # fmt: skip
_VERSION = (
    DefinitionVersion.name, DefinitionVersion.version, DefinitionVersion.body,
    DefinitionVersion.created_at, DefinitionVersion.created_by,
)  # fmt: skip
_AUDIT = (AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.target, AuditEvent.detail)


def save(
    definition: ProcessDefinition, *, actor: str, now: datetime, secrets: SecretBox = NO_KEY
) -> bool:
    """Store `definition`, as a new version if it changed; True if it is new.

    Secret values are stored sealed; a masked one keeps the value stored before.
    """
    (saved,) = save_all([definition], actor=actor, now=now, secrets=secrets, name_errors=False)
    return saved.outcome == "created"


def save_all(
    definitions: Sequence[ProcessDefinition],
    *,
    actor: str,
    now: datetime,
    secrets: SecretBox = NO_KEY,
    name_errors: bool = True,
) -> list[Saved]:
    """Store each of `definitions` (distinct names) as `save` does, all or none, in a few
    statements whatever their number. A DefinitionError names its definition and index,
    unless not `name_errors`."""
    names = [d.process_definition_name for d in definitions]
    # without secrets a body depends on nothing stored: dumped before the write lock
    bodies = {d.process_definition_name: _body(d) for d in definitions if not has_secret_values(d)}
    with write_transaction():
        rows = lock_definitions(names)
        last = _last_versions(names)
        writes = _Writes(actor, now)
        saved = []
        for index, definition in enumerate(definitions):
            name = definition.process_definition_name
            try:
                body = bodies.get(name) or _sealed(definition, rows.get(name), secrets)
                saved.append(_save(definition, body, rows.get(name), last.get(name, 0), writes))
            except DefinitionError as error:
                raise error.within(index, name) if name_errors else error from None
        writes.flush()
    return saved


def _sealed(definition: ProcessDefinition, row: Definition | None, secrets: SecretBox) -> str:
    """The body to store of a definition with secrets: sealed, a masked one kept from `row`."""
    previous = None if row is None else definition_from_json(row.body)
    return _body(secrets.seal(definition, previous))


def _body(definition: ProcessDefinition) -> str:
    """The stored form of `definition`: its canonical JSON without `paused`."""
    return definition_to_json(replace(definition, paused=None))


def _save(
    definition: ProcessDefinition,
    body: str,
    row: Definition | None,
    last_version: int,
    writes: _Writes,
) -> Saved:
    """Plan the writes of one definition stored as `body` (`row` its stored row, if any)."""
    if row is None:
        return _create(definition, body, last_version + 1, writes)
    return _update(row, definition, body, last_version, writes)


def _create(definition: ProcessDefinition, body: str, version: int, writes: _Writes) -> Saved:
    """Insert a definition that does not exist (its version numbers go on from any old one)."""
    name, now = definition.process_definition_name, writes.now
    next_fire = first_fire(definition, now)
    writes.created.append(
        (name, version, body, bool(definition.paused), next_fire, now, now, writes.actor,
         wire_json(definition, body))
    )  # fmt: skip
    writes.version(name, version, body)
    writes.audit("create", name, f"version {version}")
    return Saved(name, version, "created")


def _update(
    row: Definition, definition: ProcessDefinition, body: str, last_version: int, writes: _Writes
) -> Saved:
    """Apply a PUT to an existing definition; an identical body makes no new version."""
    paused = row.paused if definition.paused is None else definition.paused
    if body == row.body and paused == row.paused:
        return Saved(row.name, row.version, "unchanged")
    version, next_fire = row.version, row.next_fire_at
    if body != row.body:
        version = last_version + 1
        writes.version(row.name, version, body)
        if _schedule_of(row.body) != definition.schedule:
            next_fire = first_fire(definition, writes.now)
        writes.audit("update", row.name, f"version {version}")
    if paused != row.paused:
        next_fire = first_fire(definition, writes.now)
        writes.audit("pause" if paused else "resume", row.name, None)
    # a changed definition gets a fresh chance to fire: no schedule error
    writes.updated.append(
        (version, body, paused, next_fire, writes.now, writes.actor, None,
         wire_json(definition, body), row.name)
    )  # fmt: skip
    return Saved(row.name, version, "updated")


def _schedule_of(body: str) -> object:
    """The schedule of a stored definition body."""
    return definition_from_json(body).schedule


def _last_versions(names: Sequence[str]) -> dict[str, int]:
    """The highest version each of `names` ever had (absent: none)."""
    last = fn.MAX(DefinitionVersion.version)
    query = DefinitionVersion.select(DefinitionVersion.name, last).where(
        DefinitionVersion.name.in_(list(names))
    )
    return dict(query.group_by(DefinitionVersion.name).tuples())


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
