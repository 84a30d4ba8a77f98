"""API tokens and scopes, task tokens on callbacks, the metrics token, and who did what."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import (
    ANONYMOUS,
    Exposure,
    Scope,
    digest,
    entry,
    exposure,
    is_loopback,
    load_credentials,
)
from app.config import ConfigError, validate
from scheduler.models import AuditEvent, LogEntry, TaskReport
from tests.app.conftest import Definition, gnomon_of, task, task_auth

TOKENS = {"reader": "read-token-1", "writer": "write-token-1", "boss": "admin-token-1"}
SCOPES = {"reader": Scope.READ, "writer": Scope.WRITE, "boss": Scope.ADMIN}
METRICS_TOKEN = "metrics-token-1"
WHEN = "2026-01-01T00:00:00Z"
PARALLEL = [task("extract"), task("load")]  # two attempts at once


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def as_user(name: str) -> dict[str, str]:
    """The Authorization header of the API token called `name`."""
    return bearer(TOKENS[name])


def body_of(suffix: str) -> list[dict[str, str]] | None:
    """A valid body for the callback `suffix`: one new entry, or none for a report."""
    if suffix == "log_entries":
        return [{"log_entry_id": str(uuid.uuid4()), "when": WHEN, "source": "t", "message": "m"}]
    if suffix == "metadata":
        return [{"metadata_entry_id": str(uuid.uuid4()), "when": WHEN, "key": "k", "value": "v"}]
    return None


@pytest.fixture
def secured(make_app: Callable[..., Flask]) -> Flask:
    """An app with a read, a write and an admin token, and a metrics token."""
    tokens = ",".join(entry(name, SCOPES[name], token) for name, token in TOKENS.items())
    return make_app(API_TOKENS=tokens, METRICS_TOKEN_SHA256=digest(METRICS_TOKEN))


@pytest.fixture
def api(secured: Flask) -> FlaskClient:
    """A test client of the secured app; it sends no token unless told to."""
    return secured.test_client()


@pytest.fixture
def started(api: FlaskClient, make_definition: Callable[..., Definition]) -> dict[str, Any]:
    """A running run of `nightly` (two independent tasks) on the secured app."""
    body = make_definition(task_definitions=PARALLEL)
    response = api.put("/api/process_definitions/nightly", json=body, headers=as_user("writer"))
    assert response.status_code == 201, response.get_json()
    response = api.post("/api/process_definitions/nightly/trigger", headers=as_user("writer"))
    assert response.status_code == 204, response.get_json()
    return api.get(response.headers["Location"], headers=as_user("reader")).get_json()


def task_ids(run: dict[str, Any]) -> tuple[str, str]:
    """The ids of the run's `extract` and `load` attempts."""
    by_name = {t["task_definition_name"]: t["task_id"] for t in run["task"]}
    return by_name["extract"], by_name["load"]


def stored(app: Flask, task_id: str) -> tuple[int, TaskReport | None]:
    """How many log entries attempt `task_id` has, and its report."""
    with gnomon_of(app).database.connection_context():
        entries = LogEntry.select().where(LogEntry.task == task_id).count()
        return entries, TaskReport.get_or_none(TaskReport.task == task_id)


def audit_trail(app: Flask) -> list[tuple[str, str]]:
    """(actor, action) of every audit event, oldest first."""
    with gnomon_of(app).database.connection_context():
        return [(e.actor, e.action) for e in AuditEvent.select().order_by(AuditEvent.id)]


# ---------------------------------------------------------------- tokens, unit


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (Scope.READ, {Scope.READ}),
        (Scope.WRITE, {Scope.READ, Scope.WRITE}),
        (Scope.ADMIN, {Scope.READ, Scope.WRITE, Scope.ADMIN}),
    ],
)
def test_each_scope_implies_the_smaller_ones(scope: Scope, allowed: set[Scope]) -> None:
    assert {needed for needed in Scope if scope.allows(needed)} == allowed


def settings(**values: str) -> dict[str, object]:
    """Validated settings with `values`."""
    return validate(values)


