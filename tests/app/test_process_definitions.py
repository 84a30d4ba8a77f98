"""/api/process_definitions: CRUD, validation errors, trigger, pause and resume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.app.conftest import Definition, task

URL = "/api/process_definitions"


def fields_of(response: Any) -> dict[str, list[str]]:
    """The field-level problems of a 400 validation error, checking the error shape."""
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"] == "validation_error", body
    assert isinstance(body["message"], str) and body["message"]
    return body["details"]["fields"]


def test_put_creates_then_replaces(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    created = client.put(f"{URL}/nightly", json=make_definition())
    assert created.status_code == 201
    assert created.headers["Location"] == f"{URL}/nightly"
    assert created.get_json()["process_definition_name"] == "nightly"

    changed = client.put(f"{URL}/nightly", json=make_definition(process_description="new"))
    assert changed.status_code == 200
    assert changed.get_json()["process_description"] == "new"


def test_put_applies_documented_defaults(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    minimal = make_definition(task_definitions=[{
        "task_definition_name": "only",
        "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}},
    }])  # fmt: skip
    minimal.pop("overlap_action")
    body = client.put(f"{URL}/nightly", json=minimal).get_json()
    only = body["task_definitions"][0]
    assert body["overlap_action"] == "wait"
    assert only["max_attempts"] == 1
    assert only["backoff_base_seconds"] == 0
    assert only["backoff_exponent"] == 1.0
    assert only["require_explicit_success"] is False
    assert only["dependencies"] == []
    assert only["executable"]["docker_image_command"]["tag"] == "latest"


def test_get_round_trip_is_identical(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition(
        notifications=[{"email": {"name": "ops", "email": "ops@example.com"}}],
        task_definitions=[task("a"), task("b", "a", max_attempts=3, backoff_base_seconds=5)],
    )
    first = client.get(f"{URL}/nightly").get_json()
    again = client.put(f"{URL}/nightly", json=first)
    assert again.status_code == 200
    assert again.get_json() == first
    assert client.get(f"{URL}/nightly").get_json() == first


def test_registered_definition_shows_its_state(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    first = client.get(f"{URL}/nightly").get_json()
    assert first["version"] == 1
    assert first["next_fire_at"].endswith("T03:00:00.000Z")  # daily at 03:00 UTC
    assert first["created_at"] == first["updated_at"]
    assert first["updated_by"]

    changed = client.put(f"{URL}/nightly", json={**first, "process_description": "new"})
    assert changed.get_json()["version"] == 2
    assert client.post(f"{URL}/nightly/pause").status_code == 204
    paused = client.get(f"{URL}/nightly").get_json()
    assert paused["next_fire_at"] is None
    assert [d["version"] for d in client.get(URL).get_json()] == [2]


def test_server_fields_in_a_put_are_ignored(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    body = make_definition(version=99, next_fire_at="2000-01-01T00:00:00Z", updated_by="me")
    created = client.put(f"{URL}/nightly", json=body).get_json()
    assert created["version"] == 1
    assert created["next_fire_at"] != "2000-01-01T00:00:00.000Z"
    assert created["updated_by"] != "me"


def test_list_and_get(client: FlaskClient, put_definition: Callable[..., Definition]) -> None:
    put_definition("b")
    put_definition("a")
    listed = client.get(URL)
    assert listed.status_code == 200
    assert [d["process_definition_name"] for d in listed.get_json()] == ["a", "b"]
    assert client.get(f"{URL}/").status_code == 200  # Sundial's paths end with a slash
    assert client.get(f"{URL}/a").get_json()["process_definition_name"] == "a"


def test_get_unknown_is_404(client: FlaskClient) -> None:
    response = client.get(f"{URL}/nope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert response.get_json()["details"] == {"kind": "process_definition", "key": "nope"}


def test_names_no_database_can_hold_are_404(client: FlaskClient) -> None:
    assert client.get(f"{URL}/a%00b").status_code == 404
    assert client.post(f"{URL}/a%00b/trigger").status_code == 404


def test_delete_keeps_run_history(
    client: FlaskClient, put_definition: Callable[..., Definition], trigger: Callable[..., str]
) -> None:
    put_definition()
    process_id = trigger()
    assert client.delete(f"{URL}/nightly").status_code == 204
    assert client.get(f"{URL}/nightly").status_code == 404
    assert client.delete(f"{URL}/nightly").status_code == 404
    run = client.get(f"/api/processes/{process_id}")
    assert run.status_code == 200
    assert run.get_json()["process_definition_name"] == "nightly"
    listed = client.get("/api/processes", query_string={"process_definition_name": "nightly"})
    assert [p["process_id"] for p in listed.get_json()] == [process_id]


def test_trigger_sets_location(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    response = client.post(f"{URL}/nightly/trigger")
    assert response.status_code == 204
    assert response.data == b""
    location = response.headers["Location"]
    assert location.startswith("/api/processes/")
    assert client.get(location).status_code == 200


def test_trigger_one_task(client: FlaskClient, put_definition: Callable[..., Definition]) -> None:
    put_definition()
    response = client.post(f"{URL}/nightly/trigger?task_definition_name=load")
    assert response.status_code == 204
    run = client.get(response.headers["Location"]).get_json()
    assert {t["task_definition_name"] for t in run["task"]} <= {"load"}


@pytest.mark.parametrize("query", ["", "?task_definition_name=ghost"])
def test_trigger_unknown_is_404(
    client: FlaskClient, put_definition: Callable[..., Definition], query: str
) -> None:
    put_definition()
    name = "nightly" if query else "nope"
    response = client.post(f"{URL}/{name}/trigger{query}")
    assert response.status_code == 404, response.get_json()


def test_pause_resume_and_trigger_while_paused(
    client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    assert client.post(f"{URL}/nightly/pause").status_code == 204
    assert client.get(f"{URL}/nightly").get_json()["paused"] is True
    assert client.post(f"{URL}/nightly/trigger").status_code == 204
    assert client.post(f"{URL}/nightly/resume").status_code == 204
    assert client.get(f"{URL}/nightly").get_json()["paused"] is False
    assert client.post(f"{URL}/nope/pause").status_code == 404
    assert client.post(f"{URL}/nope/resume").status_code == 404


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.put(
        f"{URL}/nightly", data=b'{"process_definition_name": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_json"
    assert client.get(f"{URL}/nightly").status_code == 404


@pytest.mark.parametrize(
    "body",
    [b"", b"NaN", b"[" * 100_000, b"\xff\xfe\x00", b"{'single': 'quotes'}"],
    ids=["empty", "nan", "deep", "bad-encoding", "not-json"],
)
def test_bodies_that_are_not_json(client: FlaskClient, body: bytes) -> None:
    response = client.put(f"{URL}/nightly", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_json"


def test_body_without_content_type_is_read_as_json(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    import json

    response = client.put(f"{URL}/nightly", data=json.dumps(make_definition()))
    assert response.status_code == 201


def with_task(make: Callable[..., Definition], **task_fields: Any) -> Definition:
    """A definition whose only task has `task_fields` replaced."""
    return make(task_definitions=[task("only", **task_fields)])


def docker(**fields: Any) -> dict[str, Any]:
    """A docker_image_command executable with `fields` replaced."""
    return {"docker_image_command": {"image": "busybox", "command": ["true"], **fields}}


def cron(**fields: str) -> dict[str, Any]:
    """A cron schedule with `fields` replaced."""
    base = {"minutes": "0", "hours": "3", "day_of_month": "*", "month": "*", "day_of_week": "?"}
    return {"cron_schedule": {**base, **fields}}


INVALID = {
    "wrong-type": (lambda m: with_task(m, max_attempts="3"), "task_definitions.0.max_attempts"),
    "names-not-list": (lambda m: m(task_definitions={"a": 1}), "task_definitions"),
    "unknown-union-type": (lambda m: m(schedule={"weekly_schedule": {}}), "schedule"),
    "duplicate-task-names": (
        lambda m: m(task_definitions=[task("a"), task("a")]),
        "task_definitions",
    ),
    "missing-dependency": (lambda m: m(task_definitions=[task("a", "ghost")]), "task_definitions"),
    "cycle": (
        lambda m: m(task_definitions=[task("a", "c"), task("b", "a"), task("c", "b")]),
        "task_definitions",
    ),
    "cron-minutes": (lambda m: m(schedule=cron(minutes="61")), "schedule.cron_schedule.minutes"),
    "cron-day-of-week": (
        lambda m: m(schedule=cron(day_of_week="8")),
        "schedule.cron_schedule.day_of_week",
    ),
    "time-zone": (
        lambda m: m(schedule=cron(time_zone="Mars/Olympus")),
        "schedule.cron_schedule.time_zone",
    ),
    "max-attempts-zero": (
        lambda m: with_task(m, max_attempts=0),
        "task_definitions.0.max_attempts",
    ),
    "negative-backoff": (
        lambda m: with_task(m, backoff_base_seconds=-1),
        "task_definitions.0.backoff_base_seconds",
    ),
    "negative-buffer": (
        lambda m: m(schedule={"continuous_schedule": {"buffer_seconds": -5}}),
        "schedule.continuous_schedule.buffer_seconds",
    ),
    "empty-image": (
        lambda m: with_task(m, executable=docker(image="")),
        "task_definitions.0.executable.docker_image_command.image",
    ),
    "name-mismatch": (lambda m: m("other"), "process_definition_name"),
}


@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_invalid_definitions_name_the_field(
    client: FlaskClient,
    make_definition: Callable[..., Definition],
    case: tuple[Callable[..., Definition], str],
) -> None:
    build, field = case
    fields = fields_of(client.put(f"{URL}/nightly", json=build(make_definition)))
    assert any(path == field or path.startswith(field + ".") for path in fields), fields
    assert client.get(f"{URL}/nightly").status_code == 404


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda m: m(task_definitions=[task("alpha", "ghost")]), ["ghost"]),
        (
            lambda m: m(task_definitions=[task("alpha", "beta"), task("beta", "alpha")]),
            ["alpha", "beta"],
        ),
        (lambda m: m(task_definitions=[task("twin"), task("twin")]), ["twin"]),
    ],
    ids=["missing-dependency", "cycle", "duplicate"],
)
def test_graph_errors_name_the_tasks(
    client: FlaskClient,
    make_definition: Callable[..., Definition],
    build: Callable[..., Definition],
    named: list[str],
) -> None:
    response = client.put(f"{URL}/nightly", json=build(make_definition))
    problems = " ".join(p for ps in fields_of(response).values() for p in ps)
    text = response.get_json()["message"] + " " + problems
    for name in named:
        assert name in text, text


def test_question_mark_is_a_valid_cron_field(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    body = make_definition(schedule=cron(day_of_month="?", day_of_week="MON-FRI"))
    assert client.put(f"{URL}/nightly", json=body).status_code == 201
