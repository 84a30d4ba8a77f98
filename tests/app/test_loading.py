"""The compiled loader of callback bodies gives marshmallow's answer, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from app.loading import loader
from app.schemas import LogEntrySchema, MetadataEntrySchema

SCHEMA = LogEntrySchema()
LOAD = loader(SCHEMA, SCHEMA.make_entry)
ID = "8d7c4a8e-1f7b-4e43-9d55-4b8a4c1e2f10"


def entry() -> dict[str, Any]:
    """A valid posted log entry."""
    return {"log_entry_id": ID, "when": "2024-03-10T06:00:04Z", "source": "s", "message": "m"}


def marshmallow(items: list[Any]) -> Any:
    """What the schema itself makes of `items`: the entries, or the error messages."""
    try:
        return SCHEMA.load(items, many=True)
    except ValidationError as error:
        return error.messages


def compiled(items: list[Any]) -> Any:
    """What the compiled loader makes of `items`: the entries, or the error messages."""
    try:
        return LOAD(items)
    except ValidationError as error:
        return error.messages


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({}, id="plain"),
        pytest.param({"log_entry_id": ID.upper()}, id="upper_case_uuid"),
        pytest.param({"log_entry_id": "{" + ID + "}"}, id="braced_uuid"),
        pytest.param({"log_entry_id": "nope"}, id="bad_uuid"),
        pytest.param({"when": "2024-03-10T07:00:04+01:00"}, id="offset"),
        pytest.param({"when": "2024-02-31T00:00:00Z"}, id="bad_date"),
        pytest.param({"message": "a\x00b"}, id="nul"),
        pytest.param({"message": "\ud800"}, id="lone_surrogate"),
        pytest.param({"message": "café \u2713"}, id="non_ascii"),
        pytest.param({"message": "café \udc00"}, id="lone_surrogate_after_non_ascii"),
        pytest.param({"source": "é" * 256}, id="non_ascii_too_long"),
        pytest.param({"source": "s" * 256}, id="too_long"),
        pytest.param({"message": 5}, id="not_a_string"),
        pytest.param({"message": None}, id="null"),
        pytest.param({"extra": 1}, id="unknown_key"),
    ],
)
def test_compiled_loading_equals_the_schema_s(item: dict[str, Any]) -> None:
    items = [{**entry(), **item}, entry()]

    assert compiled(items) == marshmallow(items)


def test_missing_fields_and_non_objects_get_the_schema_s_errors() -> None:
    items: list[Any] = [{"log_entry_id": ID}, "text", entry()]

    assert compiled(items) == marshmallow(items)


def test_metadata_entries_load_the_same_way() -> None:
    schema = MetadataEntrySchema()
    items = [{"metadata_entry_id": ID, "when": "2024-03-10T06:00:04Z", "key": "k", "value": "v"}]

    assert loader(schema, schema.make_entry)(items) == schema.load(items, many=True)
