"""Fixtures for executor tests: the busybox test image, executors on a private instance, guards."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executor.docker_executor import LABEL_INSTANCE, LABEL_TASK_ID, DockerExecutor, DockerSettings
from tests.executor.support import TEST_IMAGE, TEST_TAG, RecordingListener

BUILD_SCRIPT = Path(__file__).parents[1] / "images" / "build_busybox.sh"
# Every instance this session uses starts with this, so concurrent sessions never collide.
SESSION_PREFIX = f"gt{os.getpid()}"


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any | None) -> str:
    """`gnomon-test/busybox:latest`, built (once) by tests/images/build_busybox.sh."""
    if docker_client is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the Docker Engine is required in CI but unreachable", pytrace=False)
        pytest.skip("no Docker Engine reachable")
    result = subprocess.run(
        [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"building the test image failed:\n{result.stderr}", pytrace=False)
    return f"{TEST_IMAGE}:{TEST_TAG}"


@pytest.fixture
def instance() -> str:
    """A `gnomon.instance` label value private to this test."""
    return f"{SESSION_PREFIX}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def listener() -> RecordingListener:
    """A listener recording every call."""
    return RecordingListener()


@pytest.fixture
def make_executor(
    busybox_image: str, instance: str, listener: RecordingListener
) -> Iterator[Callable[..., DockerExecutor]]:
    """Factory: an opened DockerExecutor on this test's instance; closed after the test."""
    opened: list[DockerExecutor] = []

    def make(listener: RecordingListener = listener, **overrides: Any) -> DockerExecutor:
        settings = DockerSettings(**{"instance": instance, **overrides})
        executor = DockerExecutor(settings)
        executor.open(listener)
        opened.append(executor)
        return executor

    yield make
    for executor in opened:
        executor.close()


@pytest.fixture(autouse=True)
def container_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail (and clean up after) a docker test that leaves task containers of this session."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    client = request.getfixturevalue("docker_client")
    if client is None:
        yield
        return
    yield
    left = _session_containers(client)
    for container_id in left:
        client.api.remove_container(container_id, force=True, v=True)
    if left:
        pytest.fail(f"left {len(left)} task container(s) behind (now removed)", pytrace=False)


def _session_containers(client: Any) -> list[str]:
    found = client.api.containers(all=True, filters={"label": LABEL_TASK_ID})
    return [
        c["Id"]
        for c in found
        if c.get("Labels", {}).get(LABEL_INSTANCE, "").startswith(SESSION_PREFIX + "-")
    ]
