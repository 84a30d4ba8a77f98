"""What the scheduling loop says about its own health, from its passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from peewee import OperationalError

from scheduler.loop import Loop

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=30)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_failing_pass_is_a_problem_until_one_succeeds() -> None:
    clock = Clock()
    outcomes: list[Exception | None] = [None, OperationalError("gone"), None]

    def one_pass(now: datetime, _full: bool) -> datetime:
        failure = outcomes.pop(0)
        if failure is not None:
            raise failure
        return now

    loop = Loop(one_pass, clock, period=5)
    assert loop.problem(clock.now, STALE) is None  # no pass yet: nothing known against it
    loop._one_pass()
    assert loop.problem(clock.now, STALE) is None
    loop._one_pass()
    problem = loop.problem(clock.now, STALE)
    assert problem is not None and "scheduling passes fail (OperationalError)" in problem
    loop._one_pass()
    assert loop.problem(clock.now, STALE) is None


def test_no_pass_for_too_long_is_a_problem() -> None:
    clock = Clock()
    loop = Loop(lambda now, _full: now, clock, period=5)
    loop._one_pass()
    clock.now = T0 + STALE
    assert loop.problem(clock.now, STALE) is None
    clock.now = T0 + STALE + timedelta(seconds=1)
    assert "no scheduling pass has ended since" in str(loop.problem(clock.now, STALE))
