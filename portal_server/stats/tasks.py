"""Periodic job: today's figures every ten minutes; yesterday's once more during the first hour
of a city day so its last hour is counted."""
from __future__ import annotations

import datetime as dt

from portal_server.core import clock
from portal_server.core.db import session

from . import operations as ops


def aggregate_day(day_iso: str | None = None) -> int:
    """Aggregate one city day (ISO date; today when absent) and commit."""
    day = dt.date.fromisoformat(day_iso) if day_iso else clock.today()
    n = ops.aggregate(day)
    session.commit()
    return n


def aggregate_recent() -> None:
    today = clock.today()
    if clock.local(clock.now()).hour == 0:
        ops.aggregate(today - dt.timedelta(days=1))
    ops.aggregate(today)
    ops.prune_beacons()
    session.commit()
