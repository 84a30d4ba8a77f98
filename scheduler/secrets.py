"""Secret environment values: sealed with the operator's Fernet key before they are stored,
opened only to build a container's environment. No value here is ever logged."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from definitions import SECRET_MASK, DefinitionError, EnvironmentVariable, ProcessDefinition
from definitions import map_secret_values as _map

log = logging.getLogger(__name__)


class SecretUnavailable(Exception):
    """A variable's value cannot be given to a container (no key, wrong key, unset source)."""


class SecretBox:
    """Seals and opens secret values with one Fernet key (None: no secret may be stored)."""

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    def seal(
        self, definition: ProcessDefinition, previous: ProcessDefinition | None
    ) -> ProcessDefinition:
        """`definition` with its secret values encrypted; a masked value keeps `previous`'s."""
        stored = _sealed_values(previous)

        def sealed(path: str, task: str, variable: EnvironmentVariable) -> str:
            kept = stored.get((task, variable.variable_name))
            if variable.value == SECRET_MASK:
                if kept is None:
                    raise DefinitionError.at(path, "a masked secret with no stored value to keep")
                return kept
            if kept is not None and self._matches(kept, variable.value):
                return kept  # unchanged: the same text, so no new version
            if self._fernet is None:
                raise DefinitionError.at(
                    path, "secrets cannot be stored: the service has no GNOMON_SECRETS_KEY"
                )
            return self._fernet.encrypt(str(variable.value).encode()).decode()

        return _map(definition, sealed)

    def environment(
        self,
        variables: tuple[EnvironmentVariable, ...],
        service_env: Mapping[str, str],
        *,
        strict: bool = True,
    ) -> dict[str, str]:
        """The container's values of `variables`: secrets opened, references looked up.

        SecretUnavailable if one cannot be; with `strict=False` that one is left out and
        the reason logged (recovery of attempts already running must not stop the service).
        """
        values: dict[str, str] = {}
        for variable in variables:
            try:
                values[variable.variable_name] = self._value(variable, service_env)
            except SecretUnavailable as problem:
                if strict:
                    raise
                log.warning("leaving a variable out: %s", problem)
        return values

    def _value(self, variable: EnvironmentVariable, service_env: Mapping[str, str]) -> str:
        """One variable's value for a container."""
        if variable.value_from_env is not None:
            if variable.value_from_env not in service_env:
                raise SecretUnavailable(
                    f"{variable.variable_name}: the service's environment has no "
                    f"{variable.value_from_env}"
                )
            return service_env[variable.value_from_env]
        if not variable.secret:
            return str(variable.value)
        if self._fernet is None:
            raise SecretUnavailable(f"{variable.variable_name}: no GNOMON_SECRETS_KEY to open it")
        try:
            return self._fernet.decrypt(str(variable.value).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                f"{variable.variable_name}: GNOMON_SECRETS_KEY does not open it"
            ) from None

    def _matches(self, sealed: str, value: str | None) -> bool:
        """Whether `sealed` holds `value` (False when it cannot be opened)."""
        if self._fernet is None:
            return False
        try:
            return self._fernet.decrypt(sealed.encode()).decode() == value
        except InvalidToken:
            return False


def _sealed_values(definition: ProcessDefinition | None) -> dict[tuple[str, str], str]:
    """The stored (sealed) secret values of `definition` by (task name, variable name)."""
    if definition is None:
        return {}
    return {
        (task.task_definition_name, var.variable_name): var.value
        for task in definition.task_definitions
        for var in task.executable.environment_variables
        if var.secret and var.value is not None
    }


NO_KEY = SecretBox(None)  # a service without GNOMON_SECRETS_KEY: no secret may be stored
