"""A connection to a Docker API (one engine, or a swarm's manager): clients, up or down.

Engine-agnostic: a backend names what it talks to and may add its own check
of the answering engine (`Connection.problem`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from docker import APIClient
from docker.errors import APIError, DockerException
from docker.utils import kwargs_from_env
from urllib3.exceptions import ProtocolError

from executor.base import EngineUnavailable, Health

log = logging.getLogger(__name__)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# Errors meaning the engine did not answer at all (APIError is a RequestException too,
# so callers catch it first).
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
ENGINE_GONE = (*UNREACHABLE, EngineUnavailable)
STREAM_BROKEN = (*ENGINE_GONE, ProtocolError, OSError)
_HEALTH_TIMEOUT_SECONDS = 1.5  # a hung socket must not hold a health check past ~2 s
_HEALTH_CACHE_SECONDS = 1.0


class Connection:
    """A Docker API reached as the docker CLI would: `address`, else DOCKER_HOST (and
    DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the local socket; never a CLI context."""

    def __init__(
        self, what: str, address: str | None, api_timeout_seconds: float, pool_size: int
    ) -> None:
        self.what = what
        self._params: dict[str, Any] = kwargs_from_env()
        if address:
            self._params["base_url"] = address
        self._params.setdefault("base_url", DEFAULT_DOCKER_HOST)
        self._timeout = api_timeout_seconds
        self._pool_size = pool_size
        self._connect_lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._api: APIClient | None = None
        self._prober: APIClient | None = None
        self.down_reason: str | None = f"the {what} has not been contacted yet"
        self._warned = False  # this outage has been logged
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
        self._set_down(f"{self.what} at {self.base_url} unreachable: {error}")

    def mark_up(self) -> None:
        """Remember that the engine answered."""
        if self.down_reason is not None:
            log.info("%s at %s reachable", self.what, self.base_url)
        self.down_reason = None
        self._warned = False
        self._checked_at = time.monotonic()

    def check(self) -> Health:
        """Ask the engine whether it can run attempts, at most once a second."""
        with self._check_lock:
            if time.monotonic() - self._checked_at >= _HEALTH_CACHE_SECONDS:
                self._probe()
            reason = self.down_reason
        if reason is not None:
            return Health(ok=False, detail=reason)
        return Health(ok=True, detail=f"{self.what} at {self.base_url}")

    def problem(self, prober: APIClient) -> str | None:
        """Why the answering engine cannot run attempts (None: it can); pinging it is enough."""
        prober.ping()
        return None

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in (self._api, self._prober):
            if client is not None:
                client.close()

    def _set_down(self, reason: str) -> None:
        if not self._warned:  # once an outage: an unreachable engine's errors differ each time
            log.warning("%s", reason)
            self._warned = True
        self.down_reason = reason
        self._checked_at = time.monotonic()

    def _probe(self) -> None:
        try:
            self._connect()  # the first time, the version probe is itself a ping
            assert self._prober is not None
            problem = self.problem(self._prober)
        except EngineUnavailable:
            return  # _connect marked it down
        except (DockerException, requests.exceptions.RequestException) as error:
            self.mark_down(error)
            return
        if problem is not None:
            self._set_down(f"{self.what} at {self.base_url}: {problem}")
        else:
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
                timeout=self._timeout,
                max_pool_size=self._pool_size,
                **self._params,
            )


def explain(error: APIError) -> str:
    """The engine's own words for an error."""
    return str(error.explanation or error)
