"""HTTP API, web UI and command line of Gnomon.

Rule: `app` turns HTTP requests and command lines into calls on `definitions`
and `scheduler`, and their answers back into HTTP or text. It never writes run
or task state itself and never talks to Docker.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, request
from peewee import Database
from prometheus_client import CollectorRegistry

from app import (
    audit,
    auth,
    console,
    errors,
    log_stream,
    metrics,
    openapi,
    process_definitions,
    processes,
    tasks,
)
from app import config as settings_table
from app.state import EXTENSION_KEY, Gnomon
from executor import Executor
from scheduler.database import migrate, open_database
from scheduler.notify.destinations import parse_networks
from scheduler.notify.settings import NotifySettings, SmtpSettings
from scheduler.retention import RetentionSettings
from scheduler.service import Scheduler, SchedulerSettings, utc_now
from scheduler.tokens import server_secret


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the app: settings, database (migrated), executor, scheduler, auth, routes, console.

    Nothing starts here: `gnomon serve` calls `scheduler.start()`.
    """
    app = Flask(__name__)
    app.config.from_mapping(settings_table.defaults())
    app.config.from_prefixed_env("GNOMON")
    app.config.from_mapping(config or {})
    settings = settings_table.validate(app.config)
    app.config.update(settings)
    database = open_database(settings["DATABASE_URL"])
    with database.connection_context():
        migrate(database)
        secret = server_secret()  # made on the first start: checking a task token writes nothing
    registry = CollectorRegistry()
    scheduler = Scheduler(
        build_executor(settings),
        scheduler_settings(settings),
        registry=registry,
        notify=notify_settings(settings),
    )
    app.extensions[EXTENSION_KEY] = Gnomon(database, scheduler, registry, settings)
    errors.init_app(app)
    metrics.init_app(app, registry)
    init_connections(app, database)
    auth.init_app(app, settings)  # after the connection opens: task tokens need the database
    for blueprint in (process_definitions.bp, processes.bp, tasks.bp, audit.bp, openapi.bp):
        app.register_blueprint(blueprint)
    log_stream.init_app(app)
    console.init_app(app, secret)
    return app


def scheduler_settings(settings: Mapping[str, object]) -> SchedulerSettings:
    """The scheduler's part of the settings."""
    return SchedulerSettings(
        public_url=settings["PUBLIC_URL"],
        max_running_containers=settings["MAX_RUNNING_CONTAINERS"],
        tick_seconds=settings["TICK_SECONDS"],
        on_time_seconds=settings["ON_TIME_SECONDS"],
        max_catch_up_runs=settings["MAX_CATCH_UP_RUNS"],
        secrets_key=settings["SECRETS_KEY"] or None,
        retention=RetentionSettings(
            days=settings["RETENTION_DAYS"],
            keep_runs=settings["RETENTION_KEEP_RUNS"],
            audit_days=settings["AUDIT_RETENTION_DAYS"],
            batch=settings["RETENTION_BATCH"],
            interval_seconds=settings["RETENTION_INTERVAL_SECONDS"],
        ),
        allowed_bind_paths=settings_table.split_paths(settings["ALLOWED_BIND_PATHS"]),
        instance=settings["INSTANCE"],
        lease_seconds=settings["INSTANCE_LEASE_SECONDS"],
    )


def notify_settings(settings: Mapping[str, object]) -> NotifySettings:
    """The notification senders' part of the settings."""
    return NotifySettings(
        public_url=settings["PUBLIC_URL"],
        smtp=SmtpSettings(
            host=settings["SMTP_HOST"],
            port=settings["SMTP_PORT"],
            security=settings["SMTP_SECURITY"],
            user=settings["SMTP_USER"],
            password=settings["SMTP_PASSWORD"],
            sender=settings["SMTP_FROM"],
        ),
        allowed_networks=parse_networks(settings["NOTIFY_ALLOWED_NETWORKS"]),
        timeout_seconds=settings["NOTIFY_TIMEOUT_SECONDS"],
        retry_base_seconds=settings["NOTIFY_RETRY_BASE_SECONDS"],
        retry_max_delay_seconds=settings["NOTIFY_RETRY_MAX_DELAY_SECONDS"],
        retry_for_seconds=settings["NOTIFY_RETRY_FOR_SECONDS"],
        workers=settings["NOTIFY_WORKERS"],
    )


def build_executor(settings: Mapping[str, object]) -> Executor:
    """The container backend named by EXECUTOR; imported only when chosen."""
    if settings["EXECUTOR"] == "fake":
        from executor.fake import FakeExecutor

        return FakeExecutor(clock=utc_now)  # real time: its runs show in the API
    if settings["EXECUTOR"] == "swarm":
        from executor.swarm import SwarmExecutor, SwarmSettings

        networks = str(settings["SWARM_NETWORKS"])
        return SwarmExecutor(
            SwarmSettings(
                instance=settings["INSTANCE"],
                manager_host=settings["SWARM_MANAGER"] or None,
                networks=tuple(n for n in networks.split(",") if n),
                log_cap_bytes=settings["LOG_CAP_BYTES"],
                kill_grace_seconds=settings["KILL_GRACE_SECONDS"],
            )
        )
    from executor.docker import DockerExecutor, DockerSettings

    return DockerExecutor(
        DockerSettings(
            instance=settings["INSTANCE"],
            network_mode=settings["DOCKER_NETWORK_MODE"],
            docker_host=settings["DOCKER_HOST"] or None,
            log_cap_bytes=settings["LOG_CAP_BYTES"],
            log_max_size=settings["DOCKER_LOG_MAX_SIZE"],
            kill_grace_seconds=settings["KILL_GRACE_SECONDS"],
            keep_failed_containers=settings["KEEP_FAILED_CONTAINERS"],
            pull_timeout_seconds=settings["PULL_TIMEOUT_SECONDS"],
            pull_interval_seconds=settings["PULL_INTERVAL_SECONDS"],
            reconcile_interval_seconds=settings["RECONCILE_INTERVAL_SECONDS"],
        )
    )


def init_connections(app: Flask, database: Database) -> None:
    """One database connection per request, closed when the request ends."""
    # The internal endpoints connect lazily, so that a health check with the database
    # down answers `unhealthy` rather than failing before it runs.
    exempt = {"internal"}

    @app.before_request
    def connect() -> None:
        """Open this thread's connection for the request."""
        if request.blueprint not in exempt:
            database.connect(reuse_if_open=True)

    @app.teardown_request
    def close(_error: BaseException | None) -> None:
        """Give the connection back, however the request ended."""
        if not database.is_closed():
            database.close()
