"""A one-node Docker Swarm on loopback for tests, made only when the engine is in none."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


def swarm_state() -> str:
    """The engine's swarm state: `inactive`, `active`, `pending`, `error` or `locked`."""
    result = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


@contextmanager
def one_node_swarm() -> Iterator[bool]:
    """Make this engine a one-node swarm on 127.0.0.1 unless it is in one; leave it after.

    Yields whether this call made the swarm (and so will leave it). Plain containers
    are unaffected by swarm mode, so other Docker tests may run meanwhile.
    """
    state = swarm_state()
    if state not in ("inactive", "active"):
        raise RuntimeError(f"the engine's swarm state is {state!r}; refusing to touch it")
    made = state == "inactive"
    if made:
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1",
             "--listen-addr", "127.0.0.1:2377"],
            capture_output=True,
            check=True,
            timeout=60,
        )
    try:
        yield made
    finally:
        if made:
            subprocess.run(
                ["docker", "swarm", "leave", "--force"], capture_output=True, check=True, timeout=60
            )
