"""Running task attempts as containers.

Rule: the only package that imports `docker`. It knows nothing of runs, DAGs or
the database: it takes an `AttemptSpec`, and reports what happened to an
`ExecutorListener` as plain values (`Outcome`, `LogLine`).
"""

from executor.base import (
    AttemptSpec,
    Ending,
    EngineUnavailable,
    Executor,
    ExecutorListener,
    Health,
    InFlight,
    LogLine,
    Outcome,
)

__all__ = [
    "AttemptSpec",
    "Ending",
    "EngineUnavailable",
    "Executor",
    "ExecutorListener",
    "Health",
    "InFlight",
    "LogLine",
    "Outcome",
]
