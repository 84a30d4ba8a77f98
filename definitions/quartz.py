"""Translate Sundial's Quartz cron fields into a canonical five-field croniter expression."""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from croniter import CroniterError, croniter

from .errors import DefinitionError

FIELDS = ("minutes", "hours", "day_of_month", "month", "day_of_week")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_PROBE_START = datetime(2000, 1, 1)


@dataclass(frozen=True)
class _Field:
    """The value range and names of one cron field (day_of_week in Quartz numbering)."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_SPECS = {
    "minutes": _Field("minutes", 0, 59),
    "hours": _Field("hours", 0, 23),
    "day_of_month": _Field("day_of_month", 1, 31),
    "month": _Field("month", 1, 12, _MONTHS),
    "day_of_week": _Field("day_of_week", 1, 7, _DAYS),
}
_NTH_WEEKDAY = re.compile(r"^(\w+)#(\d+)$")
_LAST_WEEKDAY = re.compile(r"^(\w+)L$")
_NEAREST_WEEKDAY = re.compile(r"^(\d+)W$")


@dataclass(frozen=True)
class CompiledCron:
    """A cron schedule ready for croniter, with the DST rule that applies to it."""

    expression: str
    # Debian cron's rule: a job at fixed wall-clock times (no wildcard in minutes or hours)
    # runs once per wall-clock time; any other job keeps its real-time rhythm.
    wall_clock: bool


class _FieldError(Exception):
    """A problem with one cron field, turned into a DefinitionError by compile_cron."""


@lru_cache(maxsize=4096)
def compile_cron(
    minutes: str, hours: str, day_of_month: str, month: str, day_of_week: str
) -> CompiledCron:
    """Translate Quartz fields; DefinitionError naming the field if one is invalid."""
    texts = dict(zip(FIELDS, (minutes, hours, day_of_month, month, day_of_week), strict=True))
    parts = {name: _translate_or_raise(name, text) for name, text in texts.items()}
    _check_day_fields(texts)
    expression = " ".join(parts[name] for name in FIELDS)
    _check_fires(expression)
    wall_clock = not (_is_wildcard(texts["minutes"]) or _is_wildcard(texts["hours"]))
    return CompiledCron(expression, wall_clock)


def _translate_or_raise(name: str, text: str) -> str:
    """Translate one field, re-raising its problem as a DefinitionError naming it."""
    try:
        return _translate(_SPECS[name], text.strip().upper())
    except _FieldError as error:
        raise DefinitionError.at(name, f"{error} (in {text!r})") from None


def _translate(spec: _Field, text: str) -> str:
    """Translate one Quartz field to croniter syntax."""
    if text in ("*", "?"):
        if text == "?" and spec.name not in ("day_of_month", "day_of_week"):
            raise _FieldError("'?' is only allowed in day_of_month and day_of_week")
        return "*"
    special = _special(spec, text)
    if special is not None:
        return special
    values = set()
    for item in text.split(","):
        values |= _expand_item(spec, item)
    if len(values) == spec.high - spec.low + 1:
        return "*"
    shift = 1 if spec.name == "day_of_week" else 0  # Quartz 1=Sunday, croniter 0=Sunday
    return ",".join(str(value - shift) for value in sorted(values))


def _special(spec: _Field, text: str) -> str | None:
    """Translate Quartz's L, W and # forms, or return None if `text` uses none of them."""
    if spec.name == "day_of_month" and ("L" in text or "W" in text):
        return _special_day_of_month(text)
    if spec.name == "day_of_week":
        if text == "L":  # Quartz: a bare L in day_of_week is the last day of the week
            return "6"
        if match := _LAST_WEEKDAY.match(text):
            return f"L{_value(spec, match[1]) - 1}"
        if match := _NTH_WEEKDAY.match(text):
            return f"{_value(spec, match[1]) - 1}#{_nth(match[2])}"
        if "#" in text or "L" in text:
            raise _FieldError("'L' and '#' must be the whole field, as in 6L or 6#3")
    return None


