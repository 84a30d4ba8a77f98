"""marshmallow schemas of the wire: query filters, callback bodies and the run/task models.

The same schemas load requests, dump responses and generate the OpenAPI document,
so every rule a request must follow is written here, where OpenAPI can see it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

import definitions.fields
from definitions import limits
from definitions.run_inputs import output_key_problem
from definitions.schemas import ProcessDefinitionSchema
from scheduler.queries import LOG_PAGE_MAX
from scheduler.views import NewLogEntry, NewMetadataEntry

PROCESS_STATUSES = ("running", "succeeded", "failed")
TASK_STATUSES = ("submitted", "runnable", "starting", "pending", "running", "failed", "succeeded")

# PostgreSQL cannot store NUL; the pattern says so in the OpenAPI document too.
NO_NUL = r"^[^\u0000]*$"
SHORT_TEXT_LENGTH = 255  # the width of the columns that hold a source or a key
MAX_MESSAGE_LENGTH = 64 * 1024  # characters of one callback's log message or metadata value
MAX_LIMIT = 2**31 - 1  # larger LIMITs overflow SQLite's integer
MAX_PARAMETER_LENGTH = limits.MAX_ENV_VALUE_CHARS  # a parameter becomes an environment variable
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")  # printable ASCII, 1-255

ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}(:\d{2})?)?", re.ASCII
)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Text(definitions.fields.Text):
    """A string a database can store, optionally with a most length.

    Lone surrogates are refused by the loader only: OpenAPI patterns cannot name them
    portably (ECMA sees UTF-16 units).
    """

    def __init__(
        self,
        *,
        max_length: int | None = None,
        also: Sequence[Callable[[str], Any]] = (),
        **kwargs: Any,
    ) -> None:
        rules: list[Callable[[str], Any]] = [
            validate.Regexp(NO_NUL, error="Must not contain NUL characters.")
        ]
        if max_length is not None:
            rules.append(validate.Length(max=max_length))
        super().__init__(validate=[*rules, *also], **kwargs)


class UTCDateTime(fields.DateTime):
    """ISO-8601 times: dumped as UTC with milliseconds and `Z`; loaded with or without offset.

    A time without an offset is read as UTC.
    """

    def _serialize(
        self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | None:
        if value is None:
            return None
        # isoformat, unlike strftime's %Y, pads years before 1000 to four digits
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not ISO_DATETIME.fullmatch(value):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        try:
            parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            if parsed.tzinfo is None:  # replace() is slow: a callback loads 1,000 of these
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError) as error:  # 31 February, or past year 9999 in UTC
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from error


class QueryInteger(fields.Integer):
    """An integer written in ASCII digits only (Python's int() also takes `1_0` and `٣`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,19}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StatusList(fields.List):
    """A repeatable status parameter; each value may also list several, comma-separated."""

    def __init__(self, statuses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(fields.String(validate=validate.OneOf(statuses)), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        values = value if isinstance(value, list) else [value]
        split = [part for item in values for part in str(item).split(",")]
        return super()._deserialize(split, attr, data, **kwargs)


class LogEntrySchema(Schema):
    """`log_entry`: one log line of a task, as posted by the task and as dumped."""

    log_entry_id = fields.UUID(attribute="id", required=True)
    when = UTCDateTime(required=True)
    source = Text(required=True, max_length=SHORT_TEXT_LENGTH)
    message = Text(required=True, max_length=MAX_MESSAGE_LENGTH)

    @post_load
    def make_entry(self, data: dict[str, Any], **kwargs: Any) -> NewLogEntry:
        """The scheduler's value for a posted log entry."""
        return NewLogEntry(
            id=str(data["id"]), when=data["when"], source=data["source"], message=data["message"]
        )


def _output_name(key: str) -> None:
    """A key `output.<name>` publishes an output, whose name has rules of its own."""
    problem = output_key_problem(key)
    if problem is not None:
        raise ValidationError(problem)


class MetadataEntrySchema(Schema):
    """`metadata_entry`: one key/value a task reported."""

    metadata_entry_id = fields.UUID(attribute="id", required=True)
    when = UTCDateTime(required=True)
    key = Text(required=True, max_length=SHORT_TEXT_LENGTH, also=[_output_name])
    value = Text(required=True, max_length=MAX_MESSAGE_LENGTH)

    @post_load
    def make_entry(self, data: dict[str, Any], **kwargs: Any) -> NewMetadataEntry:
        """The scheduler's value for a posted metadata entry."""
        return NewMetadataEntry(
            id=str(data["id"]), when=data["when"], key=data["key"], value=data["value"]
        )


class TaskSchema(Schema):
    """`task`: one attempt of one task of a run."""

    task_id = fields.UUID(attribute="id", required=True)
    process_id = fields.UUID(required=True)
    process_definition_name = fields.String(attribute="definition_name", required=True)
    task_definition_name = fields.String(attribute="task_name", required=True)
    start_time = UTCDateTime(required=True)
    end_time = UTCDateTime(attribute="ended_at", allow_none=True)
    previous_attempt_count = fields.Integer(required=True)
    log_entries = fields.List(fields.Nested(LogEntrySchema), required=True, metadata={
        "description": "the newest log entries (at most 100 and 64 KiB of messages); "
        "read all of them with GET /api/tasks/{task_id}/log_entries",
    })  # fmt: skip
    log_entry_count = fields.Integer(required=True, metadata={
        "description": "how many log entries the attempt has in all; more than "
        "`log_entries` holds when only the newest are shown",
    })  # fmt: skip
    metadata_entries = fields.List(fields.Nested(MetadataEntrySchema), required=True)
    # Sundial's ECS bookkeeping: containers here need none, so it is always empty
    execution_state = fields.List(fields.Nested(MetadataEntrySchema), dump_default=list)
    status = fields.String(required=True, validate=validate.OneOf(TASK_STATUSES))
    attempt = fields.Integer(required=True, metadata={"description": "1-based attempt number"})
    exit_code = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    outputs = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "named outputs the attempt published (metadata `output.*`)"},
    )
    node = fields.String(
        allow_none=True,
        metadata={"description": "the cluster node the attempt ran on (Swarm executor only)"},
    )


class DeliverySchema(Schema):
    """One notification of a run and how its delivery goes."""

    id = fields.UUID(required=True, metadata={"description": "also the webhook-id it carries"})
    kind = fields.String(required=True, validate=validate.OneOf(("email", "pagerduty", "webhook")))
    target = fields.String(
        required=True, metadata={"description": "email address, or scheme://host of a URL"}
    )
    action = fields.String(
        required=True,
        validate=validate.OneOf(("notify", "trigger", "resolve")),
        metadata={"description": "PagerDuty's event action; `notify` for email and webhooks"},
    )
    state = fields.String(required=True, validate=validate.OneOf(("pending", "sent", "failed")))
    attempts = fields.Integer(required=True, metadata={"description": "tries made so far"})
    last_error = fields.String(allow_none=True)
    created_at = UTCDateTime(required=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    sent_at = UTCDateTime(allow_none=True)


class NotificationTestSchema(Schema):
    """How a test message through one notification of a definition went."""

    kind = fields.String(required=True, validate=validate.OneOf(("email", "pagerduty", "webhook")))
    target = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("sent", "failed")))
    last_error = fields.String(allow_none=True)


