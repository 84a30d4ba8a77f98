"""Whether to pull a task's image before creating its container: the pull policy, and a memo
that pulls each image at most once per interval (50 tasks on one `latest` image pull once).

Engine-agnostic: a backend asks `PullMemo.refresh_due` before creating a container.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The wire values of definitions.PullPolicy (executor may not import definitions).
ALWAYS, IF_NOT_PRESENT, NEVER = "always", "if_not_present", "never"


def effective_policy(tag: str, policy: str | None) -> str:
    """The policy that applies: the task's own, else `always` for `latest`, else
    `if_not_present` (a pinned tag does not change)."""
    if policy is not None:
        return policy
    return ALWAYS if tag == "latest" else IF_NOT_PRESENT


class PullMemo:
    """When each image was last pulled (or tried), shared by every attempt of one backend."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def refresh_due(
        self, image_ref: str, tag: str, policy: str | None, from_registry: Callable[[], bool]
    ) -> bool:
        """Whether to pull `image_ref` now, even though a local copy may exist.

        Only under `always`, once per interval per image. By default (no policy given)
        a `latest` image that was built or loaded locally (`from_registry()` is False) is
        left alone: there is nowhere to refresh it from.
        """
        if effective_policy(tag, policy) != ALWAYS:
            return False
        if policy is None and not from_registry():
            return False
        return self.claim(image_ref)

    def claim(self, image_ref: str) -> bool:
        """True for the first caller per interval and image; it then pulls."""
        now = self._clock()
        with self._lock:
            last = self._last.get(image_ref)
            if last is not None and now - last < self._interval:
                return False
            self._last[image_ref] = now
            return True