def _special_day_of_month(text: str) -> str:
    """Translate L (last day) and nW (nearest weekday); reject the forms croniter lacks."""
    if text == "L":
        return "L"
    match = _NEAREST_WEEKDAY.match(text)
    if match and 1 <= int(match[1]) <= 31:
        return f"{int(match[1])}W"
    raise _FieldError("only 'L' or a single 'nW' is supported here; LW, L-n and lists are not")


def _nth(text: str) -> int:
    """Parse the n of `day#n`, which Quartz allows from 1 to 5."""
    if not text.isdigit() or not 1 <= int(text) <= 5:
        raise _FieldError("the n of day#n must be 1 to 5")
    return int(text)


def _expand_item(spec: _Field, item: str) -> set[int]:
    """Expand one list item: a value, a range (may wrap), either with a /step, or */step."""
    base, slash, step_text = item.partition("/")
    step = _step(spec, step_text) if slash else 1
    if base == "*":
        low, high = spec.low, spec.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _value(spec, first), _value(spec, last)
    else:
        low = _value(spec, base)
        high = spec.high if slash else low
    return set(_cycle(spec, low, high)[::step])


def _cycle(spec: _Field, low: int, high: int) -> list[int]:
    """The values from low to high, wrapping past the end as Quartz does for FRI-MON."""
    if low <= high:
        return list(range(low, high + 1))
    return list(range(low, spec.high + 1)) + list(range(spec.low, high + 1))


def _step(spec: _Field, text: str) -> int:
    """Parse a step, which must be at least 1 and at most the field's span."""
    if not text.isdigit() or not 1 <= int(text) <= spec.high - spec.low + 1:
        raise _FieldError(f"step must be a number from 1 to {spec.high - spec.low + 1}")
    return int(text)


def _value(spec: _Field, text: str) -> int:
    """Parse a number or a name (JAN, MON) within the field's range."""
    if text in spec.names:
        return spec.names.index(text) + spec.low
    if not text.isdigit() or not spec.low <= int(text) <= spec.high:
        raise _FieldError(f"expected {_expected(spec)}, got {text!r}")
    return int(text)


def _expected(spec: _Field) -> str:
    """Describe the values a field accepts, for error messages."""
    if spec.name == "day_of_week":
        return "1 (Sunday) to 7 (Saturday) or SUN-SAT"
    names = f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
    return f"{spec.low} to {spec.high}{names}"


def _check_day_fields(texts: dict[str, str]) -> None:
    """Refuse what Quartz refuses: both day fields restricted (one of them must be '?')."""
    days = ("day_of_month", "day_of_week")
    restricted = [name for name in days if texts[name].strip() not in ("*", "?")]
    if len(restricted) == 2:
        raise DefinitionError.at(
            "day_of_week", "day_of_month and day_of_week cannot both be set; make one of them '?'"
        )


def _check_fires(expression: str) -> None:
    """Refuse impossible dates (31 February) and expressions that never fire."""
    _, _, days, months, weekdays = expression.split(" ")
    if weekdays == "*" and days.replace(",", "").isdigit() and not _some_month_has(days, months):
        raise DefinitionError.at("day_of_month", "no chosen month has that day: never fires")
    if not croniter.is_valid(expression, strict=True):
        raise DefinitionError.at("day_of_month", "impossible date: never fires")
    try:
        croniter(expression, _PROBE_START).get_next(datetime)
    except CroniterError as error:
        raise DefinitionError.at("day_of_month", f"never fires ({error})") from None


def _some_month_has(days: str, months: str) -> bool:
    """Whether any chosen month has any chosen day (29 February counts)."""
    chosen = range(1, 13) if months == "*" else [int(m) for m in months.split(",")]
    return min(int(d) for d in days.split(",")) <= max(_DAYS_IN_MONTH[m - 1] for m in chosen)


def _is_wildcard(text: str) -> bool:
    """Debian's wildcard test; Quartz's `0/15` means `*/15`, so it counts as one."""
    text = text.strip()
    return text.startswith("*") or bool(re.fullmatch(r"\d+/\d+", text))
