"""Tests for definitions.errors: flattening marshmallow messages into dotted paths."""

import pytest

from definitions import DefinitionError
from definitions.errors import flatten_messages


@pytest.mark.parametrize(
    ("messages", "flat"),
    [
        pytest.param({"name": ["Bad."]}, [("name", "Bad.")], id="one_field"),
        pytest.param(
            {"task_definitions": {1: {"dependencies": {0: {"task_definition_name": ["X."]}}}}},
            [("task_definitions.1.dependencies.0.task_definition_name", "X.")],
            id="nested_lists",
        ),
        pytest.param(
            {"schedule": {"_schema": ["One."]}}, [("schedule", "One.")], id="schema_level"
        ),
        pytest.param(
            {"_schema": ["Invalid input type."]}, [("_schema", "Invalid input type.")], id="root"
        ),
        pytest.param({"a": ["1.", "2."]}, [("a", "1."), ("a", "2.")], id="two_messages"),
    ],
)
def test_flatten_messages(messages: object, flat: list[tuple[str, str]]) -> None:
    assert list(flatten_messages(messages)) == flat


def test_error_message_names_the_first_bad_field() -> None:
    error = DefinitionError.from_messages({"b": {"c": ["Too big."]}, "a": ["Missing."]})
    assert error.message == "b.c: Too big."
    assert error.fields == {"b.c": ["Too big."], "a": ["Missing."]}
    assert str(error) == error.message
