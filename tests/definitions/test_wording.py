"""Schedules in words on the definitions pages."""

from __future__ import annotations

import pytest

from definitions import ContinuousSchedule, CronSchedule
from definitions.wording import describe_schedule


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        pytest.param(("0", "6", "?", "*", "MON-FRI", "Europe/Paris"),
                     "at 06:00 on Mon-Fri (Europe/Paris)", id="weekdays"),
        pytest.param(("*/5", "*", "*", "*", "?", "UTC"), "every 5 minutes every day (UTC)",
                     id="every-5-minutes"),
        pytest.param(("30", "*", "1", "JAN", "?", "UTC"),
                     "every hour at minute 30 on day 1 of the month in Jan (UTC)", id="monthly"),
        pytest.param(("0", "*/2", "?", "*", "2-6", "UTC"),
                     "every 2 hours at minute 0 on Mon-Fri (UTC)", id="quartz-numbers"),
        pytest.param(("0,30", "9,17", "?", "*", "1,7", "UTC"),
                     "at 09:00, 09:30, 17:00, 17:30 on Sun, Sat (UTC)", id="lists"),
        pytest.param(("*", "*", "*", "*", "?", "UTC"), "every minute every day (UTC)",
                     id="every-minute"),
        pytest.param(("5-10", "1-3", "*", "*", "?", "UTC"),
                     "at minutes 5-10 of hours 1-3 every day (UTC)", id="fallback"),
    ],
)  # fmt: skip
def test_cron_schedules_in_words(fields: tuple[str, ...], words: str) -> None:
    assert describe_schedule(CronSchedule(*fields)) == words


def test_continuous_and_missing_schedules_in_words() -> None:
    assert describe_schedule(ContinuousSchedule(30)) == "continuously, 30 s after each run ends"
    assert describe_schedule(None) == "not scheduled (triggered by hand)"
