"""`gnomon serve`'s waitress server keeps a connection open after a 204 (the callbacks' answer)."""

from __future__ import annotations

import http.client
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask, Response

from app.server import QueueWarnings
from tests.support.live import free_port, serving


@pytest.fixture
def port() -> Iterator[int]:
    """A served app on 127.0.0.1 that answers /empty with a 204 and /text with a 200."""
    app = Flask(__name__)
    app.config.update(SERVE_THREADS=2, SERVE_CONNECTIONS=100)
    app.add_url_rule("/empty", "empty", lambda: Response(status=204), methods=["POST"])
    app.add_url_rule("/text", "text", lambda: "hello")
    chosen = free_port()
    with serving(app, chosen):
        yield chosen


def ask(connection: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, bool]:
    """POST or GET `path` on the connection: the status, and whether the server closes."""
    connection.request("POST" if path == "/empty" else "GET", path, b"[]", headers)
    response = connection.getresponse()
    response.read()
    return response.status, response.will_close


def test_a_204_leaves_the_connection_open(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert ask(connection, "/empty") == (204, False)
    first = connection.sock

    assert ask(connection, "/empty") == (204, False)
    assert ask(connection, "/text") == (200, False)
    assert connection.sock is first  # the same connection served all three
    connection.close()


def until_closed(port: int, request: bytes) -> bytes:
    """Send a raw request and read until the server closes the connection (10 s at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "request_head",
    [
        pytest.param(b"POST /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", id="asked"),
        pytest.param(b"POST /empty HTTP/1.0\r\nHost: x\r\n", id="http_1_0"),
    ],
)
def test_a_204_still_closes_when_the_client_asks_or_speaks_http_1_0(
    port: int, request_head: bytes
) -> None:
    answer = until_closed(port, request_head + b"Content-Length: 2\r\n\r\n[]")

    assert answer.startswith((b"HTTP/1.1 204", b"HTTP/1.0 204"))
    assert b"\r\nConnection: close\r\n" in answer


def test_queue_warnings_are_thinned_with_a_count() -> None:
    now = [0.0]
    thinned = QueueWarnings(60, clock=lambda: now[0])

    def warning(depth: int) -> logging.LogRecord:
        record = logging.LogRecord("waitress.queue", logging.WARNING, "", 0,
                                   "Task queue depth is %d", (depth,), None)  # fmt: skip
        return record if thinned.filter(record) else None  # type: ignore[return-value]

    assert warning(1).getMessage() == "Task queue depth is 1"
    assert [warning(d) for d in (5, 9, 2)] == [None, None, None]
    now[0] = 61.0
    assert warning(3).getMessage() == (
        "Task queue depth is 3 (and 3 more such warnings since the last, the deepest 9)"
    )
    assert warning(4) is None


def test_an_overloaded_server_writes_one_queue_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Six requests at once on one thread: waitress warns for each that waits; one is kept."""
    app = Flask(__name__)
    app.config.update(SERVE_THREADS=1, SERVE_CONNECTIONS=100)
    app.add_url_rule("/slow", "slow", lambda: time.sleep(0.2) or "done")
    chosen = free_port()
    with (
        serving(app, chosen),
        caplog.at_level(logging.WARNING, logger="waitress.queue"),
        ThreadPoolExecutor(6) as pool,
    ):
        answers = list(pool.map(lambda _: slow_get(chosen), range(6)))
    assert answers == [200] * 6
    warnings = [r for r in caplog.records if r.name == "waitress.queue"]
    assert [r.getMessage().startswith("Task queue depth is") for r in warnings] == [True]


def slow_get(port: int) -> int:
    """GET /slow on a connection of its own; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/slow")
    status = connection.getresponse().status
    connection.close()
    return status
