"""A small HTTP client for the Gnomon API, used by the `gnomon` commands and by scripts.

Every method maps one endpoint of the wire contract. A 4xx/5xx answer raises
`ServiceError` carrying the service's `{"error", "message", "details"}`; a
service that cannot be reached raises `Unreachable`. Both are `ClientError`s.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_URL = "http://127.0.0.1:8080"
# requests buries the socket's reason ("[Errno 111] Connection refused") in a long repr
STREAM_RETRY_SECONDS = 5.0  # when a 503 for a full stream bound says no Retry-After
APPLY_TIMEOUT_SECONDS = 120.0  # a batch of definitions is stored in one go: allow for a slow one
ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^\"'()\]]+)")


class ClientError(Exception):
    """Any failure of a call to the service; `str()` is one line for a person."""


class Unreachable(ClientError):
    """The service did not answer (refused, timed out, name not resolved)."""


class ServiceError(ClientError):
    """The service answered with a 4xx or 5xx status."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        problems = field_problems(self.details)
        return f"{self.message} ({problems})" if problems else self.message


def field_problems(details: dict[str, Any]) -> str:
    """The `fields` of an error's details as `path: problem; path: problem`, or ''."""
    fields = details.get("fields")
    if not isinstance(fields, dict):
        return ""
    parts = []
    for path, problems in sorted(fields.items()):
        text = ", ".join(map(str, problems)) if isinstance(problems, list) else str(problems)
        parts.append(f"{path}: {text}")
    return "; ".join(parts)


