"""The one error shape: routing errors, body limits, database outages and unexpected bugs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from peewee import OperationalError

from app.errors import flatten_messages
from scheduler import queries


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check a response has `status` and the error shape with `code`; return its body."""
    body = response.get_json()
    assert response.status_code == status, body
    assert response.content_type == "application/json"
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert body["message"]
    return body


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/api/nothing"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.patch("/api/process_definitions/x")
    assert_error(response, 405, "method_not_allowed")
    assert {"GET", "PUT", "DELETE"} <= set(response.headers["Allow"].split(", "))


def test_body_too_large_is_413(client: FlaskClient) -> None:
    response = client.put("/api/process_definitions/x", data=b"[" + b" " * (2 * 1024 * 1024))
    assert_error(response, 413, "request_entity_too_large")


def test_database_down_is_503(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_args: object) -> None:
        raise OperationalError("could not connect to server at secret-host")

    monkeypatch.setattr(queries, "list_definitions", down)
    body = assert_error(client.get("/api/process_definitions"), 503, "unavailable")
    assert "secret-host" not in body["message"]


def test_unexpected_error_is_logged_500(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    with caplog.at_level(logging.ERROR, logger="app.errors"):
        body = assert_error(app.test_client().get("/boom"), 500, "internal_error")
    assert "bug" not in body["message"]
    assert caplog.records[-1].exc_info is not None


def test_flatten_messages_folds_schema_keys() -> None:
    messages = {0: {"when": ["bad"], "_schema": ["whole"]}, "_schema": ["root"]}
    assert flatten_messages(messages) == {"0.when": ["bad"], "0": ["whole"], "_schema": ["root"]}
