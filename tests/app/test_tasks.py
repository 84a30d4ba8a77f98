"""/api/tasks: listing with filters, and the callbacks of a running task."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from executor.fake import Script
from tests.app.conftest import Definition, fake, task_auth

URL = "/api/tasks"
Callback = Callable[..., TestResponse]


@pytest.fixture
def run(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> dict[str, Any]:
    """A running run of `nightly` with its attempts created."""
    put_definition()
    return client.get(f"/api/processes/{trigger()}").get_json()


@pytest.fixture
def callback(app: Flask, client: FlaskClient) -> Callback:
    """POST to a callback of an attempt, with that attempt's own task token."""

    def post(task_id: object, suffix: str, **kwargs: Any) -> TestResponse:
        headers = task_auth(app, str(task_id))
        return client.post(f"{URL}/{task_id}/{suffix}", headers=headers, **kwargs)

    return post


def first_task_id(run: dict[str, Any]) -> str:
    """The id of the run's `extract` attempt."""
    return next(t["task_id"] for t in run["task"] if t["task_definition_name"] == "extract")


def log_entry(**overrides: Any) -> dict[str, Any]:
    """A valid log entry."""
    entry = {
        "log_entry_id": str(uuid.uuid4()),
        "when": "2026-11-23T09:15:59.123Z",
        "source": "task",
        "message": "hello",
    }
    return {**entry, **overrides}


def metadata_entry(**overrides: Any) -> dict[str, Any]:
    """A valid metadata entry."""
    entry = {
        "metadata_entry_id": str(uuid.uuid4()),
        "when": "2026-11-23T09:15:59",
        "key": "rows",
        "value": "42",
    }
    return {**entry, **overrides}


def task_of(client: FlaskClient, run: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The current wire form of one attempt of `run`."""
    process = client.get(f"/api/processes/{run['process_id']}").get_json()
    return next(t for t in process["task"] if t["task_id"] == task_id)


def test_log_entries_are_stored_once(
    client: FlaskClient, callback: Callback, run: dict[str, Any]
) -> None:
    task_id = first_task_id(run)
    entries = [log_entry(), log_entry(when="2026-11-23T10:15:59+01:00", message="second")]
    assert callback(task_id, "log_entries", json=entries).status_code == 204
    assert callback(task_id, "log_entries", json=entries).status_code == 204
    stored = task_of(client, run, task_id)["log_entries"]
    assert sorted(e["log_entry_id"] for e in stored) == sorted(e["log_entry_id"] for e in entries)
    assert {e["when"] for e in stored} == {"2026-11-23T09:15:59.123Z"} | {
        "2026-11-23T09:15:59.000Z"
    }


def test_metadata_is_stored_once(
    client: FlaskClient, callback: Callback, run: dict[str, Any]
) -> None:
    task_id = first_task_id(run)
    entry = metadata_entry()
    for _ in range(2):
        assert callback(task_id, "metadata", json=[entry]).status_code == 204
    [stored] = task_of(client, run, task_id)["metadata_entries"]
    assert stored == {**entry, "when": "2026-11-23T09:15:59.000Z"}


def test_empty_list_is_accepted(callback: Callback, run: dict[str, Any]) -> None:
    assert callback(first_task_id(run), "log_entries", json=[]).status_code == 204


@pytest.mark.parametrize("suffix", ["log_entries", "metadata"])
def test_callbacks_on_unknown_or_malformed_task(callback: Callback, suffix: str) -> None:
    entry = log_entry() if suffix == "log_entries" else metadata_entry()
    assert callback(uuid.uuid4(), suffix, json=[entry]).status_code == 404
    malformed = callback("abc", suffix, json=[entry])
    assert malformed.status_code == 400
    assert "task_id" in malformed.get_json()["details"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([log_entry(log_entry_id="x")], "0.log_entry_id"),
        ([log_entry(when="soon")], "0.when"),
        ([log_entry(when=None)], "0.when"),
        ([log_entry(source=3)], "0.source"),
        ([log_entry(message="a\u0000b")], "0.message"),
        ([log_entry(source="s" * 256)], "0.source"),
        ([log_entry(extra=1)], "0.extra"),
        ([{k: v for k, v in log_entry().items() if k != "message"}], "0.message"),
        ([log_entry(), "line"], "1"),
        (log_entry(), "_schema"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_log_entries_name_the_field(
    client: FlaskClient, callback: Callback, run: dict[str, Any], body: object, field: str
) -> None:
    task_id = first_task_id(run)
    response = callback(task_id, "log_entries", json=body)
    assert response.status_code == 400
    assert field in response.get_json()["details"]["fields"], response.get_json()
    assert task_of(client, run, task_id)["log_entries"] == []


def test_callback_bad_json(callback: Callback, run: dict[str, Any]) -> None:
    response = callback(first_task_id(run), "metadata", data=b"[{")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_json"


def test_first_report_wins(callback: Callback, run: dict[str, Any]) -> None:
    task_id = first_task_id(run)
    assert callback(task_id, "succeed").status_code == 204
    assert callback(task_id, "succeed").status_code == 409
    late = callback(task_id, "fail")
    assert late.status_code == 409
    assert late.get_json()["error"] == "conflict"


def test_fail_report(callback: Callback, run: dict[str, Any]) -> None:
    task_id = first_task_id(run)
    assert callback(task_id, "fail").status_code == 204
    assert callback(task_id, "succeed").status_code == 409


@pytest.mark.parametrize("outcome", ["succeed", "fail"])
def test_report_unknown_or_malformed_task(callback: Callback, outcome: str) -> None:
    assert callback(uuid.uuid4(), outcome).status_code == 404
    assert callback("12345", outcome).status_code == 400


def test_list_and_filter_tasks(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:
    fake(app).script("load", Script(exit_code=1))
    put_definition()
    trigger()
    drive()
    everything = client.get(URL).get_json()
    assert [t["task_definition_name"] for t in everything] == ["load", "extract"]
    assert client.get(URL + "/").status_code == 200

    def names(**query: object) -> list[str]:
        response = client.get(URL, query_string=query)
        assert response.status_code == 200, response.get_json()
        return [t["task_definition_name"] for t in response.get_json()]

    assert names(task_definition_name="extract") == ["extract"]
    assert names(process_definition_name="other") == []
    assert names(allowed_statuses="failed") == ["load"]
    assert names(allowed_statuses="succeeded,failed") == ["load", "extract"]
    assert names(limit=1) == ["load"]
    assert names(start_time="2999-01-01T00:00:00Z") == []
    assert names(end_time="2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "lots"),
        ("allowed_statuses", "done"),
        ("start_time", "2026-13-01T00:00:00Z"),
        ("end_time", "noon"),
    ],
)
def test_malformed_task_filters_are_400(client: FlaskClient, parameter: str, value: str) -> None:
    response = client.get(URL, query_string={parameter: value})
    assert response.status_code == 400
    fields = response.get_json()["details"]["fields"]
    assert [path.split(".")[0] for path in fields] == [parameter]


def test_get_one_task(client: FlaskClient, callback: Callback, run: dict[str, Any]) -> None:
    task_id = first_task_id(run)
    assert callback(task_id, "log_entries", json=[log_entry()]).status_code == 204
    one = client.get(f"{URL}/{task_id.upper()}")
    assert one.status_code == 200
    assert one.get_json() == task_of(client, run, task_id)
    assert [e["message"] for e in one.get_json()["log_entries"]] == ["hello"]
    assert client.get(f"{URL}/{uuid.uuid4()}").get_json()["error"] == "not_found"
    assert client.get(f"{URL}/nope").status_code == 400
