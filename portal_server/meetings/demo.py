"""Demo meetings: a 村民议事会 in 东河村 tomorrow evening and a 两委会议 the day after."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal_server.core import clock
from portal_server.core.db import session

from . import operations as ops
from .models import Meeting


def seed(ctx) -> None:
    """Idempotent: only when no meeting exists yet."""
    if session.scalar(select(func.count()).select_from(Meeting)):
        return
    tz = clock.city_tz()
    day = clock.today() + dt.timedelta(days=1)
    user = ctx.users["v001-editor"]
    for offset, title, hour, agenda in (
            (0, "村民议事会", 19, "一、村东道路硬化方案\n二、村集体经济收益分配\n三、群众提问"),
            (1, "两委会议（公开）", 15, "一、本季度村务公开事项\n二、高龄老人助餐点选址")):
        start = dt.datetime.combine(day + dt.timedelta(days=offset), dt.time(hour, 0), tz)
        ops.schedule(user, title, "990101001001", start, start + dt.timedelta(hours=1, minutes=30), agenda)
        ctx.count("meetings")
