"""Out of memory as the engine reports it: its events count when State.OOMKilled is false."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import docker
import pytest

from executor.oom import oom_reported
from tests.support.leaks import TASK_LABEL

pytestmark = pytest.mark.docker

HOG = ["sh", "-c", "x=a; while true; do x=$x$x; done"]


@pytest.fixture
def api(busybox_image: str) -> Iterator[docker.APIClient]:
    client = docker.APIClient()
    yield client
    client.close()


def ended(api: docker.APIClient, image: str, command: list[str], kill: bool) -> str:
    """A container of `image` run to its end (killed with SIGKILL if `kill`); its id."""
    host_config = api.create_host_config(mem_limit="6m", memswap_limit="6m")
    labels = {TASK_LABEL: "test-oom"}
    container = api.create_container(image, command, host_config=host_config, labels=labels)
    api.start(container)
    if kill:
        api.kill(container)
    assert api.wait(container, timeout=60)["StatusCode"] == 137
    return str(container["Id"])


def test_an_oom_event_counts_when_the_state_missed_it(
    api: docker.APIClient, busybox_image: str
) -> None:
    since = datetime.now(UTC)
    container = ended(api, busybox_image, HOG, kill=False)
    try:
        now = datetime.now(UTC)
        assert oom_reported(api, container, {"OOMKilled": False}, since, now)
        assert oom_reported(api, container, {"OOMKilled": True}, since, now)
    finally:
        api.remove_container(container, force=True)


def test_a_sigkill_is_not_out_of_memory(api: docker.APIClient, busybox_image: str) -> None:
    since = datetime.now(UTC)
    container = ended(api, busybox_image, ["sleep", "60"], kill=True)
    try:
        assert not oom_reported(api, container, {"OOMKilled": False}, since, datetime.now(UTC))
    finally:
        api.remove_container(container, force=True)
