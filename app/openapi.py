"""GET /api/openapi.json: the OpenAPI 3 document, generated from the same marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify

from app.auth import Access, requires
from app.metrics import gnomon_version
from app.schemas import (
    IDEMPOTENCY_KEY,
    MAX_APPLIED,
    UUID_PATTERN,
    AppliedSchema,
    AuditEventSchema,
    AuditFilterSchema,
    DefinitionPageSchema,
    DeliverySchema,
    ErrorSchema,
    LogEntrySchema,
    LogPageSchema,
    MetadataEntrySchema,
    NotificationTestSchema,
    ProcessFilterSchema,
    ProcessSchema,
    RegisteredDefinitionSchema,
    TaskFilterSchema,
    TaskSchema,
    TriggerArgsSchema,
    TriggerBodySchema,
    VersionDetailSchema,
    VersionSchema,
)
from app.state import gnomon
from definitions.schemas import ProcessDefinitionSchema

bp = Blueprint("openapi", __name__, url_prefix="/api")

SPEC_KEY = "gnomon.openapi"
OPENAPI_VERSION = "3.0.3"

IDEMPOTENCY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
    "description": "the same key for the same definition within 24 hours answers with the "
    "first trigger's run (same Location) and starts nothing",
}
NAME = {"in": "path", "name": "name", "required": True, "schema": {"type": "string"},
        "description": "the process definition's name"}  # fmt: skip
VERSION = {"in": "path", "name": "version", "required": True,
           "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
           "description": "a version number (1, 2, ...)"}  # fmt: skip


def uuid_path(name: str) -> dict[str, Any]:
    """A path parameter holding a UUID (anything else is a 400)."""
    schema = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
    return {"in": "path", "name": name, "required": True, "schema": schema}


def ref(component: str) -> dict[str, str]:
    """A reference to a schema component."""
    return {"$ref": f"#/components/schemas/{component}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON body of `schema`."""
    return {"content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    """An error response in the one error shape."""
    return {"description": description, **json_content(ref("Error"))}


def responses(success: dict[str, Any], **errors: str) -> dict[str, Any]:
    """The responses of an operation: its success, its named errors, and the error shape
    for anything else (405, 413, 503...)."""
    return {
        **success,
        **{code.removeprefix("e"): error(text) for code, text in errors.items()},
        "default": error("any other error (405, 413, 503 when the database is down...)"),
    }


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A 200 response carrying `schema`."""
    return {"200": {"description": description, **json_content(schema)}}


NO_CONTENT = {"204": {"description": "done; no body"}}
BAD_INPUT = "a parameter or the body is invalid; `details.fields` names each bad field"


LOG_STREAM_DESCRIPTION = (
    "Each stored entry is an `event: log` whose `data` is the entry's JSON (`log_entry_id`, "
    "`when`, `source`: `stdout`, `stderr` or the reporter's source, `message`) and whose "
    "`id` is its position; reconnect with `Last-Event-ID` to resume after it. A comment "
    "line is sent after LOG_STREAM_HEARTBEAT_SECONDS of silence. `event: end` closes the "
    "stream once the attempt has ended and all of its entries have been sent."
)
LOG_EVENT = {
    "type": "object",
    "description": "one event: `log` (data: a LogEntry as JSON) or `end` (data: {})",
    "properties": {
        "event": {"type": "string", "enum": ["log", "end"]},
        "id": {"type": "string"},
        "data": {"type": "string"},
    },
    "required": ["event", "data"],
}
LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "the id of the last event received, to resume after it",
    "schema": {"type": "string", "pattern": r"^\d{1,20}\.\d{1,20}\.[^\s.]{1,64}$"},
}


