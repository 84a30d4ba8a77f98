"""/api/processes: list and read runs, retry and kill them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.dumping import dumper
from app.http import actor, no_content, uuid_param
from app.schemas import ProcessFilterSchema, ProcessSchema, load_query
from app.state import gnomon, scheduler
from scheduler import queries
from scheduler.views import RunFilter

bp = Blueprint("processes", __name__, url_prefix="/api/processes")

FILTER = ProcessFilterSchema()
PROCESS = dumper(ProcessSchema())


@bp.get("", strict_slashes=False)
def list_processes() -> Response:
    """Runs matching the filters, newest first, at most `max_records` (or the default)."""
    args = load_query(FILTER, request.args)
    runs = queries.list_runs(
        RunFilter(
            definition_name=args.get("process_definition_name"),
            start_time=args.get("start_time"),
            end_time=args.get("end_time"),
            statuses=frozenset(args.get("allowed_statuses", ())),
            limit=args.get("max_records", gnomon().settings["MAX_RECORDS_DEFAULT"]),
        ),
        gnomon().embedded,
    )
    return jsonify([PROCESS(run) for run in runs])


@bp.get("/<process_id>")
def get_process(process_id: str) -> Response:
    """One run with its task attempts; 400 if the id is not a UUID, 404 if unknown."""
    run = queries.get_run(uuid_param("process_id", process_id), gnomon().embedded)
    return jsonify(PROCESS(run))


@bp.post("/<process_id>/retry")
def retry(process_id: str) -> Response:
    """Give each failed task of the run one more attempt; 409 if the run succeeded."""
    scheduler().retry(uuid_param("process_id", process_id), actor=actor())
    return no_content()


@bp.post("/<process_id>/kill")
def kill(process_id: str) -> Response:
    """Kill the run's containers and fail it; 409 if it already finished."""
    scheduler().kill(uuid_param("process_id", process_id), actor=actor())
    return no_content()
