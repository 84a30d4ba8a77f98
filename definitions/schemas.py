"""Marshmallow schemas: wire JSON of a process definition to the dataclasses and back.

Every simple constraint lives on a field, so the OpenAPI document that apispec generates
from these schemas carries it. Cross-field rules (the task graph) live in `dag`.

Unknown fields are refused (RAISE), as typos in a definition silently ignored would run the
wrong job. Sundial's own clients only send fields of its spec, so this costs them nothing;
clients in other languages often send `null` for an optional field, so `null` is read as
"absent" (and gets the default) wherever a field is optional.
"""

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_dump,
    pre_load,
    validates_schema,
)
from marshmallow.validate import Length, OneOf, Range

from . import limits
from .errors import DefinitionError
from .fields import FullMatch, StrictBoolean, StrictFloat, StrictInteger, Text
from .model import (
    ContinuousSchedule,
    CronSchedule,
    DockerImageCommand,
    EmailNotification,
    EnvironmentVariable,
    MisfirePolicy,
    Mount,
    MountType,
    NotifyWhen,
    OverlapAction,
    PagerdutyNotification,
    Parameter,
    ProcessDefinition,
    PullPolicy,
    TaskDefinition,
    TaskDependency,
    WebhookNotification,
)
from .quartz import compile_cron
from .schedule import zone