def test_tokens_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    on_call = f"ops:admin:{digest('t-ops').upper()}  # the on-call team"
    tokens_file.write_text(f"# operators\n\n{on_call}\n", encoding="utf-8")
    variable = f"{entry('ci', Scope.WRITE, 't-ci')},\n{entry('grafana', Scope.READ, 't-g')}"
    found = load_credentials(settings(API_TOKENS=variable, API_TOKENS_FILE=str(tokens_file)))
    assert {(t.name, t.scope) for t in found.api_tokens} == {
        ("ci", Scope.WRITE), ("grafana", Scope.READ), ("ops", Scope.ADMIN),
    }  # fmt: skip
    assert found.api_token("t-ops").name == "ops"  # an upper-case digest is fine
    assert found.api_token("t-ci").name == "ci"
    assert found.api_token("t-nobody") is None
    assert found.api_token(None) is None
    assert found.metrics_digest is None


def test_no_tokens_configured_means_none() -> None:
    found = load_credentials(settings())
    assert found.api_tokens == ()
    assert not found.is_metrics_token("anything")


def test_bad_entries_are_sentences_that_never_echo_the_entry(tmp_path: Path) -> None:
    raw_token = "pasted-the-token-itself-by-mistake"
    variable = ",".join([
        entry("ci", Scope.WRITE, "a"), entry("ci", Scope.READ, "b"), raw_token,
        f"ops:root:{'0' * 64}", entry(ANONYMOUS, Scope.READ, "c"),
    ])  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_credentials(settings(API_TOKENS=variable))
    problems = caught.value.problems
    assert len(problems) == 4
    assert "entry 2, token name 'ci' is configured twice" in problems[0]
    assert "entry 3, is not name:scope:sha256hex" in problems[1]
    assert "entry 4, is not" in problems[2]
    assert "'anonymous' is reserved" in problems[3]
    assert raw_token not in str(caught.value)


def test_an_unreadable_token_file_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"API_TOKENS_FILE \(.*missing\) cannot be read"):
        load_credentials(settings(API_TOKENS_FILE=str(tmp_path / "missing")))


def test_the_metrics_digest_must_be_hex() -> None:
    with pytest.raises(ConfigError, match=r"METRICS_TOKEN_SHA256.*64 hexadecimal digits"):
        validate({"METRICS_TOKEN_SHA256": "not-a-digest"})


def test_a_digest_is_the_sha256_of_the_token() -> None:
    assert digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert entry("ci", Scope.WRITE, "abc") == f"ci:write:{hashlib.sha256(b'abc').hexdigest()}"


# ---------------------------------------------------------------- listening, unit


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
        ("localhost", True), ("LocalHost", True), ("0.0.0.0", False), ("::", False),
        ("", False), ("192.168.1.5", False), ("10.0.0.1", False), ("gnomon.example", False),
        ("127.0.0.1.example", False), ("::ffff:10.0.0.1", False),
    ],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "has_tokens", "insecure", "decision"),
    [
        ("127.0.0.1", False, False, Exposure.SAFE),
        ("localhost", False, True, Exposure.SAFE),
        ("0.0.0.0", True, False, Exposure.SAFE),
        ("0.0.0.0", False, False, Exposure.REFUSED),
        ("::", False, False, Exposure.REFUSED),
        ("0.0.0.0", False, True, Exposure.INSECURE),
    ],
)
def test_exposure(host: str, has_tokens: bool, insecure: bool, decision: Exposure) -> None:
    assert exposure(host, has_tokens, insecure) is decision


