"""A task's container options: the host-safety rules for mounts, and their engine arguments.

The options are engine-agnostic values on `AttemptSpec`. `mount_problem` says whether a
mount may be made on this host: a bind mount's host path must resolve (symlinks and `..`
followed) under an allowed directory, and never to the Docker socket or a directory that
holds it, since the socket is root on the host. `docker_arguments` turns the options into
the Docker Engine's create and host-config arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
BIND = "bind"


@dataclass(frozen=True)
class MountSpec:
    """A named volume (`type` volume) or host path (`type` bind) mounted at `target`."""

    type: str
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerOptions:
    """Per-task container options; the defaults leave the engine's own behaviour."""

    mounts: tuple[MountSpec, ...] = ()
    user: str | None = None
    working_dir: str | None = None
    entrypoint: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None
    shm_size_mib: int | None = None
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()


def mount_problem(mount: MountSpec, allowed: Sequence[str]) -> str | None:
    """Why `mount` may not be made on this host, or None; named volumes are always allowed."""
    if mount.type != BIND:
        return None
    resolved = os.path.realpath(mount.source)
    if any(_holds(resolved, socket) for socket in _sockets()):
        return "the Docker socket (or a directory holding it) is never mounted into a task"
    if not any(_holds(os.path.realpath(root), resolved) for root in allowed):
        roots = ", ".join(allowed) or "none are allowed"
        return f"host path {resolved} is not under GNOMON_ALLOWED_BIND_PATHS ({roots})"
    return None


def options_problem(options: ContainerOptions, allowed: Sequence[str]) -> tuple[int, str] | None:
    """The index and problem of the first mount of `options` refused on this host, or None."""
    for index, mount in enumerate(options.mounts):
        problem = mount_problem(mount, allowed)
        if problem is not None:
            return index, problem
    return None


def _sockets() -> set[str]:
    """The Docker socket paths, as written and as resolved on this host."""
    return {*DOCKER_SOCKETS, *(os.path.realpath(path) for path in DOCKER_SOCKETS)}


def _holds(directory: str, path: str) -> bool:
    """Whether `path` is `directory` or lies under it (both normalised)."""
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory if directory == "/" else directory + "/")


def docker_arguments(
    options: ContainerOptions, network_mode: str, labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The create-container and host-config arguments for `options`.

    `network_mode` is the instance's default; `labels` are Gnomon's own, which the
    task's labels never override.
    """
    create: dict[str, Any] = {"labels": {**options.labels, **labels}}
    for name in ("user", "working_dir"):
        if getattr(options, name) is not None:
            create[name] = getattr(options, name)
    if options.entrypoint is not None:
        create["entrypoint"] = list(options.entrypoint)
    host: dict[str, Any] = {
        "network_mode": options.network or network_mode,
        "mounts": [_engine_mount(mount) for mount in options.mounts] or None,
        "read_only": options.read_only,
        "cap_drop": list(options.cap_drop) or None,
    }
    if options.shm_size_mib is not None:
        host["shm_size"] = options.shm_size_mib * MIB
    return create, host


def _engine_mount(mount: MountSpec) -> dict[str, Any]:
    """A mount in the Engine API's form (what docker.types.Mount builds)."""
    return {
        "Type": mount.type,
        "Source": mount.source,
        "Target": mount.target,
        "ReadOnly": mount.read_only,
    }
