"""Container options over the API: what a definition may ask for, and each refusal's 400."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.app.conftest import fake, gnomon_of, task

URL = "/api/process_definitions"
COMMAND = "task_definitions.0.executable.docker_image_command"
NOT_ROOT = "privileged containers are never allowed: a task must not be root on the host"
SOCKET = "the Docker socket (or a directory holding it) is never mounted into a task"


def with_options(**options: Any) -> dict[str, Any]:
    """A one-task definition (no schedule) whose command has `options`."""
    one = task("main")
    one["executable"]["docker_image_command"].update(options)
    return {"process_definition_name": "opts", "task_definitions": [one]}


def put(client: FlaskClient, body: dict[str, Any]) -> Any:
    """PUT `body` as definition `opts`."""
    return client.put(f"{URL}/opts", json=body)


def problems(response: Any) -> dict[str, list[str]]:
    """The field-level problems of a 400 answer."""
    assert response.status_code == 400, response.get_json()
    return response.get_json()["details"]["fields"]


ALL_OPTIONS: dict[str, Any] = {
    "mounts": [
        {"type": "volume", "source": "etl-cache", "target": "/cache", "read_only": False},
        {"type": "volume", "source": "reference", "target": "/ref"},
    ],
    "user": "1000:1000",
    "working_dir": "/cache",
    "entrypoint": ["/bin/sh", "-c"],
    "labels": {"team": "data", "cost-centre/id": "42"},
    "network": "none",
    "shm_size": 64,
    "read_only": True,
    "cap_drop": ["ALL"],
}


def test_every_option_is_stored_and_reaches_the_spec(app: Flask, client: FlaskClient) -> None:
    response = put(client, with_options(**ALL_OPTIONS))
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()["task_definitions"][0]["executable"]["docker_image_command"]
    expected = {**ALL_OPTIONS, "mounts": [ALL_OPTIONS["mounts"][0], {
        "type": "volume", "source": "reference", "target": "/ref"}]}  # fmt: skip
    assert {key: stored[key] for key in ALL_OPTIONS} == expected
    assert client.post(f"{URL}/opts/trigger").status_code == 204
    state = gnomon_of(app)
    with state.database.connection_context():
        state.scheduler.engine.tick(datetime.now(UTC))
    [spec] = fake(app).starts
    options = spec.options
    assert [(m.type, m.source, m.target, m.read_only) for m in options.mounts] == [
        ("volume", "etl-cache", "/cache", False),
        ("volume", "reference", "/ref", True),
    ]
    assert (options.user, options.working_dir, options.entrypoint) == (
        "1000:1000", "/cache", ("/bin/sh", "-c"))  # fmt: skip
    assert (options.network, options.shm_size_mib, options.read_only, options.cap_drop) == (
        "none", 64, True, ("ALL",))  # fmt: skip
    assert options.labels == {"team": "data", "cost-centre/id": "42"}


@pytest.mark.parametrize(
    ("options", "field", "problem"),
    [
        pytest.param({"privileged": True}, "privileged", NOT_ROOT, id="privileged"),
        pytest.param({"privileged": False}, "privileged", NOT_ROOT, id="privileged_false"),
        pytest.param(
            {"cap_add": ["SYS_ADMIN"]},
            "cap_add",
            "adding capabilities is never allowed: a task may only drop them (cap_drop)",
            id="cap_add",
        ),
        pytest.param(
            {"labels": {"gnomon.task_id": "x"}},
            "labels.gnomon.task_id",
            "labels starting with 'gnomon.' are reserved",
            id="gnomon_label",
        ),
        pytest.param(
            {"network": "container:abc"},
            "network",
            "Must be a network name, bridge, host or none; 'container:' modes are refused.",
            id="container_network",
        ),
        pytest.param(
            {"mounts": [{"type": "bind", "source": "/srv/../etc", "target": "/data"}]},
            "mounts.0.source",
            "Must be an absolute host path without '..' segments.",
            id="dot_dot",
        ),
        pytest.param(
            {"mounts": [{"type": "bind", "source": "srv", "target": "/data"}]},
            "mounts.0.source",
            "Must be an absolute host path without '..' segments.",
            id="relative",
        ),
        pytest.param(
            {"mounts": [{"type": "volume", "source": "/srv", "target": "/data"}]},
            "mounts.0.source",
            "Must be a volume name (letters, digits, '_', '.', '-'); a host path needs 'bind'.",
            id="volume_path",
        ),
        pytest.param(
            {"mounts": [{"type": "tmpfs", "source": "x", "target": "/data"}]},
            "mounts.0.type",
            "Must be one of: volume, bind.",
            id="mount_type",
        ),
        pytest.param(
            {"working_dir": "relative"},
            "working_dir",
            "Must be an absolute path without '..' segments.",
            id="working_dir",
        ),
        pytest.param(
            {"cap_drop": ["net_raw"]}, "cap_drop.0", "Must be a capability name.", id="cap_drop"
        ),
        pytest.param(
            {"shm_size": 0},
            "shm_size",
            "Must be greater than or equal to 1 and less than or equal to 2147483647.",
            id="shm_size",
        ),
    ],
)
def test_refused_options_are_a_400_naming_the_field_and_rule(
    client: FlaskClient, options: dict[str, Any], field: str, problem: str
) -> None:
    assert problems(put(client, with_options(**options))) == {f"{COMMAND}.{field}": [problem]}
    assert client.get(f"{URL}/opts").status_code == 404


def bind(source: str | Path) -> dict[str, Any]:
    """Options with one bind mount of `source` at /data."""
    return with_options(mounts=[{"type": "bind", "source": str(source), "target": "/data"}])


def test_a_bind_mount_is_refused_without_an_allow_list(client: FlaskClient, tmp_path: Path) -> None:
    problem = f"host path {tmp_path} is not under GNOMON_ALLOWED_BIND_PATHS (none are allowed)"
    assert problems(put(client, bind(tmp_path))) == {f"{COMMAND}.mounts.0.source": [problem]}


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "/run"])
def test_the_docker_socket_is_refused_even_when_allowed(
    make_app: Callable[..., Flask], source: str
) -> None:
    client = make_app(ALLOWED_BIND_PATHS="/var/run,/run").test_client()
    assert problems(put(client, bind(source))) == {f"{COMMAND}.mounts.0.source": [SOCKET]}


def test_a_symlink_out_of_an_allowed_directory_is_refused(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    (tmp_path / "escape").symlink_to("/etc")
    client = make_app(ALLOWED_BIND_PATHS=str(tmp_path)).test_client()
    problem = f"host path /etc is not under GNOMON_ALLOWED_BIND_PATHS ({tmp_path})"
    assert problems(put(client, bind(tmp_path / "escape"))) == {
        f"{COMMAND}.mounts.0.source": [problem]
    }


def test_an_allowed_bind_is_checked_again_at_start(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    app = make_app(ALLOWED_BIND_PATHS=str(tmp_path))
    client = app.test_client()
    assert put(client, bind(data)).status_code == 201
    data.rmdir()
    data.symlink_to("/etc")  # the host changed after the PUT
    run_id = client.post(f"{URL}/opts/trigger").headers["Location"].rsplit("/", 1)[1]
    state = gnomon_of(app)
    with state.database.connection_context():
        state.scheduler.engine.tick(datetime.now(UTC))
    run = client.get(f"/api/processes/{run_id}").get_json()
    assert fake(app).starts == []
    assert run["status"] == "failed"
    assert run["task"][0]["reason"] == (
        f"refused: mounts.0: host path /etc is not under GNOMON_ALLOWED_BIND_PATHS ({tmp_path})"
    )


def test_the_allow_list_must_hold_absolute_paths(make_app: Callable[..., Flask]) -> None:
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="ALLOWED_BIND_PATHS"):
        make_app(ALLOWED_BIND_PATHS="/srv,relative")
