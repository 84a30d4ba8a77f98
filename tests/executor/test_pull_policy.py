"""Pull policies: the memo's logic, then the Docker backend against a registry on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from docker.errors import ImageNotFound

from executor import Ending
from executor.pull_policy import PullMemo, effective_policy
from tests.executor.registry import serve_image
from tests.executor.support import RecordingListener, make_spec
from tests.executor.test_docker_executor import MakeExecutor


@pytest.mark.parametrize(
    "tag, policy, expected",
    [
        ("latest", None, "always"),
        ("1.36", None, "if_not_present"),
        ("latest", "never", "never"),
        ("1.36", "always", "always"),
    ],
)
def test_the_default_policy_follows_the_tag(tag: str, policy: str | None, expected: str) -> None:
    assert effective_policy(tag, policy) == expected


def test_fifty_claims_on_one_image_pull_once_per_interval() -> None:
    now = [0.0]
    memo = PullMemo(300, clock=lambda: now[0])
    granted: list[bool] = []
    threads = [
        threading.Thread(target=lambda: granted.append(memo.claim("img:latest"))) for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 1
    assert memo.claim("other:latest")  # per image
    now[0] = 299.0
    assert not memo.claim("img:latest")
    now[0] = 300.0
    assert memo.claim("img:latest")


def test_a_locally_built_latest_is_not_refreshed_by_default() -> None:
    memo = PullMemo(300)
    assert not memo.refresh_due("local:latest", "latest", None, from_registry=lambda: False)
    assert memo.refresh_due("pulled:latest", "latest", None, from_registry=lambda: True)
    assert memo.refresh_due("local:latest", "latest", "always", from_registry=lambda: False)
    assert not memo.refresh_due("pinned:1.0", "1.0", None, from_registry=lambda: True)


@pytest.fixture
def registry_log() -> list[str]:
    """Manifest requests the registry answered."""
    return []


@pytest.fixture
def registry(busybox_image: str, docker_client: Any, registry_log: list[str]) -> Iterator[str]:
    """A registry on 127.0.0.1 serving the test image under any name; its `host:port`."""
    saved = b"".join(docker_client.api.get_image(busybox_image))
    with serve_image(saved, registry_log) as host:
        yield host


@pytest.fixture
def pulled(registry: str, docker_client: Any, registry_log: list[str]) -> Iterator[str]:
    """An image reference `<registry>/gnomon-test/fresh-<uuid>:latest`, pulled once already."""
    image = f"{registry}/gnomon-test/fresh-{uuid.uuid4().hex[:12]}"
    docker_client.api.pull(image, tag="latest")
    registry_log.clear()
    yield image
    with contextlib.suppress(ImageNotFound):
        docker_client.api.remove_image(f"{image}:latest", force=True)


@pytest.mark.docker
def test_ten_attempts_on_one_latest_image_pull_it_once(
    make_executor: MakeExecutor, listener: RecordingListener, pulled: str, registry_log: list[str]
) -> None:
    executor = make_executor()
    specs = [make_spec(["true"], image=pulled, tag="latest") for _ in range(10)]
    for spec in specs:
        executor.start(spec)
    outcomes = [listener.wait_outcome(spec.task_id) for spec in specs]
    assert {(o.ending, o.exit_code) for o in outcomes} == {(Ending.EXITED, 0)}
    assert len(registry_log) == 1, registry_log
    notes = [n for spec in specs for n in listener.messages(spec.task_id, "gnomon")]
    assert notes.count(f"pulling {pulled}:latest (pull policy always)") == 1


@pytest.mark.docker
def test_a_pinned_tag_present_locally_is_not_pulled(
    make_executor: MakeExecutor, listener: RecordingListener, pulled: str, registry_log: list[str]
) -> None:
    executor = make_executor()
    spec = make_spec(["true"], image=pulled, tag="latest", pull_policy="if_not_present")
    executor.start(spec)
    assert listener.wait_outcome(spec.task_id).ending is Ending.EXITED
    assert registry_log == []


@pytest.mark.docker
def test_a_failed_pull_uses_the_local_copy_and_says_so(
    busybox_image: str,
    docker_client: Any,
    make_executor: MakeExecutor,
    listener: RecordingListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    saved = b"".join(docker_client.api.get_image(busybox_image))
    with serve_image(saved) as gone:
        image = f"{gone}/gnomon-test/stale-{uuid.uuid4().hex[:12]}"
        docker_client.api.pull(image, tag="latest")
    try:  # the registry is gone now
        executor = make_executor()
        spec = make_spec(["echo", "ran"], image=image, tag="latest")
        executor.start(spec)
        outcome = listener.wait_outcome(spec.task_id)
    finally:
        docker_client.api.remove_image(f"{image}:latest", force=True)
    assert (outcome.ending, outcome.exit_code) == (Ending.EXITED, 0)
    assert listener.messages(spec.task_id, "stdout") == ["ran"]
    notes = listener.messages(spec.task_id, "gnomon")
    assert any(n.endswith("; using the local copy") for n in notes), notes
    assert "using the local copy" in caplog.text


@pytest.mark.docker
def test_never_fails_a_missing_image_without_pulling(
    make_executor: MakeExecutor, listener: RecordingListener, registry: str, registry_log: list[str]
) -> None:
    executor = make_executor()
    spec = make_spec(
        ["true"], image=f"{registry}/gnomon-test/absent", tag="1.0", pull_policy="never"
    )
    executor.start(spec)
    outcome = listener.wait_outcome(spec.task_id)
    assert (outcome.ending, outcome.reason) == (
        Ending.IMAGE_NOT_FOUND,
        f"image not found: {spec.image_ref} (pull_policy never)",
    )
    assert registry_log == []
