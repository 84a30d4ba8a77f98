"""/_internal_/metrics and /_internal_/healthcheck."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.app.conftest import Definition, fake


def samples(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the metrics page, by name and labels."""
    response = client.get("/_internal_/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def test_requests_counted_by_route_template(client: FlaskClient) -> None:
    client.get("/api/process_definitions/alpha")
    client.get("/api/process_definitions/beta")
    client.get("/no/such/path")
    found = samples(client)
    route = "/api/process_definitions/<name>"
    key = frozenset({("route", route), ("method", "GET"), ("status", "404")})
    assert found[("gnomon_http_requests_total", key)] == 2
    unmatched = frozenset({("route", "unmatched"), ("method", "GET"), ("status", "404")})
    assert found[("gnomon_http_requests_total", unmatched)] == 1
    latency = frozenset({("route", route), ("method", "GET")})
    assert found[("gnomon_http_request_duration_seconds_count", latency)] == 2
    assert not any("alpha" in dict(labels).get("route", "") for _, labels in found)


def test_build_info(client: FlaskClient) -> None:
    assert any(name == "gnomon_build_info" for name, _ in samples(client))


def test_healthy(client: FlaskClient) -> None:
    response = client.get("/_internal_/healthcheck")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "healthy",
        "checks": {"database": "ok", "executor": "ok"},
    }


def test_unhealthy_when_engine_down(app: Flask, client: FlaskClient) -> None:
    fake(app).engine_down = "docker daemon not reachable"
    response = client.get("/_internal_/healthcheck")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    assert "docker daemon not reachable" in body["checks"]["executor"]


def test_scheduler_metrics_share_the_registry(
    client: FlaskClient,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
) -> None:
    put_definition()
    trigger()
    started = {
        dict(labels)["definition"]: value
        for (name, labels), value in samples(client).items()
        if name == "gnomon_runs_started_total"
    }
    assert started == {"nightly": 1}
