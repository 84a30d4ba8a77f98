"""The one place that turns exceptions into HTTP error responses.

Every 4xx and 5xx body has one shape:
`{"error": "<code>", "message": "<human text>", "details": {...}}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from flask import Flask, Response, current_app, jsonify
from marshmallow import ValidationError
from peewee import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from definitions import DefinitionError
from scheduler.errors import Conflict, NotFound, Unavailable

log = logging.getLogger(__name__)

ROOT = "_schema"  # the path of a problem with the whole body


class ApiError(Exception):
    """A request the HTTP layer itself refuses (bad JSON, bad query or path parameter)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})  # sent with the error, e.g. Retry-After


def bad_json(message: str) -> ApiError:
    """The 400 for a body that is not the JSON document expected."""
    return ApiError(400, "bad_json", message)


def invalid(fields: Mapping[str, list[str]], message: str = "The request is invalid.") -> ApiError:
    """The 400 for input that parsed but broke a rule; `fields` maps dotted paths to problems."""
    return ApiError(400, "validation_error", message, {"fields": dict(fields)})


def flatten_messages(messages: object, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as flat dotted paths (`0.when`) to sentences.

    Errors about a whole object (marshmallow's `_schema`) are filed under the object's
    path, or under `_schema` for the whole body, as `definitions` does.
    """
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = prefix if key == ROOT else f"{prefix}.{key}" if prefix else str(key)
            for field, problems in flatten_messages(value, path).items():
                flat.setdefault(field, []).extend(problems)
        return flat
    problems = messages if isinstance(messages, list) else [messages]
    return {prefix or ROOT: [str(problem) for problem in problems]}


def from_validation_error(error: ValidationError) -> ApiError:
    """The 400 for a marshmallow ValidationError, naming every field that failed."""
    fields = flatten_messages(error.messages)
    names = ", ".join(sorted(fields))
    return invalid(fields, f"Invalid value for {names}.")


def error_response(error: Exception) -> tuple[Response, int] | HTTPException:
    """The JSON response for any exception a view or hook raised."""
    if isinstance(error, HTTPException) and (error.code or 500) < 400:
        return error  # routing redirects (e.g. a missing trailing slash) pass through
    status, code, message, details = describe(error)
    response = jsonify({"error": code, "message": message, "details": details})
    if isinstance(error, HTTPException):
        # keep headers such as Allow on 405, but not the HTML content type
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
    if isinstance(error, ApiError):
        response.headers.update(error.headers)
    return response, status


def describe(error: Exception) -> tuple[int, str, str, dict[str, object]]:
    """Status, code, message and details for `error`."""
    if isinstance(error, ApiError):
        return error.status, error.code, error.message, error.details
    if isinstance(error, DefinitionError):
        details: dict[str, object] = {"fields": dict(error.fields)}
        if error.item is not None:  # one definition of a list: which one
            details["index"], details["process_definition_name"] = error.item
        return 400, "validation_error", error.message, details
    if isinstance(error, ValidationError):
        api_error = from_validation_error(error)
        return 400, api_error.code, api_error.message, api_error.details
    if isinstance(error, NotFound):
        noun = error.kind.replace("_", " ")
        details = {"kind": error.kind, "key": error.key}
        return 404, "not_found", f"No {noun} {error.key!r}.", details
    if isinstance(error, Conflict):
        return 409, "conflict", str(error), {}
    if isinstance(error, Unavailable):
        return 503, "unavailable", str(error) or "The service cannot answer now.", {}
    if isinstance(error, OperationalError | InterfaceError):
        # the driver's text may name hosts and users: log it, do not send it
        log.warning("database unavailable: %s", error)
        return 503, "unavailable", "The database is unavailable; try again later.", {}
    if isinstance(error, RequestEntityTooLarge):
        return too_large()
    if isinstance(error, HTTPException):
        return error.code or 500, snake_case(error.name), error.description or error.name, {}
    log.error("unhandled error", exc_info=error)
    return 500, "internal_error", "An unexpected error occurred; it has been logged.", {}


def too_large() -> tuple[int, str, str, dict[str, object]]:
    """The 413 for a body over MAX_CONTENT_LENGTH, naming the limit."""
    most = current_app.config["MAX_CONTENT_LENGTH"]
    message = f"The request body is larger than {most} bytes, the limit (MAX_CONTENT_LENGTH)."
    return 413, "request_entity_too_large", message, {"limit": "MAX_CONTENT_LENGTH", "max": most}


def snake_case(name: str) -> str:
    """`Method Not Allowed` as `method_not_allowed`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def init_app(app: Flask) -> None:
    """Route every exception raised while handling a request through `error_response`."""
    app.register_error_handler(Exception, error_response)
