"""Creating and starting containers, pulling images that are not present.

A kill can land at any moment of a start: before the create, during a pull
(the pull is cut short at once), between create and start, or while the start
is reported. Each of those ends the attempt as killed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime
from typing import Any

import requests
from docker.errors import APIError, ImageNotFound
from urllib3.exceptions import ReadTimeoutError

from executor.base import AttemptSpec, Ending
from executor.connection import ENGINE_GONE, UNREACHABLE, explain
from executor.container_options import docker_arguments
from executor.docker.attempts import Attempt
from executor.docker.engine import pull_messages
from executor.docker.finishing import Finisher
from executor.docker.kills import Killer
from executor.docker.output import OutputReader
from executor.docker.runtime import Runtime
from executor.docker.settings import LOG_MAX_FILES, MIB
from executor.labels import attempt_labels
from executor.pull_policy import NEVER, PullMemo, effective_policy

log = logging.getLogger(__name__)

_NANO_CPUS_PER_UNIT = 1_000_000_000 / 1024  # 1024 cpu units = one core


class Launcher:
    """Takes an attempt from queued to running."""

    def __init__(
        self, runtime: Runtime, output: OutputReader, killer: Killer, finisher: Finisher
    ) -> None:
        self._rt = runtime
        self._output = output
        self._killer = killer
        self._finisher = finisher
        self._pulls = PullMemo(runtime.settings.pull_interval_seconds)

    def launch(self, attempt: Attempt) -> None:
        """Pool job: create (pulling if needed) and start the attempt's container."""
        self._guard_start(attempt, self._create_and_start)

    def resume(self, attempt: Attempt) -> None:
        """Pool job: start a container that was created but not started before a restart."""
        self._guard_start(attempt, lambda a: self._start_created(a, str(a.container_id)))

    def mark_running(self, attempt: Attempt, started_at: datetime, elapsed: float) -> None:
        """The container runs: read its output, tell the listener, then let it finish.

        Its exit can be claimed only from here on (a die event before marks it
        `exited_early`), so the listener hears of the start before the end and
        the finaliser always finds a started reader.
        """
        self._output.start(attempt)  # at once: a quick exit's output is read meanwhile
        attempt.started_at = started_at
        task_id, container_id = attempt.task_id, attempt.container_id
        self._rt.reporter.tell(
            f"the start of task {task_id}",
            lambda lsn: lsn.attempt_started(task_id, started_at, str(container_id)),
        )
        exited, killing = self._rt.attempts.mark_running(attempt)
        if exited:
            self._rt.chore(self._finisher.finalise, attempt)
            return
        self._killer.arm_deadline(attempt, elapsed)
        if killing:
            self._rt.kill_job(self._killer.terminate, attempt)

    def _guard_start(self, attempt: Attempt, step: Any) -> None:
        try:
            step(attempt)
        except ENGINE_GONE as error:
            if isinstance(error, UNREACHABLE):
                self._rt.engine.mark_down(error)
            self._finisher.send_back(attempt, f"docker engine unavailable: {error}")
        except Exception as error:
            log.exception("starting task %s failed", attempt.task_id)
            self._finisher.fail_start(attempt, Ending.START_FAILED, f"start failed: {error}")

    def _create_and_start(self, attempt: Attempt) -> None:
        container_id = self._create(attempt)
        if container_id is not None:
            self._start_created(attempt, container_id)

    def _create(self, attempt: Attempt) -> str | None:
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
            self._finisher.fail_start(attempt, Ending.START_FAILED, explain(error))
            return None
        if effective_policy(spec.tag, spec.pull_policy) == NEVER:
            reason = f"image not found: {spec.image_ref} (pull_policy never)"
            self._finisher.fail_start(attempt, Ending.IMAGE_NOT_FOUND, reason)
            return None
        if not self._pull(attempt) or self._stopped_before_start(attempt):
            return None
        try:
            return self._create_container(attempt.spec)
        except ImageNotFound:
            reason = f"image not found: {attempt.spec.image_ref}"
            self._finisher.fail_start(attempt, Ending.IMAGE_NOT_FOUND, reason)
        except APIError as error:
            self._finisher.fail_start(attempt, Ending.START_FAILED, explain(error))
        return None

    def _create_container(self, spec: AttemptSpec) -> str:
        """Create the container; a leftover of an earlier try of this attempt is replaced."""
        name = self._container_name(spec)
        try:
            return self._rt.engine.create(self._container_args(spec, name))
        except APIError as error:
            if error.status_code != 409:
                raise
        log.info("replacing leftover container %s", name)
        self._rt.engine.remove(name)
        return self._rt.engine.create(self._container_args(spec, name))

    def _container_args(self, spec: AttemptSpec, name: str) -> dict[str, Any]:
        """The engine's create arguments for `spec`."""
        limits: dict[str, Any] = {}
        if spec.memory_mib is not None:
            memory = spec.memory_mib * MIB
            limits.update(mem_limit=memory, memswap_limit=memory)  # equal: no swap on top
        if spec.cpu_units is not None:
            limits["nano_cpus"] = int(spec.cpu_units * _NANO_CPUS_PER_UNIT)
        api = self._rt.engine.api()
        network_mode = self._rt.settings.network_mode
        create, host = docker_arguments(
            spec.options, network_mode, attempt_labels(spec, self._rt.settings.instance)
        )
        return {
            "image": spec.image_ref,
            "command": list(spec.command) or None,
            "environment": dict(spec.environment),
            "host_config": api.create_host_config(**host, **limits, log_config=self._log_config()),
            "name": name,
            "detach": True,
            **create,  # the task's container options, and the labels
        }

    def _log_config(self) -> dict[str, Any] | None:
        """Large json-file logs, so that an output within the cap is read once (see
        `executor.log_files`); None keeps the engine's own (another driver, or so set)."""
        max_size = self._rt.settings.log_max_size
        if not max_size or self._rt.engine.default_log_driver() != "json-file":
            return None
        return {
            "Type": "json-file",
            "Config": {"max-size": max_size, "max-file": str(LOG_MAX_FILES)},
        }

    def _container_name(self, spec: AttemptSpec) -> str:
        raw = f"gnomon-{self._rt.settings.instance}-{spec.task_id}"
        return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)

    def _pull(self, attempt: Attempt) -> bool:
        """Pull the attempt's image within the pull timeout; False when the attempt ended."""
        attempt.log.note(f"image {attempt.spec.image_ref} is not present; pulling it")
        return self._pull_or_fail(attempt, self._pull_outcome(attempt))

    def _refresh(self, attempt: Attempt) -> bool:
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

    def _pull_or_fail(self, attempt: Attempt, problem: str | None) -> bool:
        """True if the pull worked; else the attempt fails (unless it already ended)."""
        if problem is None:
            return True
        spec = attempt.spec
        if not self._stopped_before_start(attempt):
            attempt.log.note(f"pull of {spec.image_ref} failed: {problem}")
            reason = f"image not found: {spec.image_ref}"
            self._finisher.fail_start(attempt, Ending.IMAGE_NOT_FOUND, reason)
        return False

    def _pull_outcome(self, attempt: Attempt) -> str | None:
        """Pull the attempt's image within the pull timeout; why it failed, or None."""
        try:
            return self._pull_problem(attempt)
        except APIError as error:
            return explain(error)
        except (requests.exceptions.Timeout, ReadTimeoutError):
            return f"no answer within {self._rt.settings.pull_timeout_seconds:g} s"

    def _present(self, spec: AttemptSpec) -> bool:
        """Whether the engine has the image locally."""
        try:
            self._rt.engine.api().inspect_image(spec.image_ref)
        except ImageNotFound:
            return False
        return True

    def _from_registry(self, spec: AttemptSpec) -> bool:
        """Whether the image is absent or came from a registry (not built or loaded here)."""
        try:
            return bool(self._rt.engine.api().inspect_image(spec.image_ref).get("RepoDigests"))
        except ImageNotFound:
            return True

    def _pull_problem(self, attempt: Attempt) -> str | None:
        """Why the pull failed, or None if it worked; a kill ends the wait for it at once.

        The engine answers a pull only once the registry does: the pull runs on
        a thread of its own, which a killed attempt leaves to end (within the
        pull timeout) without it.
        """
        result: list[str | BaseException | None] = []
        over = threading.Event()

        def pull() -> None:
            try:
                result.append(self._follow_pull(attempt))
            except BaseException as error:  # handed over to the waiting start worker
                result.append(error)
            finally:
                over.set()

        if not self._rt.attempts.add_interrupter(attempt, over.set):
            return "pull abandoned"
        name = f"gnomon-executor-pull-{attempt.task_id[:8]}"
        threading.Thread(target=pull, name=name, daemon=True).start()
        try:
            over.wait()
        finally:
            self._rt.attempts.remove_interrupter(attempt, over.set)
        if not result:
            return "pull abandoned"
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def _follow_pull(self, attempt: Attempt) -> str | None:
        """Follow the pull's progress; why it failed, or None if it worked."""
        timeout = self._rt.settings.pull_timeout_seconds
        deadline = time.monotonic() + timeout
        with self._rt.engine.open_pull(attempt.spec.image, attempt.spec.tag) as response:
            for message in pull_messages(response):
                if "error" in message:
                    return str(message["error"])
                if time.monotonic() > deadline:
                    return f"pull took longer than {timeout:g} s"
                if attempt.kill_reason is not None or self._rt.closing.is_set():
                    return "pull abandoned"
        return None

    def _stopped_before_start(self, attempt: Attempt) -> bool:
        """If a kill or close came while starting, end the attempt that way; True if so."""
        if self._rt.closing.is_set():
            self._finisher.send_back(attempt, "the executor closed before the container started")
            return True
        if attempt.kill_reason is not None:
            ending = attempt.kill_ending or Ending.KILLED
            self._finisher.fail_start(attempt, ending, attempt.kill_reason)
            return True
        return False

    def _start_created(self, attempt: Attempt, container_id: str) -> None:
        """Start a created container unless the attempt was killed meanwhile."""
        attempt.container_id = container_id
        if self._stopped_before_start(attempt):
            self._rt.engine.remove(container_id)
            return
        # Not the engine's StartedAt: inspecting a container that exits at once waits
        # until the engine has cleaned up after its exit.
        started_at = self._rt.clock()  # before the start, so never after its end
        try:
            self._rt.engine.start(container_id)
        except APIError as error:
            self._rt.engine.remove(container_id)
            self._finisher.fail_start(attempt, Ending.START_FAILED, explain(error))
            return
        self.mark_running(attempt, started_at, 0.0)
