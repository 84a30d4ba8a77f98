"""/api/processes: listing with filters, reading one run, kill and retry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from app import create_app
from tests.app.conftest import Definition, api_config, fake

URL = "/api/processes"
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def ids(response: object) -> list[str]:
    """The process ids of a 200 list response, in order."""
    assert response.status_code == 200, response.get_json()
    return [process["process_id"] for process in response.get_json()]


def test_empty_list(client: FlaskClient) -> None:
    assert ids(client.get(URL)) == []
    assert ids(client.get(URL + "/")) == []


def test_process_shape(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    process = client.get(f"{URL}/{process_id}").get_json()
    assert process["process_id"] == process_id
    assert process["process_definition_name"] == "nightly"
    assert process["status"] == "running"
    assert ISO_Z.fullmatch(process["start_time"])
    assert process["end_time"] is None
    assert process["trigger"].startswith("manual")
    assert isinstance(process["task"], list)
    assert process["due_at"] is None  # only a scheduled run was due
    assert process["created_at"] == process["start_time"]


def test_newest_first_and_max_records(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition("a", overlap_action="allow")
    put_definition("b", overlap_action="allow")
    started = [trigger("a"), trigger("b"), trigger("a")]
    assert ids(client.get(URL)) == started[::-1]
    assert ids(client.get(URL, query_string={"max_records": 2})) == started[:0:-1]
    named = client.get(URL, query_string={"process_definition_name": "a"})
    assert ids(named) == [started[2], started[0]]


def test_default_page_size(
    database_url: str, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition(overlap_action="allow")
    for _ in range(3):
        trigger()
    small = create_app(api_config(database_url, MAX_RECORDS_DEFAULT=2))
    assert len(ids(small.test_client().get(URL))) == 2
    assert len(ids(small.test_client().get(URL, query_string={"max_records": 3}))) == 3


def test_status_filters(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition(overlap_action="allow")
    killed, running = trigger(), trigger()
    assert client.post(f"{URL}/{killed}/kill").status_code == 204
    assert ids(client.get(URL, query_string={"allowed_statuses": "failed"})) == [killed]
    assert ids(client.get(URL, query_string={"allowed_statuses": "running"})) == [running]
    both = [running, killed]
    assert ids(client.get(URL + "?allowed_statuses=running&allowed_statuses=failed")) == both
    assert ids(client.get(URL + "?allowed_statuses=running,failed")) == both
    assert ids(client.get(URL + "?allowed_statuses=succeeded")) == []


def test_time_filters(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    assert ids(client.get(URL, query_string={"start_time": "2000-01-01T00:00:00Z"})) == [process_id]
    assert ids(client.get(URL, query_string={"start_time": "2999-01-01T00:00:00"})) == []
    assert ids(client.get(URL, query_string={"end_time": "2000-01-01T00:00:00+02:00"})) == []


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start_time", "yesterday"),
        ("start_time", "2024-02-30T00:00:00Z"),
        ("end_time", "9999-12-31T23:59:59-05:00"),
        ("allowed_statuses", "sleeping"),
        ("allowed_statuses", ""),
        ("max_records", "0"),
        ("max_records", "-3"),
        ("max_records", "ten"),
        ("max_records", "1.5"),
        ("max_records", "1_0"),
        ("max_records", str(2**64)),
    ],
)
def test_malformed_filters_are_400(client: FlaskClient, parameter: str, value: str) -> None:
    response = client.get(URL, query_string={parameter: value})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert [path.split(".")[0] for path in body["details"]["fields"]] == [parameter]
    assert parameter in body["message"]


def test_get_unknown_or_malformed_id(client: FlaskClient) -> None:
    unknown = client.get(f"{URL}/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.get_json()["details"]["kind"] == "process"
    malformed = client.get(f"{URL}/not-a-uuid")
    assert malformed.status_code == 400
    assert malformed.get_json()["details"]["fields"] == {"process_id": ["Not a valid UUID."]}


def test_get_accepts_upper_case_uuid(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    assert client.get(f"{URL}/{process_id.upper()}").get_json()["process_id"] == process_id


@pytest.mark.parametrize("action", ["kill", "retry"])
def test_actions_on_unknown_or_malformed_ids(client: FlaskClient, action: str) -> None:
    assert client.post(f"{URL}/{uuid.uuid4()}/{action}").status_code == 404
    assert client.post(f"{URL}/nope/{action}").status_code == 400


def test_kill_then_kill_again_is_409(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    assert client.post(f"{URL}/{process_id}/kill").status_code == 204
    assert client.get(f"{URL}/{process_id}").get_json()["status"] == "failed"
    again = client.post(f"{URL}/{process_id}/kill")
    assert again.status_code == 409
    assert again.get_json()["error"] == "conflict"


def test_retry_failed_run(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    client.post(f"{URL}/{process_id}/kill")
    assert client.post(f"{URL}/{process_id}/retry").status_code == 204
    assert client.get(f"{URL}/{process_id}").get_json()["status"] == "running"


def test_succeeded_run_refuses_retry_and_kill(
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:
    put_definition()
    process_id = trigger()
    drive()
    process = client.get(f"{URL}/{process_id}").get_json()
    assert process["status"] == "succeeded", process
    assert ISO_Z.fullmatch(process["end_time"])
    assert {t["status"] for t in process["task"]} == {"succeeded"}
    assert client.post(f"{URL}/{process_id}/retry").status_code == 409
    assert client.post(f"{URL}/{process_id}/kill").status_code == 409


def test_failed_task_shows_exit_code_and_reason(
    app: object,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:
    from executor.fake import Script

    fake(app).script("extract", Script(exit_code=3))
    put_definition()
    process_id = trigger()
    drive()
    process = client.get(f"{URL}/{process_id}").get_json()
    assert process["status"] == "failed"
    [extract] = [t for t in process["task"] if t["task_definition_name"] == "extract"]
    assert extract["exit_code"] == 3
    assert extract["reason"]
    assert extract["attempt"] == 1
    assert extract["previous_attempt_count"] == 0
