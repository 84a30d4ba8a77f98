"""Fast loading of callback bodies: a task may post 1,000 log entries a request.

marshmallow's `Schema.load` spends ~30 µs per field, which made it the largest cost
of storing a task's log entries. `loader` compiles a schema of required fields into a
plain function for the common case, well-formed input; anything it does not accept at
once (an error, an unknown key, a UUID in an unusual spelling) is loaded again by the
schema itself, so the answer, errors included, is always marshmallow's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError, fields, validate

from app.schemas import NO_NUL, UTCDateTime
from definitions.fields import LONE_SURROGATE

T = TypeVar("T")
Check = Callable[[Any], Any]

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _NotPlain(Exception):
    """The input needs the schema's own loading (it may be invalid)."""


def loader(
    schema: Schema, make: Callable[[dict[str, Any]], T]
) -> Callable[[Sequence[Any]], list[T]]:
    """A function equal to `schema.load(items, many=True)` whose post_load is `make`.

    Every field of `schema` must be required, without a default.
    """
    steps = [
        (f.data_key or name, f.attribute or name, _check(f))
        for name, f in schema.load_fields.items()
    ]
    keys = {key for key, _, _ in steps}

    def load_plain(items: Sequence[Any]) -> list[T]:
        loaded = []
        for item in items:
            if type(item) is not dict or item.keys() != keys:
                raise _NotPlain
            loaded.append(make({attribute: check(item[key]) for key, attribute, check in steps}))
        return loaded

    def load(items: Sequence[Any]) -> list[T]:
        try:
            return load_plain(items)
        except _NotPlain:
            return schema.load(items, many=True)

    return load


def _check(field: fields.Field) -> Check:
    """How one field loads a plain value; raises _NotPlain for anything else."""
    if not field.required or field.allow_none:
        raise TypeError(f"loader needs required, non-null fields, not {field!r}")
    if isinstance(field, fields.UUID):
        return _canonical_uuid
    if isinstance(field, UTCDateTime):
        return _checked(lambda value: field._deserialize(value, None, None))
    if isinstance(field, fields.String):
        return _text(field)
    raise TypeError(f"loader cannot load a {type(field).__name__} field")


def _canonical_uuid(value: Any) -> str:
    """A UUID already in canonical lower-case form (others go to the schema)."""
    if type(value) is not str or not CANONICAL_UUID.fullmatch(value):
        raise _NotPlain
    return value


def _checked(convert: Check) -> Check:
    """`convert`, with its validation errors turned into _NotPlain."""

    def check(value: Any) -> Any:
        try:
            return convert(value)
        except ValidationError:
            raise _NotPlain from None

    return check


def _text(field: fields.String) -> Check:
    """A string passing the field's validators and holding no lone surrogate."""
    tests = tuple(_test(validator) for validator in field.validators)

    def check(value: Any) -> str:
        if type(value) is not str or (not value.isascii() and LONE_SURROGATE.search(value)):
            raise _NotPlain
        for test in tests:
            if not test(value):
                raise _NotPlain
        return value

    return check


def _test(validator: Callable[[str], Any]) -> Callable[[str], bool]:
    """Whether a string passes `validator`; the house's two text rules without its call."""
    if isinstance(validator, validate.Regexp) and validator.regex.pattern == NO_NUL:
        return lambda value: "\x00" not in value
    if isinstance(validator, validate.Length) and validator.equal is None:
        low, high = validator.min, validator.max
        return lambda value: (
            (low is None or len(value) >= low) and (high is None or len(value) <= high)
        )
    return lambda value: _passes(validator, value)


def _passes(validator: Callable[[str], Any], value: str) -> bool:
    """Whether `validator` accepts `value`."""
    try:
        validator(value)
    except ValidationError:
        return False
    return True
