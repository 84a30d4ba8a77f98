"""Fast dumping of the response schemas: a history page holds thousands of objects.

`marshmallow`'s `Schema.dump` spends a few microseconds per field, which dominates a
`GET /api/processes` page of 100 runs with their attempts and log entries. `dumper`
compiles a response schema once into a plain function giving the same output; the
schemas stay the one description of the wire (and of the OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing

from app.schemas import UTCDateTime

Convert = Callable[[Any], Any]


def dumper(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    """A function equal to `schema.dump(obj)` for objects that have each field's attribute.

    A field with a `dump_default` may lack its attribute; then the default is dumped.
    """
    steps = [
        (field.data_key or name, field.attribute or name, _converter(field), _default(field))
        for name, field in schema.dump_fields.items()
    ]

    def dump(obj: Any) -> dict[str, Any]:
        return {
            key: convert(getattr(obj, attribute)) if default is None
            else convert(getattr(obj, attribute, default()))
            for key, attribute, convert, default in steps
        }  # fmt: skip

    return dump


def _default(field: fields.Field) -> Callable[[], Any] | None:
    """The field's `dump_default` as a function, or None if it has none."""
    value = field.dump_default
    if value is missing:
        return None
    return value if callable(value) else lambda: value


def _converter(field: fields.Field) -> Convert:
    """How one field turns an attribute value into its wire form."""
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        inner = dumper(field.inner.schema)
        return lambda values: [inner(value) for value in values]
    if isinstance(field, UTCDateTime):
        return lambda value: None if value is None else field._serialize(value, None, None)
    if isinstance(field, fields.UUID):
        return lambda value: None if value is None else str(value)
    if isinstance(field, fields.String | fields.Integer | fields.Dict):  # dicts: of strings
        return _same
    raise TypeError(f"dumper cannot convert a {type(field).__name__} field")


def _same(value: Any) -> Any:
    """Strings, integers and maps of strings are their own wire form."""
    return value
