"""One rule for time (DESIGN §1): store UTC, compare in UTC on every database, convert to city
time (``Asia/Shanghai`` by default, ``Settings.timezone``) only to display and to cut days.

SQLite keeps no offset: SQLAlchemy writes the wall time of whatever datetime it is given, so a
bound in +0800 compared with rows written in UTC is off by eight hours. Everything that reaches
a query therefore goes through :func:`utc` first, and everything read back through :func:`aware`.
Tests freeze ``now()`` with time-machine; nothing here caches the time.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
from pathlib import Path
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
DEFAULT_ZONE = "Asia/Shanghai"


def city_tz() -> ZoneInfo:
    """The city's time zone (``Settings.timezone`` inside an app, else Asia/Shanghai)."""
    try:
        from flask import current_app, has_app_context
        if has_app_context():
            return ZoneInfo(current_app.config["SETTINGS"].timezone)
    except Exception:  # outside Flask (scripts, simulator)
        pass
    return ZoneInfo(DEFAULT_ZONE)


def now() -> dt.datetime:
    """Timezone-aware now in UTC."""
    return dt.datetime.now(UTC)


def aware(ts: dt.datetime | None) -> dt.datetime | None:
    """A datetime read from the database as aware UTC (SQLite hands back naive UTC)."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def utc(ts: dt.datetime | None) -> dt.datetime | None:
    """The value to store or compare: aware UTC. A naive value is taken as UTC."""
    return aware(ts)


def local(ts: dt.datetime | None) -> dt.datetime | None:
    """``ts`` in city time, for display and day cuts."""
    return None if ts is None else aware(ts).astimezone(city_tz())


def fmt(ts: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M", empty: str = "") -> str:
    """``ts`` formatted in city time; ``empty`` when there is none."""
    return empty if ts is None else local(ts).strftime(pattern)


def iso(ts: dt.datetime | None) -> str | None:
    """ISO 8601 with the city's offset (the API's timestamps, INTERFACES §4)."""
    return None if ts is None else local(ts).isoformat()


def today() -> dt.date:
    """The city's date now."""
    return now().astimezone(city_tz()).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The city day ``day`` as [start, end) in UTC, ready to compare with stored rows."""
    tz = city_tz()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def at_city_time(day: dt.date, hhmm: dt.time) -> dt.datetime:
    """The UTC instant of wall time ``hhmm`` on city date ``day``."""
    return dt.datetime.combine(day, hhmm, tzinfo=city_tz()).astimezone(UTC)


def parse(value: str) -> dt.datetime:
    """An ISO 8601 string as aware UTC; a value without offset is city time (what staff type)."""
    ts = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=city_tz())
    return ts.astimezone(UTC)


#: The State Council's holidays (放假) and make-up working days (调休上班), one row a day.
HOLIDAYS_CSV = Path(__file__).parent / "data" / "holidays.csv"


@functools.lru_cache(maxsize=1)
def _calendar() -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(holidays, make-up working days) of ``HOLIDAYS_CSV`` (the file, not the time, is cached)."""
    off, on = set(), set()
    with HOLIDAYS_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            day = dt.date.fromisoformat(row["date"].strip())
            (off if row["kind"].strip() == "holiday" else on).add(day)
    return frozenset(off), frozenset(on)


def is_working_day(day: dt.date) -> bool:
    """Mon–Fri unless a public holiday, and a weekend day the State Council made a working day
    (调休上班). Years the file does not list count Mon–Fri only."""
    off, on = _calendar()
    if day in on:
        return True
    return day.weekday() < 5 and day not in off


def add_working_days(start: dt.datetime, days: int, at: dt.time = dt.time(18, 0),
                     zone: ZoneInfo | None = None) -> dt.datetime:
    """``start`` plus ``days`` working days (``is_working_day``: Mon–Fri, public holidays off,
    make-up Saturdays/Sundays on; city calendar), ending at ``at`` city time (18:00; feedback's
    deadlines end at 23:59:59). 0 days = ``at`` on the same day."""
    zone = zone or city_tz()
    d = aware(start).astimezone(zone).date()
    left = days
    while left > 0:
        d += dt.timedelta(days=1)
        if is_working_day(d):
            left -= 1
    return dt.datetime.combine(d, at, tzinfo=zone).astimezone(UTC)