class ProcessSchema(Schema):
    """`process`: one run of a process definition, with its task attempts."""

    process_id = fields.UUID(attribute="id", required=True)
    process_definition_name = fields.String(attribute="definition_name", required=True)
    start_time = UTCDateTime(attribute="started_at", required=True)
    end_time = UTCDateTime(attribute="ended_at", allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(PROCESS_STATUSES))
    task = fields.List(fields.Nested(TaskSchema), attribute="tasks", required=True)
    trigger = fields.String(
        required=True,
        metadata={
            "description": "what last started the run: `schedule`, `manual:<token name>` "
            "or, once retried, `retry:<token name>`"
        },
    )
    reason = fields.String(allow_none=True)
    notifications = fields.List(
        fields.Nested(DeliverySchema),
        dump_default=list,
        metadata={"description": "what the run's end notified, and how each delivery went"},
    )
    parameters = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "the run's parameter values (defaults filled in)"},
    )
    due_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "the time a scheduled run was due; null for other runs"},
    )
    created_at = UTCDateTime(
        required=True,
        metadata={"description": "when the run was created; a queued run starts later"},
    )
    process_definition_version = fields.Integer(
        attribute="definition_version",
        metadata={"description": "the version of the definition the run started from"},
    )


class DefinitionStateSchema(Schema):
    """What the server adds to a registered definition: its version and scheduling state.

    Read-only: a PUT may carry these fields back (GET→PUT round-trips) and they are ignored.
    """

    version = fields.Integer(dump_only=True, metadata={"description": "1, then +1 per change"})
    next_fire_at = UTCDateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "when the schedule fires next; null if paused or unscheduled"},
    )
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)
    updated_by = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "who made the last change"}
    )
    schedule_error = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "why the schedule's last fire failed (it is retried every minute and "
        "after any change); null while it works",
    })  # fmt: skip


