"""Tests for executor.base: what an AttemptSpec shows of itself."""

from __future__ import annotations

from executor import AttemptSpec, InFlight
from executor.base import REDACTED, redact_environment

ENVIRONMENT = {
    "GNOMON_TASK_TOKEN": "t0ken",
    "DB_PASSWORD": "hunter2",
    "aws_secret_access_key": "s3cret",
    "ApiKey": "k3y",
    "STAGE": "prod",
}


def test_secret_looking_names_are_redacted_case_insensitively() -> None:
    assert redact_environment(ENVIRONMENT) == {
        "GNOMON_TASK_TOKEN": REDACTED,
        "DB_PASSWORD": REDACTED,
        "aws_secret_access_key": REDACTED,
        "ApiKey": REDACTED,
        "STAGE": "prod",
    }


def test_the_repr_of_a_spec_hides_secret_values() -> None:
    spec = AttemptSpec("t", "p", "d", "main", 1, "busybox", "latest", ("true",), ENVIRONMENT)
    for text in (repr(spec), repr(InFlight(spec)), f"{spec}"):
        assert "STAGE': 'prod'" in text and "image='busybox'" in text
        for secret in ("t0ken", "hunter2", "s3cret", "k3y"):
            assert secret not in text
