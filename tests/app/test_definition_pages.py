"""GET /api/process_definitions by page, and the wire form of a listed definition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from definitions import dump_definition, parse_definition


def names(response: Any) -> list[str]:
    """The definition names of a listing response."""
    return [d["process_definition_name"] for d in response.get_json()]


def test_without_paging_every_definition_is_listed_by_name(
    client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    for name in ("c", "a", "b"):
        put_definition(name)

    response = client.get("/api/process_definitions")

    assert names(response) == ["a", "b", "c"]
    assert "Link" not in response.headers


def test_pages_follow_each_other_by_name_with_a_link_to_the_next(
    client: FlaskClient, put_definition: Callable[..., Any]
) -> None:
    for name in ("e", "d", "c", "b", "a"):
        put_definition(name)

    first = client.get("/api/process_definitions?limit=2")
    second = client.get(first.headers["Link"].split(">")[0].lstrip("<"))
    last = client.get("/api/process_definitions?limit=2&after=d")

    assert names(first) == ["a", "b"]
    assert first.headers["Link"] == '</api/process_definitions?limit=2&after=b>; rel="next"'
    assert names(second) == ["c", "d"]
    assert names(last) == ["e"]
    assert "Link" not in last.headers


def test_a_listed_definition_is_its_canonical_form_with_its_state(
    client: FlaskClient,
    put_definition: Callable[..., Any],
    make_definition: Callable[..., dict[str, Any]],
) -> None:
    stored = put_definition("a", paused=True)
    client.post("/api/process_definitions/a/resume")

    (listed,) = client.get("/api/process_definitions?limit=5").get_json()
    one = client.get("/api/process_definitions/a").get_json()

    assert listed == one
    assert stored["paused"] is True and listed["paused"] is False
    wire = dump_definition(parse_definition(make_definition("a", paused=False)))
    state = {"version", "next_fire_at", "created_at", "updated_at", "updated_by", "schedule_error"}
    assert listed == {**wire, **{key: listed[key] for key in state}}


def test_a_bad_limit_is_a_400_naming_it(client: FlaskClient) -> None:
    for limit in ("0", "-1", "x"):
        response = client.get(f"/api/process_definitions?limit={limit}")

        assert response.status_code == 400
        assert "limit" in response.get_json()["details"]["fields"]
