"""Notifications over the API: a run's deliveries, secrets masked for readers, the test button."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import Scope, entry
from executor.fake import Script
from scheduler.models import AuditEvent
from tests.app.conftest import Definition, fake, gnomon_of
from tests.app.test_cli import Service, invoke
from tests.app.test_cli import gnomon as gnomon  # a fixture, shared
from tests.app.test_cli import service as service  # a fixture, shared
from tests.support.receivers import Recorder, SmtpServer
from tests.support.receivers import receiver as receiver  # a fixture, shared
from tests.support.receivers import smtp as smtp  # a fixture, shared

READ = {"Authorization": "Bearer reader-token"}
WRITE = {"Authorization": "Bearer writer-token"}
TOKENS = ",".join(
    [entry("reader", Scope.READ, "reader-token"), entry("writer", Scope.WRITE, "writer-token")]
)
ROUTING_KEY = "R0UT1NGKEY0123456789"
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


@pytest.fixture
def app(make_app: Callable[..., Flask], smtp: SmtpServer) -> Flask:
    """An app with read and write tokens, the test SMTP server, loopback 127.0.0.1 allowed."""
    return make_app(
        API_TOKENS=TOKENS,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_SECURITY="none",
        NOTIFY_ALLOWED_NETWORKS="127.0.0.1",
        NOTIFY_TIMEOUT_SECONDS=2,
        PUBLIC_URL="http://gnomon.test:8080",
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client sending the write token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = WRITE["Authorization"]
    return client


def notifications(receiver: Recorder) -> list[dict[str, Any]]:
    """One notification of each kind, the HTTP ones to the recorder."""
    return [
        {"email": {"name": "ops", "email": "ops@example.com", "notify_when": "always"}},
        {"pagerduty": {"service_key": ROUTING_KEY, "api_url": receiver.url}},
        {"webhook": {"url": receiver.url + "/hook", "notify_when": "always", "secret": SECRET}},
    ]


def test_a_run_shows_its_notifications(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
    receiver: Recorder,
) -> None:
    put_definition(notifications=notifications(receiver))
    fake(app).script("load", Script(exit_code=1))
    process_id = trigger()
    drive()
    process = client.get(f"/api/processes/{process_id}", headers=READ).get_json()
    assert process["status"] == "failed"
    shown = [{k: n[k] for k in ("kind", "target", "action", "state", "attempts", "last_error")}
             for n in process["notifications"]]  # fmt: skip
    assert shown == [
        {"kind": "email", "target": "ops@example.com", "action": "notify", "state": "pending",
         "attempts": 0, "last_error": None},
        {"kind": "pagerduty", "target": receiver.url, "action": "trigger", "state": "pending",
         "attempts": 0, "last_error": None},
        {"kind": "webhook", "target": receiver.url, "action": "notify", "state": "pending",
         "attempts": 0, "last_error": None},
    ]  # fmt: skip
    assert all(n["next_attempt_at"].endswith("Z") and n["sent_at"] is None
               for n in process["notifications"])  # fmt: skip
    listed = client.get("/api/processes").get_json()
    assert listed[0]["notifications"] == process["notifications"]
    assert ROUTING_KEY not in str(process) and SECRET not in str(process)


def test_read_tokens_see_secrets_masked_and_write_tokens_round_trip_them(
    client: FlaskClient, put_definition: Callable[..., Definition], receiver: Recorder
) -> None:
    put_definition(notifications=notifications(receiver))
    for path in ("/api/process_definitions/nightly", "/api/process_definitions"):
        text = client.get(path, headers=READ).get_data(as_text=True)
        assert ROUTING_KEY not in text and SECRET not in text and "********" in text
    seen = client.get("/api/process_definitions/nightly", headers=READ).get_json()
    assert seen["notifications"][1]["pagerduty"]["service_key"] == "********"
    assert seen["notifications"][2]["webhook"]["secret"] == "********"
    stored = client.get("/api/process_definitions/nightly").get_json()
    assert stored["notifications"][1]["pagerduty"]["service_key"] == ROUTING_KEY
    assert stored["notifications"][2]["webhook"]["secret"] == SECRET
    response = client.put("/api/process_definitions/nightly", json=stored)
    assert response.status_code == 200 and response.get_json()["version"] == 1  # unchanged


def test_the_test_button_sends_a_marked_message_through_each_notification(
    app: Flask,
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    receiver: Recorder,
    smtp: SmtpServer,
) -> None:
    unlisted = {"webhook": {"url": "http://127.0.0.2:9/nowhere"}}
    put_definition(notifications=[*notifications(receiver), unlisted])
    response = client.post("/api/process_definitions/nightly/notifications/test")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == [
        {"kind": "email", "target": "ops@example.com", "state": "sent", "last_error": None},
        {"kind": "pagerduty", "target": receiver.url, "state": "sent", "last_error": None},
        {"kind": "webhook", "target": receiver.url, "state": "sent", "last_error": None},
        {"kind": "webhook", "target": "http://127.0.0.2:9", "state": "failed",
         "last_error": "refused: 127.0.0.2 resolves to 127.0.0.2, which is not a public "
                       "address nor in GNOMON_NOTIFY_ALLOWED_NETWORKS"},
    ]  # fmt: skip
    [(_, recipients, mail)] = smtp.mailbox.messages
    assert recipients == ["ops@example.com"]
    assert mail["Subject"] == "[TEST] Gnomon: nightly notification test"
    assert "This is a test message" in mail.get_body(("plain",)).get_content()
    trigger, resolve, hook = (r.json() for r in receiver.received)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "gnomon/nightly/test"
    assert trigger["payload"]["severity"] == "info"
    assert trigger["payload"]["summary"].startswith("[TEST]")
    assert (hook["type"], hook["process_id"]) == ("test", None)
    with gnomon_of(app).database.connection_context():
        assert AuditEvent.get(AuditEvent.action == "notify-test").actor == "writer"


def test_the_test_button_needs_write_and_a_known_definition(
    client: FlaskClient, put_definition: Callable[..., Definition], receiver: Recorder
) -> None:
    put_definition(notifications=notifications(receiver))
    response = client.post("/api/process_definitions/nightly/notifications/test", headers=READ)
    assert response.status_code == 403
    assert receiver.received == []
    response = client.post("/api/process_definitions/nope/notifications/test")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_gnomon_notify_test_reports_each_result(
    gnomon: click.Group, service: Service, receiver: Recorder
) -> None:
    service.put(
        {
            "process_definition_name": "hello",
            "task_definitions": [
                {"task_definition_name": "main",
                 "executable": {"docker_image_command": {"image": "busybox", "command": ["true"]}}}
            ],
            "notifications": [
                {"webhook": {"url": receiver.url}},
                {"webhook": {"url": "http://127.0.0.2:9/"}},
            ],
        }
    )  # fmt: skip
    result = invoke(gnomon, service.url, "notify-test", "hello", GNOMON_TOKEN="writer-token")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].split() == ["KIND", "TARGET", "RESULT", "ERROR"]
    assert lines[1].split() == ["webhook", receiver.url, "sent", "-"]
    assert lines[2].split()[:3] == ["webhook", "http://127.0.0.2:9", "failed"]
    assert "error: 1 of 2 test notification(s) failed" in result.output
    as_json = invoke(gnomon, service.url, "notify-test", "hello", "--json",
                     GNOMON_TOKEN="writer-token")  # fmt: skip
    assert [r["state"] for r in json.loads(as_json.stdout)] == ["sent", "failed"]
    assert len(receiver.received) == 2
