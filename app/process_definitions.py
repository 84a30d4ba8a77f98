"""/api/process_definitions: register, read, delete, pause, resume and trigger definitions."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.errors import invalid
from app.http import actor, json_body, name_param, no_content
from app.schemas import (
    DefinitionStateSchema,
    TriggerArgsSchema,
    VersionDetailSchema,
    VersionSchema,
    load_query,
)
from app.state import scheduler
from definitions import dump_definition, parse_definition
from scheduler import queries
from scheduler.views import DefinitionView

bp = Blueprint("process_definitions", __name__, url_prefix="/api/process_definitions")

TRIGGER_ARGS = TriggerArgsSchema()
STATE = DefinitionStateSchema()
VERSIONS = VersionSchema(many=True)
VERSION = VersionDetailSchema()


def dump(view: DefinitionView) -> dict[str, object]:
    """The wire form of a registered definition, with its version and scheduling state."""
    return {**dump_definition(view.definition), **STATE.dump(view)}


@bp.get("", strict_slashes=False)
def list_definitions() -> Response:
    """Every registered definition, by name."""
    return jsonify([dump(view) for view in queries.list_definitions()])


@bp.get("/<name>")
def get_definition(name: str) -> Response:
    """One definition; 404 if unknown."""
    return jsonify(dump(queries.get_definition(name_param(name))))


@bp.put("/<name>")
def put_definition(name: str) -> tuple[Response, int]:
    """Create (201) or replace (200) the definition `name`; its body must carry the same name."""
    definition = parse_definition(json_body(), url_name=name)
    view, created = scheduler().save_definition(definition, actor=actor())
    response = jsonify(dump(view))
    if created:
        response.headers["Location"] = f"/api/process_definitions/{name}"
    return response, 201 if created else 200


@bp.delete("/<name>")
def delete_definition(name: str) -> Response:
    """Delete the definition; the history of its runs stays readable."""
    scheduler().delete_definition(name_param(name), actor=actor())
    return no_content()


@bp.post("/<name>/trigger")
def trigger(name: str) -> Response:
    """Start a run now (of one task only, with `task_definition_name`), even when paused."""
    args = load_query(TRIGGER_ARGS, request.args)
    run_id = scheduler().trigger(
        name_param(name), task_name=args.get("task_definition_name"), actor=actor()
    )
    return no_content(Location=f"/api/processes/{run_id}")


@bp.post("/<name>/pause")
def pause(name: str) -> Response:
    """Stop firing the definition on its schedule."""
    scheduler().set_paused(name_param(name), True, actor=actor())
    return no_content()


@bp.post("/<name>/resume")
def resume(name: str) -> Response:
    """Fire the definition on its schedule again."""
    scheduler().set_paused(name_param(name), False, actor=actor())
    return no_content()


@bp.get("/<name>/versions")
def list_versions(name: str) -> Response:
    """Every version the definition ever had (even once deleted), oldest first."""
    return jsonify(VERSIONS.dump(queries.list_versions(name_param(name))))


@bp.get("/<name>/versions/<version>")
def get_version(name: str, version: str) -> Response:
    """One version with its definition, secret values masked; 404 if unknown."""
    if not version.isascii() or not version.isdigit() or len(version) > 9:
        raise invalid({"version": ["Not a valid version number."]}, "version must be a number.")
    return jsonify(VERSION.dump(queries.get_version(name_param(name), int(version))))
