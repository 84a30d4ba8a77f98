"""Adoption of attempts in flight after a restart, by this instance or another.

Engine-agnostic: a backend lists what it finds on its engine (containers or
services), each by its task-id label whatever instance made it, and says how
to adopt one and how to remove its own strays. An attempt tracked or finished
lately is skipped, so `recover` may be called again with more attempts; this
instance's strays are removed once, at the first recovery only. While the
engine is down, the attempts wait and `retry` adopts them once it answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from executor.base import InFlight
from executor.connection import ENGINE_GONE, UNREACHABLE, Connection
from executor.tracking import Attempts

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Mapping[str, Any])  # a container or a service, as the engine lists it


class Recovery(Generic[F]):
    """Adopts `in_flight` now, or as soon as the engine answers again."""

    def __init__(
        self,
        connection: Connection,
        attempts: Attempts[Any],
        find: Callable[[], Sequence[F]],
        pick: Callable[[Sequence[F]], Mapping[str, F]],
        adopt: Callable[[InFlight, F | None], None],
        remove_strays: Callable[[Sequence[F], set[str]], None],
    ) -> None:
        self._connection = connection
        self._attempts = attempts
        self._find = find  # everything of every instance the engine has with a task id
        self._pick = pick  # the one to adopt for each task id
        self._adopt = adopt
        self._remove_strays = remove_strays  # this instance's, save those of the given tasks
        self._lock = threading.Lock()  # one recovery at a time; guards the fields below
        self._pending: dict[str, InFlight] = {}
        self._strays_removed = False
        self._asked = False  # strays are judged only against a list the scheduler gave

    def recover(self, in_flight: Sequence[InFlight]) -> None:
        """Adopt `in_flight` now, or as soon as the engine answers (never raises for it)."""
        with self._lock:
            self._asked = True
            for item in in_flight:
                self._pending.setdefault(item.spec.task_id, item)
        self.retry()

    def retry(self) -> None:
        """Adopt what is pending, if the engine answers (else it stays pending)."""
        with self._lock:
            if not self._asked or (not self._pending and self._strays_removed):
                return
            try:
                found = self._find()
            except ENGINE_GONE as error:
                if isinstance(error, UNREACHABLE):  # else the connection knows why already
                    self._connection.mark_down(error)
                log.warning("recovery waits for the %s: %s", self._connection.what, error)
                return
            self._connection.mark_up()
            items, self._pending = list(self._pending.values()), {}
            by_task = self._pick(found)
            for item in items:
                if not self._attempts.known(item.spec.task_id):
                    self._adopt(item, by_task.get(item.spec.task_id))
            if not self._strays_removed:
                self._strays_removed = True
                self._remove_strays(found, {item.spec.task_id for item in items})
