"""The connection to a swarm manager: API clients, up or down, and whether it is a manager."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from docker import APIClient
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from executor.base import EngineUnavailable, Health
from executor.swarm.settings import SwarmSettings

log = logging.getLogger(__name__)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# Errors meaning the manager did not answer at all (APIError is a RequestException too,
# so callers catch it first).
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_HEALTH_TIMEOUT_SECONDS = 1.5
_HEALTH_CACHE_SECONDS = 1.0


class Manager:
    """A swarm manager's Docker API, reached as the docker CLI would (DOCKER_HOST, DOCKER_TLS_*)."""

    def __init__(self, settings: SwarmSettings) -> None:
        self._settings = settings
        self._params: dict[str, Any] = kwargs_from_env()
        if settings.manager_host:
            self._params["base_url"] = settings.manager_host
        self._params.setdefault("base_url", DEFAULT_DOCKER_HOST)
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._api: APIClient | None = None
        self._prober: APIClient | None = None
        self.down_reason: str | None = "the swarm manager has not been contacted yet"
        self._checked_at = float("-inf")

    @property
    def base_url(self) -> str:
        """Where the manager is."""
        return str(self._params["base_url"])

    def api(self) -> APIClient:
        """The client for ordinary calls; EngineUnavailable if the manager cannot be reached."""
        if self._api is None:
            self._connect()
        assert self._api is not None
        return self._api

    def require_up(self) -> None:
        """Raise EngineUnavailable if the manager is known to be down."""
        reason = self.down_reason
        if reason is not None:
            raise EngineUnavailable(reason)

    def mark_down(self, error: BaseException | str) -> None:
        """Remember that the manager did not answer (or is no manager)."""
        reason = f"swarm manager at {self.base_url} unavailable: {error}"
        if self.down_reason != reason:
            log.warning("%s", reason)
        self.down_reason = reason
        self._checked_at = time.monotonic()

    def mark_up(self) -> None:
        """Remember that the manager answered."""
        if self.down_reason is not None:
            log.info("swarm manager at %s reachable", self.base_url)
        self.down_reason = None
        self._checked_at = time.monotonic()

    def check(self) -> Health:
        """Ask the engine whether it is a reachable swarm manager, at most once a second."""
        with self._lock:
            if time.monotonic() - self._checked_at >= _HEALTH_CACHE_SECONDS:
                self._probe()
            reason = self.down_reason
        if reason is not None:
            return Health(ok=False, detail=reason)
        return Health(ok=True, detail=f"swarm manager at {self.base_url}")

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self._api, self._prober):
            if client is not None:
                client.close()

    def _probe(self) -> None:
        try:
            self._connect()
            assert self._prober is not None
            swarm = self._prober.info().get("Swarm", {})
        except EngineUnavailable:
            return  # _connect marked it down
        except (DockerException, requests.exceptions.RequestException) as error:
            self.mark_down(error)
            return
        if not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState") or "unknown"
            self.mark_down(f"this engine is not a swarm manager (swarm state: {state})")
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
