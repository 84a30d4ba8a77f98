"""SecretBox: sealing keeps unchanged values, opening fails clearly, never with the value."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from definitions import EnvironmentVariable
from scheduler.secrets import SecretBox, SecretUnavailable
from tests.scheduler.factories import make_definition, make_task

KEY, OTHER_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def sealed_variable(box: SecretBox, value: str) -> EnvironmentVariable:
    """`value` as a secret variable sealed by `box`."""
    variable = EnvironmentVariable("PW", value, secret=True)
    definition = box.seal(
        make_definition(make_task("main", environment_variables=[variable])), None
    )
    return definition.task("main").executable.environment_variables[0]


def test_a_sealed_value_opens_only_with_its_key() -> None:
    variable = sealed_variable(SecretBox(KEY), "s3cret")
    assert variable.value != "s3cret"
    assert SecretBox(KEY).environment((variable,), {}) == {"PW": "s3cret"}
    with pytest.raises(SecretUnavailable, match=r"^PW: GNOMON_SECRETS_KEY does not open it$"):
        SecretBox(OTHER_KEY).environment((variable,), {})
    with pytest.raises(SecretUnavailable, match="no GNOMON_SECRETS_KEY"):
        SecretBox(None).environment((variable,), {})


def test_without_strict_an_unavailable_value_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    variables = (
        sealed_variable(SecretBox(KEY), "s3cret"),
        EnvironmentVariable("MODE", "fast"),
        EnvironmentVariable("URL", value_from_env="GNOMON_TEST_NOT_SET"),
    )
    assert SecretBox(OTHER_KEY).environment(variables, {}, strict=False) == {"MODE": "fast"}
    assert "GNOMON_TEST_NOT_SET" in caplog.text and "s3cret" not in caplog.text
