"""Whether the engine saw a container killed out of memory.

Under cgroup v2 the kernel's OOM kill and the container's exit reach the engine apart.
When the exit is handled first, the container's `State.OOMKilled` stays false for good,
but the engine logs its `oom` event all the same; so a SIGKILL nobody asked for is
checked against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from docker import APIClient


def oom_reported(
    api: APIClient,
    container_id: str,
    state: Mapping[str, Any],
    since: datetime | None,
    until: datetime,
) -> bool:
    """Whether `state` says so, or the engine logged an `oom` event for the container between
    `since` (a second before; None: as far back as it keeps events) and `until`."""
    if state.get("OOMKilled"):
        return True
    events = api.events(
        since=None if since is None else since.timestamp() - 1,
        until=until.timestamp(),
        filters={"container": container_id, "event": "oom"},
        decode=True,
    )
    try:
        return any(True for _ in events)
    finally:
        events.close()
