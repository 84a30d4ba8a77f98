"""The one exception of this package: an invalid definition, with field-level details."""

from collections.abc import Iterator, Mapping

# Marshmallow files errors about a whole object under this key; we file them under the object.
_SCHEMA_KEY = "_schema"
ROOT = "_schema"  # the flat path of an error about the whole body


class DefinitionError(Exception):
    """A process definition (or part of one) is invalid."""

    def __init__(
        self,
        message: str,
        fields: dict[str, list[str]] | None = None,
        item: tuple[int, str | None] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields if fields is not None else {}
        self.item = item  # (index, name) of the definition in a list of them, if in one

    def within(self, index: int, name: object) -> "DefinitionError":
        """This error about item `index` (named `name`, if a string) of a list of definitions."""
        named = name if isinstance(name, str) else None
        where = f"Definition {named!r}" if named is not None else f"Definition at index {index}"
        return DefinitionError(f"{where}: {self.message}", self.fields, (index, named))

    @classmethod
    def at(cls, path: str, problem: str) -> "DefinitionError":
        """Build an error about one field, its message naming the field."""
        return cls(f"{path}: {problem}", {path: [problem]})

    @classmethod
    def from_messages(cls, messages: object) -> "DefinitionError":
        """Build an error from marshmallow's nested messages, flattened to dotted paths."""
        fields: dict[str, list[str]] = {}
        for path, text in flatten_messages(messages):
            fields.setdefault(path, []).append(text)
        path, problems = next(iter(fields.items()), (ROOT, ["invalid process definition"]))
        return cls(f"{path}: {problems[0]}", fields)


def flatten_messages(messages: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (dotted path, message) pairs from marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from flatten_messages(value, _join(prefix, key))
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from flatten_messages(item, prefix)
    else:
        yield prefix or ROOT, str(messages)


def _join(prefix: str, key: object) -> str:
    """Append one path segment, folding marshmallow's `_schema` into its parent."""
    if key == _SCHEMA_KEY:
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)