# ---------------------------------------------------------------- API tokens


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/process_definitions"),
        ("GET", "/api/processes"),
        ("GET", "/api/tasks"),
        ("PUT", "/api/process_definitions/nightly"),
        ("POST", "/api/process_definitions/nightly/trigger"),
        ("GET", "/api/no-such-thing"),
    ],
)
def test_without_a_token_every_api_request_is_401(api: FlaskClient, method: str, path: str) -> None:
    response = api.open(path, method=method, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "invalid_token" not in response.headers["WWW-Authenticate"]
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "unauthorized"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", f"Bearer {TOKENS['writer']}x", f"Basic {TOKENS['writer']}", "Bearer"],
)
def test_an_unknown_token_is_401(api: FlaskClient, authorization: str) -> None:
    response = api.get("/api/processes", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.get_json()["error"] == "unauthorized"


def test_a_read_token_reads_but_changes_nothing(
    secured: Flask, api: FlaskClient, started: dict[str, Any]
) -> None:
    reader = as_user("reader")
    run_path = f"/api/processes/{started['process_id']}"
    for path in ("/api/process_definitions", "/api/processes", "/api/tasks", run_path):
        assert api.get(path, headers=reader).status_code == 200, path
    before = audit_trail(secured)
    for method, path in [
        ("PUT", "/api/process_definitions/nightly"),
        ("DELETE", "/api/process_definitions/nightly"),
        ("POST", "/api/process_definitions/nightly/trigger"),
        ("POST", "/api/process_definitions/nightly/pause"),
        ("POST", "/api/process_definitions/nightly/resume"),
        ("POST", f"{run_path}/kill"),
        ("POST", f"{run_path}/retry"),
    ]:
        response = api.open(path, method=method, headers=reader, json={})
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"] == "forbidden"
        assert "WWW-Authenticate" not in response.headers
    assert audit_trail(secured) == before
    assert api.get(run_path, headers=reader).get_json()["status"] == "running"


@pytest.mark.parametrize("name", ["writer", "boss"])
def test_write_and_admin_tokens_change_things(
    api: FlaskClient, make_definition: Callable[..., Definition], name: str
) -> None:
    user = as_user(name)
    response = api.put("/api/process_definitions/x", json=make_definition("x"), headers=user)
    assert response.status_code == 201
    assert api.post("/api/process_definitions/x/pause", headers=user).status_code == 204
    assert api.delete("/api/process_definitions/x", headers=user).status_code == 204


def test_the_schema_and_the_health_check_stay_open(api: FlaskClient) -> None:
    assert api.get("/api/openapi.json").status_code == 200
    assert api.get("/_internal_/healthcheck").status_code == 200


# ---------------------------------------------------------------- metrics


def test_metrics_take_the_metrics_token_or_an_api_token(api: FlaskClient) -> None:
    assert api.get("/_internal_/metrics").status_code == 401
    assert api.get("/_internal_/metrics", headers=bearer("guess")).status_code == 401
    for headers in (bearer(METRICS_TOKEN), as_user("reader"), as_user("boss")):
        assert api.get("/_internal_/metrics", headers=headers).status_code == 200
    # the metrics token opens nothing else
    assert api.get("/api/processes", headers=bearer(METRICS_TOKEN)).status_code == 401


def test_a_metrics_token_alone_guards_only_the_metrics(make_app: Callable[..., Flask]) -> None:
    client = make_app(METRICS_TOKEN_SHA256=digest(METRICS_TOKEN)).test_client()
    assert client.get("/_internal_/metrics").status_code == 401
    assert client.get("/_internal_/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200
    assert client.get("/api/processes").status_code == 200


def test_without_any_token_configured_metrics_are_open(client: FlaskClient) -> None:
    assert client.get("/_internal_/metrics").status_code == 200


# ---------------------------------------------------------------- who did what


def test_changes_are_audited_under_the_token_name_and_runs_show_their_starter(
    secured: Flask,
    api: FlaskClient,
    make_definition: Callable[..., Definition],
) -> None:
    writer, boss = as_user("writer"), as_user("boss")
    api.put("/api/process_definitions/nightly", json=make_definition(), headers=writer)
    api.post("/api/process_definitions/nightly/pause", headers=boss)
    api.post("/api/process_definitions/nightly/resume", headers=writer)
    location = api.post("/api/process_definitions/nightly/trigger", headers=boss).location
    run = api.get(location, headers=as_user("reader")).get_json()
    assert run["trigger"] == "manual:boss"
    assert api.post(f"{location}/kill", headers=writer).status_code == 204
    assert api.post(f"{location}/retry", headers=boss).status_code == 204
    assert api.get(location, headers=writer).get_json()["trigger"] == "retry:boss"
    api.delete("/api/process_definitions/nightly", headers=boss)
    assert audit_trail(secured) == [
        ("writer", "create"), ("boss", "pause"), ("writer", "resume"), ("boss", "trigger"),
        ("writer", "kill"), ("boss", "retry"), ("boss", "delete"),
    ]  # fmt: skip


def test_without_tokens_the_actor_is_anonymous(
    app: Flask, client: FlaskClient, put_definition: Callable[..., Definition]
) -> None:
    put_definition()
    location = client.post("/api/process_definitions/nightly/trigger").location
    assert client.get(location).get_json()["trigger"] == f"manual:{ANONYMOUS}"
    assert audit_trail(app) == [(ANONYMOUS, "create"), (ANONYMOUS, "trigger")]


# ---------------------------------------------------------------- task tokens


def test_a_task_token_reports_for_its_own_task_only(
    secured: Flask, api: FlaskClient, started: dict[str, Any]
) -> None:
    a, b = task_ids(started)
    a_token = task_auth(secured, a)
    for suffix in ("log_entries", "metadata", "succeed"):
        response = api.post(f"/api/tasks/{b}/{suffix}", headers=a_token, json=body_of(suffix))
        assert response.status_code == 403, suffix
        assert response.get_json()["error"] == "forbidden"
    assert stored(secured, b) == (0, None)
    own = api.post(f"/api/tasks/{a}/log_entries", headers=a_token, json=body_of("log_entries"))
    assert own.status_code == 204
    assert api.post(f"/api/tasks/{a.upper()}/succeed", headers=a_token).status_code == 204
    entries, report = stored(secured, a)
    assert (entries, report.outcome, report.reported_by) == (1, "succeeded", f"task:{a}")


def test_a_forged_or_read_token_is_403_and_no_token_401(
    secured: Flask, api: FlaskClient, started: dict[str, Any]
) -> None:
    a, _ = task_ids(started)
    for headers in (bearer("f" * 64), as_user("reader"), bearer(METRICS_TOKEN)):
        assert api.post(f"/api/tasks/{a}/fail", headers=headers).status_code == 403
    response = api.post(f"/api/tasks/{a}/fail")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert stored(secured, a) == (0, None)


def test_a_write_token_may_report_for_any_task(
    secured: Flask, api: FlaskClient, started: dict[str, Any]
) -> None:
    a, _ = task_ids(started)
    assert api.post(f"/api/tasks/{a}/fail", headers=as_user("writer")).status_code == 204
    assert stored(secured, a)[1].reported_by == "writer"


def test_a_task_token_is_not_an_api_token(
    secured: Flask, api: FlaskClient, started: dict[str, Any]
) -> None:
    a, _ = task_ids(started)
    assert api.get("/api/processes", headers=task_auth(secured, a)).status_code == 401


def test_without_api_tokens_callbacks_still_need_the_task_token(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
) -> None:
    put_definition(task_definitions=PARALLEL)
    a, b = task_ids(client.get(f"/api/processes/{trigger()}").get_json())
    assert client.post(f"/api/tasks/{b}/succeed").status_code == 401
    assert client.post(f"/api/tasks/{b}/succeed", headers=task_auth(app, a)).status_code == 403
    assert client.post(f"/api/tasks/{b}/succeed", headers=bearer("x")).status_code == 403
    assert stored(app, b) == (0, None)
    assert client.post(f"/api/tasks/{b}/succeed", headers=task_auth(app, b)).status_code == 204


def test_after_its_attempt_ended_a_task_token_stores_nothing(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
) -> None:
    put_definition()
    run_id = trigger()
    drive()
    run = client.get(f"/api/processes/{run_id}").get_json()
    assert run["status"] == "succeeded"
    a, _ = task_ids(run)
    token = task_auth(app, a)
    for suffix in ("log_entries", "metadata", "fail"):
        response = client.post(f"/api/tasks/{a}/{suffix}", headers=token, json=body_of(suffix))
        assert response.status_code == 409, suffix
        assert response.get_json()["error"] == "conflict"
    assert stored(app, a) == (0, None)
