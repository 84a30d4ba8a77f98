"""A one-node Docker Swarm on loopback for tests, made only when the engine is in none.

Several test sessions (or a session and a benchmark) may share the engine: each
holds a shared lock on a file while it uses the swarm, and the last one out
leaves the swarm, but only a swarm that a session made (its node id is
recorded next to the locks). A swarm the engine was in before is never left.
"""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_INIT_LOCK = Path(tempfile.gettempdir()) / "gnomon-test-swarm.init.lock"  # joining or leaving
_USE_LOCK = Path(tempfile.gettempdir()) / "gnomon-test-swarm.use.lock"  # shared while in use
_MADE = Path(tempfile.gettempdir()) / "gnomon-test-swarm.node"  # the node id of a swarm we made


def _docker(*args: str) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def swarm_state() -> tuple[str, str]:
    """The engine's swarm state (`inactive`, `active`, ...) and its node id."""
    line = _docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}")
    state, _, node = line.partition(" ")
    return state, node.strip()


def _join() -> None:
    """Make a swarm if the engine is in none (call under the exclusive lock)."""
    state, _ = swarm_state()
    if state == "inactive":
        _docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        _MADE.write_text(swarm_state()[1])
    elif state != "active":
        raise RuntimeError(f"the engine's swarm state is {state!r}; refusing to touch it")


def _leave_if_ours() -> None:
    """Leave the swarm if a test session made it (call under the exclusive lock)."""
    state, node = swarm_state()
    if state == "active" and _MADE.exists() and _MADE.read_text() == node:
        _docker("swarm", "leave", "--force")
        _MADE.unlink()


@contextmanager
def one_node_swarm() -> Iterator[None]:
    """This engine as a swarm manager for the duration; a swarm made here is left after."""
    with open(_USE_LOCK, "a") as use:
        with open(_INIT_LOCK, "a") as init:
            fcntl.flock(init, fcntl.LOCK_EX)
            _join()
            fcntl.flock(use, fcntl.LOCK_SH)  # others may use it too; none may leave it
        try:
            yield
        finally:
            with open(_INIT_LOCK, "a") as init:
                fcntl.flock(init, fcntl.LOCK_EX)
                try:
                    fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # another session still uses the swarm: it will leave it
                else:
                    _leave_if_ours()
