"""Tests for definitions.schedule: cron fire times across DST, missed fires, backoff."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from definitions import (
    CronSchedule,
    DefinitionError,
    DockerImageCommand,
    TaskDefinition,
    continuous_next,
    missed_fire_times,
    next_fire_time,
    retry_delay,
)


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def cron(
    minutes: str, hours: str, dom: str = "*", dow: str = "?", *, tz: str = "UTC", month: str = "*"
) -> CronSchedule:
    """A cron schedule from Quartz fields."""
    return CronSchedule(minutes, hours, dom, month, dow, time_zone=tz)


def fires(schedule: CronSchedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after`, each computed from the previous one."""
    found = []
    for _ in range(count):
        after = next_fire_time(schedule, after)
        found.append(after)
    return found


def oracle(expression: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The same according to cronsim, which implements Debian cron's DST rules."""
    iterator = CronSim(expression, after.astimezone(ZoneInfo(tz)))
    return [next(iterator).astimezone(UTC) for _ in range(count)]


def transitions(tz: str, year: int) -> list[datetime]:
    """The days (UTC midnight) on which `tz` changes its UTC offset in `year`."""
    zone = ZoneInfo(tz)
    days = [utc(year, 1, 1) + timedelta(days=n) for n in range(366)]
    return [
        a
        for a, b in pairwise(days)
        if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()
    ]


# Quartz fields (day_of_week 1 = Sunday) and the same schedule in cron syntax for cronsim.
EXPRESSIONS = [
    pytest.param(("30", "1", "*", "?"), "30 1 * * *", id="daily_0130"),
    pytest.param(("30", "2", "*", "?"), "30 2 * * *", id="daily_0230"),
    pytest.param(("0,15,45", "2", "*", "?"), "0,15,45 2 * * *", id="three_times_in_2am"),
    pytest.param(("0", "9", "?", "2-6"), "0 9 * * 1-5", id="weekdays_0900"),
    pytest.param(("15", "1", "?", "6#3"), "15 1 * * 5#3", id="third_friday"),
    pytest.param(("0", "1", "?", "1L"), "0 1 * * 0L", id="last_sunday"),
    pytest.param(("0", "2", "L", "?"), "0 2 L * *", id="last_day"),
    pytest.param(("0/15", "*", "*", "?"), "*/15 * * * *", id="every_15_minutes"),
    pytest.param(("30", "*", "*", "?"), "30 * * * *", id="hourly_at_30"),
    pytest.param(("0", "*/2", "*", "?"), "0 */2 * * *", id="every_2_hours"),
    pytest.param(("*/10", "1-2", "*", "?"), "*/10 1-2 * * *", id="every_10_minutes_at_night"),
]
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
YEARS = [2024, 2025, 2031]


NY, LONDON, LORD_HOWE = "America/New_York", "Europe/London", "Australia/Lord_Howe"
# cronsim jumps whole hours from a half-hour offset and so misses a local time that repeats
# after Lord Howe's 30-minute autumn change; our answers there are in test_dst_change.
CRONSIM_QUIRKS = {("hourly_at_30", LORD_HOWE), ("every_2_hours", LORD_HOWE)}
ORACLE_CASES = [
    pytest.param(*case.values, tz, year, id=f"{case.id}-{tz}-{year}")
    for case in EXPRESSIONS
    for tz in ZONES
    for year in YEARS
    if (case.id, tz) not in CRONSIM_QUIRKS
]


@pytest.mark.parametrize(("fields", "expression", "tz", "year"), ORACLE_CASES)
def test_agrees_with_cronsim_around_every_clock_change(
    fields: tuple[str, ...], expression: str, tz: str, year: int
) -> None:
    schedule = cron(fields[0], fields[1], fields[2], fields[3], tz=tz)
    for start in [utc(year, 1, 1), *(day - timedelta(days=1) for day in transitions(tz, year))]:
        assert fires(schedule, start, 40) == oracle(expression, tz, start, 40), start


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        pytest.param(
            cron("30", "2", tz=NY),
            utc(2024, 3, 10, 6),
            [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)],
            id="absolute_spring",
        ),
        pytest.param(
            cron("30", "1", tz=NY),
            utc(2024, 11, 3, 5),
            [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
            id="absolute_autumn",
        ),
        pytest.param(
            cron("50", "1", tz=NY),
            utc(2024, 11, 3, 6, 10),
            [utc(2024, 11, 4, 6, 50)],
            id="absolute_autumn_from_repeated_hour",
        ),
        pytest.param(
            cron("0", "*", tz=NY),
            utc(2024, 11, 3, 4, 30),
            [utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7)],
            id="hourly_autumn",
        ),
        pytest.param(
            cron("0", "*", tz=NY),
            utc(2024, 3, 10, 5, 30),
            [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7)],
            id="hourly_spring",
        ),
        pytest.param(
            cron("30", "1", tz=LONDON),
            utc(2024, 3, 30, 23),
            [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)],
            id="london_absolute_spring",
        ),
        pytest.param(
            cron("15", "2", tz=LORD_HOWE),
            utc(2024, 10, 5, 12),
            [utc(2024, 10, 5, 15, 30)],
            id="lord_howe_half_hour_spring",
        ),
        pytest.param(
            cron("45", "1", tz=LORD_HOWE),
            utc(2024, 4, 6, 12),
            [utc(2024, 4, 6, 14, 45), utc(2024, 4, 7, 15, 15)],
            id="lord_howe_half_hour_autumn",
        ),
        pytest.param(
            cron("0,30", "2", tz=NY),
            utc(2024, 3, 10, 6),
            [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)],
            id="two_skipped_times_run_once",
        ),
        pytest.param(
            cron("30", "*", tz=LORD_HOWE),
            utc(2024, 4, 6, 14),
            [utc(2024, 4, 6, 14, 30), utc(2024, 4, 6, 15), utc(2024, 4, 6, 16)],
            id="lord_howe_hourly_autumn_repeats_local_0130",
        ),
        pytest.param(
            cron("0", "*/2", tz=LORD_HOWE),
            utc(2024, 4, 6, 13, 30),
            [utc(2024, 4, 6, 15, 30), utc(2024, 4, 6, 17, 30)],
            id="lord_howe_two_hourly_autumn",
        ),
    ],
)
def test_dst_change(schedule: CronSchedule, after: datetime, expected: list[datetime]) -> None:
    assert fires(schedule, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("day_of_week", "weekdays"),
    [
        pytest.param("2-6", {0, 1, 2, 3, 4}, id="quartz_2_6_is_monday_to_friday"),
        pytest.param("1", {6}, id="1_is_sunday"),
        pytest.param("7", {5}, id="7_is_saturday"),
        pytest.param("1,7", {5, 6}, id="weekend"),
        pytest.param("MON-FRI", {0, 1, 2, 3, 4}, id="names"),
    ],
)
def test_quartz_day_of_week_numbering(day_of_week: str, weekdays: set[int]) -> None:
    found = fires(cron("0", "12", "?", day_of_week), utc(2024, 1, 1), 14)
    assert {fire.weekday() for fire in found} == weekdays


