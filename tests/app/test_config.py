"""Settings: defaults, environment, test mapping, and sentences for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import SETTINGS, ConfigError, defaults, markdown_table, validate
from tests.app.conftest import api_config


def test_defaults_are_valid_and_derive_public_url() -> None:
    values = validate(defaults())
    assert values["DATABASE_URL"] == "sqlite:///var/gnomon.db"
    assert values["PUBLIC_URL"] == "http://127.0.0.1:8080"
    assert values["MAX_RECORDS_DEFAULT"] == 100
    assert values["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_every_setting_is_documented() -> None:
    for setting in SETTINGS:
        assert setting.description.strip(), setting.key
        assert setting.env_var == f"GNOMON_{setting.key}"


def test_problems_are_sentences_naming_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"PORT": "http", "EXECUTOR": "kubernetes", "KEEP_FAILED_CONTAINERS": "maybe"})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any(p.startswith("PORT (env GNOMON_PORT) must be a whole number") for p in problems)
    assert any("EXECUTOR" in p and "docker, fake" in p for p in problems)
    assert all(p.endswith(".") for p in problems)


def test_strings_are_converted() -> None:
    values = validate({"PORT": "9000", "SCHEDULER_ENABLED": "false", "TICK_SECONDS": "2"})
    assert (values["PORT"], values["SCHEDULER_ENABLED"], values["TICK_SECONDS"]) == (
        9000,
        False,
        2.0,
    )


def test_environment_then_mapping(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNOMON_MAX_RECORDS_DEFAULT", "7")
    monkeypatch.setenv("GNOMON_INSTANCE", "from-env")
    app = create_app(api_config(database_url, INSTANCE="from-mapping"))
    assert app.config["MAX_RECORDS_DEFAULT"] == 7
    assert app.config["INSTANCE"] == "from-mapping"


def test_bad_environment_fails_create_app(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GNOMON_MAX_RUNNING_CONTAINERS", "0")
    with pytest.raises(ConfigError, match="MAX_RUNNING_CONTAINERS"):
        create_app(api_config(database_url))


def test_markdown_table_lists_every_setting() -> None:
    table = markdown_table()
    assert table.count("\n") == len(SETTINGS) + 2
    assert "| `GNOMON_MAX_RECORDS_DEFAULT` | `100` |" in table
    assert "| `GNOMON_PUBLIC_URL` | (empty) |" in table


def test_the_readme_shows_the_settings_table_as_generated() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "\n" + markdown_table() + "\n<!-- END CONFIGURATION TABLE -->" in readme


def test_docker_log_max_size_is_a_size_or_empty() -> None:
    assert validate({"DOCKER_LOG_MAX_SIZE": "128m"})["DOCKER_LOG_MAX_SIZE"] == "128m"
    assert validate({"DOCKER_LOG_MAX_SIZE": ""})["DOCKER_LOG_MAX_SIZE"] == ""
    with pytest.raises(ConfigError) as caught:
        validate({"DOCKER_LOG_MAX_SIZE": "lots"})
    (problem,) = caught.value.problems
    assert problem.startswith("DOCKER_LOG_MAX_SIZE (env GNOMON_DOCKER_LOG_MAX_SIZE) must be")
    with pytest.raises(ConfigError, match="DOCKER_LOG_MAX_SIZE"):
        validate({"DOCKER_LOG_MAX_SIZE": "0m"})


def test_serve_connections_has_a_floor() -> None:
    assert validate(defaults())["SERVE_CONNECTIONS"] == 500
    with pytest.raises(ConfigError, match=r"SERVE_CONNECTIONS \(env GNOMON_SERVE_CONNECTIONS\) "):
        validate({"SERVE_CONNECTIONS": "5"})
