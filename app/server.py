"""The waitress server of `gnomon serve`, which keeps connections open after a 204.

waitress closes the connection after every HTTP/1.1 response without a Content-Length,
204 and 304 included, although those end at their header (RFC 9112 section 6.3) and
must not carry a Content-Length. Every callback answers 204, so a task posting its log
paid a new TCP connection per request (accept, a channel, close; ~2 ms of the server's
CPU). Here such a response leaves the connection open, as any other complete one does.

waitress also warns "Task queue depth is N" for every request that has to wait for a
thread: hundreds of lines a second when the service is overloaded (about 4 % of its CPU
under `bench.load`). The warning is kept, thinned to one a minute with a count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import WSGITask

from app.shutdown import socket_map

QUEUE_WARNING_SECONDS = 60.0  # the most often waitress's queue warning is written


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


class QueueWarnings(logging.Filter):
    """Lets through one of waitress's "Task queue depth is N" warnings every `seconds`; the
    next one written says how many were held back in between and the deepest queue."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")  # when the next warning may be written
        self._held = 0
        self._deepest = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write `record`, rewritten to count the warnings held back."""
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else 0
        with self._lock:
            if self._clock() < self._next:
                self._held += 1
                self._deepest = max(self._deepest, depth)
                return False
            if self._held:
                record.msg += " (and %d more such warnings since the last, the deepest %d)"
                record.args = (depth, self._held, max(self._deepest, depth))
            self._next, self._held, self._deepest = self._clock() + self._seconds, 0, 0
        return True


def http_server(app: Flask, *, host: str, port: int) -> Any:
    """waitress's server for `app` (not yet serving) at `host`:`port`, as configured."""
    queue = logging.getLogger("waitress.queue")
    for old in [f for f in queue.filters if isinstance(f, QueueWarnings)]:
        queue.removeFilter(old)
    queue.addFilter(QueueWarnings(QUEUE_WARNING_SECONDS))
    server = create_server(app, host=host, port=port, **_options(app.config))
    for dispatcher in socket_map(server).values():
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = Channel
    return server
