"""Tables of Gnomon. All times are aware UTC in Python and naive UTC in the database."""

from __future__ import annotations

from datetime import UTC, datetime

from peewee import (
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

db = DatabaseProxy()

NAME_LENGTH = 128


class UTCDateTimeField(DateTimeField):
    """Stores aware datetimes as naive UTC; reads them back as aware UTC."""

    def db_value(self, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: object) -> datetime | None:
        if isinstance(value, str):  # SQLite stores ISO text
            try:  # far faster than peewee's strptime over several formats, kept as the fallback
                value = datetime.fromisoformat(value)
            except ValueError:
                value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Definition(BaseModel):
    """The current version of a registered process definition."""

    name = CharField(primary_key=True, max_length=NAME_LENGTH)
    version = IntegerField()
    body = TextField()  # canonical wire JSON of the definition
    paused = BooleanField(default=False)
    next_fire_at = UTCDateTimeField(null=True, index=True)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    updated_by = CharField(null=True, max_length=255)


class DefinitionVersion(BaseModel):
    """Every version a definition ever had; rows outlive the definition."""

    name = CharField(max_length=NAME_LENGTH)
    version = IntegerField()
    body = TextField()
    created_at = UTCDateTimeField()
    created_by = CharField(null=True, max_length=255)

    class Meta:
        primary_key = CompositeKey("name", "version")


class Run(BaseModel):
    """One run of a process definition (a `process` on the wire)."""

    id = CharField(primary_key=True, max_length=36)
    definition_name = CharField(max_length=NAME_LENGTH)
    definition_version = IntegerField()
    definition_body = TextField()  # the run's own copy of the definition
    status = CharField(max_length=16)  # queued | running | succeeded | failed
    started_at = UTCDateTimeField()
    ended_at = UTCDateTimeField(null=True)
    trigger = CharField(max_length=255)  # schedule | manual:<token> | retry:<token> | catch-up
    scheduled_for = UTCDateTimeField(null=True)  # the fire time a scheduled run stands for
    only_task = CharField(null=True, max_length=NAME_LENGTH)
    kill_requested_at = UTCDateTimeField(null=True)
    reason = TextField(null=True)

    class Meta:
        indexes = (
            (("definition_name", "scheduled_for"), True),  # a fire makes one run, ever
            (("started_at",), False),
            (("definition_name", "started_at"), False),
            (("status", "started_at"), False),
        )


class Task(BaseModel):
    """One attempt of one task within a run (a `task` on the wire)."""

    id = CharField(primary_key=True, max_length=36)
    run = ForeignKeyField(Run, backref="tasks", on_delete="CASCADE", index=False)
    definition_name = CharField(max_length=NAME_LENGTH)
    task_name = CharField(max_length=NAME_LENGTH)
    attempt = IntegerField()  # 1-based
    status = CharField(max_length=16)
    created_at = UTCDateTimeField()
    not_before = UTCDateTimeField(null=True)  # backoff: may not start earlier
    started_at = UTCDateTimeField(null=True)  # container start
    ended_at = UTCDateTimeField(null=True)
    exit_code = IntegerField(null=True)
    reason = TextField(null=True)
    container_id = CharField(null=True, max_length=128)
    node = CharField(null=True, max_length=255)  # the cluster node it ran on (Swarm)

    class Meta:
        indexes = (
            (("run", "task_name", "attempt"), True),  # an attempt is created once, ever
            (("definition_name", "task_name", "created_at"), False),
            (("status",), False),
            (("created_at",), False),
        )


class LogEntry(BaseModel):
    """A log line of an attempt, from its container's output or its callbacks."""

    id = CharField(primary_key=True, max_length=36)
    task = ForeignKeyField(Task, backref="log_entries", on_delete="CASCADE", index=False)
    when = UTCDateTimeField()
    source = CharField(max_length=255)
    message = TextField()
    seq = IntegerField(default=0)  # keeps container output in order within one timestamp

    class Meta:
        indexes = ((("task", "when", "seq"), False),)


class MetadataEntry(BaseModel):
    """A key/value an attempt reported."""

    id = CharField(primary_key=True, max_length=36)
    task = ForeignKeyField(Task, backref="metadata_entries", on_delete="CASCADE", index=False)
    when = UTCDateTimeField()
    key = CharField(max_length=255)
    value = TextField()

    class Meta:
        indexes = ((("task", "when"), False),)


class TaskReport(BaseModel):
    """The first `/succeed` or `/fail` an attempt sent; later ones are refused."""

    task = ForeignKeyField(Task, primary_key=True, on_delete="CASCADE")
    outcome = CharField(max_length=16)  # succeeded | failed
    reported_at = UTCDateTimeField()
    reported_by = CharField(null=True, max_length=255)


class AuditEvent(BaseModel):
    """Who changed what, and when."""

    at = UTCDateTimeField(index=True)
    actor = CharField(max_length=255)
    action = CharField(max_length=32)
    target = CharField(max_length=255)
    detail = TextField(null=True)


class Setting(BaseModel):
    """Server-wide values that must survive restarts (the task token secret)."""

    key = CharField(primary_key=True, max_length=64)
    value = TextField()


class SchemaVersion(BaseModel):
    """The migrations applied to this database."""

    version = IntegerField(primary_key=True)
    applied_at = UTCDateTimeField()


MODELS: tuple[type[BaseModel], ...] = (
    Definition,
    DefinitionVersion,
    Run,
    Task,
    LogEntry,
    MetadataEntry,
    TaskReport,
    AuditEvent,
    Setting,
    SchemaVersion,
)
