"""The `Executor` that runs each attempt as a one-shot swarm service.

Threads: a pool creates services and finishes attempts; one timer thread polls
the manager's task list (every running attempt in one call), flushes output
batches and serves `max_runtime_seconds` deadlines; each running attempt has
one thread following its service's logs.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docker.errors import APIError, NotFound

from executor.base import (
    AttemptSpec,
    Ending,
    EngineUnavailable,
    ExecutorListener,
    Health,
    InFlight,
    Outcome,
)
from executor.connection import ENGINE_GONE, UNREACHABLE, explain
from executor.labels import LABEL_INSTANCE, LABEL_TASK_ID
from executor.logs import AttemptLog
from executor.oom import oom_reported
from executor.recovery import Recovery
from executor.reporting import Reporter
from executor.swarm.connection import Manager
from executor.swarm.output import ServiceOutput
from executor.swarm.services import (
    FINAL_STATES,
    TaskStatus,
    latest_tasks,
    service_args,
    service_name,
    task_outcome,
)
from executor.swarm.settings import SwarmSettings
from executor.timers import TimerHandle, TimerThread, utcnow
from executor.tracking import Attempts, Tracked, attempt_log

log = logging.getLogger(__name__)

Service = Mapping[str, Any]

_SIGKILLED = 128 + 9
_NOT_A_MANAGER = 503  # the engine answered, but is (no longer) a swarm manager


class _Phase(enum.Enum):
    CREATING = "creating"  # the service is being created
    SUBMITTED = "submitted"  # the service exists; its task is not running yet
    RUNNING = "running"  # its task runs (or ran, and the poll has not seen the end)
    FINISHING = "finishing"  # its end is being turned into an Outcome


@dataclass(eq=False)
class _Attempt(Tracked):
    """What the executor tracks about one attempt."""

    phase: _Phase = _Phase.CREATING
    service_id: str | None = None
    started_at: datetime | None = None
    node: str | None = None
    output: ServiceOutput | None = None  # set with the phase, under the lock
    deadline: TimerHandle | None = None  # set with the phase, under the lock
    kill_reason: str | None = None
    kill_ending: Ending | None = None
    noted_wait: str = ""  # the last "why not running yet" already noted in its output


class SwarmExecutor:
    """Runs attempts as `replicated-job` services on a Docker Swarm cluster."""

    def __init__(self, settings: SwarmSettings, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._manager = Manager(settings)
        self._closing = threading.Event()
        self._reporter = Reporter(self._closing)
        self._attempts: Attempts[_Attempt] = Attempts(self._reporter)
        self._lock = self._attempts.lock  # guards each attempt's phase too
        self._node_names: dict[str, str] = {}
        self._timers = TimerThread("gnomon-swarm-timers")
        self._pool = ThreadPoolExecutor(settings.worker_threads, "gnomon-swarm-work")
        self._polling = threading.Lock()
        self._recovery: Recovery[Service] = Recovery(
            self._manager,
            self._attempts,
            self._find_services,
            _by_task,
            self._adopt,
            self._remove_strays,
        )

    # -- the Executor protocol --------------------------------------------------------

    def open(self, listener: ExecutorListener) -> None:
        """Contact the manager; start polling task states and flushing output."""
        self._reporter.listener = listener
        self._manager.check()
        self._timers.start()
        flush = functools.partial(self._submit, self._attempts.flush_logs)  # off the timer
        self._timers.every(self._settings.log_batch_seconds, flush)
        self._timers.every(self._settings.poll_interval_seconds, self._schedule_poll)

    def start(self, spec: AttemptSpec) -> None:
        """Queue the creation of `spec`'s service; EngineUnavailable if the manager is down."""
        if self._reporter.listener is None or self._closing.is_set():
            raise RuntimeError("SwarmExecutor.start() needs open() and no close()")
        self._manager.require_up()
        attempt = _Attempt(spec, self._new_log(spec))
        self._attempts.add(attempt)
        self._submit(self._create, attempt)

    def kill(self, task_id: str, reason: str) -> None:
        """Remove the service (the node stops its container: SIGTERM, grace, SIGKILL)."""
        self._request_kill(task_id, reason, Ending.KILLED)

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Adopt the services of `in_flight` (whichever instance made them); if the manager
        is down, later. See `executor.recovery`."""
        self._recovery.recover(in_flight)
        self._schedule_poll()

    def health(self) -> Health:
        """Whether the manager answers and is a swarm manager (cached for a second)."""
        return self._manager.check()

    def close(self) -> None:
        """Stop watching; services keep running for `recover` to adopt."""
        self._closing.set()
        self._timers.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for attempt in self._attempts.all():
            if attempt.phase == _Phase.CREATING:
                self._attempts.send_back(attempt, "the executor closed before it was created")
            if attempt.output is not None:
                attempt.output.stop()
            attempt.log.flush()
        self._manager.close()

    # -- creating ---------------------------------------------------------------------

    def _create(self, attempt: _Attempt) -> None:
        """Pool job: create the attempt's service (replacing a leftover of an earlier try)."""
        if self._ended_before_creation(attempt):
            return
        if attempt.spec.log_paths:  # a node's files cannot be read through the manager
            attempt.log.note("log_paths are not collected by the Swarm executor")
        try:
            service_id = self._create_service(attempt.spec)
        except ENGINE_GONE as error:
            if isinstance(error, UNREACHABLE):
                self._manager.mark_down(error)
            self._attempts.send_back(attempt, f"swarm manager unavailable: {error}")
            return
        except APIError as error:
            if error.status_code == _NOT_A_MANAGER:
                self._attempts.send_back(attempt, f"swarm manager unavailable: {explain(error)}")
            else:
                self._fail(attempt, Ending.START_FAILED, f"start failed: {explain(error)}")
            return
        with self._lock:
            attempt.service_id = service_id
            attempt.phase = _Phase.SUBMITTED
            killing = attempt.kill_reason is not None
        if killing:
            self._submit(self._terminate, attempt)

    def _create_service(self, spec: AttemptSpec) -> str:
        """The new service's id; an existing one of this attempt is taken over, not replaced.

        A service runs as soon as it exists, so one made by an earlier try (this
        instance before a crash, or another instance) is this attempt running already.
        """
        api = self._manager.api()
        args = service_args(spec, self._settings)
        try:
            return str(api.create_service(**args)["ID"])
        except APIError as error:
            if error.status_code != 409:
                raise
        log.info("taking over existing service %s", args["name"])
        return str(api.inspect_service(service_name(spec))["ID"])

    def _ended_before_creation(self, attempt: _Attempt) -> bool:
        """If a kill or close came first, end the attempt that way; True if so."""
        if self._closing.is_set():
            self._attempts.send_back(attempt, "the executor closed before it was created")
            return True
        if attempt.kill_reason is not None:
            self._fail(attempt, attempt.kill_ending or Ending.KILLED, attempt.kill_reason)
            return True
        return False

    # -- watching ---------------------------------------------------------------------

    def _schedule_poll(self) -> None:
        """Timer: read task states on the pool, unless a poll is still under way."""
        if self._polling.acquire(blocking=False) and not self._submit(self._poll):
            self._polling.release()

    def _poll(self) -> None:
        """Pool job: one task list for every watched service; act on what changed."""
        try:
            if self._manager.check().ok:  # probes at most once a second
                self._recovery.retry()  # adopts what waited for the manager
            watched = {
                a.service_id: a
                for a in self._attempts.all()
                if a.service_id and a.phase in (_Phase.SUBMITTED, _Phase.RUNNING)
            }
            if watched:
                self._poll_tasks(watched)
        except ENGINE_GONE as error:
            self._manager.mark_down(error)
        except Exception:
            log.exception("polling swarm tasks failed")
        finally:
            self._polling.release()

    def _poll_tasks(self, watched: Mapping[str, _Attempt]) -> None:
        try:
            tasks = self._manager.api().tasks(filters={"service": list(watched)})
        except NotFound:  # one of the services is gone: the manager lists none of them
            for attempt in watched.values():
                if not self._service_exists(attempt):
                    self._claim_finish(attempt, None)
            return
        self._manager.mark_up()
        statuses = latest_tasks(tasks)
        for service_id, attempt in watched.items():
            self._observe(attempt, statuses.get(service_id))

    def _observe(self, attempt: _Attempt, status: TaskStatus | None) -> None:
        """Move one attempt on according to its task's latest status."""
        if status is None:
            if not self._service_exists(attempt):
                self._claim_finish(attempt, None)
            return
        if status.state in FINAL_STATES:
            if attempt.phase == _Phase.SUBMITTED and status.ran:
                self._mark_running(attempt, status, status.timestamp or self._clock())
            self._claim_finish(attempt, status)
        elif status.state == "running" and attempt.phase == _Phase.SUBMITTED:
            self._mark_running(attempt, status, status.timestamp or self._clock())
        elif status.error and status.error != attempt.noted_wait:
            attempt.noted_wait = status.error  # e.g. no node satisfies the placement
            attempt.log.note(f"waiting for the swarm: {status.state}: {status.error}")

    def _service_exists(self, attempt: _Attempt) -> bool:
        try:
            self._manager.api().inspect_service(attempt.service_id)
        except NotFound:
            return False
        return True

    def _mark_running(self, attempt: _Attempt, status: TaskStatus, started_at: datetime) -> None:
        """The task's container runs: tell the listener, follow its output, set its deadline."""
        attempt.node = self._node_name(status.node_id)
        attempt.started_at = started_at
        spec = attempt.spec
        container = status.container_id or str(attempt.service_id)
        node = attempt.node
        self._reporter.tell(
            f"the start of task {spec.task_id}",
            lambda lsn: lsn.attempt_started(spec.task_id, started_at, container, node),
        )
        output = None
        if status.state == "running":
            output = ServiceOutput(str(attempt.service_id), attempt.log, spec.task_id[:8])
        deadline = None
        if spec.max_runtime_seconds is not None:
            elapsed = max(0.0, (self._clock() - started_at).total_seconds())
            on_deadline = functools.partial(self._on_deadline, attempt)
            deadline = self._timers.call_later(spec.max_runtime_seconds - elapsed, on_deadline)
        with self._lock:  # published with the phase: whoever finishes it sees them
            running = attempt.phase == _Phase.SUBMITTED
            if running:
                attempt.output, attempt.deadline = output, deadline
                attempt.phase = _Phase.RUNNING
        if not running:  # killed meanwhile: its terminator finishes it
            if deadline is not None:
                deadline.cancel()
            return
        if output is not None:
            output.follow(self._manager.api())

    def _node_name(self, node_id: str | None) -> str | None:
        """The hostname of a swarm node (its id if it cannot be inspected)."""
        if node_id is None:
            return None
        if node_id not in self._node_names:
            try:
                node = self._manager.api().inspect_node(node_id)
                name = node.get("Description", {}).get("Hostname") or node_id
            except APIError:
                name = node_id
            self._node_names[node_id] = name
        return self._node_names[node_id]

    # -- finishing --------------------------------------------------------------------

    def _claim_finish(self, attempt: _Attempt, status: TaskStatus | None) -> None:
        """The task is over (or its service gone): finish the attempt once."""
        with self._lock:
            if attempt.phase not in (_Phase.SUBMITTED, _Phase.RUNNING):
                return
            attempt.phase = _Phase.FINISHING
        self._submit(self._finish, attempt, status)

    def _finish(self, attempt: _Attempt, status: TaskStatus | None) -> None:
        """Pool job: read the rest of the output, report the outcome, remove the service."""
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        try:
            outcome = self._final_outcome(attempt, status)
        except ENGINE_GONE as error:
            self._manager.mark_down(error)
            with self._lock:
                attempt.phase = _Phase.RUNNING  # the next poll after reconnecting retries
            return
        except Exception as error:
            log.exception("finishing task %s failed", attempt.spec.task_id)
            outcome = self._lost(attempt, f"executor error: {error}")
        # Removed only once the outcome is stored; a service already gone needs no removal.
        dispose = _nothing if status is None else functools.partial(self._remove_of, attempt)
        self._attempts.report(attempt, outcome, dispose)

    def _final_outcome(self, attempt: _Attempt, status: TaskStatus | None) -> Outcome:
        if status is not None and status.ran:
            self._read_rest(attempt)
        if attempt.kill_reason is not None:
            return self._killed(attempt, status)
        if status is None:
            if attempt.output is not None:
                attempt.output.stop()
            return self._lost(attempt, "task lost: its service was removed")
        if status.state == "rejected":
            attempt.log.note(f"the swarm rejected the task: {status.error}")
        oom = status.exit_code == _SIGKILLED and self._oom_killed(status, attempt.started_at)
        return task_outcome(attempt.spec, status, attempt.started_at, oom, self._clock())

    def _read_rest(self, attempt: _Attempt) -> None:
        """Close the live stream and read the output it had not delivered yet."""
        output = attempt.output or ServiceOutput(
            str(attempt.service_id), attempt.log, attempt.spec.task_id[:8]
        )
        output.finish(self._manager.api())

    def _oom_killed(self, status: TaskStatus, started_at: datetime | None) -> bool:
        """Whether the engine the manager runs on saw the container killed out of memory.

        Swarm's task status does not say; the container can be inspected only when
        it ran on the manager's own node (always so on a one-node swarm).
        """
        api = self._manager.api()
        try:
            state = api.inspect_container(status.container_id)["State"]
            return oom_reported(api, status.container_id, state, started_at, self._clock())
        except APIError:
            return False

    def _killed(self, attempt: _Attempt, status: TaskStatus | None) -> Outcome:
        ran = status is not None and status.state in FINAL_STATES and status.ran
        return Outcome(
            task_id=attempt.spec.task_id,
            ending=attempt.kill_ending or Ending.KILLED,
            exit_code=status.exit_code if ran and status is not None else None,
            ended_at=self._clock(),
            started_at=attempt.started_at,
            reason=attempt.kill_reason,
        )

    def _lost(self, attempt: _Attempt, reason: str) -> Outcome:
        return Outcome(
            task_id=attempt.spec.task_id,
            ending=Ending.LOST,
            exit_code=None,
            ended_at=self._clock(),
            started_at=attempt.started_at,
            reason=reason,
        )

    # -- kills and deadlines ----------------------------------------------------------

    def _request_kill(self, task_id: str, reason: str, ending: Ending) -> None:
        attempt = self._attempts.get(task_id)
        with self._lock:
            if attempt is None or attempt.phase == _Phase.FINISHING or attempt.kill_reason:
                return
            attempt.kill_reason, attempt.kill_ending = reason, ending
            created = attempt.phase != _Phase.CREATING
        if created:  # else the creating worker sees kill_reason
            self._submit(self._terminate, attempt)

    def _on_deadline(self, attempt: _Attempt) -> None:
        """Timer: the attempt ran past max_runtime_seconds."""
        seconds = attempt.spec.max_runtime_seconds
        reason = f"killed: exceeded max_runtime_seconds ({seconds})"
        self._request_kill(attempt.spec.task_id, reason, Ending.TIMED_OUT)

    def _terminate(self, attempt: _Attempt) -> None:
        """Pool job: keep the output so far, then remove the service and report the kill.

        Removing the service is the only way to stop a swarm task; its node then
        stops the container (SIGTERM, `kill_grace_seconds`, SIGKILL).
        """
        with self._lock:
            if attempt.phase not in (_Phase.SUBMITTED, _Phase.RUNNING):
                return
            attempt.phase = _Phase.FINISHING
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        if attempt.started_at is not None:
            self._read_rest(attempt)
        self._remove_of(attempt)  # the one way to stop it, so before its outcome is stored
        self._attempts.report(attempt, self._killed(attempt, None), _nothing)

    # -- recovery ---------------------------------------------------------------------

    def _adopt(self, item: InFlight, service: Service | None) -> None:
        """Take over one attempt from before a restart, or from another instance."""
        spec = item.spec
        attempt = _Attempt(spec, self._new_log(spec, item.logs_until))
        if service is None:
            lost = self._lost(attempt, "task lost: its service was removed")
            self._attempts.report(attempt, lost, _nothing)
            return
        attempt.service_id = str(service["ID"])
        attempt.phase = _Phase.SUBMITTED  # the next poll marks it running or finishes it
        try:
            self._attempts.add(attempt)
        except ValueError:
            return  # started meanwhile

    def _find_services(self) -> list[Service]:
        """Every service with a task id, whatever instance made it."""
        try:
            return list(self._manager.api().services(filters={"label": LABEL_TASK_ID}))
        except APIError as error:
            if error.status_code != _NOT_A_MANAGER:
                raise
            raise EngineUnavailable(explain(error)) from error

    def _remove_strays(self, found: Sequence[Service], in_flight: set[str]) -> None:
        """Remove this instance's services that match no attempt."""
        for service in found:
            labels = service["Spec"].get("Labels", {})
            task_id = labels.get(LABEL_TASK_ID)
            if labels.get(LABEL_INSTANCE) != self._settings.instance or task_id in in_flight:
                continue
            if not self._attempts.tracks(task_id):
                log.info("removing service %s: it matches no attempt in flight", service["ID"][:12])
                self._remove(str(service["ID"]))

    # -- reporting and helpers --------------------------------------------------------

    def _fail(self, attempt: _Attempt, ending: Ending, reason: str) -> None:
        """The attempt ended before its service was created."""
        outcome = Outcome(attempt.spec.task_id, ending, None, self._clock(), reason=reason)
        self._attempts.report(attempt, outcome, _nothing)

    def _new_log(self, spec: AttemptSpec, skip_until: datetime | None = None) -> AttemptLog:
        """The attempt's output log, capped and batched, delivered until stored."""
        settings = self._settings
        return attempt_log(
            self._reporter,
            spec.task_id,
            self._clock,
            settings.log_cap_bytes,
            settings.log_batch_lines,
            skip_until,
        )

    def _remove_of(self, attempt: _Attempt) -> None:
        """Remove the attempt's service."""
        self._remove(str(attempt.service_id))

    def _remove(self, service: str) -> None:
        try:
            self._manager.api().remove_service(service)
        except NotFound:
            pass
        except (APIError, *ENGINE_GONE) as error:
            log.warning("could not remove service %s: %s", service[:12], error)

    def _submit(self, job: Callable[..., None], *args: Any) -> bool:
        """Run `job` on the pool, guarded as a loop boundary; False once closing."""

        def guarded() -> None:
            try:
                job(*args)
            except ENGINE_GONE as error:
                self._manager.mark_down(error)
            except Exception:
                log.exception("swarm executor job %s failed", getattr(job, "__name__", job))

        try:
            self._pool.submit(guarded)
        except RuntimeError:
            if not self._closing.is_set():
                raise
            return False
        return True


def _by_task(found: Sequence[Service]) -> dict[str, Service]:
    """Each task's service (a task has at most one: its name is the task's)."""
    by_task = {}
    for service in found:
        task_id = service["Spec"].get("Labels", {}).get(LABEL_TASK_ID)
        if task_id:
            by_task[task_id] = service
    return by_task


def _nothing() -> None:
    """Nothing to dispose of."""
