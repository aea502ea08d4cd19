"""Request parameters shared by the stats API and the cockpit: region (in scope) and period."""
from __future__ import annotations

import datetime as dt

from portal_server.core import clock, scope
from portal_server.core.api import ApiError, bad_request

from .queries import METRICS

MAX_SPAN_DAYS = 731
ROLES = ("analyst", "admin")
#: The map is the NOC overview's too.
MAP_ROLES = ROLES + ("noc",)


def region_arg(user, code: str | None):
    """The asked region (default: the caller's own), 403 naming it when outside the scope."""
    return scope.require(user, code or user.region.code, what=None)


def _date(value: str, name: str) -> dt.date:
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return clock.local(clock.parse(value)).date()
    except ValueError:
        raise bad_request(f"参数 {name} 不是有效日期（格式 YYYY-MM-DD）：{value}", field=name) from None


def period_args(args, default_days: int = 7) -> tuple[dt.date, dt.date]:
    """``from``/``to`` as city dates (YYYY-MM-DD or ISO 8601); default the last ``default_days``
    days to today. 400 when from is after to or the span exceeds two years."""
    today = clock.today()
    end = _date(args["to"], "to") if args.get("to") else today
    start = _date(args["from"], "from") if args.get("from") else end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise bad_request(f"开始日期 {start} 晚于结束日期 {end}", field="from")
    if (end - start).days + 1 > MAX_SPAN_DAYS:
        raise bad_request("统计区间不能超过两年（731 天）", field="from")
    return start, end


def presets(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """The cockpit's period buttons as (label, from, to), ``today`` being the city's date."""
    return [("近7天", today - dt.timedelta(days=6), today),
            ("近30天", today - dt.timedelta(days=29), today),
            ("近90天", today - dt.timedelta(days=89), today),
            ("本月", today.replace(day=1), today),
            ("本年", today.replace(month=1, day=1), today)]


def previous(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before [start, end] (for "change against last period")."""
    n = (end - start).days + 1
    return start - dt.timedelta(days=n), start - dt.timedelta(days=1)


def metric_arg(value: str | None) -> str:
    if not value:
        raise bad_request("缺少参数 metric；可用指标：" + "、".join(METRICS), field="metric")
    if value not in METRICS and not value.startswith("tv.section."):
        raise ApiError(400, "bad_request", f"没有指标 {value}；可用指标：" + "、".join(METRICS),
                       field="metric", valid=sorted(METRICS))
    return value
