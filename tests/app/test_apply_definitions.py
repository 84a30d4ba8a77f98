"""POST /api/process_definitions/_apply: many definitions at once, stored as PUTs store
them, all or none; and listings that dump the wire JSON stored with each version."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from app.auth import Scope, entry
from definitions import definition_from_json, dump_definition, mask_secret_values
from scheduler.models import MODELS, AuditEvent, DefinitionVersion
from scheduler.models import Definition as DefinitionRow
from tests.app.conftest import Definition, gnomon_of

APPLY = "/api/process_definitions/_apply"
KEY = Fernet.generate_key().decode()
STATE = ("version", "next_fire_at", "created_at", "updated_at", "updated_by", "schedule_error")


def row_counts(app: Flask) -> dict[str, int]:
    """The number of rows of every table."""
    with gnomon_of(app).database.connection_context():
        return {model.__name__: model.select().count() for model in MODELS}


def history(app: Flask, name: str) -> tuple[list[tuple], list[tuple]]:
    """`name`'s versions (number, body, author) and audit events (actor, action, detail)."""
    with gnomon_of(app).database.connection_context():
        versions = DefinitionVersion.select().where(DefinitionVersion.name == name)
        events = AuditEvent.select().where(AuditEvent.target == name).order_by(AuditEvent.id)
        return (
            [(v.version, json.loads(v.body) | {"process_definition_name": "-"}, v.created_by)
             for v in versions.order_by(DefinitionVersion.version)],
            [(e.actor, e.action, e.detail) for e in events],
        )  # fmt: skip


def shown(client: FlaskClient, name: str) -> dict[str, Any]:
    """GET of `name` without its name and the times that depend on when it was written."""
    body = client.get(f"/api/process_definitions/{name}").get_json()
    return {k: v for k, v in body.items() if k not in ("process_definition_name", "updated_at",
                                                       "created_at")}  # fmt: skip


