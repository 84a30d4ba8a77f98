"""The OpenAPI document, and schemathesis fuzzing every operation it describes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.auth import Scope, entry
from app.openapi import build_spec
from executor.fake import Script
from scheduler.models import MODELS
from tests.app.conftest import Definition, fake, gnomon_of

CONTRACT = {
    ("get", "/api/process_definitions"),
    ("get", "/api/process_definitions/{name}"),
    ("put", "/api/process_definitions/{name}"),
    ("post", "/api/process_definitions/_apply"),
    ("delete", "/api/process_definitions/{name}"),
    ("post", "/api/process_definitions/{name}/trigger"),
    ("post", "/api/process_definitions/{name}/pause"),
    ("post", "/api/process_definitions/{name}/resume"),
    ("post", "/api/process_definitions/{name}/notifications/test"),
    ("get", "/api/processes"),
    ("get", "/api/processes/{process_id}"),
    ("post", "/api/processes/{process_id}/retry"),
    ("post", "/api/processes/{process_id}/kill"),
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{task_id}"),
    ("get", "/api/tasks/{task_id}/log_entries"),
    ("get", "/api/tasks/{task_id}/log_stream"),
    ("post", "/api/tasks/{task_id}/log_entries"),
    ("post", "/api/tasks/{task_id}/metadata"),
    ("post", "/api/tasks/{task_id}/succeed"),
    ("post", "/api/tasks/{task_id}/fail"),
    ("get", "/_internal_/metrics"),
    ("get", "/_internal_/healthcheck"),
    ("get", "/api/process_definitions/{name}/versions"),
    ("get", "/api/process_definitions/{name}/versions/{version}"),
    ("get", "/api/audit"),
}
METHODS = {"get", "put", "post", "delete"}

# A PUT body is valid only if its name equals the URL's and its task graph holds together
# (dependencies name existing tasks, no cycles, no duplicate names): rules across fields
# that OpenAPI cannot state, so valid-looking generated bodies are rightly refused with 400.
CROSS_FIELD_RULES = {
    ("put", "/api/process_definitions/{name}"),
    ("post", "/api/process_definitions/_apply"),  # and names must differ across items
}

# Operations whose input is at most an unconstrained name: no request to them can be invalid.
NOTHING_TO_NEGATE = {
    ("get", "/api/process_definitions"),
    ("get", "/api/process_definitions/{name}"),
    ("delete", "/api/process_definitions/{name}"),
    ("post", "/api/process_definitions/{name}/pause"),
    ("post", "/api/process_definitions/{name}/resume"),
    ("post", "/api/process_definitions/{name}/notifications/test"),
    ("get", "/_internal_/metrics"),
    ("get", "/_internal_/healthcheck"),
    ("get", "/api/process_definitions/{name}/versions"),
}

MAX_EXAMPLES = 25
TOKEN = "fuzzer-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app that requires API tokens, as a service beyond loopback does."""
    return make_app(API_TOKENS=entry("fuzzer", Scope.ADMIN, TOKEN))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app` that sends the admin token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
    return client


def operations() -> Iterator[tuple[str, str]]:
    """Every (method, path) of the document."""
    for path, item in build_spec(1000)["paths"].items():
        for method in item.keys() & METHODS:
            yield method, path


def test_document_describes_the_contract(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.json")  # open: no token needed
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert set(operations()) == CONTRACT
    for name in ("ProcessDefinition", "Process", "Task", "LogEntry", "MetadataEntry", "Error"):
        assert name in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/_internal_/healthcheck"]["get"]["security"] == []


def test_query_filters_are_documented(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    processes = {p["name"] for p in paths["/api/processes"]["get"]["parameters"]}
    assert processes == {
        "process_definition_name",
        "start_time",
        "end_time",
        "max_records",
        "allowed_statuses",
    }
    tasks = {p["name"]: p for p in paths["/api/tasks"]["get"]["parameters"]}
    assert set(tasks) == {
        "process_definition_name",
        "task_definition_name",
        "allowed_statuses",
        "start_time",
        "end_time",
        "limit",
    }
    assert not any(p["required"] for p in tasks.values())
    assert tasks["limit"]["schema"]["minimum"] == 1


def row_counts(app: Flask) -> dict[str, int]:
    """The number of rows of every table."""
    with gnomon_of(app).database.connection_context():
        return {model.__name__: model.select().count() for model in MODELS}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(
    ("method", "path"), sorted(CONTRACT), ids=[f"{m} {p}" for m, p in sorted(CONTRACT)]
)
def test_fuzz(app: Flask, method: str, path: str, mode: GenerationMode) -> None:
    """No 5xx, responses as documented, and a request refused with 4xx writes nothing."""
    if mode == GenerationMode.NEGATIVE and (method, path) in NOTHING_TO_NEGATE:
        pytest.skip("every request to this operation is valid")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # every case sends the admin token (below): generating Authorization values would
    # only make valid requests look negative
    schema.config.generation.update(with_security_parameters=False)
    operation = schema[path][method.upper()]
    excluded = [positive_data_acceptance] if (method, path) in CROSS_FIELD_RULES else []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the run bounded
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        before = row_counts(app)
        response = case.call_and_validate(headers=AUTH, excluded_checks=excluded)
        if 400 <= response.status_code < 500:
            assert row_counts(app) == before, f"{case.method} {case.formatted_path} wrote rows"

    check()


def test_real_responses_conform(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    make_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:
    """Responses about real definitions, runs and attempts match the document."""
    put_definition(
        notifications=[{"email": {"name": "ops", "email": "ops@example.com"}}],
        schedule={"continuous_schedule": {"buffer_seconds": 60}},
    )
    fake(app).script("load", Script(exit_code=2, lines=(("stdout", "loading"),)))
    process_id = trigger()
    drive()
    task_id = client.get(f"/api/processes/{process_id}").get_json()["task"][0]["task_id"]
    entry = {"metadata_entry_id": str(uuid.uuid4()), "when": "2026-01-01T00:00:00Z"}
    client.post(f"/api/tasks/{task_id}/metadata", json=[{**entry, "key": "k", "value": "v"}])
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    cases = [
        schema["/api/process_definitions"]["GET"].Case(),
        schema["/api/process_definitions/{name}"]["GET"].Case(path_parameters={"name": "nightly"}),
        schema["/api/process_definitions/_apply"]["POST"].Case(
            body=[make_definition("nightly"), make_definition("weekly")]
        ),
        schema["/api/processes"]["GET"].Case(),
        schema["/api/processes/{process_id}"]["GET"].Case(
            path_parameters={"process_id": process_id}
        ),
        schema["/api/tasks"]["GET"].Case(query={"allowed_statuses": ["failed", "succeeded"]}),
        schema["/_internal_/metrics"]["GET"].Case(),
        schema["/api/tasks/{task_id}/log_stream"]["GET"].Case(
            path_parameters={"task_id": task_id}  # ended: the stream sends all, then `end`
        ),
    ]
    for case in cases:
        response = case.call_and_validate(headers=AUTH)
        assert response.status_code == 200, (case.path, response.text)
