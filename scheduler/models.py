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
            utc = value.astimezone(UTC)
            # time() drops the zone; replace(tzinfo=None) takes 4 times as long, and a
            # callback stores up to 1,000 of these
            value = datetime.combine(utc.date(), utc.time())
        return super().db_value(value)

    def python_value(self, value: object) -> datetime | None:
        if isinstance(value, str):  # SQLite stores ISO text, of naive UTC times
            try:  # far faster than peewee's strptime over several formats, kept as the fallback
                return datetime.fromisoformat(value + "+00:00")
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
    schedule_error = TextField(null=True)  # why its last scheduled fire failed, until one works
    # What GET shows of `body` (secret values masked, no `paused` or state), as JSON written
    # with the version, so that listings need no dump; null if last written before schema 9.
    wire = TextField(null=True)


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
    created_at = UTCDateTimeField(null=True)  # when the run was created (null: before v8)
    only_task = CharField(null=True, max_length=NAME_LENGTH)
    kill_requested_at = UTCDateTimeField(null=True)
    reason = TextField(null=True)
    parameters = TextField(null=True)  # JSON object of the run's parameter values

    class Meta:
        indexes = (
            (("definition_name", "scheduled_for"), True),  # a fire makes one run, ever
            (("started_at",), False),
            (("definition_name", "started_at"), False),
            (("status", "started_at"), False),
            (("definition_name", "ended_at"), False),  # a finished run's predecessors
        )


class TriggerKey(BaseModel):
    """An `Idempotency-Key` a trigger carried, and the run it started."""

    definition_name = CharField(max_length=NAME_LENGTH)
    key = CharField(max_length=255)
    run_id = CharField(max_length=36)
    created_at = UTCDateTimeField()

    class Meta:
        indexes = ((("definition_name", "key"), True),)  # one run per key, however they race


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
    instance = CharField(null=True, max_length=64)  # the instance that started (or adopted) it
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


class Delivery(BaseModel):
    """One notification of a finished run to one destination: the outbox the sender drains.

    Written in the transaction that ends the run; the message itself is built when sent,
    from the run and its copy of the definition (secrets are never copied here).
    """

    id = CharField(primary_key=True, max_length=36)  # also the webhook-id and Message-ID
    run = ForeignKeyField(Run, backref="deliveries", on_delete="CASCADE")
    position = IntegerField()  # which of the run's definition's notifications
    kind = CharField(max_length=16)  # email | pagerduty | webhook
    target = CharField(max_length=255)  # where to, shown to readers: never a secret
    action = CharField(max_length=16)  # notify | trigger | resolve
    status = CharField(max_length=16)  # the run's status when it ended
    previous_status = CharField(null=True, max_length=16)
    state = CharField(max_length=16)  # pending | sent | failed (given up)
    attempts = IntegerField(default=0)
    created_at = UTCDateTimeField()
    due_at = UTCDateTimeField()  # next try; while one is under way, when its claim lapses
    sent_at = UTCDateTimeField(null=True)
    last_error = TextField(null=True)

    class Meta:
        indexes = ((("state", "due_at"), False),)


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


class Instance(BaseModel):
    """A running Gnomon instance's lease: it owns the attempts it started while it renews it."""

    name = CharField(primary_key=True, max_length=64)
    holder = CharField(max_length=255)  # host and process id of the process holding the name
    started_at = UTCDateTimeField()
    heartbeat_at = UTCDateTimeField()


class SchemaVersion(BaseModel):
    """The migrations applied to this database."""

    version = IntegerField(primary_key=True)
    applied_at = UTCDateTimeField()


MODELS: tuple[type[BaseModel], ...] = (
    Definition,
    DefinitionVersion,
    Run,
    TriggerKey,
    Task,
    LogEntry,
    MetadataEntry,
    TaskReport,
    AuditEvent,
    Setting,
    Instance,
    SchemaVersion,
    Delivery,
)