def operations(max_entries: int) -> dict[str, dict[str, dict[str, Any]]]:
    """Every operation of the API by path and method (`max_entries`: per callback call)."""
    definitions = "/api/process_definitions"
    return {
        definitions: {
            "get": {
                "summary": "All registered process definitions, or one page of them by name",
                "parameters": [{"in": "query", "schema": DefinitionPageSchema}],
                "responses": responses(
                    ok({"type": "array", "items": ref("RegisteredDefinition")}),
                    e400=BAD_INPUT,
                ),
            }
        },
        definitions + "/_apply": {
            "post": {
                "summary": "Create or replace several process definitions at once, all or none",
                "description": "Each item is what PUT /api/process_definitions/{name} takes "
                f"(at most {MAX_APPLIED} items with distinct names, within MAX_CONTENT_LENGTH "
                "bytes), and is stored as that PUT stores it: same versions, audit events "
                "and schedule. Definitions not in the list are left alone. If any item is "
                "invalid, nothing is stored and the 400 names it (`details.index`, "
                "`details.process_definition_name`) and its fields (`details.fields`).",
                "requestBody": {
                    "required": True,
                    **json_content(
                        {
                            "type": "array",
                            "items": ref("ProcessDefinition"),
                            "maxItems": MAX_APPLIED,
                        }
                    ),
                },
                "responses": responses(
                    ok({"type": "array", "items": ref("Applied")}, "every item, in order"),
                    e400=BAD_INPUT,
                ),
            }
        },
        definitions + "/{name}": {
            "parameters": [NAME],
            "get": {
                "summary": "One process definition",
                "responses": responses(ok(ref("RegisteredDefinition")), e404="unknown name"),
            },
            "put": {
                "summary": "Create or replace a process definition",
                "description": "The body's process_definition_name must equal the URL's name.",
                "requestBody": {"required": True, **json_content(ref("ProcessDefinition"))},
                "responses": responses(
                    {
                        **ok(ref("RegisteredDefinition"), "replaced"),
                        "201": {
                            "description": "created",
                            **json_content(ref("RegisteredDefinition")),
                        },
                    },
                    e400=BAD_INPUT,
                ),
            },
            "delete": {
                "summary": "Delete a process definition; the history of its runs stays readable",
                "responses": responses(NO_CONTENT, e404="unknown name"),
            },
        },
        definitions + "/{name}/trigger": {
            "parameters": [NAME],
            "post": {
                "summary": "Start a run now, even while paused",
                "parameters": [{"in": "query", "schema": TriggerArgsSchema}, IDEMPOTENCY],
                "requestBody": {"required": False, **json_content(ref("TriggerBody"))},
                "responses": responses(
                    {
                        "204": {
                            "description": "started; Location names the new process",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        }
                    },
                    e400=BAD_INPUT,
                    e404="unknown process or task definition",
                ),
            },
        },
        definitions + "/{name}/notifications/test": {
            "parameters": [NAME],
            "post": {
                "summary": "Send a test message through every notification of the definition",
                "description": "Each message is clearly marked as a test (a PagerDuty test "
                "triggers, then at once resolves, an `info` incident under its own key). "
                "Answers how each went; nothing is retried or recorded in a run.",
                "responses": responses(
                    ok({"type": "array", "items": ref("NotificationTest")}),
                    e404="unknown name",
                ),
            },
        },
        definitions + "/{name}/pause": {
            "parameters": [NAME],
            "post": {
                "summary": "Stop firing on schedule",
                "responses": responses(NO_CONTENT, e404="unknown name"),
            },
        },
        definitions + "/{name}/resume": {
            "parameters": [NAME],
            "post": {
                "summary": "Fire on schedule again",
                "responses": responses(NO_CONTENT, e404="unknown name"),
            },
        },
        definitions + "/{name}/versions": {
            "parameters": [NAME],
            "get": {
                "summary": "Every version the definition ever had, oldest first, with who "
                "made it and when (also after it was deleted)",
                "responses": responses(
                    ok({"type": "array", "items": ref("Version")}), e404="unknown name"
                ),
            },
        },
        definitions + "/{name}/versions/{version}": {
            "parameters": [NAME, VERSION],
            "get": {
                "summary": "One version with its definition; secret values are masked",
                "responses": responses(
                    ok(ref("VersionDetail")), e400=BAD_INPUT, e404="unknown name or version"
                ),
            },
        },
        "/api/audit": {
            "get": {
                "summary": "Audit events (changes, triggers, kills, retries), newest first; "
                "page back with before_id",
                "parameters": [{"in": "query", "schema": AuditFilterSchema}],
                "responses": responses(
                    ok({"type": "array", "items": ref("AuditEvent")}), e400=BAD_INPUT
                ),
            }
        },
        "/api/processes": {
            "get": {
                "summary": "Runs matching the filters, newest first",
                "parameters": [{"in": "query", "schema": ProcessFilterSchema}],
                "responses": responses(
                    ok({"type": "array", "items": ref("Process")}), e400=BAD_INPUT
                ),
            }
        },
        "/api/processes/{process_id}": {
            "parameters": [uuid_path("process_id")],
            "get": {
                "summary": "One run with its task attempts",
                "responses": responses(ok(ref("Process")), e400=BAD_INPUT, e404="unknown id"),
            },
        },
        "/api/processes/{process_id}/retry": {
            "parameters": [uuid_path("process_id")],
            "post": {
                "summary": "Give each failed task one more attempt",
                "responses": responses(
                    NO_CONTENT, e400=BAD_INPUT, e404="unknown id", e409="the run succeeded"
                ),
            },
        },
        "/api/processes/{process_id}/kill": {
            "parameters": [uuid_path("process_id")],
            "post": {
                "summary": "Kill a running run",
                "responses": responses(
                    NO_CONTENT, e400=BAD_INPUT, e404="unknown id", e409="the run already ended"
                ),
            },
        },
        "/api/tasks": {
            "get": {
                "summary": "Task attempts matching the filters, newest first",
                "parameters": [{"in": "query", "schema": TaskFilterSchema}],
                "responses": responses(ok({"type": "array", "items": ref("Task")}), e400=BAD_INPUT),
            }
        },
        "/api/tasks/{task_id}": {
            "parameters": [uuid_path("task_id")],
            "get": {
                "summary": "One task attempt with its log and metadata entries",
                "responses": responses(ok(ref("Task")), e400=BAD_INPUT, e404="unknown id"),
            },
        },
        **log_entries(max_entries),
        "/api/tasks/{task_id}/log_stream": {
            "parameters": [uuid_path("task_id")],
            "get": {
                "summary": "The attempt's log entries as server-sent events, live until it ends",
                "description": LOG_STREAM_DESCRIPTION,
                "parameters": [LAST_EVENT_ID],
                "responses": responses(
                    {
                        "200": {
                            "description": "an event stream (see the description)",
                            "content": {"text/event-stream": {"schema": LOG_EVENT}},
                        }
                    },
                    e400=BAD_INPUT,
                    e404="unknown id",
                    e503="LOG_STREAMS_MAX streams are open; retry after `Retry-After` seconds",
                ),
            },
        },
        **callback(
            max_entries,
            "metadata",
            "MetadataEntry",
            "Append metadata (ids already stored are ignored)",
        ),
        **report("succeed"),
        **report("fail"),
        "/_internal_/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/_internal_/healthcheck": {
            "get": {
                "summary": "Whether the database and the container engine can be used",
                "security": [],  # open, for load balancers and orchestrators
                "responses": {
                    "200": {"description": "healthy", **json_content(ref("Health"))},
                    "503": {"description": "unhealthy", **json_content(ref("Health"))},
                },
            }
        },
    }


