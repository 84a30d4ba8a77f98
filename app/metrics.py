"""Prometheus metrics of the HTTP layer, /_internal_/metrics and /_internal_/healthcheck."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)

from app.auth import Access, requires
from app.state import gnomon, scheduler

bp = Blueprint("internal", __name__, url_prefix="/_internal_")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
UNMATCHED_ROUTE = "unmatched"  # 404s keep no raw paths, so label values stay few


class HttpMetrics:
    """The HTTP layer's series in one app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gnomon_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "gnomon_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=registry,
        )
        build = Info("gnomon_build", "The running Gnomon's version.", registry=registry)
        build.info({"version": gnomon_version()})

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


def gnomon_version() -> str:
    """The installed package's version, or `unknown` when running from a bare checkout."""
    try:
        return version("gnomon")
    except PackageNotFoundError:
        return "unknown"


def init_app(app: Flask, registry: CollectorRegistry) -> None:
    """Measure every request of `app` into `registry` and mount the internal endpoints."""
    metrics = HttpMetrics(registry)

    @app.before_request
    def start_timer() -> None:
        """Note when the request began."""
        g.metrics_started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        """Count the answered request under its route template, not its raw path."""
        started = g.get("metrics_started", time.perf_counter())
        rule = request.url_rule.rule if request.url_rule else UNMATCHED_ROUTE
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.observe(rule, method, response.status_code, time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.get("/metrics")
@requires(Access.METRICS)
def metrics() -> Response:
    """Every series of this app's registry in Prometheus text format."""
    return Response(generate_latest(gnomon().registry), content_type=CONTENT_TYPE_LATEST)


@bp.get("/healthcheck")
@requires(Access.PUBLIC)
def healthcheck() -> tuple[Response, int]:
    """200 `healthy` or 503 `unhealthy`, with what each check (database, executor) found."""
    health = scheduler().health()
    status = "healthy" if health.ok else "unhealthy"
    return jsonify({"status": status, "checks": health.checks}), 200 if health.ok else 503
