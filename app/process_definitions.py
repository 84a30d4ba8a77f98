"""/api/process_definitions: register, read, delete, pause, resume and trigger definitions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from app.auth import may_see_secrets
from app.dumping import dumper
from app.errors import ROOT, invalid
from app.http import actor, json_body, name_param, no_content
from app.schemas import (
    IDEMPOTENCY_KEY,
    MAX_APPLIED,
    AppliedSchema,
    DefinitionPageSchema,
    DefinitionStateSchema,
    NotificationTestSchema,
    TriggerArgsSchema,
    TriggerBodySchema,
    VersionDetailSchema,
    VersionSchema,
    load_query,
)
from app.state import scheduler
from definitions import (
    DefinitionError,
    ProcessDefinition,
    dump_definition,
    mask_notification_secrets,
    parse_definition,
    wire_from_json,
)
from scheduler import queries
from scheduler.views import DefinitionView

bp = Blueprint("process_definitions", __name__, url_prefix="/api/process_definitions")

TRIGGER_ARGS = TriggerArgsSchema()
TRIGGER_BODY = TriggerBodySchema()
PAGE_ARGS = DefinitionPageSchema()
STATE = dumper(DefinitionStateSchema())
TEST_RESULT = NotificationTestSchema()
VERSIONS = VersionSchema(many=True)
VERSION = VersionDetailSchema()
APPLIED = AppliedSchema(many=True)


def dump(view: DefinitionView) -> dict[str, object]:
    """The wire form of a registered definition, with its version and scheduling state;
    notification secrets masked unless the caller may change the definition."""
    if may_see_secrets() or not view.masked.notifications:
        wire = wire_of(view)
    else:
        wire = dump_definition(mask_notification_secrets(view.definition))
    return {**wire, "paused": view.paused, **STATE(view)}


def wire_of(view: DefinitionView) -> dict[str, Any]:
    """The wire JSON of a definition's body: as stored with its version since schema 9,
    else parsed and dumped."""
    return json.loads(view.wire) if view.wire is not None else wire_from_json(view.body)


@bp.get("", strict_slashes=False)
def list_definitions() -> Response:
    """Every registered definition by name, or with `limit` one page (`after` a name)."""
    args = load_query(PAGE_ARGS, request.args)
    views = queries.list_definitions(args.get("limit"), args.get("after"))
    texts = (
        [listed(view) for view in views]
        if may_see_secrets()
        else [compact(dump(view)) for view in views]
    )
    response = Response(f"[{','.join(texts)}]\n", mimetype="application/json")
    if "limit" in args and len(views) == args["limit"]:
        after = quote(views[-1].definition.process_definition_name, safe="")
        response.headers["Link"] = (
            f'</api/process_definitions?limit={args["limit"]}&after={after}>; rel="next"'
        )
    return response


def listed(view: DefinitionView) -> str:
    """`dump(view)` as JSON text for a caller who may see secrets: the state spliced into
    the wire JSON stored with the version (nothing parsed or dumped), else `dump`'s text.
    Either way the same JSON object; its keys are in another order."""
    if view.wire is None:
        return compact(dump(view))
    state = compact({"paused": view.paused, **STATE(view)})
    return f"{state[:-1]},{view.wire[1:]}"


def compact(value: object) -> str:
    """JSON text as Flask's `jsonify` writes it (sorted keys, no spaces, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@bp.post("/_apply")
def apply_definitions() -> Response:
    """Create or replace each definition of a JSON array, as PUT does, all or none: the
    first invalid one is a 400 naming it, and then nothing is stored."""
    definitions = parse_definitions(json_body())
    saved = scheduler().save_definitions(definitions, actor=actor())
    return jsonify(APPLIED.dump(saved))


def parse_definitions(data: object) -> list[ProcessDefinition]:
    """The definitions of an `_apply` body: a JSON array of at most MAX_APPLIED, with
    distinct names; DefinitionError naming the first bad one."""
    if not isinstance(data, list) or len(data) > MAX_APPLIED:
        problem = f"must be a JSON array of at most {MAX_APPLIED} process definitions"
        raise invalid({ROOT: [problem]}, f"The body {problem}.")
    definitions, seen = [], {}
    for index, item in enumerate(data):
        name = item.get("process_definition_name") if isinstance(item, dict) else None
        try:
            definitions.append(parse_definition(item))
            if name in seen:
                problem = f"also the name of definition {seen[name]}: names must differ"
                raise DefinitionError.at("process_definition_name", problem)
        except DefinitionError as error:
            raise error.within(index, name) from None
        seen[name] = index
    return definitions


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
    body = trigger_body()
    run_id = scheduler().trigger(
        name_param(name),
        task_name=args.get("task_definition_name"),
        actor=actor(),
        parameters=body.get("parameters"),
        idempotency_key=idempotency_key(),
    )
    return no_content(Location=f"/api/processes/{run_id}")


def trigger_body() -> dict[str, Any]:
    """The trigger's optional JSON body; none (Sundial's clients send none) or null is `{}`."""
    if not request.get_data(cache=True).strip():
        return {}
    data = json_body()
    return {} if data is None else TRIGGER_BODY.load(data)


def idempotency_key() -> str | None:
    """The trigger's `Idempotency-Key` header, if any; 400 if it is not 1-255 printable ASCII."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if IDEMPOTENCY_KEY.fullmatch(key) is None:
        problem = "must be 1 to 255 printable ASCII characters"
        raise invalid({"Idempotency-Key": [problem]}, f"Idempotency-Key {problem}.")
    return key


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


@bp.post("/<name>/notifications/test")
def test_notifications(name: str) -> Response:
    """Send a marked test message through every notification of the definition; each result."""
    results = scheduler().test_notifications(name_param(name), actor=actor())
    return jsonify([TEST_RESULT.dump(result) for result in results])


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
