"""`gnomon serve`: serves the API under waitress, logs where, and stops cleanly on signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import requests
from flask import Flask

from app.auth import Scope, entry
from app.cli import guard_exposure
from tests.support.postgres import free_port


def start(
    tmp_path: Path, port: int, *args: str, instance: str = "default"
) -> subprocess.Popen[str]:
    """Start `gnomon serve` on loopback with the fake executor, as instance `instance`."""
    env = {
        **os.environ,
        "GNOMON_EXECUTOR": "fake",
        "GNOMON_TICK_SECONDS": "0.2",
        "GNOMON_INSTANCE": instance,
    }
    command = [sys.executable, "-c", "from app.cli import main; main()", "serve"]
    return subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_healthy(port: int, process: subprocess.Popen[str]) -> requests.Response:
    """Poll the health check until the server answers (or fail after a few seconds)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            return requests.get(f"http://127.0.0.1:{port}/_internal_/healthcheck", timeout=1)
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail("gnomon serve did not answer within 20 seconds")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_and_stops_on_signal(tmp_path: Path, signum: int) -> None:
    port = free_port()
    process = start(tmp_path, port, "--database-url", "sqlite:///state/gnomon.db")
    try:
        assert wait_healthy(port, process).json()["status"] == "healthy"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert (tmp_path / "state" / "gnomon.db").exists()
    [listening] = [line for line in stderr.splitlines() if "listening on" in line]
    assert f"http://127.0.0.1:{port}" in listening
    assert "sqlite:///state/gnomon.db" in listening
    assert " INFO gnomon: " in listening


@pytest.mark.slow
def test_serve_answers_past_a_hundred_idle_connections(tmp_path: Path) -> None:
    # waitress's own limit is 100 open connections; past it a new one waited until an
    # idle keep-alive connection closed (120 s): a task's callback behind console pages
    port = free_port()
    process = start(tmp_path, port, "--database-url", "sqlite:///gnomon.db")
    idle: list[socket.socket] = []
    try:
        wait_healthy(port, process)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
        answer = requests.get(f"http://127.0.0.1:{port}/_internal_/healthcheck", timeout=5)
        assert answer.status_code == 200
    finally:
        for connection in idle:
            connection.close()
        process.terminate()
        process.communicate(timeout=20)


def refused(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """Run `gnomon serve` expecting it to refuse to start; its stderr, free of tracebacks."""
    result = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", *args],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    return result.stderr


def test_bad_configuration_is_one_sentence_per_problem(tmp_path: Path) -> None:
    stderr = refused(tmp_path, {"GNOMON_EXECUTOR": "kubernetes", "GNOMON_PORT": "eighty"})
    assert "EXECUTOR (env GNOMON_EXECUTOR) must be one of docker, fake" in stderr
    assert "PORT (env GNOMON_PORT) must be a whole number" in stderr


def test_unreachable_database_is_one_sentence(tmp_path: Path) -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    stderr = refused(tmp_path, {"GNOMON_EXECUTOR": "fake"}, "--database-url", url)
    assert "Cannot open the database" in stderr


# Listening beyond loopback. No test binds such an address: the refusal comes before
# the server binds, and 192.0.2.1 (TEST-NET-1) is on no interface, so a regression
# would fail to bind rather than expose anything.


def test_beyond_loopback_without_tokens_serve_refuses_in_one_line(tmp_path: Path) -> None:
    stderr = refused(tmp_path, {"GNOMON_EXECUTOR": "fake"}, "--host", "192.0.2.1", "--port", "9")
    [line] = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: refusing to listen on 192.0.2.1 with no API tokens")
    assert "--insecure" in line


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_the_guard_refuses_open_non_loopback_addresses(
    make_app: Callable[..., Flask], host: str
) -> None:
    with pytest.raises(click.ClickException, match=f"refusing to listen on {host} "):
        guard_exposure(make_app(HOST=host))


def test_with_insecure_the_guard_warns_instead(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gnomon"):
        guard_exposure(make_app(HOST="0.0.0.0", INSECURE=True))
    [record] = caplog.records
    assert record.getMessage().startswith("INSECURE: listening on 0.0.0.0 with no API tokens")


@pytest.mark.parametrize(
    "config",
    [{"HOST": "127.0.0.1"}, {"HOST": "localhost"}, {"HOST": "::1"},
     {"HOST": "0.0.0.0", "API_TOKENS": entry("ops", Scope.ADMIN, "t")}],
)  # fmt: skip
def test_loopback_or_tokens_pass_the_guard_quietly(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, config: dict[str, str]
) -> None:
    with caplog.at_level(logging.WARNING, logger="gnomon"):
        guard_exposure(make_app(**config))
    assert caplog.records == []
