"""End-to-end runs: a live service, real containers, callbacks over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.models import Definition
from tests.support.live import LiveService, live_service, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "gnomon-test/busybox"
CALL = 'wget -q -O /dev/null --post-data "" --header "Authorization: Bearer $GNOMON_TASK_TOKEN"'
SUCCEED = f'{CALL} "$GNOMON_URL/api/tasks/$GNOMON_TASK_ID/succeed"'
FAIL = f'{CALL} "$GNOMON_URL/api/tasks/$GNOMON_TASK_ID/fail"'


def task(name: str, script: str = "true", *deps: str | tuple[str, bool], **kw: Any) -> dict:
    """A task definition in wire form running `sh -c script` in the busybox image."""
    return {
        "task_definition_name": name,
        "dependencies": [
            {"task_definition_name": d}
            if isinstance(d, str)
            else {"task_definition_name": d[0], "success_required": d[1]}
            for d in deps
        ],
        "executable": {"docker_image_command": {"image": IMAGE, "command": ["sh", "-c", script]}},
        **kw,
    }


def definition(name: str, *tasks: dict, **kw: Any) -> dict:
    """A process definition in wire form, no schedule."""
    return {"process_definition_name": name, "task_definitions": list(tasks), **kw}


@pytest.fixture
def service(busybox_image: str, database_url: str) -> Iterator[LiveService]:
    """A live service running real containers with host networking."""
    with live_service(database_url, KILL_GRACE_SECONDS=1) as live:
        yield live


def tasks_of(run: dict) -> dict[str, list[dict]]:
    """The run's attempts by task name, in attempt order."""
    by_name: dict[str, list[dict]] = {}
    for t in sorted(run["task"], key=lambda t: t["previous_attempt_count"]):
        by_name.setdefault(t["task_definition_name"], []).append(t)
    return by_name


def statuses(run: dict) -> dict[str, str]:
    """The status of each task's last attempt."""
    return {name: attempts[-1]["status"] for name, attempts in tasks_of(run).items()}


def run_once(service: LiveService, body: dict, task_name: str | None = None) -> dict:
    """Register `body`, trigger it and wait for the run to end."""
    service.put_definition(body)
    return service.wait_run(service.trigger(body["process_definition_name"], task_name))


def test_a_single_task_succeeds(service: LiveService) -> None:
    run = run_once(service, definition("one", task("main", "echo hello")))
    assert run["status"] == "succeeded"
    (attempt,) = run["task"]
    assert attempt["status"] == "succeeded" and attempt["exit_code"] == 0
    assert [e["message"] for e in attempt["log_entries"]] == ["hello"]
    assert run["end_time"] is not None


def test_a_single_task_fails_with_its_exit_code(service: LiveService) -> None:
    run = run_once(service, definition("fails", task("main", "exit 3")))
    assert run["status"] == "failed"
    assert run["task"][0]["reason"] == "exit code 3"


def test_a_failed_attempt_is_retried_and_the_retry_sees_its_attempt_number(
    service: LiveService,
) -> None:
    script = 'echo "attempt $GNOMON_ATTEMPT"; test "$GNOMON_ATTEMPT" -ge 2'
    run = run_once(service, definition("flaky", task("main", script, max_attempts=2)))
    assert run["status"] == "succeeded"
    first, second = tasks_of(run)["main"]
    assert (first["status"], second["status"]) == ("failed", "succeeded")
    assert second["log_entries"][0]["message"] == "attempt 2"


def test_a_chain_runs_in_order(service: LiveService) -> None:
    body = definition("chain", task("a"), task("b", "true", "a"), task("c", "true", "b"))
    run = run_once(service, body)
    assert run["status"] == "succeeded"
    t = {n: a[-1] for n, a in tasks_of(run).items()}
    assert t["a"]["end_time"] <= t["b"]["start_time"] <= t["b"]["end_time"] <= t["c"]["start_time"]


def test_independent_tasks_run_in_parallel(service: LiveService) -> None:
    run = run_once(service, definition("parallel", task("a", "sleep 1"), task("b", "sleep 1")))
    a, b = (tasks_of(run)[n][0] for n in ("a", "b"))
    assert a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]


def test_a_diamond_joins_after_both_branches(service: LiveService) -> None:
    body = definition(
        "diamond",
        task("a"),
        task("b", "true", "a"),
        task("c", "true", "a"),
        task("d", "true", "b", "c"),
    )
    run = run_once(service, body)
    assert statuses(run) == dict.fromkeys("abcd", "succeeded")
    t = {n: a[-1] for n, a in tasks_of(run).items()}
    assert max(t["b"]["end_time"], t["c"]["end_time"]) <= t["d"]["start_time"]