_NAME = FullMatch(
    limits.NAME_PATTERN,
    error="Must be 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)
_NO_NUL = FullMatch(limits.NO_NUL_PATTERN, error="Must not contain NUL characters.")
_URL = FullMatch(limits.URL_PATTERN, error="Must be an http:// or https:// URL.")
_SECONDS = Range(min=0, max=limits.MAX_INT)
_ABSOLUTE_PATH = FullMatch(
    limits.ABSOLUTE_PATH_PATTERN, error="Must be an absolute path without '..' segments."
)
_PATH = [Length(max=limits.MAX_PATH_CHARS), _ABSOLUTE_PATH]
_VOLUME_SOURCE = "Must be a volume name (letters, digits, '_', '.', '-'); a host path needs 'bind'."
_BIND_SOURCE = "Must be an absolute host path without '..' segments."
# Options a task may never set, each with the rule that forbids it.
_NEVER_ALLOWED = {
    "privileged": "privileged containers are never allowed: a task must not be root on the host",
    "cap_add": "adding capabilities is never allowed: a task may only drop them (cap_drop)",
    "devices": "host devices are never allowed in a task container",
    "security_opt": "security options are never allowed: they can turn confinement off",
}
# apispec copies these onto the property of each union, so OpenAPI says "exactly one key".
_ONE_KEY = {"minProperties": 1, "maxProperties": 1}


def _optional(field: type[fields.Field], default: Any = None, **kwargs: Any) -> fields.Field:
    """An optional field: absent or null loads as `default`."""
    return field(load_default=default, allow_none=True, **kwargs)


def _text(*validators: Any, **kwargs: Any) -> Text:
    """A required string field."""
    return Text(required=True, validate=list(validators), **kwargs)


def _choice(enum: type, default: str) -> fields.Field:
    """An optional string field restricted to an enum's values."""
    return _optional(Text, default, validate=OneOf([member.value for member in enum]))


# Read-only fields the API adds to a registered definition (its scheduling state).
SERVER_FIELDS = frozenset(
    {"version", "next_fire_at", "created_at", "updated_at", "updated_by", "schedule_error"}
)


class WireSchema(Schema):
    """Base of all schemas here: strict about unknown keys, null as absent, None omitted."""

    class Meta:
        unknown = RAISE

    # Gnomon's additive fields left out of a dump while at their default, so that a
    # definition that does not use them reads back (and is stored) exactly as before.
    quiet_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nullable = frozenset(
            field.data_key or name for name, field in self.load_fields.items() if field.allow_none
        )

    @pre_load
    def _null_means_absent(self, data: Any, **kwargs: Any) -> Any:
        """Drop optional keys whose value is null, so their defaults apply."""
        if not isinstance(data, Mapping):
            return data
        return {k: v for k, v in data.items() if v is not None or k not in self._nullable}

    @post_dump
    def _omit_none(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Canonical output leaves out fields that have no value, or a quiet default."""
        quiet = self.quiet_defaults
        return {
            key: value
            for key, value in data.items()
            if value is not None and (key not in quiet or value != quiet[key])
        }


def _build(cls: type, data: dict[str, Any]) -> Any:
    """Build a frozen dataclass, turning loaded lists into tuples."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class UnionSchema(WireSchema):
    """A union on the wire: an object with exactly one key, which names the type."""

    kind: ClassVar[str]
    types: ClassVar[dict[type, str]]
    unsupported: ClassVar[frozenset[str]] = frozenset()

    @pre_load
    def _check_type_keys(self, data: Any, **kwargs: Any) -> Any:
        """Name unsupported and unknown type keys clearly, instead of 'Unknown field'."""
        data = self.normalize(data)
        if isinstance(data, Mapping):
            errors = {key: [self._type_problem(key)] for key in data if key not in self.fields}
            if errors:
                raise ValidationError(errors)
        return data

    def normalize(self, data: Any) -> Any:
        """Rewrite accepted shorthand forms into the union form."""
        return data

    def _type_problem(self, key: str) -> str:
        """Why a type key is refused."""
        expected = ", ".join(self.fields)
        if key in self.unsupported:
            return f"{self.kind} type {key!r} is not supported here; use one of: {expected}."
        return f"Unknown {self.kind} type {key!r}; expected one of: {expected}."

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A union names exactly one type."""
        if len(data) != 1:
            raise ValidationError(f"Give exactly one {self.kind} type: {', '.join(self.fields)}.")

    @post_load
    def _unwrap(self, data: dict[str, Any], **kwargs: Any) -> Any:
        """The loaded value is the one member."""
        return next(iter(data.values()))

    @pre_dump
    def _wrap(self, value: Any, **kwargs: Any) -> dict[str, Any]:
        """Dump a member under its type key."""
        return {self.types[type(value)]: value}


class EnvironmentVariableSchema(WireSchema):
    """`environment_variable`."""

    variable_name = _text(
        FullMatch(limits.ENV_NAME_PATTERN, error="Must be a shell variable name."),
        Length(max=limits.MAX_TEXT_CHARS),
    )
    value = _optional(
        Text,
        validate=[Length(max=limits.MAX_ENV_VALUE_CHARS), _NO_NUL],
        metadata={"description": "required unless value_from_env is given; secret: masked"},
    )
    secret = _optional(
        StrictBoolean,
        False,
        metadata={"description": "write-only: stored encrypted, read back as ********"},
    )
    value_from_env = _optional(
        Text,
        validate=[
            FullMatch(limits.ENV_NAME_PATTERN, error="Must be a shell variable name."),
            Length(max=limits.MAX_TEXT_CHARS),
        ],
        metadata={
            "description": "take the value from this variable of the service's own "
            "environment when an attempt starts (it never travels through the API)"
        },
    )

    @validates_schema
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A value comes either inline or from the service's environment."""
        if data.get("value") is None and data.get("value_from_env") is None:
            raise ValidationError({"value": ["Give value, or value_from_env."]})
        if data.get("value") is not None and data.get("value_from_env") is not None:
            raise ValidationError({"value_from_env": ["Give value or value_from_env, not both."]})

    @post_dump
    def _omit_not_secret(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """`secret: false` is left out, so bodies stored before it existed stay canonical."""
        if data.get("secret") is False:
            del data["secret"]
        return data

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> EnvironmentVariable:
        return _build(EnvironmentVariable, data)


class MountSchema(WireSchema):
    """`mount`: a named volume or a host path (checked against GNOMON_ALLOWED_BIND_PATHS)."""

    quiet_defaults = {"read_only": True}

    type = _text(OneOf([member.value for member in MountType]))
    source = _text(Length(min=1, max=limits.MAX_PATH_CHARS), _NO_NUL)
    target = _text(*_PATH)
    read_only = _optional(StrictBoolean, True)

    @validates_schema
    def _source_fits_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A volume's source is a volume name; a bind's an absolute path."""
        if data["type"] == MountType.VOLUME:
            rule, problem = limits.VOLUME_NAME_PATTERN, _VOLUME_SOURCE
        else:
            rule, problem = limits.ABSOLUTE_PATH_PATTERN, _BIND_SOURCE
        if re.fullmatch(rule, data["source"]) is None:
            raise ValidationError({"source": [problem]})

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Mount:
        return _build(Mount, data)


class DockerImageCommandSchema(WireSchema):
    """`docker_image_command`."""

    quiet_defaults = {"mounts": [], "labels": {}, "read_only": False, "cap_drop": []}

    image = _text(Length(min=1, max=limits.MAX_IMAGE_CHARS), _NO_NUL)
    tag = _optional(Text, "latest", validate=[Length(min=1, max=limits.MAX_TAG_CHARS), _NO_NUL])
    command = fields.List(
        Text(validate=[Length(max=limits.MAX_COMMAND_ITEM_CHARS), _NO_NUL]),
        required=True,
        validate=Length(max=limits.MAX_COMMAND_ITEMS),
    )
    memory = _optional(StrictInteger, validate=Range(min=limits.MIN_MEMORY_MIB, max=limits.MAX_INT))
    cpu = _optional(StrictInteger, validate=Range(min=limits.MIN_CPU_SHARES, max=limits.MAX_INT))
    task_role_arn = _optional(
        Text, data_key="taskRoleArn", validate=[Length(max=limits.MAX_TEXT_CHARS), _NO_NUL]
    )
    log_paths = _optional(
        fields.List,
        (),
        cls_or_instance=Text(validate=[Length(min=1, max=limits.MAX_LOG_PATH_CHARS), _NO_NUL]),
        validate=Length(max=limits.MAX_LOG_PATHS),
    )
    environment_variables = _optional(
        fields.List,
        (),
        cls_or_instance=fields.Nested(EnvironmentVariableSchema),
        validate=Length(max=limits.MAX_ENV_VARS),
    )
    pull_policy = _optional(
        Text,
        validate=OneOf([member.value for member in PullPolicy]),
        metadata={
            "description": "default: always for tag latest (at most once per pull "
            "interval per image), if_not_present for any other tag"
        },
    )
    mounts = _optional(
        fields.List,
        (),
        cls_or_instance=fields.Nested(MountSchema),
        validate=Length(max=limits.MAX_MOUNTS),
    )
    user = _optional(
        Text, validate=FullMatch(limits.USER_PATTERN, error="Must be a user or user:group.")
    )
    working_dir = _optional(Text, validate=_PATH)
    entrypoint = _optional(
        fields.List,
        cls_or_instance=Text(validate=[Length(max=limits.MAX_COMMAND_ITEM_CHARS), _NO_NUL]),
        validate=Length(min=1, max=limits.MAX_COMMAND_ITEMS),
    )
    labels = _optional(
        fields.Dict,
        dict,
        keys=Text(validate=FullMatch(limits.LABEL_KEY_PATTERN, error="Must be a label key.")),
        values=Text(validate=[Length(max=limits.MAX_LABEL_VALUE_CHARS), _NO_NUL]),
        validate=Length(max=limits.MAX_LABELS),
    )
    network = _optional(
        Text,
        validate=FullMatch(
            limits.NETWORK_PATTERN,
            error="Must be a network name, bridge, host or none; 'container:' modes are refused.",
        ),
    )
    shm_size = _optional(StrictInteger, validate=Range(min=1, max=limits.MAX_INT))
    read_only = _optional(StrictBoolean, False)
    cap_drop = _optional(
        fields.List,
        (),
        cls_or_instance=Text(
            validate=FullMatch(limits.CAPABILITY_PATTERN, error="Must be a capability name.")
        ),
        validate=Length(max=limits.MAX_CAP_DROP),
    )

    @pre_load
    def _refuse_never_allowed(self, data: Any, **kwargs: Any) -> Any:
        """Name the rule that forbids an option, instead of 'Unknown field'."""
        if isinstance(data, Mapping):
            refused = {key: [rule] for key, rule in _NEVER_ALLOWED.items() if key in data}
            if refused:
                raise ValidationError(refused)
        return data

    @validates_schema
    def _own_labels(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Labels under `gnomon.` are Gnomon's own: it finds its containers by them."""
        for key in data["labels"]:
            if key.lower().startswith(limits.RESERVED_LABEL_PREFIX):
                problem = f"labels starting with {limits.RESERVED_LABEL_PREFIX!r} are reserved"
                raise ValidationError({"labels": {key: [problem]}})

    @validates_schema
    def _unique_variables(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Docker would silently keep only one of two variables with the same name."""
        seen: set[str] = set()
        for index, variable in enumerate(data["environment_variables"]):
            if variable.variable_name in seen:
                problem = f"Duplicate variable {variable.variable_name!r}."
                raise ValidationError(
                    {"environment_variables": {index: {"variable_name": [problem]}}}
                )
            seen.add(variable.variable_name)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> DockerImageCommand:
        return _build(DockerImageCommand, data)


class ExecutableSchema(UnionSchema):
    """`task_executable`: only `docker_image_command` runs here."""

    kind = "executable"
    types = {DockerImageCommand: "docker_image_command"}
    unsupported = frozenset({"shell_script_command", "batch_image_command", "emr_command"})

    docker_image_command = fields.Nested(DockerImageCommandSchema)


class ParameterSchema(WireSchema):
    """`parameter`: a run parameter, given at trigger time or taken from its default."""

    name = _text(
        FullMatch(limits.PARAMETER_NAME_PATTERN, error="Must be a shell variable name."),
        Length(max=limits.MAX_TEXT_CHARS),
    )
    default = _optional(Text, "", validate=[Length(max=limits.MAX_ENV_VALUE_CHARS), _NO_NUL])
    required = _optional(StrictBoolean, False)
    description = _optional(Text, validate=[Length(max=limits.MAX_TEXT_CHARS), _NO_NUL])

    @validates_schema
    def _required_or_default(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A required parameter is always given, so a default would never be used."""
        if data["required"] and data["default"]:
            raise ValidationError({"default": ["a required parameter has no default"]})

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Parameter:
        return _build(Parameter, data)


class TaskDependencySchema(WireSchema):
    """`task_dependency`."""

    task_definition_name = _text(_NAME)
    success_required = _optional(StrictBoolean, True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TaskDependency:
        return _build(TaskDependency, data)


class TaskDefinitionSchema(WireSchema):
    """`task_definition`."""

    task_definition_name = _text(_NAME)
    executable = fields.Nested(ExecutableSchema, required=True, metadata=_ONE_KEY)
    dependencies = _optional(
        fields.List,
        (),
        cls_or_instance=fields.Nested(TaskDependencySchema),
        validate=Length(max=limits.MAX_TASKS),
    )
    max_attempts = _optional(StrictInteger, 1, validate=Range(min=1, max=limits.MAX_ATTEMPTS))
    max_runtime_seconds = _optional(StrictInteger, validate=_SECONDS)
    backoff_base_seconds = _optional(StrictInteger, 0, validate=_SECONDS)
    backoff_exponent = _optional(StrictFloat, 1.0, validate=Range(min=limits.MIN_BACKOFF_EXPONENT))
    require_explicit_success = _optional(StrictBoolean, False)
    placement = _optional(
        fields.List,
        cls_or_instance=Text(
            validate=[
                Length(max=limits.MAX_PLACEMENT_CHARS),
                FullMatch(
                    limits.PLACEMENT_PATTERN,
                    error="Must be a swarm constraint such as node.labels.disk==ssd.",
                ),
            ]
        ),
        validate=Length(max=limits.MAX_PLACEMENT),
        metadata={
            "description": "Swarm placement constraints (`node.labels.disk==ssd`); "
            "only the Swarm executor honours them"
        },
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TaskDefinition:
        return _build(TaskDefinition, data)


class CronScheduleSchema(WireSchema):
    """`cron_schedule`: Quartz fields (day_of_week 1 = Sunday) and an IANA time zone."""

    minutes = _text(Length(min=1, max=limits.MAX_CRON_FIELD_CHARS))
    hours = _text(Length(min=1, max=limits.MAX_CRON_FIELD_CHARS))
    day_of_month = _text(Length(min=1, max=limits.MAX_CRON_FIELD_CHARS))
    month = _text(Length(min=1, max=limits.MAX_CRON_FIELD_CHARS))
    day_of_week = _text(Length(min=1, max=limits.MAX_CRON_FIELD_CHARS))
    time_zone = _optional(Text, "UTC", validate=Length(min=1, max=limits.MAX_TIME_ZONE_CHARS))

    @validates_schema
    def _valid_cron(self, data: dict[str, Any], **kwargs: Any) -> None:
        """The fields must form a Quartz expression that fires, in a known zone."""
        try:
            zone(data["time_zone"])
            compile_cron(
                data["minutes"],
                data["hours"],
                data["day_of_month"],
                data["month"],
                data["day_of_week"],
            )
        except DefinitionError as error:
            raise ValidationError(error.fields) from None

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> CronSchedule:
        return _build(CronSchedule, data)


class ContinuousScheduleSchema(WireSchema):
    """`continuous_schedule`."""

    buffer_seconds = _optional(StrictInteger, 0, validate=_SECONDS)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ContinuousSchedule:
        return _build(ContinuousSchedule, data)


class ScheduleSchema(UnionSchema):
    """`process_schedule`."""

    kind = "schedule"
    types = {CronSchedule: "cron_schedule", ContinuousSchedule: "continuous_schedule"}

    cron_schedule = fields.Nested(CronScheduleSchema)
    continuous_schedule = fields.Nested(ContinuousScheduleSchema)


class EmailSchema(WireSchema):
    """`email` notification."""

    name = _text(Length(min=1, max=limits.MAX_TEXT_CHARS), _NO_NUL)
    email = _text(Length(min=1, max=limits.MAX_TEXT_CHARS), _NO_NUL)
    notify_when = _choice(NotifyWhen, NotifyWhen.ON_STATE_CHANGE_AND_FAILURES.value)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> EmailNotification:
        return _build(EmailNotification, data)


class PagerdutySchema(WireSchema):
    """`pagerduty` notification."""

    service_key = _text(Length(min=1, max=limits.MAX_TEXT_CHARS), _NO_NUL)
    num_consecutive_failures = _optional(StrictInteger, 1, validate=Range(1, limits.MAX_INT))
    api_url = _optional(
        Text,
        "https://events.pagerduty.com",
        validate=[Length(max=limits.MAX_TEXT_CHARS), _URL],
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> PagerdutyNotification:
        return _build(PagerdutyNotification, data)


class WebhookSchema(WireSchema):
    """`webhook` notification (Gnomon's addition)."""

    url = _text(Length(max=limits.MAX_TEXT_CHARS), _URL)
    notify_when = _choice(NotifyWhen, NotifyWhen.ON_STATE_CHANGE_AND_FAILURES.value)
    secret = _optional(
        Text,
        validate=FullMatch(
            limits.WEBHOOK_SECRET_PATTERN,
            error="Must be `whsec_` followed by the base64 of 24 or more random bytes.",
        ),
        metadata={"description": "signs each delivery (Standard Webhooks); masked for read tokens"},
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> WebhookNotification:
        return _build(WebhookNotification, data)


class NotificationSchema(UnionSchema):
    """`notification`; a bare email object (as in Sundial's job docs) is accepted too."""

    kind = "notification"
    types = {
        EmailNotification: "email",
        PagerdutyNotification: "pagerduty",
        WebhookNotification: "webhook",
    }

    email = fields.Nested(EmailSchema)
    pagerduty = fields.Nested(PagerdutySchema)
    webhook = fields.Nested(WebhookSchema)

    def normalize(self, data: Any) -> Any:
        """Wrap a bare email notification: it has `name`, or an `email` that is a string."""
        if isinstance(data, Mapping) and ("name" in data or isinstance(data.get("email"), str)):
            return {"email": data}
        return data


class ProcessDefinitionSchema(WireSchema):
    """`process_definition`."""

    quiet_defaults = {"parameters": []}

    process_definition_name = _text(_NAME)
    task_definitions = fields.List(
        fields.Nested(TaskDefinitionSchema),
        required=True,
        validate=Length(min=1, max=limits.MAX_TASKS),
    )
    schedule = fields.Nested(ScheduleSchema, load_default=None, allow_none=True, metadata=_ONE_KEY)
    paused = _optional(StrictBoolean)
    process_description = _optional(
        Text, validate=[Length(max=limits.MAX_DESCRIPTION_CHARS), _NO_NUL]
    )
    overlap_action = _choice(OverlapAction, OverlapAction.WAIT.value)
    notifications = _optional(
        fields.List,
        (),
        cls_or_instance=fields.Nested(NotificationSchema, metadata=_ONE_KEY),
        validate=Length(max=limits.MAX_NOTIFICATIONS),
    )
    misfire_policy = _choice(MisfirePolicy, MisfirePolicy.RUN_ONCE.value)
    misfire_grace_seconds = _optional(StrictInteger, 3600, validate=_SECONDS)
    max_catch_up_runs = _optional(StrictInteger, validate=Range(min=1, max=limits.MAX_INT))
    parameters = _optional(
        fields.List,
        (),
        cls_or_instance=fields.Nested(ParameterSchema),
        validate=Length(max=limits.MAX_PARAMETERS),
    )

    @validates_schema
    def _scheduled_runs_have_values(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A scheduled run takes the defaults, so a schedule rules out required parameters."""
        if data.get("schedule") is None:
            return
        for index, parameter in enumerate(data["parameters"]):
            if parameter.required:
                problem = "a scheduled definition cannot require a parameter (scheduled runs "
                problem += "use the defaults)"
                raise ValidationError({"parameters": {index: {"required": [problem]}}})

    retention_days = _optional(
        StrictInteger,
        validate=Range(min=0, max=limits.MAX_RETENTION_DAYS),
        metadata={
            "description": "days finished runs are kept (the newest few always are); "
            "default: the service's RETENTION_DAYS; 0 keeps them forever"
        },
    )

    @pre_load
    def _drop_server_fields(self, data: Any, **kwargs: Any) -> Any:
        """Ignore what the server adds to a definition it returns, so GET→PUT round-trips."""
        if not isinstance(data, Mapping):
            return data
        return {k: v for k, v in data.items() if k not in SERVER_FIELDS}

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ProcessDefinition:
        return _build(ProcessDefinition, data)
