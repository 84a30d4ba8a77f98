"""The connection to one Docker Engine and the raw calls made on it.

Everything that touches the engine's HTTP API goes through `Engine`; it
remembers whether the engine answers, for health checks and for `start()`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests
from docker import auth
from docker.errors import APIError, NotFound
from docker.types import CancellableStream
from urllib3.exceptions import ProtocolError

from executor.base import EngineUnavailable
from executor.connection import UNREACHABLE, Connection
from executor.docker.chunked import raw_reader
from executor.docker.settings import DockerSettings
from executor.logs import parse_timestamp, read_frames

log = logging.getLogger(__name__)

Frames = Iterator[tuple[int, bytes]]


class Engine(Connection):
    """The connection to the engine (see `Connection`) and the raw calls made on it."""

    def __init__(self, settings: DockerSettings) -> None:
        super().__init__(
            "docker engine",
            settings.docker_host,
            settings.api_timeout_seconds,
            settings.http_pool_size,
        )
        self._settings = settings
        self._log_driver: str | None = None

    # -- raw calls --------------------------------------------------------------------

    def create(self, arguments: Mapping[str, Any]) -> str:
        """Create a container; its id."""
        return str(self.api().create_container(**arguments)["Id"])

    def start(self, container_id: str) -> None:
        """Start a created container."""
        self.api().start(container_id)

    def signal(self, container_id: str, signal: str) -> None:
        """Send `signal` to the container; quiet if it is gone or no longer running."""
        try:
            self.api().kill(container_id, signal=signal)
        except APIError as error:  # 404/409
            log.debug("signal %s to container %s: %s", signal, container_id[:12], error)

    def state(self, container_id: str) -> Mapping[str, Any] | None:
        """The container's inspected State, or None if it is gone."""
        try:
            return self.api().inspect_container(container_id)["State"]  # type: ignore[no-any-return]
        except NotFound:
            return None

    def log_config(self, container_id: str) -> Mapping[str, Any] | None:
        """The container's effective LogConfig (`Type`, `Config`), or None if it is gone."""
        try:
            host_config = self.api().inspect_container(container_id)["HostConfig"]
        except NotFound:
            return None
        return host_config.get("LogConfig") or {}  # type: ignore[no-any-return]

    def default_log_driver(self) -> str:
        """The logging driver containers get unless told otherwise (asked once)."""
        if self._log_driver is None:
            self._log_driver = str(self.api().info().get("LoggingDriver", ""))
        return self._log_driver

    def remove(self, container: str) -> None:
        """Remove the container (by id or name) with its volumes; quiet if it is gone."""
        try:
            self.api().remove_container(container, v=True, force=True)
        except NotFound:
            pass
        except (APIError, *UNREACHABLE) as error:
            log.warning("could not remove container %s: %s", container[:12], error)

    def containers(self, label: str) -> list[Mapping[str, Any]]:
        """Every container (running or not) carrying `label` (`key` or `key=value`)."""
        return list(self.api().containers(all=True, filters={"label": label}))

    def die_events(self, label: str) -> CancellableStream:
        """The stream of die events of containers carrying `label`."""
        return self.api().events(
            decode=True, filters={"label": label, "type": "container", "event": ["die"]}
        )

    def open_logs(
        self, container_id: str, *, follow: bool, since: str | None, tail: int | None = None
    ) -> tuple[CancellableStream, Frames]:
        """The container's demultiplexed, timestamped output frames (from `since`, or its
        last `tail` only), and a handle to close them.

        The SDK's `logs()` merges stdout and stderr and inspects the container
        first; one raw request keeps both streams apart, in order, on one connection.
        """
        api = self.api()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
        if since is not None:
            params["since"] = since
        if tail is not None:
            params["tail"] = tail
        url = api._url("/containers/{0}/logs", container_id)
        response = api._get(url, params=params, stream=True, timeout=None)
        api._raise_for_status(response)
        return CancellableStream(iter(()), response), read_frames(raw_reader(response))

    def archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` in the container."""
        chunks, _ = self.api().get_archive(container_id, path)
        return chunks  # type: ignore[no-any-return]

    def open_pull(self, image: str, tag: str) -> requests.Response:
        """Ask the engine to pull `image:tag`; no read of its answer waits past the timeout.

        The SDK's `pull()` sends no timeout at all: a registry that never answers
        would hold the attempt, and a start worker, for as long as the engine waits.
        """
        api = self.api()
        registry, _ = auth.resolve_repository_name(image)
        header = auth.get_config_header(api, registry)
        response = api._post(
            api._url("/images/create"),
            params={"fromImage": image, "tag": tag},
            headers={"X-Registry-Auth": header} if header else {},
            stream=True,
            timeout=self._settings.pull_timeout_seconds,
        )
        try:
            api._raise_for_status(response)
        except APIError:
            response.close()
            raise
        return response


def pull_messages(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON progress messages of a pull, one a line, as they come."""
    try:
        for line in response.raw:
            if line.strip():
                yield json.loads(line)
    except ProtocolError as error:  # the engine went away, not the image
        raise EngineUnavailable(f"the pull broke off: {error}") from error


def engine_time(text: str) -> datetime | None:
    """An engine timestamp, or None for its zero time."""
    return parse_timestamp(text) if text else None
