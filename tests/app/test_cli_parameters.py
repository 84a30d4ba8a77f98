"""`gnomon trigger -p key=value`: parsing the options (the live run is in test_run_inputs_e2e)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from app.cli_client import normalize, parse_parameters, register


def test_parameters_are_split_at_the_first_equals_sign() -> None:
    assert parse_parameters(["day=2024-03-10", "query=a=b", "empty="]) == {
        "day": "2024-03-10",
        "query": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize("value", ["day", "=x"])
def test_a_parameter_without_a_key_is_a_usage_error(value: str) -> None:
    gnomon = click.Group("gnomon")
    register(gnomon)
    result = CliRunner().invoke(
        gnomon, ["trigger", "etl", "-p", value], env={"GNOMON_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 2
    assert f"{value!r} is not key=value" in result.output


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        pytest.param({"read_only": True}, {}, id="mount_read_only_by_default"),
        pytest.param({"read_only": False}, {"read_only": False}, id="mount_writable"),
    ],
)
def test_a_mount_compares_equal_to_its_stored_form(
    written: dict[str, bool], stored: dict[str, bool]
) -> None:
    mount = {"type": "volume", "source": "v", "target": "/v"}
    command = {"image": "busybox", "command": ["true"], "read_only": False}
    wanted = {"mounts": [{**mount, **written}], **command}
    current = {"mounts": [{**mount, **stored}], "image": "busybox", "command": ["true"]}
    key = "docker_image_command"
    assert normalize(wanted, key) == normalize(current, key)
    assert normalize({**current, "read_only": True}, key) != normalize(current, key)
