"""Schedules in words, for people: "at 06:00 on Mon-Fri (Europe/Paris)"."""

from __future__ import annotations

import re

from .model import ContinuousSchedule, CronSchedule, Schedule

ANY = frozenset({"*", "?"})
DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # Quartz: 1 = Sunday
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NUMBER = re.compile(r"\d{1,2}")
STEP = re.compile(r"(?:\*|0)/(\d+)")


def describe_schedule(schedule: Schedule | None) -> str:
    """A short English description of `schedule`."""
    if schedule is None:
        return "not scheduled (triggered by hand)"
    if isinstance(schedule, ContinuousSchedule):
        return f"continuously, {schedule.buffer_seconds} s after each run ends"
    parts = [_times(schedule.minutes, schedule.hours), _days(schedule), _months(schedule.month)]
    return " ".join(p for p in parts if p) + f" ({schedule.time_zone})"


def _times(minutes: str, hours: str) -> str:
    """The time-of-day part."""
    minute_list, hour_list = minutes.split(","), hours.split(",")
    if all(NUMBER.fullmatch(m) for m in minute_list) and all(
        NUMBER.fullmatch(h) for h in hour_list
    ):
        times = sorted(f"{int(h):02d}:{int(m):02d}" for h in hour_list for m in minute_list)
        return "at " + ", ".join(times)
    step = STEP.fullmatch(minutes)
    if step and hours in ANY:
        return f"every {step.group(1)} minutes"
    if minutes in ANY and hours in ANY:
        return "every minute"
    hour_step = STEP.fullmatch(hours)
    if NUMBER.fullmatch(minutes) and (hours in ANY or hour_step):
        every = f"every {hour_step.group(1)} hours" if hour_step else "every hour"
        return f"{every} at minute {int(minutes)}"
    return f"at minutes {minutes} of hours {hours}"


def _days(schedule: CronSchedule) -> str:
    """The day part: weekdays, days of the month, or every day."""
    if schedule.day_of_week not in ANY:
        return "on " + _named(schedule.day_of_week, DAY_NAMES, first=1)
    if schedule.day_of_month not in ANY:
        return f"on day {schedule.day_of_month} of the month"
    return "every day"


def _months(month: str) -> str:
    """The month part, empty for every month."""
    return "" if month in ANY else "in " + _named(month, MONTH_NAMES, first=1)


def _named(field: str, names: tuple[str, ...], first: int) -> str:
    """A list/range field with numbers replaced by names and ranges as `Mon-Fri`."""

    def name(token: str) -> str:
        if token.isdigit() and first <= int(token) < first + len(names):
            return names[int(token) - first]
        return token.title() if token.isalpha() else token

    items = []
    for item in field.split(","):
        items.append("-".join(name(t) for t in item.split("-")) if "/" not in item else item)
    return ", ".join(items)