def test_a_diamond_with_a_failed_branch_never_runs_the_join(service: LiveService) -> None:
    body = definition(
        "broken-diamond",
        task("a"),
        task("b", "exit 1", "a"),
        task("c", "true", "a"),
        task("d", "true", "b", "c"),
    )
    run = run_once(service, body)
    assert run["status"] == "failed"
    assert statuses(run) == {"a": "succeeded", "b": "failed", "c": "succeeded"}


def test_a_failed_optional_dependency_still_lets_the_downstream_run(service: LiveService) -> None:
    body = definition("optional", task("a", "exit 1"), task("b", "true", ("a", False)))
    run = run_once(service, body)
    assert statuses(run) == {"a": "failed", "b": "succeeded"}


@pytest.mark.parametrize(
    ("script", "status", "reason"),
    [
        pytest.param(SUCCEED, "succeeded", None, id="reported"),
        pytest.param("true", "failed", "exited 0 without reporting success", id="not_reported"),
    ],
)
def test_explicit_success_needs_the_report(
    service: LiveService, script: str, status: str, reason: str | None
) -> None:
    body = definition("explicit", task("main", script, require_explicit_success=True))
    attempt = run_once(service, body)["task"][0]
    assert (attempt["status"], attempt["reason"]) == (status, reason)


def test_a_fail_report_fails_an_attempt_that_exits_0(service: LiveService) -> None:
    attempt = run_once(service, definition("reports-fail", task("main", FAIL)))["task"][0]
    assert (attempt["status"], attempt["reason"]) == ("failed", "reported failure")


# Task `a` finds task `b`'s running attempt, then tries to report for it with its own
# token, echoing each answer into its log. `b` waits until `a` has ended, then exits 0
# without reporting: it must fail for want of a report, with nothing of `a`'s stored.
TASKS_OF = '"$GNOMON_URL/api/tasks?process_definition_name=guarded&task_definition_name='
IMPERSONATE = (
    f'until b=$(wget -q -O - {TASKS_OF}b&allowed_statuses=running"'
    r""" | sed -n 's/.*"task_id": *"\([0-9a-f-]*\)".*/\1/p') && [ -n "$b" ]; do sleep 0.2; done;"""
    """ BODY='[{"log_entry_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "source": "a","""
    """ "when": "2026-01-01T00:00:00Z", "message": "forged"}]';"""
    ' for call in succeed log_entries; do echo "$call: $(wget -q -O /dev/null'
    ' --post-data "$BODY" --header "Authorization: Bearer $GNOMON_TASK_TOKEN"'
    ' "$GNOMON_URL/api/tasks/$b/$call" 2>&1)"; done'
)
WAIT_FOR_A = (
    f'until wget -q -O - {TASKS_OF}a&allowed_statuses=succeeded,failed" | grep -q task_id;'
    " do sleep 0.2; done"
)


def test_a_task_container_cannot_report_for_another_task(service: LiveService) -> None:
    body = definition(
        "guarded",
        task("a", IMPERSONATE, max_runtime_seconds=60),
        task("b", WAIT_FOR_A, require_explicit_success=True, max_runtime_seconds=60),
    )
    run = run_once(service, body)
    a, b = (tasks_of(run)[name][0] for name in ("a", "b"))
    messages = [e["message"] for e in a["log_entries"]]
    assert [m.split(":")[0] for m in messages] == ["succeed", "log_entries"], messages
    assert all("403" in m for m in messages), messages
    assert a["status"] == "succeeded"
    assert (b["status"], b["reason"]) == ("failed", "exited 0 without reporting success")
    assert b["log_entries"] == []


def test_a_single_task_trigger_runs_only_that_task(service: LiveService) -> None:
    body = definition("partial", task("a", "exit 1"), task("b", "true", "a"))
    run = run_once(service, body, task_name="b")
    assert run["status"] == "succeeded"
    assert statuses(run) == {"b": "succeeded"}


def test_kill_stops_the_containers_and_fails_the_run(service: LiveService) -> None:
    service.put_definition(definition("long", task("main", "sleep 60")))
    run_id = service.trigger("long")
    wait_for(lambda: statuses(service.run(run_id)).get("main") == "running", 30, "container")
    assert service.api("POST", f"/api/processes/{run_id}/kill").status_code == 204
    run = service.wait_run(run_id, timeout=30)
    assert run["status"] == "failed"
    assert run["task"][0]["reason"] == "killed: run was killed"
    assert service.api("POST", f"/api/processes/{run_id}/kill").status_code == 409


