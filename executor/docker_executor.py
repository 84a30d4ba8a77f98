"""Task attempts as Docker containers: the only module in Gnomon that imports `docker`.

Threads: a bounded pool creates/pulls/starts containers, another runs chores
(finalising exits, kills, reconciliation), one thread follows the engine's
event stream for exits, one timer thread serves every deadline, and each
running container has one thread reading its log stream.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from docker import APIClient, auth
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import CancellableStream
from docker.utils import kwargs_from_env
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from executor.base import (
    AttemptSpec,
    Ending,
    EngineUnavailable,
    ExecutorListener,
    Health,
    InFlight,
    LogLine,
    Outcome,
)
from executor.logs import (
    STREAM_SOURCES,
    AttemptLog,
    parse_timestamp,
    read_frames,
    split_timestamp,
    tar_members,
)
from executor.pull_policy import NEVER, PullMemo, effective_policy
from executor.timers import TimerHandle, TimerThread

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
LABEL_INSTANCE = "gnomon.instance"
LABEL_TASK_ID = "gnomon.task_id"
LABEL_PROCESS_ID = "gnomon.process_id"
LABEL_DEFINITION = "gnomon.definition"
LABEL_TASK_NAME = "gnomon.task_name"
LABEL_ATTEMPT = "gnomon.attempt"

_HEALTH_TIMEOUT_SECONDS = 1.5  # a hung socket must not hold a health check past ~2 s
_HEALTH_CACHE_SECONDS = 1.0
_RECONNECT_SECONDS = 1.0
_LOG_DRAIN_SECONDS = 30.0  # how long a finished container's log stream may take to end
_NANO_CPUS_PER_UNIT = 1_000_000_000 / 1024  # 1024 cpu units = one core
_SIGKILLED = 128 + 9  # the exit code after the OOM killer, our SIGKILL or a forced removal
# Errors meaning the engine did not answer at all (APIError is a RequestException too,
# so it is always caught before these).
_UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_ENGINE_GONE = (*_UNREACHABLE, EngineUnavailable)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class DockerSettings:
    """How the Docker backend runs containers; validated on construction."""

    instance: str
    network_mode: str = "bridge"
    docker_host: str | None = None  # None: $DOCKER_HOST, else the local socket (no CLI context)
    log_cap_bytes: int = 10 * MIB
    kill_grace_seconds: float = 10.0
    keep_failed_containers: bool = False
    pull_timeout_seconds: float = 120.0
    pull_interval_seconds: float = 300.0  # `always` pulls an image at most once per this
    reconcile_interval_seconds: float = 30.0
    log_batch_seconds: float = 0.5
    log_batch_lines: int = 500
    http_pool_size: int = 64  # log streams + the event stream + calls share it
    worker_threads: int = 8
    api_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.instance):
            raise ValueError(f"instance {self.instance!r} must be letters, digits, '_', '.' or '-'")
        positive = {
            "log_cap_bytes": self.log_cap_bytes,
            "pull_timeout_seconds": self.pull_timeout_seconds,
            "reconcile_interval_seconds": self.reconcile_interval_seconds,
            "log_batch_seconds": self.log_batch_seconds,
            "log_batch_lines": self.log_batch_lines,
            "http_pool_size": self.http_pool_size,
            "worker_threads": self.worker_threads,
            "api_timeout_seconds": self.api_timeout_seconds,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0, not {value}")
        if self.kill_grace_seconds < 0:
            raise ValueError(f"kill_grace_seconds must not be negative: {self.kill_grace_seconds}")


class _Engine:
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


@dataclass(frozen=True)
class _Exit:
    """How a container ended: from its die event, or from its inspected State."""

    code: int
    ended_at: datetime | None
    started_at: datetime | None = None
    oom_killed: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> _Exit | None:
        """A die event's exit code; None without one.

        Its end is the event's time: when the engine reported the exit, some
        milliseconds after the process ended (the FinishedAt an inspect would give).
        """
        code = event.get("Actor", {}).get("Attributes", {}).get("exitCode")
        nanos = event.get("timeNano")
        if code is None or nanos is None:
            return None
        return cls(int(code), datetime.fromtimestamp(nanos / 1e9, UTC))

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> _Exit:
        """The exit an inspected State records, with the engine's own times."""
        return cls(
            int(state["ExitCode"]),
            _engine_time(state.get("FinishedAt", "")),
            _engine_time(state.get("StartedAt", "")),
            bool(state.get("OOMKilled")),
        )