def callback(max_entries: int, suffix: str, item: str, summary: str) -> dict[str, Any]:
    """The path of a callback that posts a list of at most `max_entries` entries."""
    return {
        f"/api/tasks/{{task_id}}/{suffix}": {
            "parameters": [uuid_path("task_id")],
            "post": {
                "summary": summary,
                "requestBody": {
                    "required": True,
                    **json_content({"type": "array", "items": ref(item), "maxItems": max_entries}),
                },
                "responses": responses(
                    NO_CONTENT, e400=BAD_INPUT, e404="unknown task", e409="the attempt has ended"
                ),
            },
        }
    }


def log_entries(max_entries: int) -> dict[str, Any]:
    """The log entries' path: read them page by page, or append some."""
    path = "/api/tasks/{task_id}/log_entries"
    operations = callback(
        max_entries,
        "log_entries",
        "LogEntry",
        "Append log entries (ids already stored are ignored)",
    )
    operations[path]["get"] = {
        "summary": "A page of the attempt's log entries, oldest first, after entry `after`",
        "parameters": [{"in": "query", "schema": LogPageSchema}],
        "responses": responses(
            ok({"type": "array", "items": ref("LogEntry")}),
            e400=BAD_INPUT,
            e404="unknown task, or `after` names no entry of it",
        ),
    }
    return operations