def service_error(response: requests.Response) -> ServiceError:
    """The `ServiceError` for a 4xx/5xx response, whatever its body holds."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        details = body.get("details")
        return ServiceError(
            response.status_code,
            str(body.get("error", "error")),
            body["message"],
            details if isinstance(details, dict) else {},
        )
    reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return ServiceError(response.status_code, "http_error", reason, {})


class Client:
    """The Gnomon API at `base_url`, with an optional bearer token."""

    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def copy(self) -> Client:
        """A client of the same service with its own connections (one per thread)."""
        other = Client(self.base_url, timeout=self.timeout)
        other.session.headers.update(self.session.headers)
        return other

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; raise `Unreachable` or `ServiceError` unless it succeeded."""
        url = self.base_url + path
        timeout = kwargs.pop("timeout", self.timeout)
        try:
            response = self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.ConnectionError as error:
            cause = ERRNO_TEXT.search(str(error))
            why = cause.group(1).strip() if cause else "connection failed"
            raise Unreachable(f"cannot reach the service at {self.base_url}: {why}") from error
        except requests.Timeout as error:
            raise Unreachable(f"no answer from {self.base_url} in {timeout:g} s") from error
        if response.status_code >= 400:
            raise service_error(response)
        return response

    # Definitions

    def definitions(self) -> list[dict[str, Any]]:
        """Every registered process definition."""
        return self.request("GET", "/api/process_definitions").json()

    def definition(self, name: str) -> dict[str, Any] | None:
        """The definition called `name`, or None if there is none."""
        try:
            return self.request("GET", definition_path(name)).json()
        except ServiceError as error:
            if error.status == 404:
                return None
            raise

    def put_definition(self, definition: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace a definition; the stored form and whether it was new."""
        path = definition_path(definition["process_definition_name"])
        response = self.request("PUT", path, json=definition)
        return response.json(), response.status_code == 201

    def apply_definitions(self, definitions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace each of `definitions`, all or none; what was done to each."""
        path = "/api/process_definitions/_apply"
        timeout = max(self.timeout, APPLY_TIMEOUT_SECONDS)
        return self.request("POST", path, json=list(definitions), timeout=timeout).json()

    def delete_definition(self, name: str) -> None:
        """Delete a definition (its runs stay readable)."""
        self.request("DELETE", definition_path(name))

    def pause(self, name: str) -> None:
        """Stop a definition's schedule from firing."""
        self.request("POST", definition_path(name) + "/pause")

    def resume(self, name: str) -> None:
        """Let a paused definition's schedule fire again."""
        self.request("POST", definition_path(name) + "/resume")

    def trigger(
        self, name: str, task: str | None = None, parameters: Mapping[str, str] | None = None
    ) -> str:
        """Start a run now (of one task only when `task` is given); the new run's id."""
        params = {"task_definition_name": task} if task else None
        body = {"json": {"parameters": dict(parameters)}} if parameters else {}
        path = definition_path(name) + "/trigger"
        response = self.request("POST", path, params=params, **body)
        return response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]

    def test_notifications(self, name: str) -> list[dict[str, Any]]:
        """Send a test message through each notification of a definition; how each went."""
        return self.request("POST", definition_path(name) + "/notifications/test").json()

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a definition, oldest first: number, who, when."""
        return self.request("GET", definition_path(name) + "/versions").json()

    def version(self, name: str, version: int) -> dict[str, Any]:
        """One version of a definition, with its body (secret values masked)."""
        return self.request("GET", definition_path(name) + f"/versions/{version}").json()

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit events, newest first, filtered as `GET /api/audit` allows."""
        params = {key: value for key, value in filters.items() if value is not None}
        return self.request("GET", "/api/audit", params=params).json()

    # Runs

    def processes(
        self, name: str | None = None, statuses: Sequence[str] = (), limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Runs, newest first: of one definition, with given statuses, at most `limit`."""
        params: dict[str, Any] = {"allowed_statuses": list(statuses)}
        if name:
            params["process_definition_name"] = name
        if limit:
            params["max_records"] = limit
        return self.request("GET", "/api/processes", params=params).json()

    def process(self, process_id: str) -> dict[str, Any]:
        """One run with its task attempts."""
        return self.request("GET", f"/api/processes/{quote(process_id, safe='')}").json()

    def kill(self, process_id: str) -> None:
        """Kill a running run."""
        self.request("POST", f"/api/processes/{quote(process_id, safe='')}/kill")

    def retry(self, process_id: str) -> None:
        """Give a failed run's failed tasks one more attempt."""
        self.request("POST", f"/api/processes/{quote(process_id, safe='')}/retry")

    # Task attempts

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        """Task attempts, newest first, filtered as `GET /api/tasks` allows."""
        return self.request("GET", "/api/tasks", params=filters).json()

    def task(self, task_id: str) -> dict[str, Any] | None:
        """The task attempt `task_id` with its entries, or None if there is none."""
        try:
            return self.request("GET", f"/api/tasks/{quote(task_id, safe='')}").json()
        except ServiceError as error:
            if error.status in (400, 404):  # not a UUID, or no such attempt
                return None
            raise

    def log_stream(self, task_id: str) -> Iterator[dict[str, Any]]:
        """The attempt's log entries as they are stored, until it has ended.

        Reads `GET /api/tasks/{id}/log_stream` (server-sent events). A dropped connection
        reconnects with `Last-Event-ID`, so no entry is lost or repeated; a 503 (too many
        streams open) waits its `Retry-After` and tries again.
        """
        last_id: str | None = None
        path = f"/api/tasks/{quote(task_id, safe='')}/log_stream"
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                response = self.request("GET", path, headers=headers, stream=True)
            except ServiceError as error:
                if error.status != 503:
                    raise
                time.sleep(float(error.details.get("retry_after_seconds", STREAM_RETRY_SECONDS)))
                continue
            with response:
                for event in server_sent_events(response.iter_lines(decode_unicode=True)):
                    if event.get("event") == "end":
                        return
                    if event.get("event") == "log":
                        last_id = event.get("id") or last_id
                        yield json.loads(event["data"])


def server_sent_events(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Events ({"event", "id", "data"}) from the lines of a text/event-stream body."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):  # a comment: a heartbeat
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = f"{event[name]}\n{value}" if name == "data" and name in event else value


def definition_path(name: str) -> str:
    """The API path of the definition called `name`."""
    return f"/api/process_definitions/{quote(name, safe='')}"
