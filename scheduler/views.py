"""Plain values the scheduler hands to `app`: what is stored, not how it is stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

from definitions import (
    ProcessDefinition,
    definition_from_json,
    definition_to_json,
    mask_secret_values,
)
from definitions.run_inputs import output_name


@dataclass(frozen=True)
class DefinitionView:
    """A registered definition with its scheduling state. Its definition is parsed from the
    stored JSON when first asked for: a listing dumps the stored `wire` instead."""

    stored: str  # the stored body: canonical wire JSON, secret values sealed, no `paused`
    version: int
    paused: bool
    next_fire_at: datetime | None  # None while paused or without a schedule
    created_at: datetime
    updated_at: datetime
    updated_by: str | None
    schedule_error: str | None = None  # why its last scheduled fire failed, if it did
    wire: str | None = None  # what GET shows of `stored`, as stored with it (None: not stored)

    @cached_property
    def masked(self) -> ProcessDefinition:
        """The stored definition with its secret values masked (`paused` as stored: None)."""
        return mask_secret_values(definition_from_json(self.stored))

    @cached_property
    def definition(self) -> ProcessDefinition:
        """The definition, secret values masked, with its `paused` flag."""
        return replace(self.masked, paused=self.paused)

    @cached_property
    def body(self) -> str:
        """The canonical wire JSON of `masked` (without `paused`), for dumping."""
        return wire_json(definition_from_json(self.stored), self.stored)


def wire_json(definition: ProcessDefinition, body: str) -> str:
    """What GET shows of `definition` stored as `body` (canonical JSON without `paused`):
    `body` itself, or its JSON with the secret values masked if it has any."""
    masked = mask_secret_values(definition)
    return body if masked is definition else definition_to_json(replace(masked, paused=None))


@dataclass(frozen=True)
class VersionView:
    """One stored version of a definition (secret values masked), and who made it when."""

    name: str
    version: int
    created_at: datetime
    created_by: str | None
    definition: ProcessDefinition | None = None  # absent in lists of versions


@dataclass(frozen=True)
class AuditView:
    """One audit event: who did what to which target, and when."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str | None


@dataclass(frozen=True)
class AuditFilter:
    """Which audit events to list, newest first; `before_id` pages back from an event."""

    actor: str | None = None
    target: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class LogEntryView:
    """A stored log entry."""

    id: str
    when: datetime
    source: str
    message: str


@dataclass(frozen=True)
class MetadataEntryView:
    """A stored metadata entry."""

    id: str
    when: datetime
    key: str
    value: str


@dataclass(frozen=True)
class TaskView:
    """One attempt of one task."""

    id: str
    process_id: str
    definition_name: str
    task_name: str
    attempt: int
    status: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    reason: str | None
    node: str | None = None  # the cluster node it ran on (Swarm executor)
    log_entries: tuple[LogEntryView, ...] = ()  # the newest only, when there are many
    metadata_entries: tuple[MetadataEntryView, ...] = ()
    log_entry_count: int = 0  # how many log entries the attempt has in all

    @property
    def start_time(self) -> datetime:
        """When the container started, or when the attempt was created if it has not."""
        return self.started_at or self.created_at

    @property
    def outputs(self) -> dict[str, str]:
        """The named outputs the attempt published (metadata `output.<name>`; the last wins)."""
        named = ((output_name(e.key), e.value) for e in self.metadata_entries)
        return {name: value for name, value in named if name is not None}

    @property
    def previous_attempt_count(self) -> int:
        """How many attempts of this task came before this one in the run."""
        return self.attempt - 1


@dataclass(frozen=True)
class DeliveryView:
    """A notification of a run: where to, and how its delivery goes."""

    id: str
    kind: str
    target: str
    action: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None  # while pending
    sent_at: datetime | None


@dataclass(frozen=True)
class RunView:
    """One run of a definition, with its attempts."""

    id: str
    definition_name: str
    definition_version: int
    status: str
    started_at: datetime
    ended_at: datetime | None
    trigger: str
    reason: str | None
    due_at: datetime | None = None  # the fire time a scheduled run stands for
    created_at: datetime | None = None  # when the run was created (it may start later)
    tasks: tuple[TaskView, ...] = ()
    notifications: tuple[DeliveryView, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; `statuses` are wire statuses, empty for all."""

    definition_name: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    statuses: frozenset[str] = frozenset()
    limit: int | None = None


@dataclass(frozen=True)
class TaskFilter:
    """Which attempts to list; `statuses` empty for all."""

    definition_name: str | None = None
    task_name: str | None = None
    statuses: frozenset[str] = frozenset()
    start_time: datetime | None = None
    end_time: datetime | None = None
    limit: int | None = None


class NewLogEntry(NamedTuple):
    """A log entry reported by a task (a tuple: a callback makes up to 1,000 of them, and a
    tuple is made in half the time of a frozen dataclass)."""

    id: str
    when: datetime
    source: str
    message: str


class NewMetadataEntry(NamedTuple):
    """A metadata entry reported by a task (a tuple, as NewLogEntry)."""

    id: str
    when: datetime
    key: str
    value: str


@dataclass(frozen=True)
class Health:
    """Whether the service can do its work, check by check."""

    ok: bool
    checks: dict[str, str]
