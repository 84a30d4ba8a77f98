"""Telling the listener what happened, again and again until it has been told.

The listener stores what it hears (in a database that can be locked or down):
an outcome, a start or a batch of output that it could not store is offered
again with a growing pause, until it is stored or the executor closes. Nothing
here knows which container backend is in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from executor.base import ExecutorListener

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0


class Reporter:
    """Calls the listener; a failed call is retried with backoff until it works or we close."""

    def __init__(
        self,
        closing: threading.Event,
        first_retry: float = FIRST_RETRY_SECONDS,
        last_retry: float = LAST_RETRY_SECONDS,
    ) -> None:
        self._closing = closing
        self._first_retry = first_retry
        self._last_retry = last_retry
        self.listener: ExecutorListener | None = None

    def tell(self, what: str, call: Callable[[ExecutorListener], None]) -> bool:
        """Make `call` on the listener until it returns; False if the executor closed first."""
        delay = self._first_retry
        failures = 0
        while True:
            try:
                call(self.listener)  # type: ignore[arg-type]
            except Exception:
                failures += 1
                if failures == 1:
                    log.exception("the listener failed to take %s; retrying", what)
                else:
                    log.warning("the listener failed to take %s (%d tries)", what, failures)
            else:
                if failures:
                    log.info("the listener took %s after %d failures", what, failures)
                return True
            if self._closing.wait(delay):
                log.warning("closing: gave up telling the listener %s", what)
                return False
            delay = min(delay * 2, self._last_retry)
