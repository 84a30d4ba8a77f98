"""The connection to one Docker Engine and the raw calls made on it.

Everything that touches the engine's HTTP API goes through `Engine`; it
remembers whether the engine answers, for health checks and for `start()`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests
from docker import APIClient, auth
from docker.errors import APIError, DockerException, NotFound
from docker.types import CancellableStream
from docker.utils import kwargs_from_env
from urllib3.exceptions import ProtocolError

from executor.base import EngineUnavailable, Health
from executor.docker.settings import DockerSettings
from executor.logs import parse_timestamp, read_frames

log = logging.getLogger(__name__)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_HEALTH_TIMEOUT_SECONDS = 1.5  # a hung socket must not hold a health check past ~2 s
_HEALTH_CACHE_SECONDS = 1.0
# Errors meaning the engine did not answer at all (APIError is a RequestException too,
# so it is always caught before these).
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
ENGINE_GONE = (*UNREACHABLE, EngineUnavailable)
STREAM_BROKEN = (*ENGINE_GONE, ProtocolError, OSError)

Frames = Iterator[tuple[int, bytes]]


class Engine:
    """The connection to the engine: API clients, the negotiated version, up or down."""

    def __init__(self, settings: DockerSettings) -> None:
        self._settings = settings
        self._params: dict[str, Any] = kwargs_from_env()
        if settings.docker_host:
            self._params["base_url"] = settings.docker_host
        self._params.setdefault("base_url", DEFAULT_DOCKER_HOST)
        self._connect_lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._api: APIClient | None = None
        self._prober: APIClient | None = None
        self.down_reason: str | None = "the docker engine has not been contacted yet"
        self._checked_at = float("-inf")

    @property
    def base_url(self) -> str:
        """Where the engine is."""
        return str(self._params["base_url"])

    def api(self) -> APIClient:
        """The client for ordinary calls; EngineUnavailable if the engine cannot be reached."""
        if self._api is None:
            self._connect()
        assert self._api is not None
        return self._api

    def require_up(self) -> None:
        """Raise EngineUnavailable if the engine is known to be down."""
        reason = self.down_reason
        if reason is not None:
            raise EngineUnavailable(reason)

    def mark_down(self, error: BaseException | str) -> None:
        """Remember that the engine did not answer."""
        reason = f"docker engine at {self.base_url} unreachable: {error}"
        if self.down_reason is None:
            log.warning("%s", reason)
        self.down_reason = reason
        self._checked_at = time.monotonic()

    def mark_up(self) -> None:
        """Remember that the engine answered."""
        if self.down_reason is not None:
            log.info("docker engine at %s reachable", self.base_url)
        self.down_reason = None
        self._checked_at = time.monotonic()

    def check(self) -> Health:
        """Ping the engine, at most once a second."""
        with self._check_lock:
            if time.monotonic() - self._checked_at >= _HEALTH_CACHE_SECONDS:
                self._ping()
            reason = self.down_reason
        if reason is not None:
            return Health(ok=False, detail=reason)
        return Health(ok=True, detail=f"docker engine at {self.base_url}")

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self._api, self._prober):
            if client is not None:
                client.close()

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
        self, container_id: str, *, follow: bool, since: str | None
    ) -> tuple[CancellableStream, Frames]:
        """The container's demultiplexed, timestamped output frames, and a handle to close them.

        The SDK's `logs()` merges stdout and stderr and inspects the container
        first; one raw request keeps both streams apart, in order, on one connection.
        """
        api = self.api()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
        if since is not None:
            params["since"] = since
        url = api._url("/containers/{0}/logs", container_id)
        response = api._get(url, params=params, stream=True, timeout=None)
        api._raise_for_status(response)
        return CancellableStream(iter(()), response), read_frames(response.raw.read1)

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

    # -- connecting -------------------------------------------------------------------

    def _ping(self) -> None:
        try:
            if self._prober is None:
                self._connect()  # the version probe is itself a ping
            else:
                self._prober.ping()
        except EngineUnavailable:
            return  # _connect marked it down
        except (DockerException, requests.exceptions.RequestException) as error:
            self.mark_down(error)
            return
        self.mark_up()

    def _connect(self) -> None:
        """Negotiate the API version once, then build the clients with it."""
        with self._connect_lock:
            if self._api is not None:
                return
            try:
                prober = APIClient(
                    version="auto", timeout=_HEALTH_TIMEOUT_SECONDS, max_pool_size=2, **self._params
                )
            except (DockerException, requests.exceptions.RequestException) as error:
                self.mark_down(error)
                raise EngineUnavailable(self.down_reason) from error
            self._prober = prober
            self._api = APIClient(
                version=prober.api_version,
                timeout=self._settings.api_timeout_seconds,
                max_pool_size=self._settings.http_pool_size,
                **self._params,
            )
        self.mark_up()


def pull_messages(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON progress messages of a pull, one a line, as they come."""
    try:
        for line in response.raw:
            if line.strip():
                yield json.loads(line)
    except ProtocolError as error:  # the engine went away, not the image
        raise EngineUnavailable(f"the pull broke off: {error}") from error


def explain(error: APIError) -> str:
    """The engine's own words for an error."""
    return str(error.explanation or error)


def engine_time(text: str) -> datetime | None:
    """An engine timestamp, or None for its zero time."""
    return parse_timestamp(text) if text else None
