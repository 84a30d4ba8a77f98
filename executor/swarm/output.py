"""A service's output: followed live while its task runs, then read once more to its end.

The manager serves a service's logs from whichever node ran its task. A
followed stream never ends for a finished job, so it is closed by the
finisher, which then reads the whole output once more; the entry ledger
(`executor.logs.EntryLedger`, as for a Docker container) keeps only what the
live stream had not delivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from docker import APIClient
from docker.types import CancellableStream

from executor.connection import STREAM_BROKEN
from executor.logs import (
    STREAM_SOURCES,
    AttemptLog,
    EntryLedger,
    read_frames,
    resume_point,
    store_entries,
)

log = logging.getLogger(__name__)

_JOIN_SECONDS = 5.0


def _message(data: bytes) -> bytes:
    """An entry's text without the `details` prefix (`com.docker.swarm.node.id=…,… `)."""
    details, separator, message = data.partition(b" ")
    return message if separator and b"=" in details else data


class ServiceOutput:
    """Reads one service's stdout and stderr into an AttemptLog."""

    def __init__(self, service_id: str, attempt_log: AttemptLog, name: str) -> None:
        self._service_id = service_id
        self._log = attempt_log
        self._name = name
        self._stream: CancellableStream | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()  # a thread in `_thread` has always been started
        self._ledger = EntryLedger()  # written by the follower, then (once it ended) the finisher

    def follow(self, api: APIClient) -> None:
        """Start following the output live, on a thread of its own (not once stopped)."""
        thread = threading.Thread(
            target=self._follow, args=(api,), name=f"gnomon-swarm-logs-{self._name}", daemon=True
        )
        with self._lock:
            if self._closed.is_set():
                return
            self._thread = thread
            thread.start()

    def finish(self, api: APIClient) -> None:
        """Stop following, then read whatever the live stream had not delivered yet."""
        self.stop()
        self._read(api, follow=False)
        for source in STREAM_SOURCES.values():
            self._log.end(source)

    def stop(self) -> None:
        """Stop following (the executor closes, or the attempt ended)."""
        with self._lock:
            self._closed.set()
            thread = self._thread
        if self._stream is not None:
            self._stream.close()
        if thread is not None:
            thread.join(_JOIN_SECONDS)

    def _follow(self, api: APIClient) -> None:
        try:
            self._read(api, follow=True)
        except STREAM_BROKEN as error:
            if not self._closed.is_set():  # the finisher reads the rest
                log.info("log stream of service %s broke: %s", self._service_id[:12], error)
        except Exception:
            log.exception("following the logs of service %s failed", self._service_id[:12])

    def _read(self, api: APIClient, follow: bool) -> None:
        is_new = self._ledger.take_live if follow else self._ledger.rereader()
        store_entries(self._log, self._frames(api, follow), is_new, _message)

    def _frames(self, api: APIClient, follow: bool) -> Iterator[tuple[int, bytes]]:
        """The service's timestamped output frames, stdout and stderr apart."""
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "details": 1}
        if follow:
            params["follow"] = 1
        since = resume_point(self._ledger, self._log, full=not follow)
        if since is not None:
            params["since"] = since
        url = api._url("/services/{0}/logs", self._service_id)
        response = api._get(url, params=params, stream=True, timeout=None if follow else 30)
        api._raise_for_status(response)
        if follow:
            self._stream = CancellableStream(iter(()), response)  # only to close it from outside
            if self._closed.is_set():
                self._stream.close()
        return read_frames(response.raw.read1)
