"""Schedule maths: cron fire times across DST changes, missed fires, continuous runs, backoff.

A cron schedule denotes a set of instants; `next_fire_time` returns the first one after a
given instant. Which instants, around DST changes, follows Debian cron (and cronsim):

- wall-clock jobs (no wildcard in minutes or hours) run once per matching wall-clock time:
  a time skipped in spring runs at the first valid minute after the gap, a time repeated in
  autumn runs at its first occurrence only;
- other jobs keep their real-time rhythm: every instant whose local time matches fires, so a
  repeated hour fires twice and a skipped hour not at all.
"""

import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from .errors import DefinitionError
from .limits import MAX_RETRY_DELAY
from .model import CronSchedule, TaskDefinition
from .quartz import CompiledCron, compile_cron

# Larger than any backward clock change in use (the largest is Antarctica/Troll's 2 hours):
# within this margin of a change, wall-clock order and real-time order may differ.
_MARGIN = timedelta(hours=3)
_MAX_STEPS = 10_000
_ITERATORS = threading.local()  # croniter objects are stateful: one cache per thread


def compile_schedule(schedule: CronSchedule) -> CompiledCron:
    """Translate a schedule's Quartz fields (cached); DefinitionError if they are invalid."""
    return compile_cron(
        schedule.minutes,
        schedule.hours,
        schedule.day_of_month,
        schedule.month,
        schedule.day_of_week,
    )


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`; DefinitionError naming `time_zone` if unknown."""
    if name not in _known_zones():
        raise DefinitionError.at("time_zone", f"unknown time zone {name!r}")
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    """Every IANA zone name, so odd keys ('../x', 'America') never reach the file system."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def next_fire_time(schedule: CronSchedule, after: datetime) -> datetime:
    """The first fire time strictly after `after` (aware), as an aware UTC datetime."""
    compiled = compile_schedule(schedule)
    tz = zone(schedule.time_zone)
    after = _as_utc(after)
    if compiled.wall_clock:
        return _next_wall_clock(compiled.expression, tz, after)
    return _next_real_time(compiled.expression, tz, after)


def missed_fire_times(
    schedule: CronSchedule, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The most recent `limit` fire times in (after, until], oldest first."""
    after, until = _as_utc(after), _as_utc(until)
    window = timedelta(minutes=limit)  # fires are at least a minute apart
    while limit > 0 and until > after:
        start = after if window >= until - after else until - window
        fires = _fires_between(schedule, start, until, limit)
        if len(fires) == limit or start == after:
            return list(fires)
        window *= 2
    return []


def continuous_next(ended_at: datetime, buffer_seconds: int) -> datetime:
    """When a continuous process whose run ended at `ended_at` starts again."""
    return ended_at + timedelta(seconds=buffer_seconds)


def retry_delay(task: TaskDefinition, attempt: int) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1-based), capped at a day."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    cap = MAX_RETRY_DELAY.total_seconds()
    try:
        seconds = task.backoff_base_seconds * task.backoff_exponent ** (attempt - 1)
    except OverflowError:
        return MAX_RETRY_DELAY
    # `not <=` also catches NaN from a hand-edited stored copy.
    return MAX_RETRY_DELAY if not seconds <= cap else timedelta(seconds=max(seconds, 0))


def _fires_between(
    schedule: CronSchedule, start: datetime, until: datetime, limit: int
) -> deque[datetime]:
    """The last `limit` fire times in (start, until]."""
    fires: deque[datetime] = deque(maxlen=limit)
    fire = next_fire_time(schedule, start)
    while fire <= until:
        fires.append(fire)
        fire = next_fire_time(schedule, fire)
    return fires


def _next_wall_clock(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """Next fire of a wall-clock job: each matching local time once, at its first instant."""
    wall = _wall(after, tz)
    for _ in range(_MAX_STEPS):
        wall = _next_wall(expression, wall)
        fire = _earliest_instant(wall, tz)
        # Inside a repeated hour, matching times already fired at their first occurrence.
        if fire > after:
            return fire
    raise DefinitionError.at("schedule", "no fire time found")


def _next_real_time(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """Next fire of an interval job: the first instant whose local time matches."""
    wall = _wall(after, tz)
    fire = _fast_next(expression, tz, after, wall)
    return fire if fire is not None else _careful_next(expression, tz, after, wall)


def _fast_next(expression: str, tz: ZoneInfo, after: datetime, wall: datetime) -> datetime | None:
    """The next fire when no clock change is near `after` or the answer, else None."""
    fire = _instant(_next_wall(expression, wall), tz, fold=0)
    if fire is None or fire != _instant(_wall(fire, tz), tz, fold=1):
        return None
    if _steady(tz, after) and _steady(tz, fire - _MARGIN) and fire > after:
        return fire
    return None


def _careful_next(expression: str, tz: ZoneInfo, after: datetime, wall: datetime) -> datetime:
    """The next fire near a clock change: try both instants of every candidate local time."""
    best: datetime | None = None
    candidate = wall - _MARGIN
    for _ in range(_MAX_STEPS):
        candidate = _next_wall(expression, candidate)
        # Past this, a local time cannot belong to an instant earlier than `best`.
        if best is not None and candidate > _wall(best, tz) + _MARGIN:
            return best
        for fold in (0, 1):
            fire = _instant(candidate, tz, fold)
            if fire is not None and fire > after and (best is None or fire < best):
                best = fire
    raise DefinitionError.at("schedule", "no fire time found")


def _steady(tz: ZoneInfo, start: datetime) -> bool:
    """Whether the UTC offset is the same at `start` and a margin later."""
    return start.astimezone(tz).utcoffset() == (start + _MARGIN).astimezone(tz).utcoffset()


def _earliest_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant showing local time `wall`, or the end of the gap that skips it."""
    for _ in range(_MAX_STEPS):
        fire = _instant(wall, tz, fold=0)
        if fire is not None:
            return fire
        wall += timedelta(minutes=1)
    raise DefinitionError.at("time_zone", "clock gap too long")


def _instant(wall: datetime, tz: ZoneInfo, fold: int) -> datetime | None:
    """The UTC instant showing local time `wall` (of the two, per `fold`); None if skipped."""
    fire = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
    return fire if _wall(fire, tz) == wall else None


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local time in `tz` at `instant`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _next_wall(expression: str, wall: datetime) -> datetime:
    """The first naive local time strictly after `wall` that matches `expression`."""
    iterators = _ITERATORS.__dict__.setdefault("by_expression", {})
    iterator = iterators.get(expression)
    if iterator is None:
        if len(iterators) >= 4096:
            iterators.clear()
        iterator = iterators[expression] = croniter(expression, wall)
    try:
        return iterator.get_next(datetime, start_time=wall)
    except CroniterError as error:
        raise DefinitionError.at("schedule", f"no fire time after {wall}: {error}") from None


def _as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are refused, never guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)
