"""Fixtures shared by every test: databases, the Docker Engine and its test image, a leak guard."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import Database

from scheduler.database import migrate, open_database
from tests.support import browser, leaks
from tests.support.images import TEST_IMAGE, TEST_TAG, build_test_image
from tests.support.postgres import PostgresServer, PostgresUnavailable, find_bin_dir, start_server
from tests.support.swarm import one_node_swarm

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

_postgres_skip_reason: list[str] = []


def in_ci() -> bool:
    """Whether we run in CI, where a missing dependency fails instead of skipping."""
    return os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    """Tolerate one known warning until its source is fixed."""
    # scheduler/database.py passes peewee 4's ignored `autorollback` option; drop this line
    # once it no longer does (the option is a no-op: peewee 4 always runs in autocommit mode).
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Peewee no longer uses the .autorollback. option:DeprecationWarning",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say up front which PostgreSQL the postgresql-parametrized tests will use."""
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return [f"postgresql: server binaries in {bin_dir}"]
    outcome = "FAIL (CI=true)" if in_ci() else "be SKIPPED"
    return [f"postgresql: initdb/pg_ctl not found; postgresql-parametrized tests will {outcome}"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat at the end why PostgreSQL tests were skipped, so it is never silent; name the
    folder of the browser tests' screenshots."""
    if browser.saved:
        terminalreporter.write_line(
            f"console screenshots ({len(browser.saved)}): {browser.saved[0].parent}"
        )
    for reason in _postgres_skip_reason:
        terminalreporter.write_sep("=", "PostgreSQL tests were skipped", yellow=True)
        terminalreporter.write_line(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session, on a free loopback port."""
    try:
        server = start_server()
    except PostgresUnavailable as error:
        reason = str(error)
    else:
        yield server
        server.stop()
        return
    if in_ci() or find_bin_dir() is not None:
        pytest.fail(f"PostgreSQL is required but unavailable: {reason}", pytrace=False)
    _postgres_skip_reason[:] = [reason]
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> str:
    """The name of the one PostgreSQL database the tests share, emptied before each use."""
    return postgres_server.create_database()


@pytest.fixture
def own_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database of its own (for processes that outlive a reset), dropped after."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind under test: `sqlite` or `postgresql`."""
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database: a new SQLite file, or the shared PostgreSQL one, reset."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'gnomon.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name: str = request.getfixturevalue("postgres_database")
    server.reset_database(name)  # ~15 ms; a CREATE DATABASE costs ~300 ms
    return server.url(name)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The database at `database_url`, migrated and bound to `scheduler.models.db`."""
    db = open_database(database_url)
    migrate(db)
    yield db
    db.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any | None]:
    """A Docker client when an engine is reachable, else None."""
    client = leaks.docker_client()
    yield client
    if client is not None:
        client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any | None) -> str:
    """`gnomon-test/busybox:latest`, built (once) by tests/images/build_busybox.sh."""
    if docker_client is None:
        if in_ci():
            pytest.fail("the Docker Engine is required in CI but unreachable", pytrace=False)
        pytest.skip("no Docker Engine reachable")
    problem = build_test_image()
    if problem is not None:
        pytest.fail(f"building the test image failed:\n{problem}", pytrace=False)
    return f"{TEST_IMAGE}:{TEST_TAG}"


@pytest.fixture(scope="session")
def swarm(busybox_image: str) -> Iterator[None]:
    """This engine as a one-node swarm on 127.0.0.1 for the session, left again afterwards.

    The swarm is made only when the engine is in none, and only then left.
    """
    with one_node_swarm():
        yield


@pytest.fixture(autouse=True)
def leak_detector(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves non-daemon threads or task containers or services behind."""
    threads_before = leaks.live_threads()
    client = None
    if request.node.get_closest_marker("docker"):
        client = request.getfixturevalue("docker_client")
    containers_before = leaks.task_container_ids(client) if client else set()
    swarm = client is not None and request.node.get_closest_marker("swarm") is not None
    if swarm:
        request.getfixturevalue("swarm")
    services_before = leaks.task_service_ids(client) if swarm else set()
    yield
    problems = []
    if client is not None:
        left = leaks.task_container_ids(client) - containers_before
        leaks.remove_containers(client, left)
        if left:
            problems.append(f"left {len(left)} task container(s) behind (now removed)")
    if swarm:
        services = leaks.task_service_ids(client) - services_before
        leaks.remove_services(client, services)
        if services:
            problems.append(f"left {len(services)} task service(s) behind (now removed)")
    threads = leaks.leaked_threads(threads_before)
    if threads:
        problems.append(f"left non-daemon threads running: {[t.name for t in threads]}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
