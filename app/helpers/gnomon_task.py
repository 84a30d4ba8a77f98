"""Report to Gnomon from inside a task container; standard library only, Python 3.8+.

Copy this one file into the image, then either import it::

    import gnomon_task
    gnomon_task.log("loaded 42 rows")
    gnomon_task.metadata("rows", "42")
    gnomon_task.succeed()            # or gnomon_task.fail("no input file")

or run it: ``python -m gnomon_task log MESSAGE | metadata KEY VALUE | succeed | fail [REASON]``.

It reads GNOMON_URL, GNOMON_TASK_ID and GNOMON_TASK_TOKEN, which Gnomon sets in
every task container. A refused or timed-out connection (or a 502/503/504) is
retried with a short backoff for at most about 6 seconds in all; any other
refusal raises `GnomonTaskError` (exit status 1 from the command line).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

TOTAL_SECONDS = 6.0  # the most one call may take, retries included
ATTEMPT_SECONDS = 3.0  # the most one HTTP request may take
RETRIED_STATUSES = (502, 503, 504)
USAGE = "usage: gnomon_task log MESSAGE | metadata KEY VALUE | succeed | fail [REASON]"


class GnomonTaskError(Exception):
    """The service refused a report or could not be reached in time."""


def _setting(name: str) -> str:
    """The value of the environment variable `name`; GnomonTaskError if unset."""
    value = os.environ.get(name, "")
    if not value:
        raise GnomonTaskError(f"{name} is not set: run this inside a Gnomon task container")
    return value


def _now() -> str:
    """The current UTC time in the wire's ISO-8601 form."""
    # not datetime.UTC: this file must run on the Python 3.8 of older task images
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017


def _request(callback: str, body: bytes) -> urllib.request.Request:
    """The POST of `body` to this task's `callback` endpoint."""
    url = f"{_setting('GNOMON_URL').rstrip('/')}/api/tasks/{_setting('GNOMON_TASK_ID')}/{callback}"
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("GNOMON_TASK_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def _refusal(callback: str, error: urllib.error.HTTPError) -> GnomonTaskError:
    """The error for a 4xx/5xx answer, quoting the service's message."""
    try:
        message = json.loads(error.read().decode("utf-8")).get("message", "")
    except (ValueError, AttributeError, OSError):
        message = ""
    return GnomonTaskError(f"{callback}: the service answered {error.code} {message}".rstrip())


def _post(callback: str, payload: object, sleep: Callable[[float], None] = time.sleep) -> None:
    """POST `payload` as JSON to `callback`, retrying connection errors until the deadline."""
    request = _request(callback, b"" if payload is None else json.dumps(payload).encode("utf-8"))
    deadline = time.monotonic() + TOTAL_SECONDS
    tries = 1
    while True:
        timeout = max(0.5, min(ATTEMPT_SECONDS, deadline - time.monotonic()))
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUSES:
                raise _refusal(callback, error) from None
            last = f"status {error.code}"
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out
            last = str(getattr(error, "reason", error))
        if time.monotonic() + tries >= deadline:
            url = os.environ.get("GNOMON_URL")
            raise GnomonTaskError(f"{callback}: no answer from {url} after {tries} tries ({last})")
        sleep(tries)
        tries += 1


def log(message: str) -> None:
    """Add a log entry to this task attempt."""
    source = os.environ.get("GNOMON_TASK_DEFINITION_NAME") or "task"
    entry = {"log_entry_id": str(uuid.uuid4()), "when": _now(), "source": source}
    _post("log_entries", [{**entry, "message": message}])


def metadata(key: str, value: str) -> None:
    """Record a key/value for this task attempt."""
    entry = {"metadata_entry_id": str(uuid.uuid4()), "when": _now()}
    _post("metadata", [{**entry, "key": key, "value": value}])


def succeed() -> None:
    """Report that this attempt succeeded (the first report wins)."""
    _post("succeed", None)


def fail(reason: str | None = None) -> None:
    """Report that this attempt failed, logging `reason` first when given."""
    try:
        if reason:
            log(reason)
    finally:
        _post("fail", None)


def main(argv: list[str]) -> int:
    """Run one command line; the exit status."""
    commands = {"log": (log, 1, 1), "metadata": (metadata, 2, 2), "succeed": (succeed, 0, 0)}
    commands["fail"] = (fail, 0, 1)
    name, args = (argv[0], argv[1:]) if argv else ("", [])
    if name not in commands or not commands[name][1] <= len(args) <= commands[name][2]:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        commands[name][0](*args)
    except GnomonTaskError as error:
        print(f"gnomon_task: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
