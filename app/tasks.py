"""/api/tasks: list task attempts, and the callbacks a running task makes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.auth import Access, requires
from app.dumping import dumper
from app.errors import invalid
from app.http import actor, json_body, no_content, uuid_param
from app.loading import loader
from app.log_stream import log_stream_response
from app.schemas import (
    LogEntrySchema,
    LogPageSchema,
    MetadataEntrySchema,
    TaskFilterSchema,
    TaskSchema,
    load_query,
)
from app.state import gnomon, scheduler
from scheduler import queries
from scheduler.views import TaskFilter

bp = Blueprint("tasks", __name__, url_prefix="/api/tasks")

FILTER = TaskFilterSchema()
TASK = dumper(TaskSchema())
LOG_ENTRY = LogEntrySchema()
LOG_ENTRIES = loader(LOG_ENTRY, LOG_ENTRY.make_entry)
LOG_PAGE = LogPageSchema()
LOG_PAGE_ENTRIES = LogEntrySchema(many=True)
METADATA_ENTRY = MetadataEntrySchema()
METADATA_ENTRIES = loader(METADATA_ENTRY, METADATA_ENTRY.make_entry)


@bp.get("", strict_slashes=False)
def list_tasks() -> Response:
    """Attempts matching the filters, newest first, at most `limit` (or the default)."""
    args = load_query(FILTER, request.args)
    tasks = queries.list_tasks(
        TaskFilter(
            definition_name=args.get("process_definition_name"),
            task_name=args.get("task_definition_name"),
            statuses=frozenset(args.get("allowed_statuses", ())),
            start_time=args.get("start_time"),
            end_time=args.get("end_time"),
            limit=args.get("limit", gnomon().settings["MAX_RECORDS_DEFAULT"]),
        ),
        gnomon().embedded,
    )
    return jsonify([TASK(task) for task in tasks])


@bp.get("/<task_id>")
def get_task(task_id: str) -> Response:
    """One attempt with its log and metadata entries; 404 if unknown."""
    return jsonify(TASK(queries.get_task(uuid_param("task_id", task_id), gnomon().embedded)))


@bp.get("/<task_id>/log_entries")
def log_entries(task_id: str) -> Response:
    """A page of the attempt's log entries in order, after entry `after`; 404 if unknown."""
    task_id = uuid_param("task_id", task_id)
    args = load_query(LOG_PAGE, request.args)
    after = str(args["after"]) if "after" in args else None
    page = queries.log_entries_page(task_id, after, args.get("limit", queries.LOG_PAGE_MAX))
    return jsonify(LOG_PAGE_ENTRIES.dump(page))


@bp.get("/<task_id>/log_stream")
def log_stream(task_id: str) -> Response:
    """The attempt's log as server-sent events, live until it has ended (see app.log_stream)."""
    return log_stream_response(uuid_param("task_id", task_id))


@bp.post("/<task_id>/log_entries")
@requires(Access.TASK)
def add_log_entries(task_id: str) -> Response:
    """Store log entries the task sent; an entry whose id is already stored is ignored."""
    task_id = uuid_param("task_id", task_id)
    scheduler().add_log_entries(task_id, LOG_ENTRIES(json_list()))
    return no_content()


@bp.post("/<task_id>/metadata")
@requires(Access.TASK)
def add_metadata(task_id: str) -> Response:
    """Store metadata entries the task sent; an entry whose id is already stored is ignored."""
    task_id = uuid_param("task_id", task_id)
    scheduler().add_metadata(task_id, METADATA_ENTRIES(json_list()))
    return no_content()


@bp.post("/<task_id>/succeed")
@requires(Access.TASK)
def succeed(task_id: str) -> Response:
    """The task says it succeeded; the first report wins, later ones get 409."""
    scheduler().report(uuid_param("task_id", task_id), "succeeded", actor=actor())
    return no_content()


@bp.post("/<task_id>/fail")
@requires(Access.TASK)
def fail(task_id: str) -> Response:
    """The task says it failed; the first report wins, later ones get 409."""
    scheduler().report(uuid_param("task_id", task_id), "failed", actor=actor())
    return no_content()


def json_list() -> list[object]:
    """The request body, which must be a JSON array of at most MAX_CALLBACK_ENTRIES items."""
    body = json_body()
    if not isinstance(body, list):
        raise invalid({"_schema": ["Must be a JSON array."]}, "The body must be a JSON array.")
    most = gnomon().settings["MAX_CALLBACK_ENTRIES"]
    if len(body) > most:
        problem = f"At most {most} entries per request (MAX_CALLBACK_ENTRIES), not {len(body)}."
        raise invalid({"_schema": [problem]}, f"Too many entries: {problem}")
    return body
