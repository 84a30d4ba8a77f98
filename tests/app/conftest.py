"""Fixtures of the HTTP tests: an app on each database, its test client, definition factories."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.state import gnomon
from executor.fake import FakeExecutor
from scheduler.service import utc_now
from scheduler.tokens import server_secret, task_token

Definition = dict[str, Any]


def api_config(database_url: str, **overrides: object) -> dict[str, object]:
    """The configuration of an API test: fake executor, no scheduler loop."""
    return {
        "DATABASE_URL": database_url,
        "EXECUTOR": "fake",
        "SCHEDULER_ENABLED": False,
        "PUBLIC_URL": "http://127.0.0.1:9",
        **overrides,
    }


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Factory of apps on the test database configured with `overrides`; closed afterwards."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        apps.append(create_app(api_config(database_url, **overrides)))
        return apps[-1]

    yield make
    for app in apps:
        state = gnomon_of(app)
        state.scheduler.stop()
        state.database.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app on an empty database (SQLite and PostgreSQL), its scheduler loop not started."""
    return make_app()


def gnomon_of(app: Flask) -> Any:
    """The Gnomon state of `app`, outside a request."""
    with app.app_context():
        return gnomon()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
    return app.test_client()


def task(name: str, *deps: str, **overrides: Any) -> dict[str, Any]:
    """A task definition in wire form running busybox, depending on `deps`."""
    return {
        "task_definition_name": name,
        "dependencies": [{"task_definition_name": dep, "success_required": True} for dep in deps],
        "executable": {
            "docker_image_command": {"image": "busybox", "tag": "1.36", "command": ["true"]}
        },
        "max_attempts": 1,
        "backoff_base_seconds": 0,
        **overrides,
    }


@pytest.fixture
def make_definition() -> Callable[..., Definition]:
    """Factory of valid wire definitions; keyword arguments replace top-level fields."""

    def make(name: str = "nightly", **overrides: Any) -> Definition:
        body: Definition = {
            "process_definition_name": name,
            "process_description": "extract then load",
            "schedule": {
                "cron_schedule": {
                    "minutes": "0",
                    "hours": "3",
                    "day_of_month": "*",
                    "month": "*",
                    "day_of_week": "?",
                }
            },
            "task_definitions": [task("extract"), task("load", "extract")],
            "overlap_action": "wait",
        }
        body.update(copy.deepcopy(overrides))
        return body

    return make


@pytest.fixture
def put_definition(
    client: FlaskClient, make_definition: Callable[..., Definition]
) -> Callable[..., Definition]:
    """Register a definition (built by `make_definition`) and return its wire form."""

    def put(name: str = "nightly", **overrides: Any) -> Definition:
        response = client.put(
            f"/api/process_definitions/{name}", json=make_definition(name, **overrides)
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return put


@pytest.fixture
def trigger(client: FlaskClient) -> Callable[..., str]:
    """Trigger a run of a registered definition and return its process id."""

    def start(name: str = "nightly", **query: str) -> str:
        response = client.post(f"/api/process_definitions/{name}/trigger", query_string=query)
        assert response.status_code == 204, response.get_json()
        return response.headers["Location"].rsplit("/", 1)[1]

    return start


@pytest.fixture
def drive(app: Flask) -> Callable[[], None]:
    """Run the scheduler by hand until nothing moves: the fake executor ends each attempt
    as its script says (exit 0 unless scripted otherwise via `fake(app)`)."""
    return driver(app)


def driver(app: Flask) -> Callable[[], None]:
    """What `drive` does, for any app."""
    state = gnomon_of(app)
    scheduler = state.scheduler
    scheduler.executor.open(scheduler.engine)

    def run() -> None:
        with state.database.connection_context():
            for _ in range(20):
                scheduler.engine.tick(utc_now())
                scheduler.executor.advance()

    return run


def fake(app: Flask) -> FakeExecutor:
    """The fake executor of `app`, to script attempts."""
    return gnomon_of(app).scheduler.executor


def task_auth(app: Flask, task_id: str) -> dict[str, str]:
    """The Authorization header carrying attempt `task_id`'s own task token."""
    with gnomon_of(app).database.connection_context():
        token = task_token(server_secret(), task_id)
    return {"Authorization": f"Bearer {token}"}