def test_fire_time_is_strictly_after() -> None:
    schedule = cron("0", "*")
    assert next_fire_time(schedule, utc(2024, 1, 1, 5)) == utc(2024, 1, 1, 6)
    assert next_fire_time(schedule, utc(2024, 1, 1, 4, 59, 59, 999999)) == utc(2024, 1, 1, 5)


def test_non_utc_after_is_accepted_and_naive_refused() -> None:
    after = datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert next_fire_time(cron("0", "*"), after) == utc(2024, 1, 1, 7)
    with pytest.raises(ValueError, match="aware"):
        next_fire_time(cron("0", "*"), datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        pytest.param(cron("0", "0", tz="Nowhere/City"), "time_zone", id="unknown_zone"),
        pytest.param(cron("0", "0", tz="../etc/passwd"), "time_zone", id="path_as_zone"),
        pytest.param(cron("0", "0", "31", month="2"), "day_of_month", id="31_february"),
        pytest.param(cron("0", "0", "LW"), "day_of_month", id="unsupported_quartz"),
    ],
)
def test_invalid_schedules_raise_definition_error(schedule: CronSchedule, field: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        next_fire_time(schedule, utc(2024, 1, 1))
    assert field in caught.value.fields


def test_rare_schedule_is_found_without_looping() -> None:
    fifth_thursday_of_february = cron("0", "0", "?", "5#5", month="2")
    assert next_fire_time(fifth_thursday_of_february, utc(2016, 3, 1)) == utc(2024, 2, 29)


@pytest.mark.parametrize(
    ("after", "until", "limit", "expected_hours"),
    [
        pytest.param(utc(2024, 1, 1), utc(2024, 1, 1, 5), 3, [3, 4, 5], id="most_recent_three"),
        pytest.param(utc(2024, 1, 1), utc(2024, 1, 1, 5), 10, [1, 2, 3, 4, 5], id="all_of_them"),
        pytest.param(
            utc(2024, 1, 1), utc(2024, 1, 1, 4, 59), 10, [1, 2, 3, 4], id="until_inclusive"
        ),
        pytest.param(utc(2024, 1, 1), utc(2024, 1, 1), 10, [], id="empty_window"),
        pytest.param(utc(2024, 1, 1, 5), utc(2024, 1, 1), 10, [], id="reversed_window"),
        pytest.param(utc(2024, 1, 1), utc(2024, 1, 1, 5), 0, [], id="zero_limit"),
    ],
)
def test_missed_fire_times(
    after: datetime, until: datetime, limit: int, expected_hours: list[int]
) -> None:
    found = missed_fire_times(cron("0", "*"), after, until, limit)
    assert found == [utc(2024, 1, 1, hour) for hour in expected_hours]


def test_missed_fire_times_of_a_rare_schedule_over_years() -> None:
    yearly = cron("0", "0", "1", month="1")
    found = missed_fire_times(yearly, utc(2000, 6, 1), utc(2024, 6, 1), 2)
    assert found == [utc(2023, 1, 1), utc(2024, 1, 1)]


@settings(derandomize=True, deadline=None, max_examples=60)
@given(
    st.sampled_from([("*/7", "*"), ("0", "*/5"), ("30", "1"), ("0", "0")]),
    st.sampled_from(ZONES),
    st.integers(0, 3 * 24 * 60),
    st.integers(0, 3 * 24 * 60),
    st.integers(1, 30),
)
def test_missed_fire_times_match_brute_force(
    fields: tuple[str, str], tz: str, start: int, length: int, limit: int
) -> None:
    schedule = cron(*fields, tz=tz)
    after = utc(2024, 3, 8) + timedelta(minutes=start)
    until = after + timedelta(minutes=length)
    everything = []
    fire = next_fire_time(schedule, after)
    while fire <= until:
        everything.append(fire)
        fire = next_fire_time(schedule, fire)
    assert missed_fire_times(schedule, after, until, limit) == everything[-limit:]


def test_continuous_next_waits_the_buffer() -> None:
    assert continuous_next(utc(2024, 1, 1), 90) == utc(2024, 1, 1, 0, 1, 30)
    assert continuous_next(utc(2024, 1, 1), 0) == utc(2024, 1, 1)


def task(base: int, exponent: float) -> TaskDefinition:
    """A task with the given backoff."""
    return TaskDefinition(
        "t",
        DockerImageCommand("alpine", ("true",)),
        max_attempts=5,
        backoff_base_seconds=base,
        backoff_exponent=exponent,
    )


@pytest.mark.parametrize(
    ("base", "exponent", "attempt", "seconds"),
    [
        pytest.param(0, 2.0, 3, 0, id="no_backoff"),
        pytest.param(10, 1.0, 4, 10, id="constant"),
        pytest.param(10, 2.0, 1, 10, id="first_retry_waits_the_base"),
        pytest.param(10, 2.0, 3, 40, id="exponential"),
        pytest.param(10, 1.5, 2, 15, id="fractional_exponent"),
        pytest.param(10, 1e6, 900, 86400, id="huge_exponent_capped"),
        pytest.param(2**31 - 1, 1.0, 1, 86400, id="huge_base_capped"),
    ],
)
def test_retry_delay(base: int, exponent: float, attempt: int, seconds: int) -> None:
    assert retry_delay(task(base, exponent), attempt) == timedelta(seconds=seconds)


def test_retry_delay_refuses_attempt_zero() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        retry_delay(task(10, 2.0), 0)
