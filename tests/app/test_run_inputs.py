"""Run parameters, task outputs and idempotent triggers over the API (fake executor)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from executor.base import AttemptSpec
from executor.fake import Script
from scheduler.models import Definition, Run, TriggerKey
from tests.app.conftest import fake, gnomon_of, task, task_auth

URL = "/api/process_definitions"
PARAMETERS = [
    {"name": "date", "required": True, "description": "the day to load"},
    {"name": "mode", "default": "full"},
]


def started(response: Any) -> str:
    """The run id of a 204 trigger answer."""
    assert response.status_code == 204, response.get_json()
    return response.headers["Location"].rsplit("/", 1)[1]


def fields_of(response: Any) -> dict[str, list[str]]:
    """The field-level problems of a 400 answer."""
    assert response.status_code == 400, response.get_json()
    return response.get_json()["details"]["fields"]


@pytest.fixture
def with_parameters(put_definition: Callable[..., Any]) -> None:
    """Register `nightly` (unscheduled) with a required and a defaulted parameter."""
    put_definition(schedule=None, parameters=PARAMETERS)


# ---------------------------------------------------------------- parameters


@pytest.mark.usefixtures("with_parameters")
def test_parameters_reach_every_task_and_show_on_the_run(
    app: Flask, client: FlaskClient, drive: Callable[[], None]
) -> None:
    body = {"parameters": {"date": "2024-03-10"}}
    run_id = started(client.post(f"{URL}/nightly/trigger", json=body))
    drive()
    run = client.get(f"/api/processes/{run_id}").get_json()
    assert run["status"] == "succeeded"
    assert run["parameters"] == {"date": "2024-03-10", "mode": "full"}
    environments = [spec.environment for spec in fake(app).starts]
    assert [spec.task_name for spec in fake(app).starts] == ["extract", "load"]
    for environment in environments:
        assert environment["GNOMON_PARAM_DATE"] == "2024-03-10"
        assert environment["GNOMON_PARAM_MODE"] == "full"


@pytest.mark.usefixtures("with_parameters")
@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        pytest.param(
            {"parameters": {"date": "x", "colour": "red"}},
            "parameters.colour",
            "unknown parameter; the definition declares: date, mode",
            id="unknown",
        ),
        pytest.param(
            {"parameters": {"mode": "delta"}},
            "parameters.date",
            "required parameter is missing",
            id="missing_required",
        ),
        pytest.param(
            {"parameters": {"date": 20240310}},
            "parameters.date.value",
            "Not a valid string.",
            id="not_a_string",
        ),
        pytest.param({"params": {}}, "params", "Unknown field.", id="unknown_body_field"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    client: FlaskClient, body: dict[str, Any], field: str, problem: str
) -> None:
    assert fields_of(client.post(f"{URL}/nightly/trigger", json=body)) == {field: [problem]}
    assert client.get("/api/processes").get_json() == []


@pytest.mark.parametrize(
    "send",
    [
        pytest.param({}, id="no_body_no_content_type"),
        pytest.param({"data": b"", "content_type": "application/json"}, id="empty_json_body"),
        pytest.param({"json": {}}, id="empty_object"),
        pytest.param({"data": b"null"}, id="null"),
    ],
)
def test_a_trigger_without_parameters_still_works(
    client: FlaskClient, put_definition: Callable[..., Any], send: dict[str, Any]
) -> None:
    put_definition(parameters=[{"name": "mode", "default": "full"}])
    run_id = started(client.post(f"{URL}/nightly/trigger", **send))
    assert client.get(f"/api/processes/{run_id}").get_json()["parameters"] == {"mode": "full"}


def test_a_scheduled_run_takes_the_defaults(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    put_definition(parameters=[{"name": "mode", "default": "full"}])
    state = gnomon_of(app)
    with state.database.connection_context():
        Definition.update(next_fire_at=datetime.now(UTC)).execute()
        state.scheduler.engine.tick(datetime.now(UTC))
    [run] = client.get("/api/processes").get_json()
    assert run["trigger"] == "schedule"
    assert run["parameters"] == {"mode": "full"}


def first_extract_attempt(spec: AttemptSpec) -> bool:
    """Whether `spec` is the first attempt of task `extract`."""
    return spec.task_name == "extract" and spec.attempt == 1


@pytest.mark.usefixtures("with_parameters")
def test_a_retry_keeps_the_runs_parameters(
    app: Flask, client: FlaskClient, drive: Callable[[], None]
) -> None:
    fake(app).script_when(first_extract_attempt, Script(exit_code=1))
    body = {"parameters": {"date": "2024-03-10", "mode": "delta"}}
    run_id = started(client.post(f"{URL}/nightly/trigger", json=body))
    drive()
    assert client.get(f"/api/processes/{run_id}").get_json()["status"] == "failed"
    assert client.post(f"/api/processes/{run_id}/retry").status_code == 204
    drive()
    assert client.get(f"/api/processes/{run_id}").get_json()["status"] == "succeeded"
    retried = [s for s in fake(app).starts if s.attempt == 2]
    assert [s.task_name for s in retried] == ["extract"]
    assert retried[0].environment["GNOMON_PARAM_MODE"] == "delta"
    assert retried[0].environment["GNOMON_PARAM_DATE"] == "2024-03-10"


@pytest.mark.parametrize(
    ("parameters", "field", "problem"),
    [
        pytest.param(
            [{"name": "date", "required": True, "default": "today"}],
            "parameters.0.default",
            "a required parameter has no default",
            id="required_with_default",
        ),
        pytest.param(
            [{"name": "date"}, {"name": "DATE"}],
            "parameters.1.name",
            "'DATE' and 'date' give the same variable name part 'DATE'",
            id="same_variable",
        ),
        pytest.param(
            [{"name": "1st"}], "parameters.0.name", "Must be a shell variable name.", id="bad_name"
        ),
    ],
)
def test_bad_parameter_declarations_are_a_400(
    client: FlaskClient,
    make_definition: Callable[..., Any],
    parameters: list[dict[str, Any]],
    field: str,
    problem: str,
) -> None:
    body = make_definition(schedule=None, parameters=parameters)
    assert fields_of(client.put(f"{URL}/nightly", json=body)) == {field: [problem]}


def test_a_scheduled_definition_cannot_require_a_parameter(
    client: FlaskClient, make_definition: Callable[..., Any]
) -> None:
    body = make_definition(parameters=[{"name": "date", "required": True}])
    problem = "a scheduled definition cannot require a parameter (scheduled runs use the defaults)"
    assert fields_of(client.put(f"{URL}/nightly", json=body)) == {
        "parameters.0.required": [problem]
    }


def test_a_definition_without_the_new_fields_reads_back_as_before(
    client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    stored = put_definition()
    assert "parameters" not in stored
    command = stored["task_definitions"][0]["executable"]["docker_image_command"]
    assert not {"mounts", "labels", "read_only", "cap_drop"} & command.keys()


# ------------------------------------------------------------------- outputs


def metadata(key: str, value: str) -> dict[str, str]:
    """One metadata entry in wire form."""
    return {"metadata_entry_id": str(uuid.uuid4()), "when": "2024-03-10T06:00:00Z",
            "key": key, "value": value}  # fmt: skip


def test_outputs_reach_every_downstream_task_as_inputs(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    tasks = [task("load-db"), task("check", "load-db"), task("report", "check"), task("other")]
    put_definition(schedule=None, task_definitions=tasks)
    executor = fake(app)
    executor.script("load-db", Script(duration_seconds=None))
    run_id = started(client.post(f"{URL}/nightly/trigger"))
    state = gnomon_of(app)
    executor.open(state.scheduler.engine)
    with state.database.connection_context():
        state.scheduler.engine.tick(datetime.now(UTC))
        executor.advance()
    [load] = [s for s in executor.starts if s.task_name == "load-db"]
    entries = [metadata("output.rows", "41"), metadata("output.rows", "42"), metadata("k", "v")]
    path = f"/api/tasks/{load.task_id}/metadata"
    assert client.post(path, json=entries, headers=task_auth(app, load.task_id)).status_code == 204
    with state.database.connection_context():
        executor.finish(load.task_id)
        for _ in range(10):
            state.scheduler.engine.tick(datetime.now(UTC))
            executor.advance()
    by_name = {s.task_name: s.environment for s in executor.starts}
    assert by_name["check"]["GNOMON_INPUT_LOAD_DB_ROWS"] == "42"
    assert by_name["report"]["GNOMON_INPUT_LOAD_DB_ROWS"] == "42"  # an indirect upstream too
    assert not any(name.startswith("GNOMON_INPUT_") for name in by_name["other"])
    run = client.get(f"/api/processes/{run_id}").get_json()
    outputs = {t["task_definition_name"]: t["outputs"] for t in run["task"]}
    assert outputs == {"load-db": {"rows": "42"}, "check": {}, "report": {}, "other": {}}


def test_bad_output_names_and_too_many_outputs_are_a_400(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    put_definition(schedule=None, task_definitions=[task("a")])
    fake(app).script("a", Script(duration_seconds=None))
    started(client.post(f"{URL}/nightly/trigger"))
    state = gnomon_of(app)
    with state.database.connection_context():
        state.scheduler.engine.tick(datetime.now(UTC))
    [attempt] = fake(app).starts
    path, auth = f"/api/tasks/{attempt.task_id}/metadata", task_auth(app, attempt.task_id)
    bad = client.post(path, json=[metadata("output.no-dashes", "1")], headers=auth)
    assert fields_of(bad) == {
        "0.key": ["an output name (after `output.`) must be 1 to 64 letters, digits or '_'"]
    }
    first = [metadata(f"output.o{i}", "x") for i in range(30)]
    assert client.post(path, json=first, headers=auth).status_code == 204
    more = [metadata(f"output.p{i}", "x") for i in range(3)]
    assert fields_of(client.post(path, json=more, headers=auth)) == {
        "key": ["an attempt may publish at most 32 outputs, not 33"]
    }
    assert client.post(path, json=more[:2], headers=auth).status_code == 204


def test_task_names_that_give_the_same_variable_part_are_a_400(
    client: FlaskClient, make_definition: Callable[..., Any]
) -> None:
    body = make_definition(task_definitions=[task("load-db"), task("load_db")])
    assert fields_of(client.put(f"{URL}/nightly", json=body)) == {
        "task_definitions.1.task_definition_name": [
            "'load_db' and 'load-db' give the same variable name part 'LOAD_DB'"
        ]
    }


# ------------------------------------------------------------- idempotent triggers


def test_the_same_idempotency_key_returns_the_same_run(
    client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    put_definition()
    put_definition("other")
    key = {"Idempotency-Key": "deploy-42"}
    first = started(client.post(f"{URL}/nightly/trigger", headers=key))
    assert started(client.post(f"{URL}/nightly/trigger", headers=key)) == first
    single = {"task_definition_name": "load"}  # not compared: the key alone decides
    assert started(client.post(f"{URL}/nightly/trigger", headers=key, query_string=single)) == (
        first
    )
    assert started(client.post(f"{URL}/other/trigger", headers=key)) != first  # per definition
    other_key = {"Idempotency-Key": "deploy-43"}
    assert started(client.post(f"{URL}/nightly/trigger", headers=other_key)) != first
    assert started(client.post(f"{URL}/nightly/trigger")) != first
    assert len(client.get("/api/processes?process_definition_name=nightly").get_json()) == 3


def test_an_idempotency_key_older_than_a_day_starts_a_new_run(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    put_definition()
    key = {"Idempotency-Key": "deploy-42"}
    first = started(client.post(f"{URL}/nightly/trigger", headers=key))
    with gnomon_of(app).database.connection_context():
        day_ago = datetime.now(UTC) - timedelta(hours=24, seconds=1)
        TriggerKey.update(created_at=day_ago).execute()
    second = started(client.post(f"{URL}/nightly/trigger", headers=key))
    assert second != first
    assert started(client.post(f"{URL}/nightly/trigger", headers=key)) == second


def test_a_refused_trigger_does_not_use_up_its_key(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    put_definition(schedule=None, parameters=PARAMETERS)
    key = {"Idempotency-Key": "k"}
    fields_of(client.post(f"{URL}/nightly/trigger", headers=key, json={"parameters": {}}))
    body = {"parameters": {"date": "d"}}
    run_id = started(client.post(f"{URL}/nightly/trigger", headers=key, json=body))
    with gnomon_of(app).database.connection_context():
        assert [k.run_id for k in TriggerKey.select()] == [run_id]
        assert Run.select().count() == 1


@pytest.mark.parametrize("value", ["", " leading-space", "x" * 256, "naïve"])
def test_a_bad_idempotency_key_is_a_400(
    client: FlaskClient, put_definition: Callable[..., Any], value: str
) -> None:
    put_definition()
    headers = {"Idempotency-Key": value.encode("utf-8").decode("latin-1")}
    assert fields_of(client.post(f"{URL}/nightly/trigger", headers=headers)) == {
        "Idempotency-Key": ["must be 1 to 255 printable ASCII characters"]
    }
