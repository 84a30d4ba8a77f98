"""The waitress server of `gnomon serve`, which keeps connections open after a 204.

waitress closes the connection after every HTTP/1.1 response without a Content-Length,
204 and 304 included, although those end at their header (RFC 9112 section 6.3) and
must not carry a Content-Length. Every callback answers 204, so a task posting its log
paid a new TCP connection per request (accept, a channel, close; ~2 ms of the server's
CPU). Here such a response leaves the connection open, as any other complete one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import WSGITask

from app.shutdown import socket_map


class HeaderFramedTask(WSGITask):
    """A WSGI task that keeps an HTTP/1.1 connection open after a response without a body."""

    _framed_by_header = False

    def build_response_header(self) -> bytes:
        """waitress's header; while it is built, a bodiless answer does not ask for a close."""
        self._framed_by_header = not self.has_body and self.version == "1.1"
        try:
            return super().build_response_header()
        finally:
            self._framed_by_header = False

    def set_close_on_finish(self) -> None:
        """Close after this response, unless it ends at its header and the client did not
        ask for a close (waitress asks whenever there is no Content-Length)."""
        client_closes = self.request.headers.get("CONNECTION", "").lower() == "close"
        if self._framed_by_header and not client_closes:
            return
        super().set_close_on_finish()


def _options(config: Mapping[str, Any]) -> dict[str, Any]:
    """waitress's settings: threads and the most connections open at once from the
    configuration; poll() instead of select(), which fails past 1,024 file descriptors."""
    return {
        "threads": config["SERVE_THREADS"],
        "connection_limit": config["SERVE_CONNECTIONS"],
        "asyncore_use_poll": True,
        "ident": "gnomon",
    }


class Channel(HTTPChannel):
    """An HTTP connection whose requests run as HeaderFramedTask."""

    task_class = HeaderFramedTask


def http_server(app: Flask, *, host: str, port: int) -> Any:
    """waitress's server for `app` (not yet serving) at `host`:`port`, as configured."""
    server = create_server(app, host=host, port=port, **_options(app.config))
    for dispatcher in socket_map(server).values():
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = Channel
    return server
