"""Real receivers of notifications for tests: a recording HTTP server and an SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.live import free_port


@dataclass(frozen=True)
class Received:
    """One HTTP request the recorder received."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Recorder(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every POST and answers `status` and `answer`.

    With `hang` set, it holds each request, unanswered, until `release()` (or 60 s).
    `connections` counts accepted connections, requests or not.
    """

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _RecordingHandler)
        self.received: list[Received] = []
        self.status = 202
        self.answer = b'{"status": "success"}'
        self.hang = False
        self.connections = 0
        self.holding = threading.Event()  # set while a request is held unanswered
        self._release = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL of the server."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[Any, Any]:
        """Count each accepted connection."""
        request = super().get_request()
        with self._lock:
            self.connections += 1
        return request

    def record(self, received: Received) -> None:
        """Store one request (from a handler thread)."""
        with self._lock:
            self.received.append(received)

    def release(self) -> None:
        """Let held requests go (they then get their answer)."""
        self._release.set()


class _RecordingHandler(BaseHTTPRequestHandler):
    """Records a POST, then answers it (maybe after being held)."""

    server: Recorder

    def do_POST(self) -> None:
        """Record the request and answer with the server's status."""
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.record(Received(self.path, dict(self.headers.items()), body))
        if self.server.hang:
            self.server.holding.set()
            self.server._release.wait(60)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def recorder(port: int = 0) -> Iterator[Recorder]:
    """A running Recorder, shut down afterwards."""
    server = Recorder(port)
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release()
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope sender, recipients, message) and logins."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # recipients answered 550

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Take a recipient, unless it is one to refuse."""
        if address in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store one message."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """A running aiosmtpd server on 127.0.0.1 and its mailbox."""

    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server(user: str | None = None, password: str | None = None) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port; with `user`, it wants a login."""
    mailbox = Mailbox()
    port = free_port()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        if ok:
            mailbox.logins.append((user, password))
        return AuthResult(success=ok, handled=False)

    options: dict[str, Any] = {}
    if user is not None:
        options = {"authenticator": authenticate, "auth_require_tls": False}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    """A recording HTTP server on 127.0.0.1 (import this fixture where needed)."""
    with recorder() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (import this fixture where needed)."""
    with smtp_server() as server:
        yield server
