"""Container options: the host-safety rules for mounts, and each option in `docker inspect`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError

from executor.base import Ending
from executor.container_options import (
    ContainerOptions,
    MountSpec,
    docker_arguments,
    mount_problem,
    options_problem,
)
from executor.docker import DockerExecutor
from tests.executor.support import RecordingListener, make_spec, wait_for


def bind(source: str | Path, target: str = "/data") -> MountSpec:
    """A read-only bind mount of `source`."""
    return MountSpec("bind", str(source), target)


def test_a_named_volume_is_always_allowed() -> None:
    assert mount_problem(MountSpec("volume", "cache", "/cache"), ()) is None


def test_a_bind_mount_needs_an_allow_list(tmp_path: Path) -> None:
    problem = mount_problem(bind(tmp_path), ())
    assert problem == f"host path {tmp_path} is not under GNOMON_ALLOWED_BIND_PATHS " + (
        "(none are allowed)"
    )


def test_a_bind_mount_under_an_allowed_directory_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    assert mount_problem(bind(tmp_path / "in"), [str(tmp_path)]) is None
    assert mount_problem(bind(tmp_path), [str(tmp_path)]) is None


def test_a_sibling_with_the_allowed_prefix_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data-secret").mkdir()
    problem = mount_problem(bind(tmp_path / "data-secret"), [str(tmp_path / "data")])
    assert problem is not None and "not under GNOMON_ALLOWED_BIND_PATHS" in problem


def test_a_symlink_out_of_the_allowed_directory_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "etc").symlink_to("/etc")
    problem = mount_problem(bind(allowed / "etc"), [str(allowed)])
    assert problem == (f"host path /etc is not under GNOMON_ALLOWED_BIND_PATHS ({allowed})")


def test_dot_dot_is_resolved_before_the_check(tmp_path: Path) -> None:
    (tmp_path / "allowed").mkdir()
    problem = mount_problem(bind(f"{tmp_path}/allowed/../.."), [str(tmp_path / "allowed")])
    assert problem is not None and str(tmp_path.parent) in problem


@pytest.mark.parametrize(
    "source", ["/var/run/docker.sock", "/run/docker.sock", "/run", "/var/run", "/", "/var"]
)
def test_the_docker_socket_and_its_directories_are_never_mounted(source: str) -> None:
    problem = mount_problem(bind(source), ["/"])
    assert problem == "the Docker socket (or a directory holding it) is never mounted into a task"


def test_a_symlink_to_the_docker_socket_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sock").symlink_to("/var/run/docker.sock")
    problem = mount_problem(bind(tmp_path / "sock"), [str(tmp_path)])
    assert problem is not None and "Docker socket" in problem


def test_options_problem_names_the_first_refused_mount(tmp_path: Path) -> None:
    options = ContainerOptions(mounts=(MountSpec("volume", "v", "/v"), bind("/etc")))
    assert options_problem(options, [str(tmp_path)]) == (
        1,
        f"host path /etc is not under GNOMON_ALLOWED_BIND_PATHS ({tmp_path})",
    )


def test_gnomon_labels_win_over_the_tasks() -> None:
    options = ContainerOptions(labels={"gnomon.task_id": "forged", "team": "data"})
    create, _ = docker_arguments(options, "bridge", {"gnomon.task_id": "real"})
    assert create["labels"] == {"gnomon.task_id": "real", "team": "data"}


def test_default_options_ask_nothing_of_the_engine() -> None:
    create, host = docker_arguments(ContainerOptions(), "bridge", {})
    assert create == {"labels": {}}
    assert host == {"network_mode": "bridge", "mounts": None, "read_only": False, "cap_drop": None}


# ------------------------------------------------------------------ the real engine


@pytest.fixture
def volume(docker_client: Any) -> Iterator[str]:
    """The name of a Docker volume private to this test, removed afterwards."""
    name = f"gnomon-test-{uuid.uuid4().hex[:12]}"
    yield name
    wait_for(lambda: _removed(docker_client, name), 30, f"volume {name} to be removable")


def _removed(docker_client: Any, name: str) -> bool:
    """Remove volume `name` if it exists; False while a container still uses it."""
    try:
        for found in docker_client.volumes.list(filters={"name": name}):
            found.remove()
    except APIError as error:
        if error.status_code == 409:  # in use: its container's removal follows its outcome
            return False
        raise
    return True


@pytest.mark.docker
def test_every_option_is_visible_in_inspect(
    make_executor: Callable[..., DockerExecutor],
    listener: RecordingListener,
    docker_client: Any,
    tmp_path: Path,
    volume: str,
) -> None:
    host_dir = tmp_path / "in"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("from the host\n")
    os.chmod(host_dir, 0o755)
    options = ContainerOptions(
        mounts=(bind(host_dir, "/in"), MountSpec("volume", volume, "/out", read_only=False)),
        user="1234:1234",
        working_dir="/out",
        entrypoint=("/bin/sh", "-c"),
        labels={"team": "data", "gnomon.task_id": "forged"},
        network="none",
        shm_size_mib=16,
        read_only=True,
        cap_drop=("NET_RAW", "CHOWN"),
    )
    script = (
        "cat /in/hello.txt; id -u; pwd;"
        " touch /in/x 2>/dev/null && echo in-writable || echo in-read-only;"
        " touch /etc/x 2>/dev/null && echo root-writable || echo root-read-only;"
        " exec sleep 300"
    )
    executor = make_executor(kill_grace_seconds=0, network_mode="host")
    spec = make_spec([script], options=options)
    executor.start(spec)
    (_, _, container_id), *_ = wait_for(lambda: listener.starts(spec.task_id))
    info = docker_client.api.inspect_container(container_id)
    config, host = info["Config"], info["HostConfig"]
    assert config["User"] == "1234:1234"
    assert config["WorkingDir"] == "/out"
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Labels"]["team"] == "data"
    assert config["Labels"]["gnomon.task_id"] == spec.task_id
    assert host["NetworkMode"] == "none"
    assert host["ShmSize"] == 16 * 1024 * 1024
    assert host["ReadonlyRootfs"] is True
    assert {name.removeprefix("CAP_") for name in host["CapDrop"]} == {"CHOWN", "NET_RAW"}
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert (mounts["/in"]["Type"], mounts["/in"]["Source"], mounts["/in"]["RW"]) == (
        "bind",
        str(host_dir),
        False,
    )
    assert (mounts["/out"]["Type"], mounts["/out"]["Name"], mounts["/out"]["RW"]) == (
        "volume",
        volume,
        True,
    )
    expected = ["from the host", "1234", "/out", "in-read-only", "root-read-only"]
    wait_for(lambda: listener.messages(spec.task_id, "stdout") == expected, what="the output")
    executor.kill(spec.task_id, "killed: run was killed")
    assert listener.wait_outcome(spec.task_id).ending == Ending.KILLED
