"""Arbitrary JSON PUT as a process definition: a definition (200/201) or a 400 in the error
form that stored nothing, never a 500."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from definitions.codec import dump_definition, parse_definition
from tests.app.conftest import gnomon_of
from tests.app.test_errors import assert_error
from tests.app.test_faults import snapshot
from tests.definitions.samples import set_path
from tests.definitions.strategies import json_values, paths, wire_definitions

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
URL_NAME = re.compile(r"[^/\x00-\x1f\ud800-\udfff]{1,200}")  # names a URL path segment can carry


def url_of(body: Any) -> str:
    """The URL to PUT `body` to: its own name when a path segment can hold it."""
    name = body.get("process_definition_name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not URL_NAME.fullmatch(name):
        name = "fuzz"
    return f"/api/process_definitions/{quote(name, safe='')}"


def put_anything(app: Flask, client: FlaskClient, body: Any) -> None:
    """PUT `body`; check the answer is a definition, or a 400 that left the database as it was."""
    database = gnomon_of(app).database
    before = snapshot(database)
    response = client.put(url_of(body), data=json.dumps(body), content_type="application/json")
    if response.status_code in (200, 201):
        stored = response.get_json()
        definition = parse_definition(stored)  # what came back is itself a valid definition
        assert dump_definition(definition).items() <= stored.items()
    else:
        assert_error(response, 400, response.get_json()["error"])
        assert snapshot(database) == before


@FUZZ
@given(body=json_values)
def test_arbitrary_json(app: Flask, client: FlaskClient, body: Any) -> None:
    put_anything(app, client, body)


@FUZZ
@given(body=wire_definitions())
def test_valid_definitions_are_stored(app: Flask, client: FlaskClient, body: Any) -> None:
    response = client.put(url_of(body), json=body)
    assert response.status_code in (200, 201), response.get_json()


@FUZZ
@given(body=wire_definitions(), data=st.data())
def test_definitions_with_one_part_replaced_by_arbitrary_json(
    app: Flask, client: FlaskClient, body: Any, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(paths(body)))
    put_anything(app, client, set_path(body, path, data.draw(json_values)))
