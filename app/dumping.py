"""Fast dumping of the response schemas: a history page holds thousands of objects.

`marshmallow`'s `Schema.dump` spends a few microseconds per field, which dominates a
`GET /api/processes` page of 100 runs with their attempts and log entries. `dumper`
compiles a response schema once into a plain function giving the same output; the
schemas stay the one description of the wire (and of the OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, missing

from app.schemas import UTCDateTime

Convert = Callable[[Any], Any]


def dumper(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    """A function equal to `schema.dump(obj)` for objects that have each field's attribute.

    A field with a `dump_default` may lack its attribute; then the default is dumped.
    The function is written out as one dict display (`{"key": convert(obj.attr), ...}`)
    and compiled: a page dumps thousands of objects, and a loop over the fields costs
    half again as much.
    """
    names: dict[str, Any] = {}
    items = []
    for i, (name, field) in enumerate(schema.dump_fields.items()):
        attribute, default = field.attribute or name, _default(field)
        value = f"obj.{attribute}"
        if default is not None or not attribute.isidentifier():
            names[f"get_{i}"] = _getter(attribute, default)
            value = f"get_{i}(obj)"
        convert = _converter(field)
        if convert is not _same:
            names[f"convert_{i}"] = convert
            value = f"convert_{i}({value})"
        items.append(f"{field.data_key or name!r}: {value}")
    exec(f"def dump(obj):\n    return {{{', '.join(items)}}}", names)
    return names["dump"]


def _getter(attribute: str, default: Callable[[], Any] | None) -> Convert:
    """A function giving an object's `attribute`, or `default()` if it has none."""

    def get(obj: Any) -> Any:
        if default is None:
            return getattr(obj, attribute)
        value = getattr(obj, attribute, missing)
        return default() if value is missing else value

    return get


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
        return _utc_text
    if isinstance(field, fields.UUID):
        return lambda value: None if value is None else str(value)
    if isinstance(field, fields.String | fields.Integer | fields.Dict):  # dicts: of strings
        return _same
    raise TypeError(f"dumper cannot convert a {type(field).__name__} field")


def _utc_text(value: datetime | None) -> str | None:
    """`UTCDateTime`'s wire form of a time, without converting one that is in UTC already."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def _same(value: Any) -> Any:
    """Strings, integers and maps of strings are their own wire form."""
    return value
