"""The Docker backend: task attempts as containers on one Docker Engine.

One job per module: `engine` (connection and raw calls), `creation` (create,
pull, start), `output` (reading output), `exits` (events and reconciliation),
`finishing` (outcomes, removal), `kills` (kills and deadlines), `adoption`
(recovery), `attempts` (the shared state, under one lock) and `executor` (the
facade).
"""

from executor.docker.executor import DockerExecutor
from executor.docker.settings import DockerSettings
from executor.labels import LABEL_INSTANCE, LABEL_TASK_ID

__all__ = ["LABEL_INSTANCE", "LABEL_TASK_ID", "DockerExecutor", "DockerSettings"]
