"""Secret environment variables: write-only over the API, sealed at rest, opened for containers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from scheduler.models import Definition, DefinitionVersion, Run
from tests.app.conftest import fake, gnomon_of, task
from tests.support.live import live_service

KEY = Fernet.generate_key().decode()
SECRET = "hunter2-correct-horse"
MASK = "********"
ENV_PATH = "task_definitions.0.executable.docker_image_command.environment_variables"


def with_env(*variables: dict[str, Any]) -> dict[str, Any]:
    """A one-task definition body whose task has `variables`."""
    main = task("main")
    main["executable"]["docker_image_command"]["environment_variables"] = list(variables)
    return {"process_definition_name": "vault", "task_definitions": [main]}


def variables_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The environment variables of the first task of a wire definition."""
    return body["task_definitions"][0]["executable"]["docker_image_command"][
        "environment_variables"
    ]


@pytest.fixture
def keyed(make_app: Callable[..., Flask]) -> Flask:
    """An app with a secrets key."""
    return make_app(SECRETS_KEY=KEY)


@pytest.fixture
def api(keyed: Flask) -> FlaskClient:
    """A client of the keyed app."""
    return keyed.test_client()


def put(client: FlaskClient, body: dict[str, Any]) -> Any:
    """PUT the vault definition."""
    return client.put("/api/process_definitions/vault", json=body)


def stored_texts(app: Flask) -> list[str]:
    """Every stored copy of the vault definition: current row, versions, runs."""
    with gnomon_of(app).database.connection_context():
        rows = [r.body for r in Definition.select()]
        rows += [r.body for r in DefinitionVersion.select()]
        rows += [r.definition_body for r in Run.select()]
    return rows


def started_environment(app: Flask) -> dict[str, str]:
    """Trigger the vault definition and return the environment its attempt was given."""
    client = app.test_client()
    assert client.post("/api/process_definitions/vault/trigger").status_code == 204
    with gnomon_of(app).database.connection_context():
        gnomon_of(app).scheduler.executor.open(gnomon_of(app).scheduler.engine)
        gnomon_of(app).scheduler.engine.dispatch(gnomon_of(app).scheduler.clock())
    return dict(fake(app).starts[-1].environment)


def test_a_secret_is_shown_masked_and_stored_sealed(keyed: Flask, api: FlaskClient) -> None:
    body = with_env(
        {"variable_name": "DB_PASSWORD", "value": SECRET, "secret": True},
        {"variable_name": "MODE", "value": "fast"},
    )
    created = put(api, body)
    assert created.status_code == 201, created.get_json()
    for shown in (created.get_json(), api.get("/api/process_definitions/vault").get_json()):
        assert variables_of(shown) == [
            {"variable_name": "DB_PASSWORD", "value": MASK, "secret": True},
            {"variable_name": "MODE", "value": "fast"},
        ]
    environment = started_environment(keyed)
    assert environment["DB_PASSWORD"] == SECRET and environment["MODE"] == "fast"
    texts = stored_texts(keyed)
    assert len(texts) == 3 and all(SECRET not in text and "fast" in text for text in texts)


def test_a_get_put_round_trip_keeps_the_secret_and_the_version(
    keyed: Flask, api: FlaskClient
) -> None:
    put(api, with_env({"variable_name": "TOKEN_A", "value": SECRET, "secret": True}))
    shown = api.get("/api/process_definitions/vault").get_json()
    again = put(api, shown)
    assert again.status_code == 200 and again.get_json()["version"] == 1
    same_text = put(api, with_env({"variable_name": "TOKEN_A", "value": SECRET, "secret": True}))
    assert same_text.get_json()["version"] == 1  # sealing twice is not a change
    assert started_environment(keyed)["TOKEN_A"] == SECRET


def test_a_new_secret_value_makes_a_new_version(keyed: Flask, api: FlaskClient) -> None:
    put(api, with_env({"variable_name": "TOKEN_A", "value": SECRET, "secret": True}))
    changed = put(api, with_env({"variable_name": "TOKEN_A", "value": "other", "secret": True}))
    assert changed.get_json()["version"] == 2
    assert started_environment(keyed)["TOKEN_A"] == "other"


def test_a_secret_without_a_key_is_refused_naming_the_field(client: FlaskClient) -> None:
    response = put(client, with_env({"variable_name": "PW", "value": SECRET, "secret": True}))
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_error"
    assert list(error["details"]["fields"]) == [f"{ENV_PATH}.0.value"]
    assert "GNOMON_SECRETS_KEY" in error["message"] and SECRET not in response.text
    assert client.get("/api/process_definitions/vault").status_code == 404