def applied(client: FlaskClient, *bodies: Definition, **headers: str) -> Any:
    """POST `bodies` to _apply; the answer's JSON, which must be a 200."""
    response = client.post(APPLY, json=list(bodies), headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_apply_stores_each_definition_as_a_put_does(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    """The same changes made by PUTs (to `by-put`) and by _apply (to `by-apply`) leave the
    same versions, audit events and scheduling state."""
    daily = {"cron_schedule": {"minutes": "5", "hours": "*", "day_of_month": "*",
                               "month": "*", "day_of_week": "?"}}  # fmt: skip
    steps = [
        {},  # created
        {"process_description": "changed"},  # a new version
        {"process_description": "changed"},  # unchanged
        {"process_description": "changed", "paused": True},  # paused only: no new version
        {"process_description": "changed", "paused": False, "schedule": daily},  # both
    ]
    outcomes = []
    for step in steps:
        put = client.put("/api/process_definitions/by-put", json=make_definition("by-put", **step))
        assert put.status_code in (200, 201)
        (answer,) = applied(client, make_definition("by-apply", **step))
        outcomes.append(answer["outcome"])
        assert answer["version"] == put.get_json()["version"]
        assert shown(client, "by-apply") == shown(client, "by-put")
    assert outcomes == ["created", "updated", "unchanged", "updated", "updated"]
    assert history(app, "by-apply") == history(app, "by-put")
    assert [action for _, action, _ in history(app, "by-apply")[1]] == [
        "create", "update", "pause", "update", "resume",
    ]  # fmt: skip


def test_apply_answers_each_definition_in_order(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    client.put("/api/process_definitions/old", json=make_definition("old"))
    answer = applied(client, make_definition("new"), make_definition("old"))
    assert answer == [
        {"process_definition_name": "new", "version": 1, "outcome": "created"},
        {"process_definition_name": "old", "version": 1, "outcome": "unchanged"},
    ]
    assert applied(client) == []


def test_one_invalid_definition_stores_none_and_is_named_with_its_field(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    broken = make_definition("broken")
    broken["task_definitions"][0]["max_attempts"] = 0
    before = row_counts(app)
    response = client.post(APPLY, json=[make_definition("fine"), broken])
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_error"
    assert error["details"]["index"] == 1
    assert error["details"]["process_definition_name"] == "broken"
    assert list(error["details"]["fields"]) == ["task_definitions.0.max_attempts"]
    assert "'broken'" in error["message"] and "task_definitions.0.max_attempts" in error["message"]
    assert row_counts(app) == before


def test_a_definition_refused_while_storing_rolls_back_the_others(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    """A secret with no key to seal it is found in the write: the first definition, already
    planned, is not stored either."""
    secret = make_definition("secret")
    secret["task_definitions"][0]["executable"]["docker_image_command"]["environment_variables"] = [
        {"variable_name": "PW", "value": "hunter2", "secret": True}
    ]
    before = row_counts(app)
    response = client.post(APPLY, json=[make_definition("fine"), secret])
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert (details["index"], details["process_definition_name"]) == (1, "secret")
    assert list(details["fields"]) == [
        "task_definitions.0.executable.docker_image_command.environment_variables.0.value"
    ]
    assert row_counts(app) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"process_definition_name": "x"}, "_schema"),  # not an array
        ([{"process_definition_name": "x"}] * 1001, "_schema"),  # too many
        (["not an object"], "_schema"),
    ],
)
def test_a_body_that_is_not_a_list_of_definitions_is_refused(
    client: FlaskClient, body: Any, field: str
) -> None:
    response = client.post(APPLY, json=body)
    assert response.status_code == 400
    assert field in response.get_json()["details"]["fields"]


def test_two_definitions_of_one_name_are_refused(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    response = client.post(APPLY, json=[make_definition("twice"), make_definition("twice")])
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert details["index"] == 1 and list(details["fields"]) == ["process_definition_name"]
    assert client.get("/api/process_definitions/twice").status_code == 404


def test_apply_needs_the_scope_a_put_needs(
    app: Flask, make_app: Callable[..., Flask], make_definition: Callable[..., Definition]
) -> None:
    tokens = f"{entry('reader', Scope.READ, 'read-token')},{entry('ci', Scope.WRITE, 'ci-token')}"
    client = make_app(API_TOKENS=tokens).test_client()
    body = [make_definition("nightly")]
    assert client.post(APPLY, json=body).status_code == 401
    read = client.post(APPLY, json=body, headers={"Authorization": "Bearer read-token"})
    assert read.status_code == 403
    write = client.post(APPLY, json=body, headers={"Authorization": "Bearer ci-token"})
    assert write.status_code == 200
    audit = client.get("/api/audit", headers={"Authorization": "Bearer ci-token"}).get_json()
    assert [(e["actor"], e["action"]) for e in audit] == [("ci", "create")]


def wire_rows(app: Flask) -> dict[str, tuple[str | None, str]]:
    """Each definition's stored wire JSON and body, by name."""
    with gnomon_of(app).database.connection_context():
        return {row.name: (row.wire, row.body) for row in DefinitionRow.select()}


def test_the_stored_wire_form_is_what_marshmallow_dumps(
    make_app: Callable[..., Flask], make_definition: Callable[..., Definition]
) -> None:
    keyed = make_app(SECRETS_KEY=KEY)
    client = keyed.test_client()
    secret = make_definition("secret")
    secret["task_definitions"][0]["executable"]["docker_image_command"][
        "environment_variables"
    ] = [{"variable_name": "PW", "value": "hunter2", "secret": True},
         {"variable_name": "PLAIN", "value": "1"}]  # fmt: skip
    rich = make_definition(
        "rich",
        notifications=[{"email": {"name": "ops", "email": "ops@example.com"}}],
        schedule={"continuous_schedule": {"buffer_seconds": 60}},
        parameters=[{"name": "DAY", "default": "today"}],
    )
    applied(client, secret, rich, make_definition("plain", schedule=None))
    client.put("/api/process_definitions/put", json=make_definition("put"))
    for name, (wire, body) in wire_rows(keyed).items():
        assert wire is not None, name
        assert json.loads(wire) == dump_definition(mask_secret_values(definition_from_json(body)))
    assert "hunter2" not in json.dumps(wire_rows(keyed)["secret"][0])


def test_a_listing_equals_the_single_gets_with_or_without_stored_wire_forms(
    app: Flask, client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    names = [f"job-{i}" for i in range(5)]
    applied(client, *(make_definition(name) for name in names))
    client.post("/api/process_definitions/job-2/pause")
    singles = [client.get(f"/api/process_definitions/{name}").get_json() for name in names]
    assert client.get("/api/process_definitions").get_json() == singles
    page = client.get("/api/process_definitions", query_string={"limit": 2, "after": "job-1"})
    assert page.get_json() == singles[2:4]
    with gnomon_of(app).database.connection_context():  # as written before schema 9
        DefinitionRow.update(wire=None).execute()
    assert client.get("/api/process_definitions").get_json() == singles
    assert all(set(STATE) <= set(single) for single in singles)
