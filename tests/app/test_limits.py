"""Every size limit of the API answers with a 4xx that names the field and the limit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.schemas import MAX_MESSAGE_LENGTH, SHORT_TEXT_LENGTH
from definitions.limits import MAX_TASKS
from scheduler.tokens import server_secret, task_token
from tests.app.conftest import Definition, gnomon_of, task
from tests.app.test_errors import assert_error

CALLBACK_ENTRIES = 1000  # the default of MAX_CALLBACK_ENTRIES


@pytest.fixture
def post_entries(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Definition], trigger: Any
) -> Callable[[str, list[dict[str, Any]]], Any]:
    """POST entries to a callback (`log_entries` or `metadata`) of a fresh attempt."""
    put_definition()
    attempts = client.get(f"/api/processes/{trigger()}").get_json()["task"]
    task_id = attempts[0]["task_id"]

    with gnomon_of(app).database.connection_context():  # the attempt's own callback token
        headers = {"Authorization": f"Bearer {task_token(server_secret(), task_id)}"}

    def post(suffix: str, entries: list[dict[str, Any]]) -> Any:
        return client.post(f"/api/tasks/{task_id}/{suffix}", json=entries, headers=headers)

    return post


def log_entry(message: str = "hello") -> dict[str, Any]:
    """A valid log entry."""
    when = "2026-11-23T09:15:59Z"
    return {"log_entry_id": str(uuid.uuid4()), "when": when, "source": "app", "message": message}


def metadata_entry(key: str = "rows", value: str = "42") -> dict[str, Any]:
    """A valid metadata entry."""
    when = "2026-11-23T09:15:59Z"
    return {"metadata_entry_id": str(uuid.uuid4()), "when": when, "key": key, "value": value}


def fields_of(response: Any, status: int = 400) -> dict[str, list[str]]:
    """The field problems of a validation error."""
    return assert_error(response, status, "validation_error")["details"]["fields"]


def test_body_over_max_content_length_is_413_naming_the_limit(client: FlaskClient) -> None:
    response = client.put("/api/process_definitions/x", data=b" " * (1024 * 1024 + 1))
    body = assert_error(response, 413, "request_entity_too_large")
    assert body["details"] == {"limit": "MAX_CONTENT_LENGTH", "max": 1024 * 1024}
    assert "MAX_CONTENT_LENGTH" in body["message"]


@pytest.mark.parametrize(
    ("suffix", "entry"), [("log_entries", log_entry), ("metadata", metadata_entry)]
)
def test_callback_entry_count_is_capped(post_entries: Any, suffix: str, entry: Any) -> None:
    assert post_entries(suffix, [entry() for _ in range(CALLBACK_ENTRIES)]).status_code == 204
    response = post_entries(suffix, [entry() for _ in range(CALLBACK_ENTRIES + 1)])
    problem = f"At most {CALLBACK_ENTRIES} entries per request (MAX_CALLBACK_ENTRIES), not 1001."
    assert fields_of(response) == {"_schema": [problem]}


@pytest.mark.parametrize(
    ("suffix", "entry", "field", "most"),
    [
        pytest.param("log_entries", lambda s: log_entry(message=s), "message", MAX_MESSAGE_LENGTH),
        pytest.param("metadata", lambda s: metadata_entry(key=s), "key", SHORT_TEXT_LENGTH),
        pytest.param("metadata", lambda s: metadata_entry(value=s), "value", MAX_MESSAGE_LENGTH),
    ],
)
def test_callback_text_lengths_are_capped(
    post_entries: Any, suffix: str, entry: Any, field: str, most: int
) -> None:
    assert post_entries(suffix, [entry("é" * most)]).status_code == 204
    response = post_entries(suffix, [entry("x"), entry("é" * (most + 1))])
    assert fields_of(response) == {f"1.{field}": [f"Longer than maximum length {most}."]}


def test_tasks_per_definition_are_capped(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    tasks = [task(f"t{i}") for i in range(MAX_TASKS + 1)]
    body = make_definition("big", task_definitions=tasks)
    response = client.put("/api/process_definitions/big", json=body)
    assert fields_of(response) == {
        "task_definitions": [f"Length must be between 1 and {MAX_TASKS}."]
    }
    assert client.get("/api/process_definitions/big").status_code == 404


@pytest.mark.parametrize("name", ["-lead", "with space", "semi;colon", "é", "x" * 129])
def test_definition_and_task_names_have_a_character_set(
    client: FlaskClient, make_definition: Callable[..., Definition], name: str
) -> None:
    rule = "Must be 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit."
    body = make_definition("ok", task_definitions=[task(name)])
    response = client.put("/api/process_definitions/ok", json=body)
    assert fields_of(response) == {"task_definitions.0.task_definition_name": [rule]}
    body = make_definition(name)
    response = client.put(f"/api/process_definitions/{name}", json=body)
    assert fields_of(response) == {"process_definition_name": [rule]}
