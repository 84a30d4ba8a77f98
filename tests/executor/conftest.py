"""Fixtures for executor tests: executors on a private instance, and a recording listener.

`busybox_image`, `docker_client` and the guard against leaked containers and
threads are shared by every test package, in tests/conftest.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from executor.docker import DockerExecutor, DockerSettings
from tests.executor.support import RecordingListener
from tests.support.leaks import session_instance


@pytest.fixture
def instance() -> str:
    """A `gnomon.instance` label value private to this test."""
    return session_instance()


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


@pytest.fixture
def hung_registry() -> Iterator[str]:
    """A loopback port that accepts connections and never answers; its `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        yield f"127.0.0.1:{hung.getsockname()[1]}"
