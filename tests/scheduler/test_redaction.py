"""Secret environment values never reach the service's own log, even at DEBUG and on failures."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from scheduler.models import db
from scheduler.tokens import server_secret, task_token
from tests.scheduler.test_e2e import IMAGE, definition
from tests.support.live import LiveService, live_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PASSWORD = f"hunter2-{uuid.uuid4()}"
API_KEY = f"key-{uuid.uuid4()}"
ENVIRONMENT = [
    {"variable_name": "DB_PASSWORD", "value": PASSWORD},
    {"variable_name": "stripe_api_key", "value": API_KEY},
    {"variable_name": "STAGE", "value": "prod"},
]


def secret_task(name: str, image: str, *command: str) -> dict:
    """A task given the secret environment."""
    executable = {"image": image, "command": list(command), "environment_variables": ENVIRONMENT}
    return {"task_definition_name": name, "executable": {"docker_image_command": executable}}


@pytest.fixture
def service(busybox_image: str, database_url: str) -> Iterator[LiveService]:
    """A live service running real containers."""
    with live_service(database_url) as live:
        yield live


def logged_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for `record`: message, arguments and traceback."""
    exception = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return "\n".join([record.getMessage(), repr(record.args), exception, record.exc_text or ""])


def test_secret_values_are_not_logged(
    service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = definition(
        "secretive",
        secret_task("ok", IMAGE, "sh", "-c", 'test "$DB_PASSWORD" = "' + PASSWORD + '"'),
        # pulling from a closed loopback port fails at once, without leaving the machine
        secret_task("no_image", "127.0.0.1:9/gnomon-test/missing"),
        secret_task("no_command", IMAGE, "/no/such/command"),
    )
    service.put_definition(body)
    run = service.wait_run(service.trigger("secretive"))

    outcomes = {t["task_definition_name"]: (t["status"], t["reason"]) for t in run["task"]}
    assert outcomes["ok"] == ("succeeded", None)
    assert outcomes["no_image"] == (
        "failed",
        "image not found: 127.0.0.1:9/gnomon-test/missing:latest",
    )
    assert outcomes["no_command"][0] == "failed"
    with db.obj.connection_context():
        tokens = [task_token(server_secret(), t["task_id"]) for t in run["task"]]
    texts = [logged_text(record) for record in caplog.records]
    assert any('INSERT INTO "run"' in text for text in texts)  # DEBUG was on
    for secret in [PASSWORD, API_KEY, *tokens]:
        assert not [text for text in texts if secret in text], secret
