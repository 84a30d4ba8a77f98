"""Parameters, outputs and mounts end to end: a live service running real containers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from docker.errors import APIError

from app.cli_client import register
from tests.scheduler.test_e2e import definition, task, tasks_of
from tests.support.live import LiveService, live_service, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).parents[2] / "examples" / "etl.yaml"
EXAMPLE_VOLUME = "gnomon-etl-example"
# Publish output NAME=VALUE from a busybox container: one metadata entry `output.NAME`.
PUBLISH = (
    'publish() { wget -q -O /dev/null --header "Authorization: Bearer $GNOMON_TASK_TOKEN"'
    ' --header "Content-Type: application/json"'
    ' --post-data "[{\\"metadata_entry_id\\": \\"$(cat /proc/sys/kernel/random/uuid)\\",'
    ' \\"when\\": \\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\", \\"key\\": \\"output.$1\\",'
    ' \\"value\\": \\"$2\\"}]" "$GNOMON_URL/api/tasks/$GNOMON_TASK_ID/metadata"; };'
)


@pytest.fixture
def service(busybox_image: str, database_url: str) -> Iterator[LiveService]:
    """A live service running real containers with host networking."""
    with live_service(database_url, KILL_GRACE_SECONDS=1) as live:
        yield live


def messages(attempt: dict[str, Any]) -> list[str]:
    """The stored log messages of an attempt."""
    return [entry["message"] for entry in attempt["log_entries"]]


def test_the_third_task_prints_what_the_first_computed(service: LiveService) -> None:
    body = definition(
        "chain-outputs",
        task("first", PUBLISH + ' publish answer "$(expr 6 \\* 7)"'),
        task("second", "echo passing through", "first"),
        task("third", 'echo "the answer is $GNOMON_INPUT_FIRST_ANSWER"', "second"),
    )
    service.put_definition(body)
    run = service.wait_run(service.trigger("chain-outputs"))
    assert run["status"] == "succeeded", run
    attempts = {name: found[-1] for name, found in tasks_of(run).items()}
    assert messages(attempts["third"]) == ["the answer is 42"]
    assert attempts["first"]["outputs"] == {"answer": "42"}


@pytest.fixture
def example_volume(docker_client: Any) -> Iterator[str]:
    """The example's named volume, removed after the test."""
    yield EXAMPLE_VOLUME
    wait_for(lambda: _volume_removed(docker_client), 30, f"volume {EXAMPLE_VOLUME} removed")


def _volume_removed(docker_client: Any) -> bool:
    """Remove the example's volume; False while a container still holds it."""
    try:
        for volume in docker_client.volumes.list(filters={"name": EXAMPLE_VOLUME}):
            volume.remove()
    except APIError as error:
        if error.status_code == 409:
            return False
        raise
    return True


def test_the_example_definition_applies_and_runs(service: LiveService, example_volume: str) -> None:
    gnomon = click.Group("gnomon")
    register(gnomon)
    runner = CliRunner()
    env = {"GNOMON_URL": service.url}
    applied = runner.invoke(gnomon, ["apply", "-f", str(EXAMPLE)], env=env)
    assert applied.exit_code == 0, applied.output
    again = runner.invoke(gnomon, ["apply", "-f", str(EXAMPLE)], env=env)
    assert "unchanged" in again.output, again.output
    args = ["trigger", "etl-example", "-p", "day=2024-03-10", "--wait", "--json"]
    triggered = runner.invoke(gnomon, args, env=env)
    assert triggered.exit_code == 0, triggered.output
    run = service.run(json.loads(triggered.output)["process_id"])
    assert run["parameters"] == {"day": "2024-03-10"}
    attempts = {name: found[-1] for name, found in tasks_of(run).items()}
    assert attempts["count"]["outputs"] == {"rows": "3"}
    assert messages(attempts["report"]) == ["2024-03-10: 3 rows"]
