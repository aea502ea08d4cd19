"""Jobs of grids: the weekly report (周报告), generated on Mondays for the week before."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.db import session
from portal_server.core.regions import Region

from . import operations as ops
from . import queries
from .models import LEVELS


def weekly_report(day: dt.date | None = None) -> int | None:
    """Store the report of the last complete week (Monday–Sunday before ``day``'s week); runs every
    hour and does nothing once that week's report exists, so a worker down on Monday catches up."""
    day = day or clock.today()
    this_monday = day - dt.timedelta(days=day.weekday())
    week_start = this_monday - dt.timedelta(days=7)
    if any(r.week_start == week_start for r in queries.weekly_reports(limit=2)):
        return None
    data: dict = {level: [] for level in LEVELS}
    for root in session.scalars(select(Region).where(Region.parent_id.is_(None))):
        for level, items in queries.assessment_all(root, week_start, this_monday).items():
            data[level].extend(items)
    rep, _created = ops.save_weekly_report(week_start, data)
    session.commit()
    return rep.id
