"""Task attempts as Docker Swarm services: one `replicated-job` service per attempt.

Modules: `settings` (how to reach the manager and what every service gets),
`connection` (the manager's API client, up or down), `services` (an attempt
as a service spec, and a swarm task's status as an outcome), `output` (the
service's log stream), `executor` (the facade behind `executor.base.Executor`).
"""

from executor.swarm.executor import SwarmExecutor
from executor.swarm.settings import SwarmSettings

__all__ = ["SwarmExecutor", "SwarmSettings"]