def test_a_masked_value_with_nothing_stored_is_refused(api: FlaskClient) -> None:
    response = put(api, with_env({"variable_name": "PW", "value": MASK, "secret": True}))
    assert response.status_code == 400
    assert list(response.get_json()["details"]["fields"]) == [f"{ENV_PATH}.0.value"]


@pytest.mark.parametrize(
    "variable, field",
    [
        ({"variable_name": "PW"}, "value"),
        ({"variable_name": "PW", "value": "x", "value_from_env": "PW"}, "value_from_env"),
        ({"variable_name": "PW", "value_from_env": "not a name"}, "value_from_env"),
    ],
)
def test_a_variable_needs_exactly_one_source(
    client: FlaskClient, variable: dict[str, Any], field: str
) -> None:
    response = put(client, with_env(variable))
    assert response.status_code == 400
    assert f"{ENV_PATH}.0.{field}" in response.get_json()["details"]["fields"]


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The service's own environment holds GNOMON_TEST_DB_URL."""
    monkeypatch.setenv("GNOMON_TEST_DB_URL", "postgresql://u:p@db/x")
    yield


def test_a_value_from_the_service_environment_never_travels_through_the_api(
    keyed: Flask, api: FlaskClient, service_env: None
) -> None:
    body = with_env({"variable_name": "DB_URL", "value_from_env": "GNOMON_TEST_DB_URL"})
    assert put(api, body).status_code == 201
    shown = api.get("/api/process_definitions/vault").get_json()
    assert variables_of(shown) == [
        {"variable_name": "DB_URL", "value_from_env": "GNOMON_TEST_DB_URL"}
    ]
    environment = started_environment(keyed)
    assert environment["DB_URL"] == "postgresql://u:p@db/x"
    assert all("u:p@db" not in text for text in stored_texts(keyed))


def test_an_unset_service_variable_fails_the_attempt_naming_it(
    keyed: Flask, api: FlaskClient
) -> None:
    put(api, with_env({"variable_name": "DB_URL", "value_from_env": "GNOMON_TEST_UNSET_VAR"}))
    client = keyed.test_client()
    client.post("/api/process_definitions/vault/trigger")
    state = gnomon_of(keyed)
    state.scheduler.executor.open(state.scheduler.engine)
    with state.database.connection_context():
        state.scheduler.engine.dispatch(state.scheduler.clock())
    (run,) = client.get("/api/processes").get_json()
    assert run["status"] == "failed"
    assert "GNOMON_TEST_UNSET_VAR" in run["task"][0]["reason"]


@pytest.mark.docker
def test_a_real_container_receives_the_opened_secret(
    busybox_image: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    digest = hashlib.md5(SECRET.encode()).hexdigest()  # the command must not hold the secret
    check = f'[ "$(printf %s "$DB_PASSWORD" | md5sum)" = "{digest}  -" ]'
    main = {
        "task_definition_name": "main",
        "executable": {"docker_image_command": {
            "image": busybox_image.split(":")[0], "command": ["sh", "-c", check],
            "environment_variables": [
                {"variable_name": "DB_PASSWORD", "value": SECRET, "secret": True}
            ],
        }},
    }  # fmt: skip
    caplog.set_level("DEBUG")
    with live_service(database_url, SECRETS_KEY=KEY) as service:
        service.put_definition({"process_definition_name": "vault", "task_definitions": [main]})
        run = service.wait_run(service.trigger("vault"))
        texts = stored_texts(service.app)
    assert run["status"] == "succeeded", run
    assert all(SECRET not in text for text in texts)
    assert SECRET not in caplog.text


def test_the_console_shows_a_secret_masked_in_the_page_and_its_version_diff(
    api: FlaskClient,
) -> None:
    body = with_env({"variable_name": "ENDPOINT", "value": SECRET, "secret": True})
    assert put(api, body).status_code == 201
    body = with_env({"variable_name": "ENDPOINT", "value": SECRET + "-new", "secret": True})
    body["task_definitions"][0]["executable"]["docker_image_command"]["command"] = ["false"]
    assert put(api, body).status_code == 200

    page = api.get("/definitions/vault?from=1&to=2").get_data(as_text=True)

    assert "ENDPOINT" in page and 'class="diff"' in page
    assert SECRET not in page and "gAAAA" not in page  # neither the value nor its Fernet token
