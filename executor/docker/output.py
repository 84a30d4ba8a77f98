"""Reading a container's output: followed live, then read in full once it has exited.

The engine's live stream (`follow`) can repeat entries and can skip whole log
files when the json-file log rotates; so it is used for output as it comes,
and after the exit one full read adds every entry the live stream missed,
unless it cannot have missed any: it read from the first entry to the log's
last one, and the log file never rotated (`executor.log_files`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator

from docker.errors import APIError, NotFound
from docker.types import CancellableStream
from urllib3.exceptions import ProtocolError

from executor.base import EngineUnavailable
from executor.connection import STREAM_BROKEN, explain
from executor.docker.attempts import Attempt
from executor.docker.engine import Frames
from executor.docker.runtime import Runtime
from executor.log_files import Frame, Tally, ends_the_log, never_rotated
from executor.logs import STREAM_SOURCES, resume_point, store_entries, tar_members

log = logging.getLogger(__name__)

_LOG_DRAIN_SECONDS = 30.0  # how long a finished container's log stream may take to end


class OutputReader:
    """One thread per running container follows its output into its `AttemptLog`."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def start(self, attempt: Attempt) -> None:
        """Follow the container's output on a new thread, published only once it runs."""
        name = f"gnomon-executor-logs-{attempt.task_id[:8]}"
        reader = threading.Thread(target=self._follow, args=(attempt,), name=name, daemon=True)
        reader.start()
        self._rt.attempts.set_reader(attempt, reader)  # never a thread not joinable yet

    def restart_if_broken(self, attempt: Attempt) -> None:
        """Follow again a running container whose log stream broke."""
        reader, _ = self._rt.attempts.reading(attempt)
        if attempt.reader_broken and not (reader and reader.is_alive()):
            self.start(attempt)

    def stop(self, attempt: Attempt) -> None:
        """Cut the live stream and wait for its reader."""
        reader, close_stream = self._rt.attempts.reading(attempt)
        close_stream()
        if reader is not None:
            reader.join(timeout=_LOG_DRAIN_SECONDS)

    def drain(self, attempt: Attempt) -> None:
        """The container exited: let the live stream end, then store what it missed."""
        ended = self._reader_ended(attempt)
        if not attempt.log.truncated and not (ended and self._read_whole(attempt)):
            self._read_all(attempt)
        for source in STREAM_SOURCES.values():
            attempt.log.end(source)

    def collect_log_paths(self, attempt: Attempt) -> None:
        """Store the files named in `log_paths` from the stopped container, within the cap."""
        assert attempt.container_id is not None
        for path in attempt.spec.log_paths:
            try:
                self._store_archive(
                    attempt, path, self._rt.engine.archive(attempt.container_id, path)
                )
            except NotFound:
                attempt.log.note(f"log path {path} not found in the container")
            except APIError as error:
                attempt.log.note(f"log path {path} could not be read: {explain(error)}")

    def _reader_ended(self, attempt: Attempt) -> bool:
        """Wait for the live stream to end; True if it ended by itself (not cut short)."""
        reader, _ = self._rt.attempts.reading(attempt)
        if reader is None:
            return False
        reader.join(timeout=_LOG_DRAIN_SECONDS)
        if reader.is_alive():
            self.stop(attempt)
            return False
        return True

    def _read_whole(self, attempt: Attempt) -> bool:
        """Whether the live stream, which ended by itself, read the whole output: from
        the first entry to the log's last, in a log file that never rotated
        (`executor.log_files`). Unsure (the engine did not answer as hoped) is no."""
        live = attempt.live_read
        if live is None:
            return False
        assert attempt.container_id is not None
        try:
            if not ends_the_log(live, self._last_entry(attempt.container_id)):
                return False
            if live.last is None:
                return True  # no output at all
            log_config = self._rt.engine.log_config(attempt.container_id)
        except (APIError, ProtocolError, OSError) as error:
            log.info("task %s: output read again: %s", attempt.task_id, error)
            return False
        return log_config is not None and never_rotated(log_config, live.bytes)

    def _last_entry(self, container_id: str) -> Frame | None:
        """The container's last output entry (None without output)."""
        stream, frames = self._rt.engine.open_logs(container_id, follow=False, since=None, tail=1)
        try:
            return next(frames, None)
        finally:
            _close_quietly(stream)

    def _follow(self, attempt: Attempt) -> None:
        """Thread: follow the container's output until it ends, breaks or reaches the cap."""
        attempt.reader_broken = False
        attempt.live_read = None
        try:
            since = resume_point(attempt.ledger, attempt.log, full=False)
            live = Tally()
            frames = self._open(attempt, follow=True, since=since)
            store_entries(attempt.log, live.count(frames), attempt.ledger.take_live)
            if since is None and not self._rt.closing.is_set():  # not cut short by close()
                attempt.live_read = live
        except STREAM_BROKEN as error:
            # Followed again by reconciliation while it runs; read in full at its exit.
            attempt.reader_broken = not self._rt.closing.is_set()
            log.warning("log stream of task %s broke: %s", attempt.task_id, error)
        except NotFound:
            log.info("task %s: container gone before its logs were read", attempt.task_id)
        except Exception:
            log.exception("reading the logs of task %s failed", attempt.task_id)
        finally:
            self._rt.attempts.reading(attempt)[1]()

    def _read_all(self, attempt: Attempt) -> None:
        """Read the exited container's whole output; store the entries not stored yet."""
        try:
            since = resume_point(attempt.ledger, attempt.log, full=True)
            frames = self._open(attempt, follow=False, since=since)
            store_entries(attempt.log, frames, attempt.ledger.rereader())
        except NotFound:
            log.info("task %s: container gone before its logs were read", attempt.task_id)
        except APIError as error:  # e.g. a logging driver that cannot be read back
            log.warning("task %s: output not read again: %s", attempt.task_id, explain(error))
        except (ProtocolError, OSError) as error:  # finishing is tried again once it answers
            raise EngineUnavailable(f"reading the output broke off: {error}") from error
        finally:
            self._rt.attempts.reading(attempt)[1]()

    def _open(self, attempt: Attempt, *, follow: bool, since: str | None) -> Frames:
        assert attempt.container_id is not None
        stream, frames = self._rt.engine.open_logs(attempt.container_id, follow=follow, since=since)
        close = functools.partial(_close_quietly, stream)
        self._rt.attempts.set_stream(attempt, close)
        if self._rt.closing.is_set():
            close()
        return frames

    def _store_archive(self, attempt: Attempt, path: str, chunks: Iterator[bytes]) -> None:
        for name, content in tar_members(chunks):
            # A file comes back under its base name; a directory's files under theirs.
            source = path if "/" not in name else f"{path.rstrip('/')}/{name.split('/', 1)[1]}"
            for block in content:
                if not attempt.log.feed(source, None, block):
                    return
            attempt.log.end(source)


def _close_quietly(stream: CancellableStream) -> None:
    """Close a log stream; one that ended or was closed already is left as it is."""
    try:
        stream.close()
    except (AttributeError, OSError) as error:  # its socket is gone already
        log.debug("closing a log stream: %s", error)