class _Phase(enum.Enum):
    STARTING = "starting"  # queued, pulling, creating, or starting
    RUNNING = "running"  # the container runs (or ran and its exit is not seen yet)
    FINISHING = "finishing"  # its exit is being turned into an Outcome


@dataclass(eq=False)
class _Attempt:
    """What the executor tracks about one attempt."""

    spec: AttemptSpec
    log: AttemptLog
    phase: _Phase = _Phase.STARTING
    container_id: str | None = None
    started_at: datetime | None = None
    kill_reason: str | None = None
    kill_ending: Ending | None = None
    exited_early: bool = False  # its die event came before it was marked running
    exit: _Exit | None = None  # what its die event said
    reader: threading.Thread | None = None
    reader_broken: bool = False  # its log stream broke before the output ended
    stream: CancellableStream | None = None
    deadline: TimerHandle | None = None
    done: bool = False  # finished or sent back waiting: the listener heard the last of it


class DockerExecutor:
    """The `Executor` that runs attempts as containers on one Docker Engine."""

    def __init__(self, settings: DockerSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._engine = _Engine(settings)
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._listener: ExecutorListener | None = None
        self._timers = TimerThread("gnomon-executor-timers")
        self._starts = ThreadPoolExecutor(settings.worker_threads, "gnomon-executor-start")
        self._chores = ThreadPoolExecutor(settings.worker_threads, "gnomon-executor-chore")
        self._closing = threading.Event()
        self._events_thread: threading.Thread | None = None
        self._events_stream: CancellableStream | None = None
        self._pulls = PullMemo(settings.pull_interval_seconds)

    # -- the Executor protocol --------------------------------------------------------

    def open(self, listener: ExecutorListener) -> None:
        """Contact the engine and start the event stream, timers and reconciliation."""
        self._listener = listener
        self._engine.check()
        self._timers.start()
        self._timers.every(self._settings.log_batch_seconds, self._chore(self._flush_logs))
        self._timers.every(self._settings.reconcile_interval_seconds, self._chore(self._reconcile))
        self._events_thread = threading.Thread(
            target=self._follow_events, name="gnomon-executor-events", daemon=True
        )
        self._events_thread.start()

    def start(self, spec: AttemptSpec) -> None:
        """Queue `spec` to be created and started; EngineUnavailable if the engine is down."""
        if self._listener is None or self._closing.is_set():
            raise RuntimeError("DockerExecutor.start() needs open() and no close()")
        self._engine.require_up()
        attempt = _Attempt(spec, self._new_log(spec.task_id))
        with self._lock:
            if spec.task_id in self._attempts:
                raise ValueError(f"task {spec.task_id} is already running")
            self._attempts[spec.task_id] = attempt
        self._starts.submit(self._launch, attempt)

    def kill(self, task_id: str, reason: str) -> None:
        """SIGTERM, `kill_grace_seconds`, SIGKILL; an attempt not yet started never starts."""
        self._request_kill(task_id, reason, Ending.KILLED)

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Re-attach running containers, finalise exited ones, report lost ones, remove strays."""
        try:
            api = self._engine.api()
            found = api.containers(all=True, filters={"label": self._instance_label()})
        except _UNREACHABLE as error:
            self._engine.mark_down(error)
            raise EngineUnavailable(str(error)) from error
        by_task = {c["Labels"].get(LABEL_TASK_ID): c for c in found}
        for item in in_flight:
            container = by_task.pop(item.spec.task_id, None)
            with self._lock:
                tracked = item.spec.task_id in self._attempts
            if not tracked:
                self._adopt(item, container)
        with self._lock:
            strays = [c["Id"] for t, c in by_task.items() if t not in self._attempts]
        for container_id in strays:
            log.info("removing container %s: it matches no attempt in flight", container_id[:12])
            self._remove(container_id)
        self._submit_chore(self._chore(self._reconcile))

    def health(self) -> Health:
        """Whether the engine answers (cached for a second, answered within ~2 s)."""
        return self._engine.check()

    def close(self) -> None:
        """Stop following the engine; containers keep running for `recover` to find."""
        self._closing.set()
        stream = self._events_stream
        if stream is not None:
            stream.close()
        if self._events_thread is not None:
            self._events_thread.join()
        self._timers.close()
        self._starts.shutdown(wait=True, cancel_futures=True)
        self._chores.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            attempts = list(self._attempts.values())
        for attempt in attempts:
            if attempt.phase == _Phase.STARTING:
                self._send_back(attempt, "the executor closed before the container started")
            self._stop_reader(attempt)
            attempt.log.flush()
        self._engine.close()

    # -- starting ---------------------------------------------------------------------

    def _launch(self, attempt: _Attempt) -> None:
        """Pool job: create (pulling if needed) and start the attempt's container."""
        try:
            container_id = self._create(attempt)
            if container_id is not None:
                self._start_created(attempt, container_id)
        except _ENGINE_GONE as error:
            if isinstance(error, _UNREACHABLE):
                self._engine.mark_down(error)
            self._send_back(attempt, f"docker engine unavailable: {error}")
        except Exception as error:
            log.exception("starting task %s failed", attempt.spec.task_id)
            self._fail_start(attempt, Ending.START_FAILED, f"start failed: {error}")

    def _create(self, attempt: _Attempt) -> str | None:
        """The new container's id, or None when the attempt already ended."""
        spec = attempt.spec
        if self._stopped_before_start(attempt):
            return None
        if self._pulls.refresh_due(
            spec.image_ref, spec.tag, spec.pull_policy, lambda: self._from_registry(spec)
        ) and (not self._refresh(attempt) or self._stopped_before_start(attempt)):
            return None
        try:
            return self._create_container(spec)
        except ImageNotFound:
            pass
        except APIError as error:
            self._fail_start(attempt, Ending.START_FAILED, _explain(error))
            return None
        if effective_policy(spec.tag, spec.pull_policy) == NEVER:
            reason = f"image not found: {spec.image_ref} (pull_policy never)"
            self._fail_start(attempt, Ending.IMAGE_NOT_FOUND, reason)
            return None
        if not self._pull(attempt) or self._stopped_before_start(attempt):
            return None
        try:
            return self._create_container(attempt.spec)
        except ImageNotFound:
            reason = f"image not found: {attempt.spec.image_ref}"
            self._fail_start(attempt, Ending.IMAGE_NOT_FOUND, reason)
        except APIError as error:
            self._fail_start(attempt, Ending.START_FAILED, _explain(error))
        return None

    def _create_container(self, spec: AttemptSpec) -> str:
        """Create the container; a leftover of an earlier try of this attempt is replaced."""
        api = self._engine.api()
        name = self._container_name(spec)
        try:
            return str(api.create_container(**self._container_args(api, spec, name))["Id"])
        except APIError as error:
            if error.status_code != 409:
                raise
        log.info("replacing leftover container %s", name)
        self._remove(name)
        return str(api.create_container(**self._container_args(api, spec, name))["Id"])

    def _container_args(self, api: APIClient, spec: AttemptSpec, name: str) -> dict[str, Any]:
        """The engine's create arguments for `spec`."""
        limits: dict[str, Any] = {}
        if spec.memory_mib is not None:
            memory = spec.memory_mib * MIB
            limits.update(mem_limit=memory, memswap_limit=memory)  # equal: no swap on top
        if spec.cpu_units is not None:
            limits["nano_cpus"] = int(spec.cpu_units * _NANO_CPUS_PER_UNIT)
        host_config = api.create_host_config(network_mode=self._settings.network_mode, **limits)
        return {
            "image": spec.image_ref,
            "command": list(spec.command) or None,
            "environment": dict(spec.environment),
            "labels": self._labels(spec),
            "host_config": host_config,
            "name": name,
            "detach": True,
        }

    def _labels(self, spec: AttemptSpec) -> dict[str, str]:
        return {
            LABEL_INSTANCE: self._settings.instance,
            LABEL_TASK_ID: spec.task_id,
            LABEL_PROCESS_ID: spec.process_id,
            LABEL_DEFINITION: spec.definition_name,
            LABEL_TASK_NAME: spec.task_name,
            LABEL_ATTEMPT: str(spec.attempt),
        }

    def _container_name(self, spec: AttemptSpec) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "-", f"gnomon-{self._settings.instance}-{spec.task_id}")

    def _pull(self, attempt: _Attempt) -> bool:
        """Pull the attempt's image within the pull timeout; False when the attempt ended."""
        attempt.log.note(f"image {attempt.spec.image_ref} is not present; pulling it")
        return self._pull_or_fail(attempt, self._pull_outcome(attempt))

    def _refresh(self, attempt: _Attempt) -> bool:
        """Pull a newer copy as the pull policy asks; if that fails, a local copy is used
        (and the fact logged). False when the attempt ended."""
        spec = attempt.spec
        attempt.log.note(f"pulling {spec.image_ref} (pull policy always)")
        problem = self._pull_outcome(attempt)
        if problem is not None and self._present(spec):
            attempt.log.note(f"pull of {spec.image_ref} failed: {problem}; using the local copy")
            log.warning("pull of %s failed (%s); using the local copy", spec.image_ref, problem)
            return True
        return self._pull_or_fail(attempt, problem)

    def _pull_or_fail(self, attempt: _Attempt, problem: str | None) -> bool:
        """True if the pull worked; else the attempt fails (unless it already ended)."""
        if problem is None:
            return True
        spec = attempt.spec
        if not self._stopped_before_start(attempt):
            attempt.log.note(f"pull of {spec.image_ref} failed: {problem}")
            self._fail_start(attempt, Ending.IMAGE_NOT_FOUND, f"image not found: {spec.image_ref}")
        return False

    def _pull_outcome(self, attempt: _Attempt) -> str | None:
        """Pull the attempt's image within the pull timeout; why it failed, or None."""
        try:
            return self._pull_problem(attempt)
        except APIError as error:
            return _explain(error)
        except (requests.exceptions.Timeout, ReadTimeoutError):
            return f"no answer within {self._settings.pull_timeout_seconds:g} s"

    def _present(self, spec: AttemptSpec) -> bool:
        """Whether the engine has the image locally."""
        try:
            self._engine.api().inspect_image(spec.image_ref)
        except ImageNotFound:
            return False
        return True

    def _from_registry(self, spec: AttemptSpec) -> bool:
        """Whether the image is absent or came from a registry (not built or loaded here)."""
        try:
            return bool(self._engine.api().inspect_image(spec.image_ref).get("RepoDigests"))
        except ImageNotFound:
            return True

    def _pull_problem(self, attempt: _Attempt) -> str | None:
        """Follow the pull's progress; why it failed, or None if it worked."""
        deadline = time.monotonic() + self._settings.pull_timeout_seconds
        with self._open_pull(attempt.spec) as response:
            for message in _pull_messages(response):
                if "error" in message:
                    return str(message["error"])
                if time.monotonic() > deadline:
                    return f"pull took longer than {self._settings.pull_timeout_seconds:g} s"
                if attempt.kill_reason is not None or self._closing.is_set():
                    return "pull abandoned"
        return None

    def _open_pull(self, spec: AttemptSpec) -> requests.Response:
        """Ask the engine to pull `spec`'s image; no read of its answer waits past the timeout.

        The SDK's `pull()` sends no timeout at all: a registry that never answers
        would hold the attempt, and a start worker, for as long as the engine waits.
        """
        api = self._engine.api()
        registry, _ = auth.resolve_repository_name(spec.image)
        header = auth.get_config_header(api, registry)
        response = api._post(
            api._url("/images/create"),
            params={"fromImage": spec.image, "tag": spec.tag},
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

    def _stopped_before_start(self, attempt: _Attempt) -> bool:
        """If a kill or close came while starting, end the attempt that way; True if so."""
        if self._closing.is_set():
            self._send_back(attempt, "the executor closed before the container started")
            return True
        if attempt.kill_reason is not None:
            self._fail_start(attempt, attempt.kill_ending or Ending.KILLED, attempt.kill_reason)
            return True
        return False

    def _start_created(self, attempt: _Attempt, container_id: str) -> None:
        """Start a created container unless the attempt was killed meanwhile."""
        attempt.container_id = container_id
        if self._stopped_before_start(attempt):
            self._remove(container_id)
            return
        # Not the engine's StartedAt: inspecting a container that exits at once waits
        # until the engine has cleaned up after its exit.
        started_at = self._clock()  # before the start, so never after its end
        try:
            self._engine.api().start(container_id)
        except APIError as error:
            self._remove(container_id)
            self._fail_start(attempt, Ending.START_FAILED, _explain(error))
            return
        self._mark_running(attempt, started_at, 0.0)

    def _mark_running(self, attempt: _Attempt, started_at: datetime, elapsed: float) -> None:
        """The container runs: read its output, tell the listener, then let it finish.

        Its exit can be claimed only from here on (a die event before marks it
        `exited_early`), so the listener hears of the start before the end and
        the finaliser always finds a started reader.
        """
        self._start_reader(attempt)  # at once: a quick exit's output is read meanwhile
        attempt.started_at = started_at
        spec = attempt.spec
        self._tell(lambda lsn: lsn.attempt_started(spec.task_id, started_at, attempt.container_id))
        with self._lock:
            exited = attempt.exited_early
            attempt.phase = _Phase.FINISHING if exited else _Phase.RUNNING
            killing = attempt.kill_reason is not None
        if exited:
            self._submit_chore(self._finalise, attempt)
            return
        if spec.max_runtime_seconds is not None:
            remaining = spec.max_runtime_seconds - elapsed
            on_deadline = functools.partial(self._on_deadline, attempt)
            attempt.deadline = self._timers.call_later(remaining, on_deadline)
        if killing:
            self._submit_chore(self._chore(self._terminate), attempt)

    # -- logs -------------------------------------------------------------------------

    def _new_log(self, task_id: str, skip_until: datetime | None = None) -> AttemptLog:
        def deliver(lines: Sequence[LogLine]) -> None:
            self._tell(lambda lsn: lsn.attempt_logs(task_id, lines))

        settings = self._settings
        return AttemptLog(
            deliver, self._clock, settings.log_cap_bytes, settings.log_batch_lines, skip_until
        )

    def _start_reader(self, attempt: _Attempt) -> None:
        """Follow the container's output on a new thread, published only once it runs."""
        name = f"gnomon-executor-logs-{attempt.spec.task_id[:8]}"
        reader = threading.Thread(target=self._read_logs, args=(attempt,), name=name, daemon=True)
        reader.start()
        attempt.reader = reader  # never a thread that cannot be joined yet

    def _read_logs(self, attempt: _Attempt) -> None:
        """Thread: follow the container's output until it ends or reaches the cap."""
        attempt.reader_broken = False
        try:
            for stream_id, payload in self._open_log_stream(attempt):
                when, data = split_timestamp(payload)
                if not attempt.log.feed(STREAM_SOURCES.get(stream_id, "stdout"), when, data):
                    break  # capped: stop following rather than drain what is not kept
        except (*_ENGINE_GONE, ProtocolError, OSError) as error:
            # Picked up again from the last line seen: by reconciliation or at exit.
            attempt.reader_broken = not self._closing.is_set()
            log.warning("log stream of task %s broke: %s", attempt.spec.task_id, error)
        except NotFound:
            log.info("task %s: container gone before its logs were read", attempt.spec.task_id)
        except Exception:
            log.exception("reading the logs of task %s failed", attempt.spec.task_id)
        finally:
            if attempt.stream is not None:
                attempt.stream.close()
            for source in STREAM_SOURCES.values():
                attempt.log.end(source)

    def _open_log_stream(self, attempt: _Attempt) -> Iterator[tuple[int, bytes]]:
        """The container's demultiplexed, timestamped output frames, followed live.

        The SDK's `logs()` merges stdout and stderr and inspects the container
        first; one raw request keeps both streams apart, in order, on one connection.
        A broken connection raises (it does not look like the end of the output).
        """
        api = self._engine.api()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 1}
        attempt.log.resume_after_last()
        skip_until = attempt.log.skip_until
        if skip_until is not None:
            params["since"] = int(skip_until.timestamp())  # whole seconds; feed() skips the rest
        url = api._url("/containers/{0}/logs", attempt.container_id)
        response = api._get(url, params=params, stream=True, timeout=None)
        api._raise_for_status(response)
        attempt.stream = CancellableStream(iter(()), response)  # only to close it from outside
        if self._closing.is_set():
            attempt.stream.close()
        return read_frames(response.raw.read)

    def _stop_reader(self, attempt: _Attempt) -> None:
        if attempt.stream is not None:
            attempt.stream.close()
        if attempt.reader is not None:
            attempt.reader.join(timeout=_LOG_DRAIN_SECONDS)

    def _flush_logs(self) -> None:
        with self._lock:
            logs = [attempt.log for attempt in self._attempts.values()]
        for attempt_log in logs:
            attempt_log.flush()

    def _collect_log_paths(self, attempt: _Attempt) -> None:
        """Store the files named in `log_paths` from the stopped container, within the cap."""
        api = self._engine.api()
        for path in attempt.spec.log_paths:
            try:
                chunks, _ = api.get_archive(attempt.container_id, path)
                self._store_archive(attempt, path, chunks)
            except NotFound:
                attempt.log.note(f"log path {path} not found in the container")
            except APIError as error:
                attempt.log.note(f"log path {path} could not be read: {_explain(error)}")

    def _store_archive(self, attempt: _Attempt, path: str, chunks: Iterator[bytes]) -> None:
        for name, content in tar_members(chunks):
            # A file comes back under its base name; a directory's files under theirs.
            source = path if "/" not in name else f"{path.rstrip('/')}/{name.split('/', 1)[1]}"
            for block in content:
                if not attempt.log.feed(source, None, block):
                    return
            attempt.log.end(source)

    # -- exits ------------------------------------------------------------------------

    def _follow_events(self) -> None:
        """Thread: one event stream for every container of this instance; reconnects."""
        while not self._closing.is_set():
            try:
                self._consume_events()
            except _ENGINE_GONE as error:
                self._engine.mark_down(error)
            except Exception:
                log.exception("following docker events failed")
            self._closing.wait(_RECONNECT_SECONDS)

    def _consume_events(self) -> None:
        stream = self._engine.api().events(
            decode=True,
            filters={"label": self._instance_label(), "type": "container", "event": ["die"]},
        )
        self._events_stream = stream
        if self._closing.is_set():
            stream.close()
            return
        self._engine.mark_up()
        # Exits while the stream was down are caught by a reconciliation right away.
        self._submit_chore(self._chore(self._reconcile))
        for event in stream:
            self._on_event(event)
        if not self._closing.is_set():
            log.warning("docker event stream ended; reconnecting")

    def _on_event(self, event: Mapping[str, Any]) -> None:
        task_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_TASK_ID)
        with self._lock:
            attempt = self._attempts.get(task_id) if task_id else None
        if attempt is not None and attempt.container_id == event.get("id"):
            attempt.exit = _Exit.from_event(event)
            self._claim_finish(attempt)

    def _reconcile(self) -> None:
        """Safety net: inspect every running container, in case an exit event was missed."""
        with self._lock:
            running = [a for a in self._attempts.values() if a.phase == _Phase.RUNNING]
        for attempt in running:
            try:
                state = self._engine.api().inspect_container(attempt.container_id)["State"]
            except NotFound:
                self._claim_finish(attempt)
                continue
            except _ENGINE_GONE as error:
                self._engine.mark_down(error)
                return
            if not state["Running"]:
                self._claim_finish(attempt)
            elif attempt.reader_broken and not (attempt.reader and attempt.reader.is_alive()):
                self._start_reader(attempt)

    def _claim_finish(self, attempt: _Attempt) -> None:
        """The container has exited: finalise it once (or once it is marked running)."""
        with self._lock:
            if attempt.phase == _Phase.STARTING:
                attempt.exited_early = True
                return
            if attempt.phase != _Phase.RUNNING:
                return
            attempt.phase = _Phase.FINISHING
        self._submit_chore(self._finalise, attempt)

    def _finalise(self, attempt: _Attempt) -> None:
        """Pool job: drain logs, collect log paths, inspect, report, remove."""
        try:
            outcome = self._final_outcome(attempt)
        except _ENGINE_GONE as error:
            self._engine.mark_down(error)
            with self._lock:
                attempt.phase = _Phase.RUNNING  # the reconciliation after reconnecting retries
            return
        except Exception as error:
            log.exception("finalising task %s failed", attempt.spec.task_id)
            outcome = self._outcome_without_container(attempt, f"executor error: {error}")
        self._report(attempt, outcome)
        self._dispose(attempt, outcome)

    def _final_outcome(self, attempt: _Attempt) -> Outcome:
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        exit_ = attempt.exit
        if exit_ is None or (exit_.code == _SIGKILLED and attempt.kill_reason is None):
            # No die event (reconciliation, recovery), or killed by someone else: the
            # OOM killer or a removal. The engine answers an inspect only once it has
            # cleaned up after the exit, some milliseconds after the die event, so it
            # is asked only when the event does not tell all.
            state = self._inspect_exited(attempt)
            if state is None or (state.get("Status") == "removing" and not attempt.kill_reason):
                self._drain_logs(attempt)
                return self._outcome_without_container(attempt, "container lost")
            exit_ = _Exit.from_state(state)
        self._drain_logs(attempt)
        self._collect_log_paths(attempt)
        return self._outcome(attempt, exit_)

    def _inspect_exited(self, attempt: _Attempt) -> Mapping[str, Any] | None:
        """The exited container's State (while its reader drains), or None if it is gone."""
        try:
            return self._engine.api().inspect_container(attempt.container_id)["State"]
        except NotFound:
            return None

    def _drain_logs(self, attempt: _Attempt) -> None:
        """Wait for the exited container's output to be read to its end."""
        if attempt.reader is not None:
            attempt.reader.join(timeout=_LOG_DRAIN_SECONDS)
            if attempt.reader.is_alive():
                self._stop_reader(attempt)
        if attempt.reader_broken:
            self._read_logs(attempt)  # the rest of the output, now that it has ended

    def _outcome(self, attempt: _Attempt, exit_: _Exit) -> Outcome:
        """How the container ended."""
        exit_code = exit_.code
        if attempt.kill_reason is not None:
            ending, reason = attempt.kill_ending or Ending.KILLED, attempt.kill_reason
        elif exit_.oom_killed and exit_code != 0:
            ending, reason = Ending.OOM_KILLED, "killed: out of memory"
        else:
            ending, reason = Ending.EXITED, (f"exit code {exit_code}" if exit_code else None)
        started_at = exit_.started_at or attempt.started_at
        ended_at = exit_.ended_at or self._clock()
        if started_at is not None:
            # For an instant exit the engine can record FinishedAt just before StartedAt.
            ended_at = max(ended_at, started_at)
        return Outcome(
            task_id=attempt.spec.task_id,
            ending=ending,
            exit_code=exit_code,
            ended_at=ended_at,
            started_at=started_at,
            oom_killed=exit_.oom_killed,
            reason=reason,
        )

    def _outcome_without_container(self, attempt: _Attempt, reason: str) -> Outcome:
        return Outcome(
            task_id=attempt.spec.task_id,
            ending=Ending.LOST,
            exit_code=None,
            ended_at=self._clock(),
            started_at=attempt.started_at,
            reason=reason,
        )

    def _dispose(self, attempt: _Attempt, outcome: Outcome) -> None:
        """Remove the finished container (kept if failed and so configured); forget it."""
        failed = outcome.ending != Ending.EXITED or outcome.exit_code != 0
        keep = failed and self._settings.keep_failed_containers
        if attempt.container_id is not None and not keep and outcome.ending != Ending.LOST:
            self._remove(attempt.container_id)
        with self._lock:
            self._attempts.pop(attempt.spec.task_id, None)

    # -- kills and deadlines ----------------------------------------------------------

    def _request_kill(self, task_id: str, reason: str, ending: Ending) -> None:
        with self._lock:
            attempt = self._attempts.get(task_id)
            if attempt is None or attempt.phase == _Phase.FINISHING or attempt.kill_reason:
                return
            attempt.kill_reason, attempt.kill_ending = reason, ending
            running = attempt.phase == _Phase.RUNNING
        if running:  # else the starting worker sees kill_reason and never starts it
            self._submit_chore(self._chore(self._terminate), attempt)

    def _on_deadline(self, attempt: _Attempt) -> None:
        """Timer: the attempt ran past max_runtime_seconds."""
        seconds = attempt.spec.max_runtime_seconds
        reason = f"killed: exceeded max_runtime_seconds ({seconds})"
        self._request_kill(attempt.spec.task_id, reason, Ending.TIMED_OUT)

    def _terminate(self, attempt: _Attempt) -> None:
        """SIGTERM now, SIGKILL after the grace period unless it has exited by then."""
        self._signal(attempt, "SIGTERM")

        def force() -> None:
            if attempt.phase == _Phase.RUNNING:
                self._submit_chore(self._chore(self._signal), attempt, "SIGKILL")

        self._timers.call_later(self._settings.kill_grace_seconds, force)

    def _signal(self, attempt: _Attempt, signal: str) -> None:
        try:
            self._engine.api().kill(attempt.container_id, signal=signal)
        except APIError as error:  # 404/409: it is gone or no longer running
            log.debug("signal %s to task %s: %s", signal, attempt.spec.task_id, error)

    # -- recovery ---------------------------------------------------------------------

    def _adopt(self, item: InFlight, container: Mapping[str, Any] | None) -> None:
        """Take over one attempt from before a restart."""
        spec = item.spec
        attempt = _Attempt(spec, self._new_log(spec.task_id, item.logs_until))
        if container is None:
            self._report(attempt, self._outcome_without_container(attempt, "container lost"))
            return
        attempt.container_id = str(container["Id"])
        with self._lock:
            self._attempts[spec.task_id] = attempt
        if container["State"] == "created":
            self._starts.submit(self._resume_start, attempt)
            return
        try:
            state = self._engine.api().inspect_container(attempt.container_id)["State"]
        except NotFound:
            self._report(attempt, self._outcome_without_container(attempt, "container lost"))
            with self._lock:
                self._attempts.pop(spec.task_id, None)
            return
        started_at = _engine_time(state["StartedAt"]) or self._clock()
        attempt.exited_early = not (state["Running"] or state.get("Restarting"))
        elapsed = max(0.0, time.time() - started_at.timestamp())
        self._mark_running(attempt, started_at, elapsed)

    def _resume_start(self, attempt: _Attempt) -> None:
        """Pool job: start a container that was created but not started before a restart."""
        try:
            self._start_created(attempt, str(attempt.container_id))
        except _ENGINE_GONE as error:
            self._send_back(attempt, f"docker engine unavailable: {error}")
        except Exception as error:
            log.exception("starting task %s failed", attempt.spec.task_id)
            self._fail_start(attempt, Ending.START_FAILED, f"start failed: {error}")

    # -- reporting and helpers --------------------------------------------------------

    def _fail_start(self, attempt: _Attempt, ending: Ending, reason: str) -> None:
        """The attempt ended before its container ran."""
        outcome = Outcome(attempt.spec.task_id, ending, None, self._clock(), reason=reason)
        self._report(attempt, outcome)
        with self._lock:
            self._attempts.pop(attempt.spec.task_id, None)

    def _report(self, attempt: _Attempt, outcome: Outcome) -> None:
        """Deliver remaining logs, then the outcome: exactly once per attempt."""
        with self._lock:
            if attempt.done:
                return
            attempt.done = True
        attempt.log.flush()
        self._tell(lambda lsn: lsn.attempt_finished(outcome))

    def _send_back(self, attempt: _Attempt, reason: str) -> None:
        """The attempt did not start for want of an engine: offer it back."""
        with self._lock:
            if attempt.done:
                return
            attempt.done = True
            self._attempts.pop(attempt.spec.task_id, None)
        attempt.log.flush()
        self._tell(lambda lsn: lsn.attempt_waiting(attempt.spec.task_id, reason))

    def _tell(self, call: Callable[[ExecutorListener], None]) -> None:
        """Call the listener; its failure is logged and changes nothing here."""
        try:
            call(self._listener)  # type: ignore[arg-type]
        except Exception:
            log.exception("executor listener failed")

    def _remove(self, container: str) -> None:
        try:
            self._engine.api().remove_container(container, v=True, force=True)
        except NotFound:
            pass
        except (APIError, *_UNREACHABLE) as error:
            log.warning("could not remove container %s: %s", container[:12], error)

    def _submit_chore(self, job: Callable[..., None], *args: Any) -> None:
        """Queue `job` on the chore pool; dropped once the pool is shut down by close()."""
        try:
            self._chores.submit(job, *args)
        except RuntimeError:
            if not self._closing.is_set():
                raise
            log.debug("executor closing: dropped chore %s", job)

    def _instance_label(self) -> str:
        return f"{LABEL_INSTANCE}={self._settings.instance}"

    def _chore(self, job: Callable[..., None]) -> Callable[..., None]:
        """`job` guarded as a loop boundary: an error is logged, never raised into a pool."""

        def guarded(*args: Any) -> None:
            try:
                job(*args)
            except _ENGINE_GONE as error:
                self._engine.mark_down(error)
            except Exception:
                log.exception("executor chore %s failed", getattr(job, "__name__", job))

        return guarded


def _engine_time(text: str) -> datetime | None:
    """An engine timestamp, or None for its zero time."""
    return parse_timestamp(text) if text else None


def _pull_messages(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON progress messages of a pull, one a line, as they come."""
    try:
        for line in response.raw:
            if line.strip():
                yield json.loads(line)
    except ProtocolError as error:  # the engine went away, not the image
        raise EngineUnavailable(f"the pull broke off: {error}") from error


def _explain(error: APIError) -> str:
    """The engine's own words for an error."""
    return str(error.explanation or error)
