"""`gnomon token`: a new token on stdout, once, and the line that configures its digest."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from app.auth import Scope, digest, load_credentials
from app.cli_tokens import register
from app.config import validate


@pytest.fixture
def gnomon() -> click.Group:
    """A `gnomon` group holding the token commands."""
    group = click.Group("gnomon")
    register(group)
    return group


@pytest.mark.parametrize("scope", list(Scope))
def test_create_prints_the_token_and_the_entry_that_accepts_it(
    gnomon: click.Group, scope: Scope
) -> None:
    result = CliRunner().invoke(gnomon, ["token", "create", "ci-bot", "--scope", scope.value])
    assert result.exit_code == 0, result.output
    (token,) = result.stdout.splitlines()
    assert len(token) >= 43  # 32 random bytes
    assert token not in result.stderr
    assert "GNOMON_API_TOKENS_FILE" in result.stderr
    line = result.stderr.splitlines()[-1]
    accepted = load_credentials(validate({"API_TOKENS": line})).api_token(token)
    assert (accepted.name, accepted.scope) == ("ci-bot", scope)


def test_each_token_is_new(gnomon: click.Group) -> None:
    made = {
        CliRunner().invoke(gnomon, ["token", "create", "a", "--scope", "read"]).stdout
        for _ in range(3)
    }
    assert len(made) == 3


@pytest.mark.parametrize(
    "args",
    [["bad name", "--scope", "read"], ["anonymous", "--scope", "read"], ["ci"],
     ["ci", "--scope", "root"]],
)  # fmt: skip
def test_create_refuses_bad_names_and_scopes(gnomon: click.Group, args: list[str]) -> None:
    result = CliRunner().invoke(gnomon, ["token", "create", *args])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_metrics_prints_the_token_and_its_setting(gnomon: click.Group) -> None:
    result = CliRunner().invoke(gnomon, ["token", "metrics"])
    assert result.exit_code == 0, result.output
    (token,) = result.stdout.splitlines()
    setting = result.stderr.splitlines()[-1]
    assert setting == f"GNOMON_METRICS_TOKEN_SHA256={digest(token)}"
