"""A graceful stop of `gnomon serve`: stop accepting, finish the requests in flight, close.

waitress answers SIGTERM (raised here as KeyboardInterrupt) by leaving its socket loop
at once, so a response its worker threads were still writing would never be sent. Here
the loop goes on, without the listening sockets, until every connection is idle or the
grace period is over.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer

POLL_SECONDS = 0.05


def serve_until_stopped(server: Any, grace_seconds: float) -> None:
    """Serve until SIGTERM or SIGINT, then give requests in flight `grace_seconds` to end."""
    sockets = socket_map(server)
    with contextlib.suppress(KeyboardInterrupt):  # how the signal handlers end the loop
        loop(server, sockets, timeout=server.adj.asyncore_loop_timeout)
    stop_listening(sockets)
    deadline = time.monotonic() + grace_seconds
    while busy(sockets) and time.monotonic() < deadline:
        loop(server, sockets, timeout=POLL_SECONDS, count=1)
    server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
    wasyncore.close_all(sockets)


def socket_map(server: Any) -> dict[int, Any]:
    """The dispatchers (listening sockets, connections, wake-up pipe) of a waitress server."""
    return server.map if isinstance(server, MultiSocketServer) else server._map


def loop(server: Any, sockets: dict[int, Any], **kwargs: Any) -> None:
    """Run waitress's socket loop over `sockets`."""
    wasyncore.loop(map=sockets, use_poll=server.adj.asyncore_use_poll, **kwargs)


def stop_listening(sockets: dict[int, Any]) -> None:
    """Close the listening sockets: new connections are refused, open ones carry on."""
    for dispatcher in list(sockets.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            # the dispatcher's own close, not the server's, which also closes the wake-up pipe
            wasyncore.dispatcher.close(dispatcher)


def busy(sockets: dict[int, Any]) -> bool:
    """Whether a connection is reading a request, serving one, or sending its response."""
    return any(
        isinstance(channel, HTTPChannel)
        and (channel.request is not None or channel.requests or channel.total_outbufs_len)
        for channel in list(sockets.values())
    )
