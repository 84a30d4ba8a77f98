"""End to end: a real container reports through `gnomon-task`, and the `gnomon` commands show it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from app.cli_client import register
from tests.support.live import LiveService, live_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HELPER = Path(__file__).resolve().parents[2] / "app" / "helpers" / "gnomon-task"
# The busybox image has no copy of the helper: the task writes it from its environment.
SCRIPT = (
    'printf "%s" "$HELPER" > /tmp/gnomon-task && chmod +x /tmp/gnomon-task'
    ' && /tmp/gnomon-task log "hello from the helper"'
    " && /tmp/gnomon-task metadata rows 42"
    " && /tmp/gnomon-task succeed"
)


@pytest.fixture
def service(busybox_image: str, tmp_path: Path) -> Iterator[LiveService]:
    """A live service running real containers with host networking."""
    with live_service(f"sqlite:///{tmp_path / 'gnomon.db'}", KILL_GRACE_SECONDS=1) as live:
        yield live


def gnomon(url: str, *args: str) -> Result:
    """Run `gnomon ARGS` against the service at `url`."""
    group = click.Group("gnomon")
    register(group)
    return CliRunner().invoke(group, list(args), env={"GNOMON_URL": url})


def test_a_container_logs_sets_metadata_and_succeeds_through_the_helper(
    service: LiveService, busybox_image: str
) -> None:
    service.put_definition({
        "process_definition_name": "helped",
        "task_definitions": [{
            "task_definition_name": "main",
            "require_explicit_success": True,
            "executable": {"docker_image_command": {
                "image": busybox_image.split(":")[0], "command": ["sh", "-c", SCRIPT],
                "environment_variables": [
                    {"variable_name": "HELPER", "value": HELPER.read_text(encoding="utf-8")},
                ],
            }},
        }],
    })  # fmt: skip
    triggered = gnomon(service.url, "trigger", "helped", "--wait", "--json")
    assert triggered.exit_code == 0, triggered.output
    run = json.loads(triggered.stdout)
    (task,) = run["task"]
    assert task["status"] == "succeeded"
    assert [(m["key"], m["value"]) for m in task["metadata_entries"]] == [("rows", "42")]

    shown = gnomon(service.url, "run", run["process_id"])
    assert shown.exit_code == 0, shown.output
    assert any(line.split() == ["main", "1", "rows", "42"] for line in shown.stdout.splitlines())
    logs = gnomon(service.url, "logs", task["task_id"])
    assert "main: hello from the helper" in logs.stdout
