"""Wire-JSON samples of process definitions for the definitions tests."""

import copy
from typing import Any


def wire_task(name: str = "main", *deps: str, **overrides: Any) -> dict[str, Any]:
    """A minimal task as a client sends it, depending on `deps`."""
    task: dict[str, Any] = {
        "task_definition_name": name,
        "executable": {"docker_image_command": {"image": "alpine", "command": ["true"]}},
    }
    if deps:
        task["dependencies"] = [{"task_definition_name": dep} for dep in deps]
    return {**task, **overrides}


def wire_definition(*tasks: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A minimal process definition as a client sends it."""
    return copy.deepcopy(
        {
            "process_definition_name": "job",
            "task_definitions": list(tasks) or [wire_task()],
            **overrides,
        }
    )


def cron_wire(**fields: str) -> dict[str, Any]:
    """A `schedule` value holding a cron schedule; every hour unless overridden."""
    base = {"minutes": "0", "hours": "*", "day_of_month": "*", "month": "*", "day_of_week": "?"}
    return {"cron_schedule": {**base, **fields}}


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of `data` with the dotted `path` set to `value` (list indexes as numbers)."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


FULL = wire_definition(
    wire_task(
        "extract",
        executable={
            "docker_image_command": {
                "image": "registry.example.com/etl",
                "tag": "1.2",
                "command": ["python", "-m", "etl", "extract"],
                "memory": 512,
                "cpu": 1024,
                "taskRoleArn": "arn:aws:iam::1:role/etl",
                "log_paths": ["/var/log/etl.log"],
                "environment_variables": [{"variable_name": "STAGE", "value": "prod"}],
            }
        },
        max_attempts=3,
        max_runtime_seconds=600,
        backoff_base_seconds=30,
        backoff_exponent=2.0,
        require_explicit_success=True,
    ),
    wire_task("load", "extract"),
    wire_task(
        "report",
        dependencies=[
            {"task_definition_name": "load", "success_required": False},
            {"task_definition_name": "extract", "success_required": True},
        ],
    ),
    process_definition_name="nightly-etl",
    process_description="Nightly ETL",
    paused=False,
    schedule=cron_wire(
        minutes="30", hours="2", day_of_week="2-6", day_of_month="?", time_zone="Europe/London"
    ),
    overlap_action="terminate",
    notifications=[
        {"email": {"name": "Data team", "email": "data@example.com", "notify_when": "always"}},
        {"pagerduty": {"service_key": "key", "num_consecutive_failures": 2}},
        {"webhook": {"url": "https://hooks.example.com/x"}},
    ],
    misfire_policy="run_all",
    misfire_grace_seconds=60,
    max_catch_up_runs=5,
)
