"""Small helpers the views share: reading JSON bodies, path ids, the actor, empty answers."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, request

from app.auth import ANONYMOUS
from app.errors import bad_json, invalid
from app.schemas import is_uuid
from definitions.fields import LONE_SURROGATE
from scheduler.errors import NotFound


def json_body() -> Any:
    """The request body parsed as JSON, whatever its Content-Type.

    Sundial's clients do not always send `Content-Type: application/json`, so the
    type is not checked; a body that is not JSON is a 400 `bad_json`.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise bad_json("The request body is empty; a JSON document is required.")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # bad syntax or encoding, or absurd nesting
        raise bad_json(f"The request body is not valid JSON: {_short(error)}") from error


def _refuse_constant(name: str) -> float:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def _short(error: Exception) -> str:
    """The first line of an exception's text, kept short."""
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def uuid_param(name: str, value: str) -> str:
    """A path id in canonical lower-case form; 400 naming `name` if it is not a UUID."""
    if not is_uuid(value):
        raise invalid({name: ["Not a valid UUID."]}, f"{name} must be a UUID.")
    return value.lower()


def name_param(name: str) -> str:
    """A definition name from the path; 404 at once if no database could hold it."""
    if "\x00" in name or LONE_SURROGATE.search(name):
        raise NotFound("process_definition", name.encode("unicode_escape").decode("ascii"))
    return name


def actor() -> str:
    """Who made the request, for the audit trail: its token's name, `task:<id>` or `anonymous`."""
    return g.get("actor", ANONYMOUS)


def no_content(**headers: str) -> Response:
    """An empty 204 response with `headers`."""
    return Response(status=204, headers=headers)
