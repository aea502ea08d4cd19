"""Working days follow the State Council's calendar (core/data/holidays.csv): public holidays are
not working days, a make-up Saturday/Sunday (调休上班) is one."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from portal_server.core import clock

CN = ZoneInfo("Asia/Shanghai")


def day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(CN).date()


def test_national_day_week_is_skipped_and_its_make_up_saturday_counts():
    wed = dt.datetime(2026, 9, 30, 10, 0, tzinfo=CN)            # the last working day before 国庆
    assert day(clock.add_working_days(wed, 1, zone=CN)) == dt.date(2026, 10, 8)    # Oct 1–7 off
    assert day(clock.add_working_days(wed, 3, zone=CN)) == dt.date(2026, 10, 10)   # Saturday 调休上班
    assert day(clock.add_working_days(wed, 4, zone=CN)) == dt.date(2026, 10, 12)
    assert clock.is_working_day(dt.date(2026, 9, 20))      # Sunday 调休上班
    assert not clock.is_working_day(dt.date(2026, 10, 5))  # a Monday of the holiday
    assert not clock.is_working_day(dt.date(2026, 10, 11))  # an ordinary Sunday


def test_spring_festival_and_new_year_2026():
    fri = dt.datetime(2026, 2, 13, 9, 0, tzinfo=CN)
    # Sat 14 Feb is worked (调休), 15–23 Feb off, Tue 24 Feb is the next working day.
    assert day(clock.add_working_days(fri, 1, zone=CN)) == dt.date(2026, 2, 14)
    assert day(clock.add_working_days(fri, 2, zone=CN)) == dt.date(2026, 2, 24)
    assert clock.is_working_day(dt.date(2026, 1, 4)) and not clock.is_working_day(dt.date(2026, 1, 2))


def test_ordinary_weeks_and_unlisted_years_count_monday_to_friday():
    fri = dt.datetime(2026, 11, 20, 9, 0, tzinfo=CN)
    assert day(clock.add_working_days(fri, 1, zone=CN)) == dt.date(2026, 11, 23)
    assert clock.is_working_day(dt.date(2031, 1, 1))   # not in the file: a Wednesday like any other
