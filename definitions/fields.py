"""Strict marshmallow field types: JSON types only, no coercion of strings, numbers or bools."""

import math
import re
from typing import Any

from marshmallow import ValidationError, fields, validate

# Lone surrogates survive JSON parsing but cannot be encoded for the database or Docker.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Text(fields.String):
    """A string of encodable text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if LONE_SURROGATE.search(text):
            raise ValidationError("Not valid Unicode text (lone surrogate).")
        return text


class StrictInteger(fields.Integer):
    """A JSON integer: refuses strings, floats and booleans."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictFloat(fields.Float):
    """A finite JSON number: refuses strings and booleans."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, int) and abs(value) > 2**1023:  # float() would overflow
            raise self.make_error("too_large")
        number = super()._deserialize(value, attr, data, **kwargs)
        if not math.isfinite(number):
            raise self.make_error("special")
        return number


class StrictBoolean(fields.Boolean):
    """A JSON boolean: refuses 1, 0, "true" and friends."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class FullMatch(validate.Regexp):
    """A Regexp validator that must match the whole string (Python's `$` allows a final newline)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