def report(outcome: str) -> dict[str, Any]:
    """The path of a task's succeed or fail report."""
    return {
        f"/api/tasks/{{task_id}}/{outcome}": {
            "parameters": [uuid_path("task_id")],
            "post": {
                "summary": f"The task reports that it should {outcome}; the first report wins",
                "responses": responses(
                    NO_CONTENT,
                    e400=BAD_INPUT,
                    e404="unknown task",
                    e409="already reported, or the attempt has ended",
                ),
            },
        }
    }


BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token (`gnomon token create`): scope read for GET, write for "
    "changes (admin implies write implies read). A task's callbacks also take its "
    "GNOMON_TASK_TOKEN, and /_internal_/metrics the metrics token. A service configured with "
    "no API tokens (loopback only) needs none, except on task callbacks. Missing or unknown "
    "token: 401; too small a scope, or another task's token: 403.",
}

HEALTH = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def build_spec(max_callback_entries: int) -> dict[str, Any]:
    """The OpenAPI document of every endpoint, as a dict."""
    spec = APISpec(
        title="Gnomon",
        version=gnomon_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Scheduled Docker jobs, with Sundial's HTTP API. Request bodies are "
            "read as JSON whatever their Content-Type, since Sundial's clients may omit it."
        },
        security=[{"bearer": []}],
    )
    spec.components.security_scheme("bearer", BEARER)
    # leaves first, so that the nested schemas resolve to these names
    for name, schema in (
        ("LogEntry", LogEntrySchema),
        ("MetadataEntry", MetadataEntrySchema),
        ("Task", TaskSchema),
        ("Delivery", DeliverySchema),
        ("NotificationTest", NotificationTestSchema),
        ("Process", ProcessSchema),
        ("Error", ErrorSchema),
        ("TriggerBody", TriggerBodySchema),
        ("ProcessDefinition", ProcessDefinitionSchema),
        ("RegisteredDefinition", RegisteredDefinitionSchema),
        ("Version", VersionSchema),
        ("VersionDetail", VersionDetailSchema),
        ("Applied", AppliedSchema),
        ("AuditEvent", AuditEventSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("Health", HEALTH)
    for path, path_item in operations(max_callback_entries).items():
        parameters = path_item.pop("parameters", None)
        spec.path(path=path, operations=path_item, parameters=parameters)
    return spec.to_dict()


@bp.get("/openapi.json")
@requires(Access.PUBLIC)  # the schema is no secret, and clients need it before they have a token
def openapi_json() -> Response:
    """The OpenAPI document, built once per app."""
    if SPEC_KEY not in current_app.extensions:
        most = gnomon().settings["MAX_CALLBACK_ENTRIES"]
        current_app.extensions[SPEC_KEY] = build_spec(most)
    return jsonify(current_app.extensions[SPEC_KEY])
