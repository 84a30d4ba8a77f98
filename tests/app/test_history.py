"""History: the versions of a definition, the audit trail, the version a run started from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from app.auth import Scope, entry
from tests.app.conftest import Definition, task

ALICE, BOB = "alice-token", "bob-token"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app with two writers, alice and bob, and a secrets key."""
    tokens = ",".join([entry("alice", Scope.WRITE, ALICE), entry("bob", Scope.WRITE, BOB)])
    return make_app(API_TOKENS=tokens, SECRETS_KEY=Fernet.generate_key().decode())


def as_(token: str) -> dict[str, str]:
    """The Authorization header of `token`."""
    return {"Authorization": f"Bearer {token}"}


def put(client: FlaskClient, body: Definition, token: str = ALICE) -> Any:
    """PUT `body` as `token`; its JSON answer."""
    name = body["process_definition_name"]
    response = client.put(f"/api/process_definitions/{name}", json=body, headers=as_(token))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def get(client: FlaskClient, path: str, **query: Any) -> Any:
    """GET `path` as alice; (status, JSON)."""
    response = client.get(path, query_string=query, headers=as_(ALICE))
    return response.status_code, response.get_json()


def test_every_version_is_listed_with_who_and_when(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    put(client, make_definition())
    put(client, make_definition(process_description="second"), token=BOB)
    status, versions = get(client, "/api/process_definitions/nightly/versions")
    assert status == 200
    assert [(v["version"], v["created_by"]) for v in versions] == [(1, "alice"), (2, "bob")]
    assert all(v["created_at"].endswith("Z") for v in versions)
    status, first = get(client, "/api/process_definitions/nightly/versions/1")
    assert status == 200 and first["version"] == 1 and first["created_by"] == "alice"
    assert first["process_definition"]["process_description"] == "extract then load"
    _, second = get(client, "/api/process_definitions/nightly/versions/2")
    assert second["process_definition"]["process_description"] == "second"


def test_versions_outlive_the_definition_and_mask_secrets(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    secret_task = task("extract")
    secret_task["executable"]["docker_image_command"]["environment_variables"] = [
        {"variable_name": "PW", "value": "s3cret", "secret": True}
    ]
    put(client, make_definition(task_definitions=[secret_task]))
    assert client.delete("/api/process_definitions/nightly", headers=as_(ALICE)).status_code == 204
    status, version = get(client, "/api/process_definitions/nightly/versions/1")
    assert status == 200
    command = version["process_definition"]["task_definitions"][0]["executable"]
    variables = command["docker_image_command"]["environment_variables"]
    assert variables == [{"variable_name": "PW", "value": "********", "secret": True}]


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/process_definitions/nope/versions", 404),
        ("/api/process_definitions/nightly/versions/2", 404),
        ("/api/process_definitions/nightly/versions/x1", 400),
        ("/api/process_definitions/nightly/versions/99999999999", 400),
    ],
)
def test_unknown_or_malformed_versions(
    client: FlaskClient, make_definition: Callable[..., Definition], path: str, status: int
) -> None:
    put(client, make_definition())
    answer, body = get(client, path)
    assert answer == status and set(body) == {"error", "message", "details"}


def test_a_run_shows_the_version_it_started_from(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    put(client, make_definition())
    started = client.post("/api/process_definitions/nightly/trigger", headers=as_(ALICE))
    put(client, make_definition(process_description="changed"))
    _, run = get(client, started.headers["Location"])
    assert run["process_definition_version"] == 1


def test_the_audit_trail_filters_by_actor_target_and_time_and_pages(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> None:
    put(client, make_definition("a"))
    put(client, make_definition("b"), token=BOB)
    client.post("/api/process_definitions/a/pause", headers=as_(BOB))
    status, events = get(client, "/api/audit")
    assert status == 200
    assert [(e["actor"], e["action"], e["target"]) for e in events] == [
        ("bob", "pause", "a"),
        ("bob", "create", "b"),
        ("alice", "create", "a"),
    ]
    _, by_bob = get(client, "/api/audit", actor="bob")
    assert [e["target"] for e in by_bob] == ["a", "b"]
    _, on_a = get(client, "/api/audit", target="a")
    assert [e["action"] for e in on_a] == ["pause", "create"]
    _, page = get(client, "/api/audit", limit=2)
    _, rest = get(client, "/api/audit", limit=2, before_id=page[-1]["audit_id"])
    assert [e["audit_id"] for e in page + rest] == [e["audit_id"] for e in events]
    _, future = get(client, "/api/audit", since="2999-01-01T00:00:00Z")
    assert future == []


@pytest.mark.parametrize("query", [{"since": "yesterday"}, {"limit": "0"}, {"before_id": "x"}])
def test_a_bad_audit_filter_is_a_400_naming_it(client: FlaskClient, query: dict) -> None:
    status, body = get(client, "/api/audit", **query)
    assert status == 400 and next(iter(query)) in body["details"]["fields"]
