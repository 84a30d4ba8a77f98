"""Tests for definitions.quartz: Quartz fields to croniter expressions."""

import pytest

from definitions import DefinitionError
from definitions.quartz import compile_cron

QUARTZ_DAILY = ("0", "9", "?", "*")


@pytest.mark.parametrize(
    ("fields", "expression", "wall_clock"),
    [
        pytest.param(("0", "9", "?", "*", "2-6"), "0 9 * * 1,2,3,4,5", True, id="weekdays_numeric"),
        pytest.param(
            ("0", "9", "?", "*", "MON-FRI"), "0 9 * * 1,2,3,4,5", True, id="weekdays_names"
        ),
        pytest.param(("0", "9", "?", "*", "1"), "0 9 * * 0", True, id="sunday_is_1"),
        pytest.param(("0", "9", "?", "*", "7"), "0 9 * * 6", True, id="saturday_is_7"),
        pytest.param(("0", "9", "?", "*", "1,7"), "0 9 * * 0,6", True, id="weekend_list"),
        pytest.param(("0", "9", "?", "*", "2/2"), "0 9 * * 1,3,5", True, id="weekday_step"),
        pytest.param(("0", "9", "?", "*", "FRI-MON"), "0 9 * * 0,1,5,6", True, id="wrapping_range"),
        pytest.param(("0", "9", "?", "*", "sun"), "0 9 * * 0", True, id="lowercase_name"),
        pytest.param(("0", "9", "?", "*", "6#3"), "0 9 * * 5#3", True, id="third_friday"),
        pytest.param(("0", "9", "?", "*", "6L"), "0 9 * * L5", True, id="last_friday"),
        pytest.param(("0", "9", "L", "*", "?"), "0 9 L * *", True, id="last_day_of_month"),
        pytest.param(("0", "9", "15W", "*", "?"), "0 9 15W * *", True, id="nearest_weekday"),
        pytest.param(("0", "9", "1", "JAN-MAR", "?"), "0 9 1 1,2,3 *", True, id="month_names"),
        pytest.param(("0/15", "*", "*", "*", "?"), "0,15,30,45 * * * *", False, id="quartz_step"),
        pytest.param(("*/20", "9", "*", "*", "?"), "0,20,40 9 * * *", False, id="star_step"),
        pytest.param(("0", "*", "*", "*", "?"), "0 * * * *", False, id="hourly"),
        pytest.param(("5-10/5", "1", "*", "*", "?"), "5,10 1 * * *", True, id="range_step"),
        pytest.param(("59/15", "1", "*", "*", "?"), "59 1 * * *", False, id="start_step_past_end"),
        pytest.param(("0-59", "0-23", "*", "*", "?"), "* * * * *", True, id="full_ranges"),
        pytest.param(("0", "22-2", "*", "*", "?"), "0 0,1,2,22,23 * * *", True, id="wrap_hours"),
    ],
)
def test_translation(fields: tuple[str, ...], expression: str, wall_clock: bool) -> None:
    compiled = compile_cron(*fields)
    assert (compiled.expression, compiled.wall_clock) == (expression, wall_clock)
    assert len(compiled.expression.split(" ")) == 5


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        pytest.param(("0 0", "9", "*", "*", "?"), "minutes", id="space_would_shift_fields"),
        pytest.param(("0", "9 1", "*", "*", "?"), "hours", id="space_in_hours"),
        pytest.param(("60", "9", "*", "*", "?"), "minutes", id="minute_60"),
        pytest.param(("0", "24", "*", "*", "?"), "hours", id="hour_24"),
        pytest.param(("0", "9", "0", "*", "?"), "day_of_month", id="day_0"),
        pytest.param(("0", "9", "*", "13", "?"), "month", id="month_13"),
        pytest.param(("0", "9", "?", "*", "0"), "day_of_week", id="weekday_0_is_not_quartz"),
        pytest.param(("0", "9", "?", "*", "8"), "day_of_week", id="weekday_8"),
        pytest.param(("?", "9", "*", "*", "?"), "minutes", id="question_mark_in_minutes"),
        pytest.param(("0", "9", "LW", "*", "?"), "day_of_month", id="last_weekday_unsupported"),
        pytest.param(("0", "9", "L-3", "*", "?"), "day_of_month", id="last_minus_unsupported"),
        pytest.param(("0", "9", "1,L", "*", "?"), "day_of_month", id="L_in_list"),
        pytest.param(("0", "9", "?", "*", "6#6"), "day_of_week", id="sixth_friday"),
        pytest.param(("0", "9", "?", "*", "1,6L"), "day_of_week", id="L_in_weekday_list"),
        pytest.param(("0", "9", "1", "*", "MON"), "day_of_week", id="both_day_fields"),
        pytest.param(("0", "9", "31", "2", "?"), "day_of_month", id="31_february"),
        pytest.param(("0", "9", "30,31", "2", "?"), "day_of_month", id="30_31_february"),
        pytest.param(("0", "9", "31", "4,6,9,11", "?"), "day_of_month", id="31_in_short_months"),
        pytest.param(("0", "9", "30W", "2", "?"), "day_of_month", id="30W_february"),
        pytest.param(("*/0", "9", "*", "*", "?"), "minutes", id="zero_step"),
        pytest.param(("*/61", "9", "*", "*", "?"), "minutes", id="step_too_big"),
        pytest.param(("1-", "9", "*", "*", "?"), "minutes", id="open_range"),
        pytest.param(("", "9", "*", "*", "?"), "minutes", id="empty"),
    ],
)
def test_invalid_fields_are_named(fields: tuple[str, ...], bad_field: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_cron(*fields)
    assert list(caught.value.fields) == [bad_field]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(("0", "0", "29", "2", "?"), id="leap_day"),
        pytest.param(("0", "0", "31", "1,2", "?"), id="31_in_some_month"),
        pytest.param(("0", "0", "?", "2", "5#5"), id="fifth_thursday_of_february"),
    ],
)
def test_rare_but_possible_dates_are_accepted(fields: tuple[str, ...]) -> None:
    compile_cron(*fields)
