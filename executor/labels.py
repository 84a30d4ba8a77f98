"""The labels every backend puts on an attempt's container or service, to find it again."""

from __future__ import annotations

from executor.base import AttemptSpec

LABEL_INSTANCE = "gnomon.instance"
LABEL_TASK_ID = "gnomon.task_id"
LABEL_PROCESS_ID = "gnomon.process_id"
LABEL_DEFINITION = "gnomon.definition"
LABEL_TASK_NAME = "gnomon.task_name"
LABEL_ATTEMPT = "gnomon.attempt"


def attempt_labels(spec: AttemptSpec, instance: str) -> dict[str, str]:
    """The labels that find the attempt again, from this instance or another."""
    return {
        LABEL_INSTANCE: instance,
        LABEL_TASK_ID: spec.task_id,
        LABEL_PROCESS_ID: spec.process_id,
        LABEL_DEFINITION: spec.definition_name,
        LABEL_TASK_NAME: spec.task_name,
        LABEL_ATTEMPT: str(spec.attempt),
    }