class RegisteredDefinitionSchema(ProcessDefinitionSchema, DefinitionStateSchema):
    """`process_definition` as the API returns it: the definition and its state."""


class VersionSchema(Schema):
    """One version of a definition in GET .../versions: who made it, when."""

    version = fields.Integer(required=True)
    created_at = UTCDateTime(required=True)
    created_by = fields.String(allow_none=True)


MAX_APPLIED = 1000  # definitions in one POST /api/process_definitions/_apply


class AppliedSchema(Schema):
    """One definition of POST /api/process_definitions/_apply, and what the call did to it."""

    process_definition_name = fields.String(required=True, attribute="name")
    version = fields.Integer(required=True, metadata={"description": "its version now"})
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(["created", "updated", "unchanged"]),
        metadata={"description": "`updated`: a new version, or only `paused` changed"},
    )


class VersionDetailSchema(VersionSchema):
    """GET .../versions/{n}: the version and its definition (secret values masked)."""

    process_definition = fields.Nested(
        ProcessDefinitionSchema, attribute="definition", required=True
    )


class AuditEventSchema(Schema):
    """`audit_event`: who changed or started what, and when."""

    audit_id = fields.Integer(attribute="id", required=True, metadata={
        "description": "increasing; pass the last one seen as before_id for the next page",
    })  # fmt: skip
    at = UTCDateTime(required=True)
    actor = fields.String(required=True, metadata={
        "description": "the token's name, `anonymous` without API tokens, `task:<id>`",
    })  # fmt: skip
    action = fields.String(required=True, metadata={
        "description": "create, update, delete, pause, resume, trigger, kill or retry",
    })  # fmt: skip
    target = fields.String(required=True, metadata={
        "description": "a definition name, or a process id for kill and retry",
    })  # fmt: skip
    detail = fields.String(allow_none=True)


class AuditFilterSchema(Schema):
    """Query parameters of GET /api/audit."""

    class Meta:
        unknown = EXCLUDE

    actor = Text(max_length=SHORT_TEXT_LENGTH)
    target = Text(max_length=SHORT_TEXT_LENGTH)
    since = UTCDateTime(metadata={"description": "events at or after this time"})
    before_id = QueryInteger(validate=validate.Range(min=1, max=2**63 - 1), metadata={
        "description": "only events older than this audit_id (the next page)",
    })  # fmt: skip
    limit = QueryInteger(validate=validate.Range(min=1, max=MAX_LIMIT), metadata={
        "description": "most events to return; default: the MAX_RECORDS_DEFAULT setting (100)",
    })  # fmt: skip


