"""The `gnomon` command: `gnomon serve` runs the API and the scheduler under waitress."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from types import FrameType

import click
from flask import Flask
from peewee import PeeweeException

from app import cli_client, cli_tokens, create_app
from app.auth import AUTH_KEY, Exposure, exposure
from app.config import ConfigError
from app.server import http_server
from app.shutdown import serve_until_stopped
from app.state import EXTENSION_KEY, Gnomon
from scheduler.database import describe
from scheduler.errors import InstanceNameTaken

log = logging.getLogger("gnomon")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.group()
def main() -> None:
    """Gnomon: scheduled Docker jobs with Sundial's HTTP API."""


def settle_heap() -> None:
    """Once started: set what start-up made aside from the garbage collector, collect less often.

    A page of history allocates tens of thousands of short-lived objects; with CPython's
    default thresholds they set off full collections over every module and the app,
    which showed in the p95 and p99 of `bench.history`.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


@main.command()
@click.option("--host", help="Address to listen on [GNOMON_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [GNOMON_PORT, default 8080].")
@click.option("--database-url", help="Database URL [GNOMON_DATABASE_URL].")
@click.option(
    "--insecure",
    is_flag=True,
    help="Listen beyond loopback even with no API tokens: anyone who can reach the "
    "service may run containers [GNOMON_INSECURE].",
)
def serve(host: str | None, port: int | None, database_url: str | None, insecure: bool) -> None:
    """Serve the API and run the scheduler until SIGTERM or SIGINT."""
    configure_logging("INFO")  # until the configuration, which may lower it, is read
    overrides = {
        "HOST": host,
        "PORT": port,
        "DATABASE_URL": database_url,
        "INSECURE": insecure or None,  # an absent flag leaves GNOMON_INSECURE in charge
    }
    try:
        app = create_app({k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    except PeeweeException as error:  # the database is down, or the URL names no database
        raise click.ClickException(f"Cannot open the database: {error}") from error
    logging.getLogger().setLevel(str(app.config["LOG_LEVEL"]))
    state: Gnomon = app.extensions[EXTENSION_KEY]
    guard_exposure(app)
    server = http_server(app, host=app.config["HOST"], port=app.config["PORT"])
    settle_heap()
    if app.config["SCHEDULER_ENABLED"]:
        try:
            state.scheduler.start()
        except InstanceNameTaken as error:
            raise click.ClickException(str(error)) from error
    log.info(
        "listening on %s, database %s, scheduler %s",
        listen_urls(server),
        describe(state.database),
        "on" if app.config["SCHEDULER_ENABLED"] else "off",
    )
    stop_on_signals()
    try:
        serve_until_stopped(server, app.config["SHUTDOWN_GRACE_SECONDS"])
    finally:
        server.close()
        state.scheduler.stop()  # containers keep running; the next start re-attaches them
        log.info("stopped")


cli_client.register(main)
cli_tokens.register(main)


def guard_exposure(app: Flask) -> None:
    """Refuse to listen beyond loopback with no API tokens, unless told to (then warn)."""
    host = str(app.config["HOST"])
    has_tokens = bool(app.extensions[AUTH_KEY].api_tokens)
    decision = exposure(host, has_tokens, bool(app.config["INSECURE"]))
    if decision is Exposure.REFUSED:
        raise click.ClickException(
            f"refusing to listen on {host} with no API tokens (anyone reaching it could run "
            "containers): configure GNOMON_API_TOKENS or GNOMON_API_TOKENS_FILE (see `gnomon "
            "token create`), listen on 127.0.0.1, or pass --insecure."
        )
    if decision is Exposure.INSECURE:
        log.warning(
            "INSECURE: listening on %s with no API tokens; anyone who can reach it can run "
            "containers (--insecure / GNOMON_INSECURE)",
            host,
        )


def listen_urls(server: object) -> str:
    """The URLs waitress listens on (a host name such as localhost may give several)."""
    sockets = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    return ", ".join(
        f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
        for host, port in sockets
    )


def stop_on_signals() -> None:
    """Make SIGTERM behave like SIGINT: waitress's loop ends on KeyboardInterrupt."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def configure_logging(level: str) -> None:
    """Plain lines with time, level and logger name on stderr."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # APScheduler logs every scheduler tick at INFO; only its warnings are news
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
