"""The scheduler's exceptions; `app` turns each into one HTTP status."""


class SchedulerError(Exception):
    """Base of everything the scheduler raises on purpose."""


class NotFound(SchedulerError):
    """No such process definition, task definition, process or task."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class Conflict(SchedulerError):
    """The request is valid but the current state does not allow it."""


class Unavailable(SchedulerError):
    """A dependency (database, container engine) cannot be reached now."""


class InstanceNameTaken(SchedulerError):
    """Another live instance holds this instance's name (its lease has not expired)."""