class ProcessFilterSchema(Schema):
    """Query parameters of GET /api/processes."""

    class Meta:
        unknown = EXCLUDE  # clients may add cache-busters and the like

    process_definition_name = Text()
    start_time = UTCDateTime(metadata={"description": "runs started at or after this time"})
    end_time = UTCDateTime(metadata={"description": "runs started at or before this time"})
    max_records = QueryInteger(validate=validate.Range(min=1, max=MAX_LIMIT), metadata={
        "description": "most runs to return; default: the MAX_RECORDS_DEFAULT setting (100)",
    })  # fmt: skip
    allowed_statuses = StatusList(PROCESS_STATUSES, metadata={
        "description": "repeatable; a value may also list statuses separated by commas",
    })  # fmt: skip


class TaskFilterSchema(Schema):
    """Query parameters of GET /api/tasks."""

    class Meta:
        unknown = EXCLUDE

    process_definition_name = Text()
    task_definition_name = Text()
    allowed_statuses = StatusList(TASK_STATUSES, metadata={
        "description": "repeatable; a value may also list statuses separated by commas",
    })  # fmt: skip
    start_time = UTCDateTime(metadata={"description": "attempts started at or after this time"})
    end_time = UTCDateTime(metadata={"description": "attempts started at or before this time"})
    limit = QueryInteger(validate=validate.Range(min=1, max=MAX_LIMIT), metadata={
        "description": "most attempts to return; default: the MAX_RECORDS_DEFAULT setting (100)",
    })  # fmt: skip


class LogPageSchema(Schema):
    """Query parameters of GET /api/tasks/{task_id}/log_entries."""

    class Meta:
        unknown = EXCLUDE

    after = fields.UUID(metadata={
        "description": "the log_entry_id of the last entry already read; absent: from the start",
    })  # fmt: skip
    limit = QueryInteger(validate=validate.Range(min=1, max=LOG_PAGE_MAX), metadata={
        "description": f"most entries to return (default and maximum {LOG_PAGE_MAX})",
    })  # fmt: skip


class DefinitionPageSchema(Schema):
    """Query parameters of GET /api/process_definitions: absent, every definition."""

    class Meta:
        unknown = EXCLUDE

    limit = QueryInteger(validate=validate.Range(min=1, max=MAX_LIMIT), metadata={
        "description": "most definitions to return, by name; the `Link` header names the next page",
    })  # fmt: skip
    after = Text(metadata={"description": "return the definitions named after this name"})


class TriggerArgsSchema(Schema):
    """Query parameters of POST /api/process_definitions/{name}/trigger."""

    class Meta:
        unknown = EXCLUDE

    task_definition_name = Text(metadata={"description": "run only this task, ignoring its deps"})


class TriggerBodySchema(Schema):
    """The optional JSON body of POST /api/process_definitions/{name}/trigger."""

    parameters = fields.Dict(
        keys=Text(max_length=SHORT_TEXT_LENGTH),
        values=Text(max_length=MAX_PARAMETER_LENGTH),
        load_default=dict,
        metadata={"description": "values of the definition's parameters, by name (strings)"},
    )


class ErrorSchema(Schema):
    """The body of every 4xx and 5xx response."""

    error = fields.String(required=True, metadata={"description": "machine-readable code"})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={
        "description": "`fields` maps dotted paths to problems for validation errors",
    })  # fmt: skip


def load_query(schema: Schema, args: Any) -> dict[str, Any]:
    """Query parameters (a werkzeug MultiDict) loaded by `schema`; lists keep every value."""
    data: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if name in args:
            data[name] = args.getlist(name) if isinstance(field, fields.List) else args.get(name)
    return schema.load(data)


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID in its 8-4-4-4-12 hexadecimal form."""
    return re.fullmatch(UUID_PATTERN, value) is not None
