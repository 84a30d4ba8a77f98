"""The pure rules of the run engine: planning, outcomes, overlap, misfires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from definitions import ContinuousSchedule, missed_fire_times, next_fire_time
from executor import Ending, Outcome
from scheduler.states import RunStatus, TaskStatus
from scheduler.transitions import (
    AttemptState,
    NewAttempt,
    Overlap,
    decide_attempt,
    fire_plan,
    overlap_decision,
    plan_run,
)
from tests.scheduler.factories import cron, make_definition, make_task

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OK, FAIL = TaskStatus.SUCCEEDED, TaskStatus.FAILED

CHAIN = make_definition(make_task("a"), make_task("b", "a"))
DIAMOND = make_definition(
    make_task("a"), make_task("b", "a"), make_task("c", "a"), make_task("d", "b", "c")
)


def attempt(name: str, status: TaskStatus, n: int = 1, ended: datetime | None = T0) -> AttemptState:
    """An attempt of task `name`."""
    return AttemptState(name, n, status, ended if status in (OK, FAIL) else None)


def names(plan: object) -> list[tuple[str, int]]:
    """(task, attempt) of the attempts a plan creates."""
    return [(a.task_name, a.attempt) for a in plan.create]


def test_a_new_run_starts_its_roots_only() -> None:
    assert names(plan_run(DIAMOND, None, [])) == [("a", 1)]


def test_a_chain_moves_one_step_at_a_time() -> None:
    assert names(plan_run(CHAIN, None, [attempt("a", TaskStatus.RUNNING)])) == []
    assert names(plan_run(CHAIN, None, [attempt("a", OK)])) == [("b", 1)]
    done = plan_run(CHAIN, None, [attempt("a", OK), attempt("b", OK)])
    assert done.create == () and done.outcome is RunStatus.SUCCEEDED


def test_a_diamond_joins_only_when_both_branches_succeeded() -> None:
    one_branch = [attempt("a", OK), attempt("b", OK), attempt("c", TaskStatus.RUNNING)]
    assert names(plan_run(DIAMOND, None, one_branch)) == []
    both = [attempt("a", OK), attempt("b", OK), attempt("c", OK)]
    assert names(plan_run(DIAMOND, None, both)) == [("d", 1)]


def test_a_failed_branch_means_the_join_never_runs_and_the_run_fails() -> None:
    plan = plan_run(DIAMOND, None, [attempt("a", OK), attempt("b", FAIL), attempt("c", OK)])
    assert plan.create == ()
    assert plan.outcome is RunStatus.FAILED
    assert "b" in plan.reason


def test_an_optional_dependency_that_failed_still_lets_the_downstream_run() -> None:
    definition = make_definition(make_task("a"), make_task("b", ("a", False)))
    assert names(plan_run(definition, None, [attempt("a", FAIL)])) == [("b", 1)]


def test_an_optional_dependency_waits_for_the_upstreams_last_attempt() -> None:
    definition = make_definition(make_task("a", max_attempts=2), make_task("b", ("a", False)))
    plan = plan_run(definition, None, [attempt("a", FAIL)])
    assert names(plan) == [("a", 2)]


def test_a_run_with_a_failed_optional_upstream_still_fails_overall() -> None:
    definition = make_definition(make_task("a"), make_task("b", ("a", False)))
    plan = plan_run(definition, None, [attempt("a", FAIL), attempt("b", OK)])
    assert plan.outcome is RunStatus.FAILED


@pytest.mark.parametrize(
    ("base", "exponent", "failed_attempt", "wait"),
    [
        pytest.param(10, 1.0, 1, 10, id="first_retry_waits_the_base"),
        pytest.param(10, 2.0, 2, 20, id="second_retry_doubles"),
        pytest.param(10, 2.0, 3, 40, id="third_retry_quadruples"),
        pytest.param(0, 2.0, 1, None, id="no_base_no_wait"),
    ],
)
def test_retries_back_off(base: int, exponent: float, failed_attempt: int, wait: int) -> None:
    task = make_task("a", max_attempts=5, backoff_base_seconds=base, backoff_exponent=exponent)
    plan = plan_run(make_definition(task), None, [attempt("a", FAIL, failed_attempt)])
    expected = None if wait is None else T0 + timedelta(seconds=wait)
    assert plan.create == (NewAttempt("a", failed_attempt + 1, expected),)


def test_the_last_attempt_failing_ends_the_run() -> None:
    task = make_task("a", max_attempts=2)
    plan = plan_run(make_definition(task), None, [attempt("a", FAIL, 1), attempt("a", FAIL, 2)])
    assert plan.create == () and plan.outcome is RunStatus.FAILED


def test_a_single_task_trigger_ignores_dependencies_and_other_tasks() -> None:
    assert names(plan_run(CHAIN, "b", [])) == [("b", 1)]
    assert plan_run(CHAIN, "b", [attempt("b", OK)]).outcome is RunStatus.SUCCEEDED


def test_a_killed_run_starts_nothing_and_fails_once_everything_stopped() -> None:
    live = plan_run(CHAIN, None, [attempt("a", TaskStatus.RUNNING)], killed=True)
    assert live.create == () and live.outcome is None
    over = plan_run(CHAIN, None, [attempt("a", FAIL)], killed=True)
    assert over.outcome is RunStatus.FAILED


def ended(ending: Ending, exit_code: int | None, reason: str | None = None) -> Outcome:
    """An outcome of attempt t."""
    return Outcome("t", ending, exit_code, T0, reason=reason)


@pytest.mark.parametrize(
    ("outcome", "report", "explicit", "status", "reason"),
    [
        pytest.param(ended(Ending.EXITED, 0), None, False, OK, None, id="exit0"),
        pytest.param(
            ended(Ending.EXITED, 3, "exit code 3"), None, False, FAIL, "exit code 3", id="exit3"
        ),
        pytest.param(
            ended(Ending.EXITED, 0),
            "failed",
            False,
            FAIL,
            "reported failure",
            id="fail_report_on_exit0",
        ),
        pytest.param(
            ended(Ending.EXITED, 0),
            None,
            True,
            FAIL,
            "exited 0 without reporting success",
            id="explicit_without_report",
        ),
        pytest.param(
            ended(Ending.EXITED, 0), "succeeded", True, OK, None, id="explicit_with_report"
        ),
        pytest.param(
            ended(Ending.EXITED, 2, "exit code 2"),
            "succeeded",
            True,
            FAIL,
            "exit code 2",
            id="explicit_report_but_nonzero_exit",
        ),
        pytest.param(
            ended(Ending.OOM_KILLED, 137, "killed: out of memory"),
            None,
            False,
            FAIL,
            "killed: out of memory",
            id="oom",
        ),
        pytest.param(
            ended(Ending.TIMED_OUT, 137, "killed: exceeded max_runtime_seconds (5)"),
            None,
            False,
            FAIL,
            "killed: exceeded max_runtime_seconds (5)",
            id="timeout",
        ),
    ],
)
def test_an_attempts_outcome_follows_exit_code_and_reports(
    outcome: Outcome, report: str | None, explicit: bool, status: TaskStatus, reason: str | None
) -> None:
    assert decide_attempt(outcome, report, explicit) == (status, reason)


@pytest.mark.parametrize(
    ("action", "running", "queued", "manual", "decision"),
    [
        pytest.param("wait", False, 0, False, Overlap.START, id="idle_starts"),
        pytest.param("wait", True, 0, False, Overlap.QUEUE, id="wait_queues_one"),
        pytest.param("wait", True, 1, False, Overlap.SKIP, id="wait_at_most_one_waits"),
        pytest.param("wait", True, 1, True, Overlap.QUEUE, id="wait_manual_always_queues"),
        pytest.param("terminate", True, 0, False, Overlap.TERMINATE, id="terminate"),
        pytest.param("terminate", True, 0, True, Overlap.TERMINATE, id="terminate_manual"),
        pytest.param("skip", True, 0, False, Overlap.SKIP, id="skip_drops_fire"),
        pytest.param("skip", True, 0, True, Overlap.CONFLICT, id="skip_refuses_manual"),
        pytest.param("allow", True, 0, False, Overlap.START, id="allow_overlaps"),
    ],
)
def test_overlap(action: str, running: bool, queued: int, manual: bool, decision: Overlap) -> None:
    assert overlap_decision(action, running=running, queued=queued, manual=manual) is decision


def plan_at(definition: object, due: datetime, now: datetime) -> object:
    """fire_plan with a 60 s on-time window and a default catch-up cap of 10."""
    return fire_plan(definition, due, now, on_time=timedelta(seconds=60), default_catch_up=10)


HOURLY = cron("0", "*")


def test_a_fire_on_time_runs_once_and_moves_to_the_next_hour() -> None:
    plan = plan_at(make_definition(schedule=HOURLY), T0, T0 + timedelta(milliseconds=3))
    assert plan.fire_times == (T0,)
    assert plan.skipped == 0
    assert plan.next_fire_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("policy", "down_hours", "grace", "cap", "runs", "skipped"),
    [
        pytest.param("run_once", 3.5, 3600, None, [3], 3, id="run_once_runs_the_latest"),
        pytest.param("run_once", 3.5, 600, None, [], 4, id="run_once_beyond_grace_runs_none"),
        pytest.param("skip", 3.5, 3600, None, [], 4, id="skip_runs_none"),
        pytest.param("run_all", 3.5, 3600, None, [0, 1, 2, 3], 0, id="run_all_runs_each"),
        pytest.param("run_all", 3.5, 3600, 2, [2, 3], 2, id="run_all_is_capped"),
    ],
)
def test_fires_missed_while_down_follow_the_misfire_policy(
    policy: str, down_hours: float, grace: int, cap: int | None, runs: list[int], skipped: int
) -> None:
    definition = make_definition(
        schedule=HOURLY, misfire_policy=policy, misfire_grace_seconds=grace, max_catch_up_runs=cap
    )
    now = T0 + timedelta(hours=down_hours)
    plan = plan_at(definition, T0, now)
    assert plan.fire_times == tuple(T0 + timedelta(hours=h) for h in runs)
    assert plan.skipped == skipped
    assert plan.next_fire_at == T0 + timedelta(hours=4)


BERLIN = "Europe/Berlin"  # clocks go forward on 2026-03-29 at 02:00, back on 10-25 at 03:00


@pytest.mark.parametrize(
    ("schedule", "due", "late_seconds"),
    [
        pytest.param(cron("30", "2", time_zone=BERLIN), datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
                     5, id="wall_clock_into_the_gap"),
        pytest.param(cron("30", "2", time_zone=BERLIN), datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
                     5, id="wall_clock_into_the_repeat"),
        pytest.param(cron("*/20", "*", time_zone=BERLIN), datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
                     5, id="interval_in_the_repeat"),
        pytest.param(cron("*/20", "*", time_zone=BERLIN), datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
                     1500, id="interval_late_past_the_next"),
        pytest.param(cron("0", "*/2", time_zone=BERLIN), datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
                     60, id="interval_across_the_gap"),
    ],
)  # fmt: skip
def test_a_fire_moves_to_the_first_fire_time_after_now_across_clock_changes(
    schedule: object, due: datetime, late_seconds: float
) -> None:
    now = due + timedelta(seconds=late_seconds)
    plan = plan_at(make_definition(schedule=schedule, misfire_policy="run_all"), due, now)
    assert plan.next_fire_at == next_fire_time(schedule, now)
    assert plan.fire_times == (due, *missed_fire_times(schedule, due, now, 1000))


def test_a_continuous_fire_waits_for_its_run_to_end() -> None:
    plan = plan_at(make_definition(schedule=ContinuousSchedule(5)), T0, T0)
    assert plan.fire_times == (T0,) and plan.next_fire_at is None