def test_a_timeout_kills_the_attempt(service: LiveService) -> None:
    body = definition("slow", task("main", "sleep 60", max_runtime_seconds=1))
    attempt = run_once(service, body)["task"][0]
    assert attempt["reason"] == "killed: exceeded max_runtime_seconds (1)"


def test_a_failed_run_can_be_retried(service: LiveService) -> None:
    script = 'test "$GNOMON_ATTEMPT" -ge 2'
    body = definition("retry-me", task("a"), task("b", script, "a"), task("c", "true", "b"))
    run = run_once(service, body)
    assert run["status"] == "failed"
    assert service.api("POST", f"/api/processes/{run['process_id']}/retry").status_code == 204
    run = service.wait_run(run["process_id"])
    assert run["status"] == "succeeded"
    assert {n: len(a) for n, a in tasks_of(run).items()} == {"a": 1, "b": 2, "c": 1}
    assert service.api("POST", f"/api/processes/{run['process_id']}/retry").status_code == 409


def test_overlap_wait_starts_the_second_run_after_the_first(service: LiveService) -> None:
    service.put_definition(definition("waits", task("main", "sleep 1"), overlap_action="wait"))
    first, second = service.trigger("waits"), service.trigger("waits")
    assert service.run(second)["task"] == []  # queued behind the first
    one, two = service.wait_run(first), service.wait_run(second)
    assert (one["status"], two["status"]) == ("succeeded", "succeeded")
    assert one["task"][0]["end_time"] <= two["task"][0]["start_time"]


@pytest.mark.parametrize("how", ["manual", "scheduled"])
def test_overlap_terminate_kills_the_current_run(service: LiveService, how: str) -> None:
    body = definition("terminates", task("main", "sleep 60"), overlap_action="terminate")
    service.put_definition(body)
    first = service.trigger("terminates")
    wait_for(lambda: statuses(service.run(first)).get("main") == "running", 30, "first run")
    if how == "manual":
        service.trigger("terminates")
    else:
        make_due(service, "terminates")
    old = service.wait_run(first, timeout=30)
    assert old["status"] == "failed" and old["task"][0]["reason"] == "killed: run was killed"
    newest = wait_for(lambda: second_run(service, "terminates", first), 30, "second run")
    assert newest["status"] == "running"
    service.api("POST", f"/api/processes/{newest['process_id']}/kill")
    service.wait_run(newest["process_id"], timeout=30)


def test_a_paused_definition_does_not_fire_but_can_be_triggered(service: LiveService) -> None:
    schedule = {"cron_schedule": YEARLY}
    service.put_definition(definition("paused", task("main"), paused=True, schedule=schedule))
    service.put_definition(definition("control", task("main"), schedule=schedule))
    make_due(service, "paused")
    make_due(service, "control")
    control = wait_for(lambda: runs_of(service, "control"), 30, "the unpaused twin to fire")
    assert service.wait_run(control[0]["process_id"])["status"] == "succeeded"
    assert runs_of(service, "paused") == []
    run = service.wait_run(service.trigger("paused"))
    assert run["status"] == "succeeded"
    assert service.api("GET", "/api/process_definitions/paused").json()["paused"] is True


def runs_of(service: LiveService, name: str) -> list[dict]:
    """The runs of definition `name`, newest first."""
    return service.api("GET", f"/api/processes?process_definition_name={name}").json()


def test_a_due_schedule_starts_a_run(service: LiveService) -> None:
    service.put_definition(definition("cron", task("main"), schedule={"cron_schedule": YEARLY}))
    make_due(service, "cron")
    runs = wait_for(
        lambda: service.api("GET", "/api/processes?process_definition_name=cron").json(),
        30,
        "the scheduled run",
    )
    assert len(runs) == 1
    assert service.wait_run(runs[0]["process_id"])["status"] == "succeeded"


# Fires once a year: a test makes it due by hand, and no second fire can come during it.
YEARLY = {"minutes": "0", "hours": "0", "day_of_month": "1", "month": "1", "day_of_week": "?"}


def make_due(service: LiveService, name: str) -> None:
    """Move a definition's next fire time to now, as the clock reaching it would, and wake."""
    database = service.app.extensions["gnomon"].database
    with database.connection_context():
        Definition.update(next_fire_at=datetime.now(UTC)).where(Definition.name == name).execute()
    service.app.extensions["gnomon"].scheduler.engine.wake()


def second_run(service: LiveService, name: str, first: str) -> dict | None:
    """The run of `name` other than `first`, once it has a running task."""
    for run in runs_of(service, name):
        if run["process_id"] != first and statuses(run).get("main") == "running":
            return run
    return None
